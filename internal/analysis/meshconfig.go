package analysis

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// MeshConfigInput is everything AnalyzeMeshConfig looks at.
type MeshConfigInput struct {
	MeshConfig *configv1alpha2.MeshConfig
	// Cluster holds the Service and Pod CIDRs; empty lists mean they are unknown.
	Cluster redirect.ClusterRanges
	// Services and Monitored describe the mesh Services (only those in monitored namespaces count).
	Services  []corev1.Service
	Monitored map[string]bool
}

// warningSeverity ranks the engine's warnings: those that silently take mesh traffic away from
// the sidecar are errors, the inclusion list's general caveat is informational.
var warningSeverity = map[string]conditions.Severity{
	redirect.WarnCaptureDisabled:              conditions.SeverityError,
	redirect.WarnExclusionOverlapsServiceCIDR: conditions.SeverityError,
	redirect.WarnExclusionOverlapsPodCIDR:     conditions.SeverityError,
	redirect.WarnInclusionMissesServiceCIDR:   conditions.SeverityError,
	redirect.WarnInclusionListBypass:          conditions.SeverityInfo,
}

// AnalyzeMeshConfig reports MeshConfig traffic settings that are legal but take mesh traffic
// away from the sidecar. Range checks come from the redirection engine (redirect.Warnings), so
// admission warnings and status findings say the same thing; the checks against actual mesh
// Services (ClusterIPs outside the inclusion list or inside an exclusion, excluded ports that
// are Service ports) are added here because they need the Services. Settings that cannot be
// rendered at all are the MeshConfig controller's InvalidSpec, not a finding.
func AnalyzeMeshConfig(in MeshConfigInput) []Finding {
	mc := in.MeshConfig
	self := Object("MeshConfig", mc.Namespace, mc.Name)
	cfg, errs := redirect.Effective(MeshOf(types.NamespacedName{Namespace: mc.Namespace, Name: mc.Name}, mc).Settings, nil)
	if len(errs) > 0 {
		return nil
	}
	var out []Finding
	for _, w := range redirect.Warnings(cfg, in.Cluster) {
		sev, ok := warningSeverity[w.Code]
		if !ok {
			sev = conditions.SeverityWarning
		}
		out = append(out, Finding{Code: w.Code, Severity: sev,
			Message: fmt.Sprintf("spec.traffic.%s %s: %s", w.Field, w.Value, w.Message), Objects: []string{self}})
	}
	known := len(in.Cluster.ServiceCIDRs) > 0 || len(in.Cluster.PodCIDRs) > 0
	if !known && (len(cfg.OutboundIPRangeExclusions) > 0 || len(cfg.OutboundIPRangeInclusions) > 0) {
		out = append(out, Finding{Code: conditions.FindingClusterRangesUnknown, Severity: conditions.SeverityInfo,
			Message: "the cluster's Service and Pod CIDRs could not be determined (no ServiceCIDR objects and no node podCIDRs are visible), so IP range settings were checked against Service ClusterIPs only",
			Objects: []string{self}})
	}

	listeners := meshListeners(in.Services, in.Monitored)
	out = append(out, servicesBypassed(listeners, self, func(l Listener) (string, bool) {
		if len(cfg.OutboundIPRangeInclusions) == 0 {
			return "", false
		}
		for _, a := range l.Addrs {
			if included, _ := inclusionCovers(cfg, a); !included {
				return a.String(), true
			}
		}
		return "", false
	}, conditions.FindingInclusionMissesServices, conditions.SeverityError,
		"spec.traffic.outboundIPRangeInclusionList leaves the ClusterIPs of mesh Services %s out, so connections to them bypass the sidecar (no mTLS, no policy); add their range (the Service CIDR) to the list")...)
	for _, p := range cfg.OutboundIPRangeExclusions {
		if p.Bits() == 0 {
			continue // CaptureDisabled already says everything
		}
		out = append(out, servicesBypassed(listeners, self, func(l Listener) (string, bool) {
			i := slices.IndexFunc(l.Addrs, p.Contains)
			if i < 0 {
				return "", false
			}
			return l.Addrs[i].String(), true
		}, conditions.FindingExclusionCoversServices, conditions.SeverityError,
			"spec.traffic.outboundIPRangeExclusionList entry "+p.String()+" contains the ClusterIPs of mesh Services %s, so connections to them bypass the sidecar (no mTLS, no policy); narrow the exclusion")...)
	}
	for _, port := range cfg.OutboundPortExclusions {
		out = append(out, servicesBypassed(listeners, self, func(l Listener) (string, bool) {
			return "", l.Port == int32(port)
		}, conditions.FindingExcludedPortIsServicePort, conditions.SeverityWarning,
			fmt.Sprintf("spec.traffic.outboundPortExclusionList has port %d, which mesh Services %%s expose, so connections to them on that port bypass the sidecar (no mTLS, no policy); remove %d from the list or move those Services to another port", port, port))...)
	}
	Sort(out)
	return out
}

// servicesBypassed groups the listeners a predicate selects into one finding naming them.
func servicesBypassed(listeners []Listener, self string, hit func(Listener) (detail string, ok bool), code string, sev conditions.Severity, format string) []Finding {
	var names []string
	objs := []string{self}
	for _, l := range listeners {
		detail, ok := hit(l)
		if !ok {
			continue
		}
		name := fmt.Sprintf("%s/%s:%d", l.Service.Namespace, l.Service.Name, l.Port)
		if detail != "" {
			name = fmt.Sprintf("%s/%s (%s:%d)", l.Service.Namespace, l.Service.Name, detail, l.Port)
		}
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
		objs = append(objs, l.object())
	}
	if len(names) == 0 {
		return nil
	}
	return []Finding{{Code: code, Severity: sev, Message: fmt.Sprintf(format, nameList(names, 8)), Objects: objects(objs...)}}
}
