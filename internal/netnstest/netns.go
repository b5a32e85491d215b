package netnstest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Timeouts bounding everything a test does in a namespace.
const (
	// CommandTimeout bounds every command run in a namespace.
	CommandTimeout = 20 * time.Second
	// DialTimeout bounds one connection attempt, including reading the listener's greeting.
	DialTimeout = 2 * time.Second
)

// Require skips the test unless it runs as root and ip plus the named tools are installed.
func Require(t testing.TB, tools ...string) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("network namespace tests need Linux")
	}
	if os.Geteuid() != 0 {
		t.Skip("network namespace tests need root (ip netns add, iptables); run the tests as root")
	}
	var missing []string
	for _, tool := range append([]string{"ip"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		t.Skipf("network namespace tests need %s in PATH (apt-get install -y iptables iproute2)", strings.Join(missing, ", "))
	}
}

// NS is a network namespace created for one test and deleted when it ends.
type NS struct {
	Name string
	t    testing.TB
}

// New creates a fresh named network namespace with its loopback interface up.
func New(t testing.TB) *NS {
	t.Helper()
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	n := &NS{Name: "mktest-" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:]), t: t}
	if out, err := run(context.Background(), nil, "ip", "netns", "add", n.Name); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", n.Name, err, out)
	}
	t.Cleanup(func() {
		if out, err := run(context.Background(), nil, "ip", "netns", "del", n.Name); err != nil {
			t.Errorf("ip netns del %s: %v: %s", n.Name, err, out)
		}
	})
	n.MustRun("ip", "link", "set", "lo", "up")
	// Without duplicate address detection, link-local and global IPv6 addresses are usable the
	// moment a link comes up, so the first connection does not wait for neighbour discovery
	// retries. Kernels without IPv6 have no such files; that is fine.
	_ = n.Do(func() error {
		for _, f := range []string{"all", "default"} {
			_ = os.WriteFile("/proc/sys/net/ipv6/conf/"+f+"/accept_dad", []byte("0\n"), 0o644)
		}
		return nil
	})
	return n
}

func run(ctx context.Context, stdin []byte, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, CommandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err := cmd.Run()
	if err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// Exec runs argv inside the namespace through `ip netns exec` and returns its stdout. The error
// names the command and carries its stderr.
func (n *NS) Exec(stdin []byte, argv ...string) (string, error) {
	return run(context.Background(), stdin, "ip", append([]string{"netns", "exec", n.Name}, argv...)...)
}

// Run is Exec without stdin.
func (n *NS) Run(argv ...string) (string, error) { return n.Exec(nil, argv...) }

// MustRun runs argv inside the namespace and fails the test if it fails.
func (n *NS) MustRun(argv ...string) string {
	n.t.Helper()
	out, err := n.Run(argv...)
	if err != nil {
		n.t.Fatal(err)
	}
	return out
}

// RunAs runs argv inside the namespace as the given user and group (through setpriv), for
// programs that must not run as root.
func (n *NS) RunAs(uid, gid int, argv ...string) (string, error) {
	return n.Run(append([]string{"setpriv", "--reuid=" + strconv.Itoa(uid), "--regid=" + strconv.Itoa(gid), "--clear-groups", "--"}, argv...)...)
}

// errThreadTainted tells Do that fn left per-thread state it could not undo, so the thread must
// not be handed back to the Go scheduler.
var errThreadTainted = errors.New("thread credentials could not be restored")

// Do runs fn on an OS thread switched into the namespace. Sockets created by fn stay in the
// namespace after Do returns. fn must not start goroutines that expect to be in the namespace.
// If the thread cannot be switched back it is never unlocked, so the runtime discards it.
func (n *NS) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open own network namespace: %w", err)
			return
		}
		defer unix.Close(orig)
		target, err := unix.Open("/run/netns/"+n.Name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open namespace %s: %w", n.Name, err)
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter namespace %s: %w", n.Name, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil || errors.Is(ferr, errThreadTainted) {
			errc <- errors.Join(ferr, err)
			return // thread stays locked and dies with this goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Link joins namespaces a and b with a veth pair named aIf (in a) and bIf (in b), assigns the
// given addresses (CIDR notation; IPv6 ones without duplicate address detection so they are
// usable at once) and brings both ends up.
func Link(t testing.TB, a *NS, aIf string, aAddrs []string, b *NS, bIf string, bAddrs []string) {
	t.Helper()
	a.MustRun("ip", "link", "add", aIf, "type", "veth", "peer", "name", bIf, "netns", b.Name)
	for _, side := range []struct {
		ns    *NS
		ifc   string
		addrs []string
	}{{a, aIf, aAddrs}, {b, bIf, bAddrs}} {
		for _, addr := range side.addrs {
			args := []string{"ip", "addr", "add", addr, "dev", side.ifc}
			if strings.Contains(addr, ":") {
				args = append(args, "nodad")
			}
			side.ns.MustRun(args...)
		}
		side.ns.MustRun("ip", "link", "set", side.ifc, "up")
	}
	// The kernel finishes bringing a link up asynchronously; packets sent before that are
	// dropped and the first connection then waits a full retransmission timeout.
	deadline := time.Now().Add(5 * time.Second)
	for _, side := range []struct {
		ns  *NS
		ifc string
	}{{a, aIf}, {b, bIf}} {
		for {
			link, _ := side.ns.Run("ip", "-o", "link", "show", "dev", side.ifc)
			tentative, _ := side.ns.Run("ip", "-o", "addr", "show", "dev", side.ifc, "tentative")
			if strings.Contains(link, "state UP") && strings.TrimSpace(tentative) == "" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("link %s in %s is not ready after 5s: %s %s", side.ifc, side.ns.Name, link, tentative)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// Accepted describes one connection a Listener took.
type Accepted struct {
	Listener string
	Local    string // the address the connection arrived at (after any redirect)
	Remote   string
}

// Listener is a TCP listener inside a namespace. Every connection it accepts is greeted with the
// listener's name and a newline, then closed, so the dialling side learns where it landed.
type Listener struct {
	Name string
	Addr net.Addr
	ln   net.Listener
	mu   sync.Mutex
	seen []Accepted
	done chan struct{}
}

// Listen opens a TCP listener inside the namespace; network and address are as for net.Listen
// ("tcp" on ":15001" takes both families). It is closed when the test ends.
func (n *NS) Listen(name, network, address string) *Listener {
	n.t.Helper()
	var ln net.Listener
	err := n.Do(func() error {
		var err error
		ln, err = net.Listen(network, address)
		return err
	})
	if err != nil {
		n.t.Fatalf("listen %s %s in %s: %v", network, address, n.Name, err)
	}
	l := &Listener{Name: name, Addr: ln.Addr(), ln: ln, done: make(chan struct{})}
	go l.serve()
	n.t.Cleanup(func() {
		ln.Close()
		<-l.done
	})
	return l
}

func (l *Listener) serve() {
	defer close(l.done)
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		l.mu.Lock()
		l.seen = append(l.seen, Accepted{Listener: l.Name, Local: c.LocalAddr().String(), Remote: c.RemoteAddr().String()})
		l.mu.Unlock()
		_ = c.SetDeadline(time.Now().Add(DialTimeout))
		_, _ = c.Write([]byte(l.Name + "\n"))
		_ = c.Close()
	}
}

// Accepted returns the connections taken so far.
func (l *Listener) Accepted() []Accepted {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Accepted(nil), l.seen...)
}

// DialOption changes how Dial connects.
type DialOption func(*dialConfig)

type dialConfig struct {
	uid int
}

// AsUID makes the connection's socket belong to uid, as if a process running as uid opened it:
// the thread's filesystem UID, which the kernel records on the socket and which iptables'
// owner match reads, is switched for the duration of the dial.
func AsUID(uid int) DialOption { return func(c *dialConfig) { c.uid = uid } }

// Dial connects from inside the namespace to address ("192.0.2.2:8080", "[2001:db8::2]:80") and
// returns the name of the listener that answered. Connections that are refused or time out
// return an error; Dial never takes longer than DialTimeout.
func (n *NS) Dial(address string, opts ...DialOption) (string, error) {
	cfg := dialConfig{uid: -1}
	for _, o := range opts {
		o(&cfg)
	}
	var conn net.Conn
	err := n.Do(func() (err error) {
		if cfg.uid >= 0 {
			// setfsuid reports the previous value and cannot fail visibly; asking with an
			// invalid id (-1) reads the current one without changing it.
			prev, _ := unix.SetfsuidRetUid(cfg.uid)
			defer func() {
				_, _ = unix.SetfsuidRetUid(prev)
				if now, _ := unix.SetfsuidRetUid(-1); now != prev {
					err = errors.Join(err, errThreadTainted)
				}
			}()
			if now, _ := unix.SetfsuidRetUid(-1); now != cfg.uid {
				return fmt.Errorf("could not switch the filesystem UID to %d (still %d)", cfg.uid, now)
			}
		}
		d := net.Dialer{Timeout: DialTimeout}
		conn, err = d.Dial("tcp", address)
		return err
	})
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(DialTimeout))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("read greeting from %s: %w", address, err)
	}
	return strings.TrimSuffix(line, "\n"), nil
}
