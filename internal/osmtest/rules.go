package osmtest

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Ports and identities OSM v1.2.4's sidecar uses.
const (
	ProxyUID             = 1500
	OutboundListenerPort = 15001
	InboundListenerPort  = 15003
	AdminPort            = 15000
	MetricsPort          = 15010
	LivenessProbePort    = 15901
	ReadinessProbePort   = 15902
	StartupProbePort     = 15903
	HealthcheckPort      = 15904
)

// Pod annotations OSM v1.2.4 reads at injection.
const (
	AnnotationOutboundPortExclusions   = "openservicemesh.io/outbound-port-exclusion-list"
	AnnotationInboundPortExclusions    = "openservicemesh.io/inbound-port-exclusion-list"
	AnnotationOutboundIPRangeExclusion = "openservicemesh.io/outbound-ip-range-exclusion-list"
	AnnotationOutboundIPRangeInclusion = "openservicemesh.io/outbound-ip-range-inclusion-list"
)

// LocalProxyModePodIP is the MeshConfig sidecar.localProxyMode that makes OSM add a DNAT to $POD_IP.
const LocalProxyModePodIP = "PodIP"

// InitRules are the inputs of OSM's init container command, already merged from the MeshConfig
// and the pod's annotations.
type InitRules struct {
	LocalProxyMode             string
	OutboundIPRangeExclusions  []string
	OutboundIPRangeInclusions  []string
	OutboundPortExclusions     []int
	InboundPortExclusions      []int
	NetworkInterfaceExclusions []string
}

// MergeRules merges the MeshConfig's lists (global, whose LocalProxyMode and interfaces carry
// over) with a pod's annotations as OSM v1.2.4 does: ports
// global first then the pod's, IP ranges the pod's first then global, each de-duplicated by its
// text; interfaces and the proxy mode come from the MeshConfig only. Annotations are checked as
// loosely as OSM checked them (a port must be a positive integer, a range must parse as a CIDR),
// with OSM's messages.
func MergeRules(global InitRules, podAnnotations map[string]string) (InitRules, error) {
	r := InitRules{LocalProxyMode: global.LocalProxyMode, NetworkInterfaceExclusions: global.NetworkInterfaceExclusions}
	var err error
	var podOutPorts, podInPorts []int
	var podExcl, podIncl []string
	if podOutPorts, err = annotationPorts(podAnnotations, AnnotationOutboundPortExclusions); err != nil {
		return r, err
	}
	r.OutboundPortExclusions = union(global.OutboundPortExclusions, podOutPorts)
	if podInPorts, err = annotationPorts(podAnnotations, AnnotationInboundPortExclusions); err != nil {
		return r, err
	}
	r.InboundPortExclusions = union(global.InboundPortExclusions, podInPorts)
	if podExcl, err = annotationRanges(podAnnotations, AnnotationOutboundIPRangeExclusion); err != nil {
		return r, err
	}
	r.OutboundIPRangeExclusions = union(podExcl, global.OutboundIPRangeExclusions)
	if podIncl, err = annotationRanges(podAnnotations, AnnotationOutboundIPRangeInclusion); err != nil {
		return r, err
	}
	r.OutboundIPRangeInclusions = union(podIncl, global.OutboundIPRangeInclusions)
	return r, nil
}

func annotationPorts(ann map[string]string, name string) ([]int, error) {
	return annotationList(ann, name, "port value", func(s string) (int, bool) {
		n, err := strconv.Atoi(s)
		return n, err == nil && n > 0
	})
}

func annotationRanges(ann map[string]string, name string) ([]string, error) {
	return annotationList(ann, name, "IP range", func(s string) (string, bool) {
		_, _, err := net.ParseCIDR(s)
		return s, err == nil
	})
}

// annotationList reads a comma-separated annotation entry by entry, failing with OSM's message
// (what names the kind of value) on the first entry parse refuses.
func annotationList[T any](ann map[string]string, name, what string, parse func(string) (T, bool)) ([]T, error) {
	v, ok := ann[name]
	if !ok {
		return nil, nil
	}
	var out []T
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		x, ok := parse(s)
		if !ok {
			return nil, fmt.Errorf("Invalid %s '%s' specified for annotation '%s'", what, s, name) //nolint:staticcheck // OSM's message, capitalised as OSM wrote it
		}
		out = append(out, x)
	}
	return out, nil
}

// union keeps first's order, then second's, dropping repeats.
func union[T comparable](first, second []T) []T {
	var out []T
	seen := map[T]bool{}
	for _, list := range [][]T{first, second} {
		for _, v := range list {
			if !seen[v] {
				seen[v] = true
				out = append(out, v)
			}
		}
	}
	return out
}

// InitScript is the shell text OSM v1.2.4 puts in osm-init's `/bin/sh -c` argument: an
// iptables-restore here-document with the v1.2 chain layout. Interface and inbound-port
// exclusions are inserted (-I) at the top of the inbound chain, outbound exclusions are appended
// before the final jump, and PodIP mode inserts a DNAT to the shell's $POD_IP. The values are
// written unquoted, as OSM wrote them.
func InitScript(r InitRules) string {
	var b strings.Builder
	line := func(format string, a ...any) {
		fmt.Fprintf(&b, format, a...)
		b.WriteByte('\n')
	}
	b.WriteString("iptables-restore --noflush <<EOF\n")
	line("# OSM sidecar interception rules")
	line("*nat")
	for _, chain := range []string{"OSM_PROXY_INBOUND", "OSM_PROXY_IN_REDIRECT", "OSM_PROXY_OUTBOUND", "OSM_PROXY_OUT_REDIRECT"} {
		line(":%s - [0:0]", chain)
	}

	// Inbound.
	line("-A OSM_PROXY_IN_REDIRECT -p tcp -j REDIRECT --to-port %d", InboundListenerPort)
	line("-A PREROUTING -p tcp -j OSM_PROXY_INBOUND")
	for _, p := range []int{MetricsPort, LivenessProbePort, ReadinessProbePort, StartupProbePort, HealthcheckPort} {
		line("-A OSM_PROXY_INBOUND -p tcp --dport %d -j RETURN", p)
	}
	line("-A OSM_PROXY_INBOUND -p tcp -j OSM_PROXY_IN_REDIRECT")
	for _, iface := range r.NetworkInterfaceExclusions {
		line("-I OSM_PROXY_INBOUND -i %s -j RETURN", iface)
	}
	if len(r.InboundPortExclusions) > 0 {
		line("-I OSM_PROXY_INBOUND -p tcp --match multiport --dports %s -j RETURN", joinPorts(r.InboundPortExclusions))
	}

	// Outbound.
	line("-A OSM_PROXY_OUT_REDIRECT -p tcp -j REDIRECT --to-port %d", OutboundListenerPort)
	line("-A OSM_PROXY_OUT_REDIRECT -p tcp --dport %d -j ACCEPT", AdminPort)
	line("-A OUTPUT -p tcp -j OSM_PROXY_OUTBOUND")
	line("-A OSM_PROXY_OUTBOUND -o lo ! -d 127.0.0.1/32 -m owner --uid-owner %d -j OSM_PROXY_IN_REDIRECT", ProxyUID)
	line("-A OSM_PROXY_OUTBOUND -o lo -m owner ! --uid-owner %d -j RETURN", ProxyUID)
	line("-A OSM_PROXY_OUTBOUND -m owner --uid-owner %d -j RETURN", ProxyUID)
	line("-A OSM_PROXY_OUTBOUND -d 127.0.0.1/32 -j RETURN")
	if r.LocalProxyMode == LocalProxyModePodIP {
		line("-I OUTPUT -p tcp -o lo -d 127.0.0.1/32 -m owner --uid-owner %d -j DNAT --to-destination $POD_IP", ProxyUID)
	}
	for _, iface := range r.NetworkInterfaceExclusions {
		line("-A OSM_PROXY_OUTBOUND -o %s -j RETURN", iface)
	}
	for _, cidr := range r.OutboundIPRangeExclusions {
		line("-A OSM_PROXY_OUTBOUND -d %s -j RETURN", cidr)
	}
	if len(r.OutboundPortExclusions) > 0 {
		line("-A OSM_PROXY_OUTBOUND -p tcp --match multiport --dports %s -j RETURN", joinPorts(r.OutboundPortExclusions))
	}
	if len(r.OutboundIPRangeInclusions) > 0 {
		for _, cidr := range r.OutboundIPRangeInclusions {
			line("-A OSM_PROXY_OUTBOUND -d %s -j OSM_PROXY_OUT_REDIRECT", cidr)
		}
		line("-A OSM_PROXY_OUTBOUND -j RETURN")
	} else {
		line("-A OSM_PROXY_OUTBOUND -j OSM_PROXY_OUT_REDIRECT")
	}
	b.WriteString("COMMIT\nEOF\n")
	return b.String()
}

func joinPorts(ports []int) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ",")
}
