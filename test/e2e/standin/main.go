package main

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

const (
	outboundPort = 15001
	inboundPort  = 15003
	defaultAdmin = "127.0.0.1:15000"
	// soOriginalDst is SO_ORIGINAL_DST (IPv4, level SOL_IP) and IP6T_SO_ORIGINAL_DST (IPv6,
	// level SOL_IPV6): the destination a connection had before a NAT REDIRECT rewrote it.
	soOriginalDst = 80
	maxRecords    = 1000
)

// Record is one connection the stand-in proxied (or failed to).
type Record struct {
	Time                time.Time `json:"time"`
	Direction           string    `json:"direction"` // outbound or inbound
	Source              string    `json:"source"`
	OriginalDestination string    `json:"originalDestination"`
	Upstream            string    `json:"upstream"`
	BytesToUpstream     int64     `json:"bytesToUpstream"`
	BytesFromUpstream   int64     `json:"bytesFromUpstream"`
	Error               string    `json:"error,omitempty"`
}

type journal struct {
	mu      sync.Mutex
	records []Record
}

func (j *journal) add(r Record) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.records = append(j.records, r)
	if len(j.records) > maxRecords {
		j.records = j.records[len(j.records)-maxRecords:]
	}
}

func (j *journal) list() []Record {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]Record(nil), j.records...)
}

func main() {
	args, err := parseArgs(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "standin:", err)
		os.Exit(1)
	}
	log.SetFlags(log.LstdFlags | log.Lmicroseconds | log.LUTC)
	log.Printf("stand-in sidecar (not Envoy) starting: log level %q, admin %s, bootstrap %s", args.logLevel, args.admin, args.bootstrapFrom)
	j := &journal{}
	errs := make(chan error, 3)
	for _, l := range []struct {
		port int
		dir  string
	}{{outboundPort, "outbound"}, {inboundPort, "inbound"}} {
		ln, err := net.Listen("tcp", ":"+strconv.Itoa(l.port))
		if err != nil {
			log.Fatalf("listen on %d: %v", l.port, err)
		}
		go func() { errs <- acceptLoop(ln, l.dir, j) }()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /connections", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(j.list())
	})
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "LIVE") })
	srv := &http.Server{Addr: args.admin, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { errs <- srv.ListenAndServe() }()
	log.Fatal(<-errs)
}

type options struct {
	logLevel      string
	admin         string
	bootstrapFrom string
}

// parseArgs reads the flags the injector passes to Envoy. The bootstrap only matters for its
// admin address; a bootstrap that is not JSON (YAML from a file) keeps the default address.
func parseArgs(argv []string) (options, error) {
	o := options{logLevel: "info", admin: defaultAdmin, bootstrapFrom: "none"}
	var bootstrap []byte
	for i := 0; i < len(argv); i++ {
		value := func() (string, error) {
			if i+1 >= len(argv) {
				return "", fmt.Errorf("%s needs a value", argv[i])
			}
			i++
			return argv[i], nil
		}
		switch argv[i] {
		case "-l", "--log-level":
			v, err := value()
			if err != nil {
				return o, err
			}
			o.logLevel = v
		case "--config-yaml":
			v, err := value()
			if err != nil {
				return o, err
			}
			bootstrap, o.bootstrapFrom = []byte(v), "--config-yaml"
		case "-c", "--config-path":
			v, err := value()
			if err != nil {
				return o, err
			}
			data, err := os.ReadFile(v)
			if err != nil {
				return o, err
			}
			bootstrap, o.bootstrapFrom = data, v
		}
	}
	if addr := adminAddress(bootstrap); addr != "" {
		o.admin = addr
	}
	return o, nil
}

func adminAddress(bootstrap []byte) string {
	var b struct {
		Admin struct {
			Address struct {
				SocketAddress struct {
					Address   string `json:"address"`
					PortValue int    `json:"port_value"`
				} `json:"socket_address"`
			} `json:"address"`
		} `json:"admin"`
	}
	if json.Unmarshal(bootstrap, &b) != nil {
		return ""
	}
	sa := b.Admin.Address.SocketAddress
	if sa.Address == "" || sa.PortValue == 0 {
		return ""
	}
	return net.JoinHostPort(sa.Address, strconv.Itoa(sa.PortValue))
}

func acceptLoop(ln net.Listener, direction string, j *journal) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go proxy(c.(*net.TCPConn), direction, j)
	}
}

func proxy(c *net.TCPConn, direction string, j *journal) {
	defer c.Close()
	r := Record{Time: time.Now().UTC(), Direction: direction, Source: c.RemoteAddr().String()}
	defer func() {
		j.add(r)
		log.Printf("%s %s -> %s via %s: %d bytes up, %d down %s", r.Direction, r.Source, r.OriginalDestination, r.Upstream, r.BytesToUpstream, r.BytesFromUpstream, r.Error)
	}()
	orig, err := originalDestination(c)
	if err != nil {
		r.Error = err.Error()
		return
	}
	r.OriginalDestination = orig.String()
	up := orig
	if direction == "inbound" {
		up = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: orig.Port}
		if orig.IP.To4() == nil {
			up.IP = net.IPv6loopback
		}
	}
	if local, ok := c.LocalAddr().(*net.TCPAddr); ok && up.Port == local.Port && (up.IP.IsLoopback() || up.IP.Equal(local.IP)) {
		r.Error = "not redirected: the connection was made to the listener itself"
		return
	}
	r.Upstream = up.String()
	u, err := net.DialTimeout("tcp", up.String(), 5*time.Second)
	if err != nil {
		r.Error = err.Error()
		return
	}
	defer u.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.BytesToUpstream, _ = io.Copy(u, c)
		_ = u.(*net.TCPConn).CloseWrite()
	}()
	r.BytesFromUpstream, _ = io.Copy(c, u)
	_ = c.CloseWrite()
	wg.Wait()
}

// originalDestination asks netfilter where a redirected connection was going.
func originalDestination(c *net.TCPConn) (*net.TCPAddr, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var addr *net.TCPAddr
	var serr error
	v4 := false
	if l, ok := c.LocalAddr().(*net.TCPAddr); ok && l.IP.To4() != nil {
		v4 = true
	}
	err = raw.Control(func(fd uintptr) {
		if v4 {
			// sockaddr_in fits in the 16-byte multicast address of an ipv6_mreq.
			m, err := syscall.GetsockoptIPv6Mreq(int(fd), syscall.SOL_IP, soOriginalDst)
			if err != nil {
				serr = err
				return
			}
			b := m.Multiaddr
			addr = &net.TCPAddr{IP: net.IPv4(b[4], b[5], b[6], b[7]), Port: int(b[2])<<8 | int(b[3])}
			return
		}
		// sockaddr_in6 fits in the 32-byte ip6_mtuinfo.
		m, err := syscall.GetsockoptIPv6MTUInfo(int(fd), syscall.SOL_IPV6, soOriginalDst)
		if err != nil {
			serr = err
			return
		}
		// The port is in network byte order in memory.
		var p [2]byte
		binary.NativeEndian.PutUint16(p[:], m.Addr.Port)
		addr = &net.TCPAddr{IP: net.IP(m.Addr.Addr[:]), Port: int(binary.BigEndian.Uint16(p[:]))}
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return nil, fmt.Errorf("SO_ORIGINAL_DST: %w", err)
	}
	if addr.Port == 0 {
		return nil, errors.New("SO_ORIGINAL_DST: no original destination")
	}
	return addr, nil
}
