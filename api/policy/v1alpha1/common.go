package v1alpha1

import "strings"

// Limits on list sizes; OSM had none. Bounded lists keep CEL validation within the apiserver's
// cost budget.
const (
	// MaxSources bounds spec.sources of both kinds.
	MaxSources = 64
	// MaxHosts bounds Egress spec.hosts and IngressBackend tls.sniHosts.
	MaxHosts = 64
	// MaxIPRanges bounds Egress spec.ipAddresses.
	MaxIPRanges = 64
	// MaxPorts bounds Egress spec.ports.
	MaxPorts = 64
	// MaxBackends bounds IngressBackend spec.backends.
	MaxBackends = 64
	// MaxMatches bounds spec.matches of both kinds.
	MaxMatches = 16
)

// Protocols. OSM compared protocols case-insensitively, so the schema accepts any case and
// consumers compare with NormalizeProtocol.
const (
	ProtocolHTTP           = "http"
	ProtocolHTTPS          = "https"
	ProtocolTCP            = "tcp"
	ProtocolTCPServerFirst = "tcp-server-first"
)

// NormalizeProtocol returns the protocol in the lower case the constants use.
func NormalizeProtocol(protocol string) string {
	return strings.ToLower(protocol)
}

// Kinds of sources and matches.
const (
	KindServiceAccount         = "ServiceAccount"
	KindService                = "Service"
	KindIPRange                = "IPRange"
	KindAuthenticatedPrincipal = "AuthenticatedPrincipal"
	KindHTTPRouteGroup         = "HTTPRouteGroup"
	KindUpstreamTrafficSetting = "UpstreamTrafficSetting"
)

// API groups OSM expects in matches; note that OSM put the version in the group field.
const (
	MatchGroupSMISpecs = "specs.smi-spec.io/v1alpha4"
	MatchGroupPolicy   = "policy.openservicemesh.io/v1alpha1"
)
