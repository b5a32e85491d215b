// Command curlstandin is a stand-in for curl in the init containers of OSM's control plane on
// the real-node cluster, which wait for osm-bootstrap with
//
//	curl http://osm-bootstrap.<namespace>.svc.cluster.local:9091/healthz --connect-timeout 2 \
//	  --retry 50 --retry-connrefused --retry-delay 5
//
// It exists because no curl image can be had on the machines these tests run on, and because
// that cluster has no DNS server: a name <service>.<namespace>.svc[.cluster.local] that the
// resolver cannot find is looked up the way Kubernetes offered before cluster DNS, in the
// <SERVICE>_SERVICE_HOST and <SERVICE>_SERVICE_PORT variables the kubelet sets for the Services
// of the pod's own namespace. Everything else goes through the ordinary resolver.
//
// It understands only what those init containers use: one http:// URL, --connect-timeout SECONDS,
// --retry N, --retry-connrefused and --retry-delay SECONDS. Like curl without --fail, it exits 0
// once the server answered, whatever the status, and prints the body; it exits 6 when the host
// cannot be resolved, 7 when no connection could be made, 28 on a timeout and 2 on a command
// line it does not understand.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const serviceAccountNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

type options struct {
	url            string
	connectTimeout time.Duration
	retries        int
	retryRefused   bool
	retryDelay     time.Duration
}

func main() {
	o, err := parseArgs(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "curl (stand-in):", err)
		os.Exit(2)
	}
	os.Exit(run(o))
}

func parseArgs(argv []string) (options, error) {
	o := options{connectTimeout: 2 * time.Minute, retryDelay: time.Second}
	seconds := func(s string) (time.Duration, error) {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f < 0 {
			return 0, fmt.Errorf("not a number of seconds: %q", s)
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	for i := 0; i < len(argv); i++ {
		a := argv[i]
		value := func() (string, error) {
			if i+1 >= len(argv) {
				return "", fmt.Errorf("%s needs a value", a)
			}
			i++
			return argv[i], nil
		}
		var err error
		var v string
		switch a {
		case "--connect-timeout", "--retry-delay":
			if v, err = value(); err == nil {
				var d time.Duration
				if d, err = seconds(v); err == nil {
					if a == "--connect-timeout" {
						o.connectTimeout = d
					} else {
						o.retryDelay = d
					}
				}
			}
		case "--retry":
			if v, err = value(); err == nil {
				if o.retries, err = strconv.Atoi(v); err != nil || o.retries < 0 {
					err = fmt.Errorf("--retry: not a count: %q", v)
				}
			}
		case "--retry-connrefused":
			o.retryRefused = true
		default:
			if strings.HasPrefix(a, "-") {
				return o, fmt.Errorf("option %s is not supported by this stand-in", a)
			}
			if o.url != "" {
				return o, errors.New("one URL only")
			}
			o.url = a
		}
		if err != nil {
			return o, err
		}
	}
	if o.url == "" {
		return o, errors.New("no URL")
	}
	u, err := url.Parse(o.url)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return o, fmt.Errorf("only http:// URLs are supported: %q", o.url)
	}
	return o, nil
}

func run(o options) int {
	u, _ := url.Parse(o.url)
	for attempt := 0; ; attempt++ {
		code, retryable, err := get(o, u)
		if err == nil {
			return 0
		}
		fmt.Fprintf(os.Stderr, "curl (stand-in): (%d) %v\n", code, err)
		if !retryable || attempt >= o.retries {
			return code
		}
		fmt.Fprintf(os.Stderr, "curl (stand-in): will retry in %s, %d retries left\n", o.retryDelay, o.retries-attempt)
		time.Sleep(o.retryDelay)
	}
}

// get makes one request. It returns curl's exit code for the failure and whether curl would
// retry it (--retry retries timeouts; connection refused only with --retry-connrefused).
func get(o options, u *url.URL) (int, bool, error) {
	addr, err := resolve(u)
	if err != nil {
		return 6, false, err
	}
	dialer := &net.Dialer{Timeout: o.connectTimeout}
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, addr)
		},
	}}
	resp, err := client.Get(u.String())
	if err != nil {
		var ne net.Error
		switch {
		case errors.Is(err, syscall.ECONNREFUSED):
			return 7, o.retryRefused, err
		case errors.As(err, &ne) && ne.Timeout():
			return 28, true, err
		default:
			return 7, false, err
		}
	}
	defer resp.Body.Close()
	_, err = io.Copy(os.Stdout, resp.Body)
	fmt.Println()
	if err != nil {
		return 56, false, err
	}
	return 0, false, nil
}

// resolve turns the URL's host into an address to dial: through the resolver, or for a Service
// name of the pod's own namespace the resolver does not know, from the Service's variables.
func resolve(u *url.URL) (string, error) {
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "80"
	}
	_, err := net.LookupHost(host)
	if err == nil {
		return net.JoinHostPort(host, port), nil
	}
	ip, ok := serviceFromEnv(host, os.Getenv, ownNamespace())
	if !ok {
		return "", err
	}
	fmt.Fprintf(os.Stderr, "curl (stand-in): %v; %s is the Service's cluster IP from its environment variables\n", err, ip)
	return net.JoinHostPort(ip, port), nil
}

func ownNamespace() string {
	b, err := os.ReadFile(serviceAccountNamespace)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// serviceFromEnv finds the cluster IP of <service>.<namespace>.svc[.cluster.local] in
// <SERVICE>_SERVICE_HOST, which the kubelet sets only for the Services of the pod's own
// namespace: a name in another namespace is not found.
func serviceFromEnv(host string, getenv func(string) string, namespace string) (string, bool) {
	parts := strings.Split(strings.TrimSuffix(host, "."), ".")
	short := len(parts) == 3
	long := len(parts) == 5 && parts[3] == "cluster" && parts[4] == "local"
	if !short && !long {
		return "", false
	}
	if parts[2] != "svc" || namespace == "" || parts[1] != namespace {
		return "", false
	}
	name := strings.ToUpper(strings.ReplaceAll(parts[0], "-", "_"))
	ip := getenv(name + "_SERVICE_HOST")
	if net.ParseIP(ip) == nil {
		return "", false
	}
	return ip, true
}
