package istio

import (
	"net/netip"
	"slices"

	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// Names Istio gives the containers it injects.
const (
	ProxyContainerName      = "istio-proxy"
	InitContainerName       = "istio-init"
	ValidationContainerName = "istio-validation"
)

// Ports and identities Istio's injection uses unless told otherwise.
const (
	DefaultProxyUID           int64  = 1337
	DefaultProxyPort          uint16 = 15001
	DefaultInboundCapturePort uint16 = 15006
	DefaultStatusPort         uint16 = 15020
	// The injection template always excludes the proxy's Prometheus (15090) and health (15021)
	// ports from inbound capture, before any configured port.
	MetricsPort uint16 = 15090
	HealthPort  uint16 = 15021
)

// Include is an Istio include list: "*" captures everything, an empty list nothing, otherwise
// only the listed values.
type Include[T any] struct {
	All  bool
	List []T
}

// Settings are the inputs of istio-iptables, whether read from an istio-init container's
// arguments, from the annotations an istio-cni pod carries, or worked out from the injector's
// values and the pod's annotations. Only what decides where traffic goes is kept.
type Settings struct {
	ProxyPort          uint16
	InboundCapturePort uint16
	// ProxyUIDs and ProxyGIDs bypass capture; istio-iptables takes comma-separated lists and
	// defaults the GID to the UID.
	ProxyUIDs []int64
	ProxyGIDs []int64
	// Interception is how inbound connections reach the proxy (-m).
	Interception redirect.InterceptionMode

	OutboundIPRanges        Include[netip.Prefix] // -i
	ExcludeOutboundIPRanges []netip.Prefix        // -x
	InboundPorts            Include[uint16]       // -b
	ExcludeInboundPorts     []uint16              // -d
	OutboundPorts           []uint16              // -q
	ExcludeOutboundPorts    []uint16              // -o
	RerouteInterfaces       []string              // -k
	ExcludeInterfaces       []string              // -c

	// DualStack captures IPv6 as well (--dual-stack); without it istio-iptables writes IPv6
	// rules only when the pod has an IPv6 address.
	DualStack bool
	// SkipRuleApply: the container only validates rules istio-cni wrote (--skip-rule-apply).
	SkipRuleApply bool
}

// DefaultSettings are istio-iptables' values when a flag is absent.
func DefaultSettings() Settings {
	return Settings{
		ProxyPort:          DefaultProxyPort,
		InboundCapturePort: DefaultInboundCapturePort,
		ProxyUIDs:          []int64{DefaultProxyUID},
	}
}

// Exclusions puts the settings in the shared model, so an Istio pod is compared, reported and
// explained like any other.
func (s Settings) Exclusions() redirect.Exclusions {
	ex := redirect.Exclusions{
		OutboundIPRanges:       slices.Clone(s.ExcludeOutboundIPRanges),
		OutboundPorts:          slices.Clone(s.ExcludeOutboundPorts),
		InboundPorts:           slices.Clone(s.ExcludeInboundPorts),
		Interfaces:             slices.Clone(s.ExcludeInterfaces),
		OutboundPortInclusions: slices.Clone(s.OutboundPorts),
		RerouteInterfaces:      slices.Clone(s.RerouteInterfaces),
		ProxyUID:               redirect.NoProxyUID,
		InboundInterception:    s.Interception,
	}
	if len(s.ProxyUIDs) > 0 {
		ex.ProxyUID = s.ProxyUIDs[0]
	}
	switch {
	case len(s.ProxyGIDs) > 0:
		ex.ProxyGID = s.ProxyGIDs[0]
	case len(s.ProxyUIDs) > 0:
		ex.ProxyGID = s.ProxyUIDs[0]
	}
	switch {
	case s.OutboundIPRanges.All:
	case len(s.OutboundIPRanges.List) == 0:
		ex.OutboundCapture = redirect.CaptureOff
	default:
		ex.OutboundIPRangeInclusions = slices.Clone(s.OutboundIPRanges.List)
	}
	switch {
	case s.InboundPorts.All:
	case len(s.InboundPorts.List) == 0:
		ex.InboundCapture = redirect.CaptureOff
	default:
		ex.InboundPortInclusions = slices.Clone(s.InboundPorts.List)
	}
	return ex.Canonical()
}
