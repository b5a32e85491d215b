package istio

import (
	"fmt"
	"net/netip"
	"path"
	"strconv"
	"strings"

	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// ArgError is a malformed istio-init argument list, positioned at the argument (0-based index
// into the container's command followed by its args) so a person can find it in the pod spec.
type ArgError struct {
	Index int
	Arg   string
	Msg   string
}

func (e *ArgError) Error() string {
	return fmt.Sprintf("argument %d (%s): %s", e.Index, strconv.Quote(e.Arg), e.Msg)
}

// flagKind says what a flag's value is and where it goes.
type flagKind uint8

const (
	flagPort flagKind = iota
	flagIDs
	flagMode
	flagIncludeRanges
	flagExcludeRanges
	flagIncludePorts
	flagPorts
	flagInterfaces
	flagBool
	flagIgnored // takes a value that does not change where traffic goes
)

type flagSpec struct {
	kind flagKind
	set  func(s *Settings) any // pointer to the field the value lands in
}

// flags are istio-iptables' options, by short and long name. Those that do not decide where
// traffic goes (logging, probes, DNS capture, the network namespace...) are accepted and not
// kept; an unknown option is an error, so a typo is never read as "no exclusion".
var flags = func() map[string]flagSpec {
	m := map[string]flagSpec{}
	add := func(short, long string, kind flagKind, set func(s *Settings) any) {
		spec := flagSpec{kind: kind, set: set}
		if short != "" {
			m["-"+short] = spec
		}
		m["--"+long] = spec
	}
	add("p", "envoy-port", flagPort, func(s *Settings) any { return &s.ProxyPort })
	add("z", "inbound-capture-port", flagPort, func(s *Settings) any { return &s.InboundCapturePort })
	add("e", "inbound-tunnel-port", flagIgnored, nil)
	add("u", "proxy-uid", flagIDs, func(s *Settings) any { return &s.ProxyUIDs })
	add("g", "proxy-gid", flagIDs, func(s *Settings) any { return &s.ProxyGIDs })
	add("m", "istio-inbound-interception-mode", flagMode, func(s *Settings) any { return &s.Interception })
	add("b", "istio-inbound-ports", flagIncludePorts, func(s *Settings) any { return &s.InboundPorts })
	add("d", "istio-local-exclude-ports", flagPorts, func(s *Settings) any { return &s.ExcludeInboundPorts })
	add("c", "istio-exclude-interfaces", flagInterfaces, func(s *Settings) any { return &s.ExcludeInterfaces })
	add("i", "istio-service-cidr", flagIncludeRanges, func(s *Settings) any { return &s.OutboundIPRanges })
	add("x", "istio-service-exclude-cidr", flagExcludeRanges, func(s *Settings) any { return &s.ExcludeOutboundIPRanges })
	add("q", "istio-outbound-ports", flagPorts, func(s *Settings) any { return &s.OutboundPorts })
	add("o", "istio-local-outbound-ports-exclude", flagPorts, func(s *Settings) any { return &s.ExcludeOutboundPorts })
	add("k", "kube-virt-interfaces", flagInterfaces, func(s *Settings) any { return &s.RerouteInterfaces })
	add("t", "istio-inbound-tproxy-mark", flagIgnored, nil)
	add("r", "istio-inbound-tproxy-route-table", flagIgnored, nil)
	add("n", "dry-run", flagBool, nil)
	add("", "dual-stack", flagBool, func(s *Settings) any { return &s.DualStack })
	add("", "skip-rule-apply", flagBool, func(s *Settings) any { return &s.SkipRuleApply })
	for _, long := range []string{"run-validation", "redirect-dns", "drop-invalid", "capture-all-dns", "cni-mode",
		"reconcile", "cleanup-only", "force-apply", "native-nftables", "iptables-trace-logging", "log_as_json"} {
		add("", long, flagBool, nil)
	}
	for _, long := range []string{"iptables-probe-port", "probe-timeout", "network-namespace", "force-iptables-binary",
		"log_output_level", "log_target", "log_caller", "log_stacktrace_level", "log_rotate", "log_rotate_max_age",
		"log_rotate_max_backups", "log_rotate_max_size", "iptables-version"} {
		add("", long, flagIgnored, nil)
	}
	return m
}()

// Programs that run istio-iptables: the istio-iptables binary or script itself, and pilot-agent
// (proxyv2's entry point), whose istio-iptables subcommand the injection template calls.
func programStart(argv []string) (int, bool) {
	if len(argv) == 0 {
		return 0, false
	}
	switch path.Base(argv[0]) {
	case "istio-iptables", "istio-iptables.sh":
		return 1, true
	case "pilot-agent":
		if len(argv) > 1 && argv[1] == "istio-iptables" {
			return 2, true
		}
		return 0, false
	}
	if strings.HasPrefix(argv[0], "-") {
		// The image's entry point runs istio-iptables and the pod gives bare flags (the
		// older template: -p 15001 -u 1337 -m REDIRECT ...).
		return 0, true
	}
	return 0, false
}

// LooksLikeArgs reports whether argv (command then args) runs istio-iptables.
func LooksLikeArgs(argv []string) bool {
	_, ok := programStart(argv)
	return ok
}

// ParseArgs reads an istio-init container's command followed by its args, in either form the
// injector has used: `istio-iptables -p 15001 -z 15006 ...` (the pilot-agent subcommand, with
// or without the program name) or bare flags for an image whose entry point is istio-iptables.
// Flags take their value as the next argument or after "=", the way istio-iptables reads them.
func ParseArgs(argv []string) (Settings, error) {
	s := DefaultSettings()
	start, ok := programStart(argv)
	if !ok {
		if len(argv) == 0 {
			return s, &ArgError{Index: 0, Msg: "no command or args"}
		}
		return s, &ArgError{Index: 0, Arg: argv[0], Msg: "does not run istio-iptables"}
	}
	gidSet := false
	for i := start; i < len(argv); i++ {
		arg := argv[i]
		name, val, hasVal := strings.Cut(arg, "=")
		spec, known := flags[name]
		if !known {
			return s, &ArgError{Index: i, Arg: arg, Msg: "unknown istio-iptables option"}
		}
		if spec.kind == flagBool {
			on := true
			if hasVal {
				b, err := strconv.ParseBool(val)
				if err != nil {
					return s, &ArgError{Index: i, Arg: arg, Msg: "expected true or false after ="}
				}
				on = b
			}
			if spec.set != nil {
				*(spec.set(&s).(*bool)) = on
			}
			continue
		}
		vi := i
		if !hasVal {
			if i+1 >= len(argv) {
				return s, &ArgError{Index: i, Arg: arg, Msg: "needs a value"}
			}
			i++
			vi, val = i, argv[i]
		}
		if spec.kind == flagIgnored {
			continue
		}
		if err := setValue(&s, spec, val); err != nil {
			return s, &ArgError{Index: vi, Arg: argv[vi], Msg: fmt.Sprintf("value of %s: %v", name, err)}
		}
		if spec.kind == flagIDs && (name == "-g" || name == "--proxy-gid") {
			gidSet = true
		}
	}
	if !gidSet {
		s.ProxyGIDs = nil
	}
	return s, nil
}

func setValue(s *Settings, spec flagSpec, val string) error {
	switch p := spec.set(s).(type) {
	case *uint16:
		n, err := parsePort(strings.TrimSpace(val))
		*p = n
		return err
	case *[]int64:
		ids, err := parseIDs(val)
		*p = ids
		return err
	case *redirect.InterceptionMode:
		m, err := ParseInterceptionMode(val)
		*p = m
		return err
	case *Include[netip.Prefix]:
		inc, err := parseIncludeRanges(val)
		*p = inc
		return err
	case *[]netip.Prefix:
		r, err := parseRanges(val)
		*p = r
		return err
	case *Include[uint16]:
		inc, err := parseIncludePorts(val)
		*p = inc
		return err
	case *[]uint16:
		ports, err := parsePorts(val)
		*p = ports
		return err
	case *[]string:
		names, err := parseInterfaces(val)
		*p = names
		return err
	}
	return fmt.Errorf("internal error: no reader for this option")
}

// ParseInterceptionMode reads -m or the sidecar.istio.io/interceptionMode annotation.
func ParseInterceptionMode(v string) (redirect.InterceptionMode, error) {
	switch strings.TrimSpace(v) {
	case "REDIRECT", "":
		return redirect.InterceptRedirect, nil
	case "TPROXY":
		return redirect.InterceptTProxy, nil
	}
	return redirect.InterceptRedirect, fmt.Errorf("%s is not an interception mode: want REDIRECT or TPROXY", strconv.Quote(v))
}

// elements splits a comma-separated list the way Istio does: surrounding spaces and empty
// elements are ignored.
func elements(v string) []string {
	var out []string
	for _, e := range strings.Split(v, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

func parsePort(e string) (uint16, error) {
	n, err := strconv.ParseUint(e, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%s is not a port (1-65535)", strconv.Quote(e))
	}
	return uint16(n), nil
}

func parsePorts(v string) ([]uint16, error) {
	var out []uint16
	for _, e := range elements(v) {
		if e == "*" {
			return nil, fmt.Errorf("the wildcard * is not allowed in this list")
		}
		p, err := parsePort(e)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	if len(out) > redirect.MaxPorts {
		return nil, fmt.Errorf("%d ports, more than %d", len(out), redirect.MaxPorts)
	}
	return out, nil
}

func parseIncludePorts(v string) (Include[uint16], error) {
	if strings.TrimSpace(v) == "*" {
		return Include[uint16]{All: true}, nil
	}
	ports, err := parsePorts(v)
	return Include[uint16]{List: ports}, err
}

func parseRanges(v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, e := range elements(v) {
		if e == "*" {
			return nil, fmt.Errorf("the wildcard * is not allowed in this list")
		}
		p, err := redirect.ParsePrefix(e)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", strconv.Quote(e), err)
		}
		out = append(out, p)
	}
	if len(out) > redirect.MaxIPRanges {
		return nil, fmt.Errorf("%d ranges, more than %d", len(out), redirect.MaxIPRanges)
	}
	return out, nil
}

func parseIncludeRanges(v string) (Include[netip.Prefix], error) {
	if strings.TrimSpace(v) == "*" {
		return Include[netip.Prefix]{All: true}, nil
	}
	r, err := parseRanges(v)
	return Include[netip.Prefix]{List: r}, err
}

func parseIDs(v string) ([]int64, error) {
	var out []int64
	for _, e := range elements(v) {
		n, err := strconv.ParseUint(e, 10, 31)
		if err != nil {
			return nil, fmt.Errorf("%s is not a user or group ID", strconv.Quote(e))
		}
		out = append(out, int64(n))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty list of IDs")
	}
	return out, nil
}

func parseInterfaces(v string) ([]string, error) {
	out := elements(v)
	for _, name := range out {
		if !redirect.ValidInterfaceName(name) {
			return nil, fmt.Errorf("%s is not a network interface name", strconv.Quote(name))
		}
	}
	if len(out) > redirect.MaxInterfaces {
		return nil, fmt.Errorf("%d interfaces, more than %d", len(out), redirect.MaxInterfaces)
	}
	return out, nil
}

func errInterception(m string) error {
	_, err := ParseInterceptionMode(m)
	return err
}
