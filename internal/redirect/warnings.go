package redirect

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// ParseClusterRanges reads Service and Pod CIDRs however they were given (the manager's and the
// CLI's --service-cidr/--pod-cidr, ServiceCIDR objects' spec.cidrs, nodes' spec.podCIDRs): trimmed,
// de-duplicated, and every value that is not a CIDR named with its kind and the reason.
func ParseClusterRanges(serviceCIDRs, podCIDRs []string) (ClusterRanges, error) {
	var out ClusterRanges
	var bad []string
	parse := func(kind string, list []string, dst *[]netip.Prefix) {
		for _, s := range list {
			p, err := ParsePrefix(strings.TrimSpace(s))
			if err != nil {
				bad = append(bad, fmt.Sprintf("%s %q: %v", kind, s, err))
				continue
			}
			if !slices.Contains(*dst, p) {
				*dst = append(*dst, p)
			}
		}
	}
	parse("Service CIDR", serviceCIDRs, &out.ServiceCIDRs)
	parse("Pod CIDR", podCIDRs, &out.PodCIDRs)
	if len(bad) > 0 {
		return out, fmt.Errorf("not CIDRs: %s", strings.Join(bad, "; "))
	}
	return out, nil
}

// ClusterRanges are the cluster's own address ranges; excluding them sends mesh traffic around
// the proxy.
type ClusterRanges struct {
	ServiceCIDRs []netip.Prefix
	PodCIDRs     []netip.Prefix
}

// Warning codes, stable for admission warnings, events and conditions.
const (
	WarnCaptureDisabled              = "CaptureDisabled"
	WarnInclusionListBypass          = "InclusionListBypass"
	WarnExclusionOverlapsServiceCIDR = "ExclusionOverlapsServiceCIDR"
	WarnExclusionOverlapsPodCIDR     = "ExclusionOverlapsPodCIDR"
	WarnInclusionMissesServiceCIDR   = "InclusionMissesServiceCIDR"
)

// Warning is a legal but probably unintended setting.
type Warning struct {
	Code    string `json:"code"`
	Field   string `json:"field"`
	Value   string `json:"value"`
	Message string `json:"message"`
}

const (
	fieldExclusions = "outboundIPRangeExclusionList"
	fieldInclusions = "outboundIPRangeInclusionList"
)

// Warnings lists dangerous-but-legal values of an effective configuration, each with the action
// that fixes it. Field names the list (MeshConfig spec.traffic or the matching pod annotation).
func Warnings(c Config, cluster ClusterRanges) []Warning {
	var ws []Warning
	for _, p := range c.OutboundIPRangeExclusions {
		if p.Bits() == 0 {
			ws = append(ws, Warning{WarnCaptureDisabled, fieldExclusions, p.String(),
				"excluding " + p.String() + " sends all outbound " + familyOf(p).String() + " traffic around the proxy, so mesh policy and mTLS no longer apply; remove it and exclude only the external ranges that must bypass the mesh"})
			continue
		}
		for _, s := range cluster.ServiceCIDRs {
			if p.Overlaps(s) {
				ws = append(ws, Warning{WarnExclusionOverlapsServiceCIDR, fieldExclusions, p.String(),
					p.String() + " overlaps the Service CIDR " + s.String() + ": connections to mesh Services in it bypass the proxy; narrow the exclusion so it leaves " + s.String() + " out"})
			}
		}
		for _, s := range cluster.PodCIDRs {
			if p.Overlaps(s) {
				ws = append(ws, Warning{WarnExclusionOverlapsPodCIDR, fieldExclusions, p.String(),
					p.String() + " overlaps the Pod CIDR " + s.String() + ": connections to meshed pods in it bypass the proxy; narrow the exclusion so it leaves " + s.String() + " out"})
			}
		}
	}
	if len(c.OutboundIPRangeInclusions) > 0 {
		ws = append(ws, Warning{WarnInclusionListBypass, fieldInclusions, prefixList(c.OutboundIPRangeInclusions),
			"only traffic to the included ranges is redirected; every other destination bypasses the proxy silently; make sure the list covers all mesh Service and Pod ranges, or remove it"})
		for _, s := range cluster.ServiceCIDRs {
			covered := false
			for _, p := range c.OutboundIPRangeInclusions {
				if p.Bits() <= s.Bits() && p.Contains(s.Addr()) {
					covered = true
					break
				}
			}
			if !covered {
				ws = append(ws, Warning{WarnInclusionMissesServiceCIDR, fieldInclusions, s.String(),
					"the inclusion list does not cover the Service CIDR " + s.String() + ", so traffic to mesh Services bypasses the proxy; add " + s.String() + " to the inclusion list"})
			}
		}
	}
	return ws
}

func prefixList(ps []netip.Prefix) string {
	var b []byte
	for i, p := range ps {
		if i > 0 {
			b = append(b, ',')
		}
		b = p.AppendTo(b)
	}
	return string(b)
}
