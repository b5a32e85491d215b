package analysis

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	policyv1alpha1 "github.com/meshkeeper/meshkeeper/api/policy/v1alpha1"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// EgressInput is everything AnalyzeEgress looks at, gathered by the caller.
type EgressInput struct {
	Egress *policyv1alpha1.Egress
	Mesh   Mesh
	// Monitored are the namespaces that belong to the mesh.
	Monitored map[string]bool
	// ServiceAccounts are the source ServiceAccounts that exist (others may be listed too).
	ServiceAccounts []types.NamespacedName
	// Services are candidates for port collisions; only those in monitored namespaces count, so
	// the caller may pass a superset (for example every Service exposing one of the ports).
	Services []corev1.Service
	// Pods are the pods that run as the source ServiceAccounts (others are ignored).
	Pods []corev1.Pod
}

// egressDest is one destination an Egress port opens: a range, or every address (Any).
type egressDest struct {
	Port     int32
	Protocol string
	Prefix   netip.Prefix
	Any      bool
}

func (d egressDest) String() string {
	if d.Any {
		return fmt.Sprintf("any address:%d", d.Port)
	}
	return fmt.Sprintf("%s:%d", d.Prefix, d.Port)
}

// destinations lists what each port of spec opens, by protocol: http matches the port on any
// address; tcp, tcp-server-first and https match the listed ranges (any address without them).
func destinations(spec *policyv1alpha1.EgressSpec) []egressDest {
	var prefixes []netip.Prefix
	for _, s := range spec.IPAddresses {
		if p, err := redirect.ParsePrefix(strings.TrimSpace(s)); err == nil {
			prefixes = append(prefixes, p)
		}
	}
	var out []egressDest
	for _, port := range spec.Ports {
		proto := policyv1alpha1.NormalizeProtocol(port.Protocol)
		if proto == policyv1alpha1.ProtocolHTTP || len(prefixes) == 0 {
			out = append(out, egressDest{Port: port.Number, Protocol: proto, Any: true})
			continue
		}
		for _, p := range prefixes {
			out = append(out, egressDest{Port: port.Number, Protocol: proto, Prefix: p})
		}
	}
	return out
}

// AnalyzeEgress checks one Egress against the mesh. The findings, in the order a person should
// read them: the MeshConfig is missing; the policy is moot or switched off; a source
// ServiceAccount is missing; a port opens every destination; a destination bypasses the sidecar;
// a mesh Service's port swallows an allowed external destination (seed 003's outage).
func AnalyzeEgress(in EgressInput) []Finding {
	e := in.Egress
	self := Object("Egress", e.Namespace, e.Name)
	if !in.Mesh.Found {
		return []Finding{meshNotFound(in.Mesh, self)}
	}
	var out []Finding
	switch {
	case in.Mesh.EnableEgress:
		out = append(out, Finding{Code: conditions.FindingEgressMoot, Severity: conditions.SeverityWarning,
			Message: fmt.Sprintf("%s has traffic.enableEgress: true, so meshed pods reach every external destination and Egress %s/%s restricts nothing; set enableEgress to false to enforce Egress policies, or delete this one",
				in.Mesh, e.Namespace, e.Name),
			Objects: objects(self, in.Mesh.object()), Condition: conditions.Accepted, Reason: conditions.Ignored, Benign: true})
	case !in.Mesh.EgressPolicy:
		out = append(out, Finding{Code: conditions.FindingEgressPolicyDisabled, Severity: conditions.SeverityError,
			Message: fmt.Sprintf("%s has featureFlags.enableEgressPolicy: false, so Egress %s/%s is not programmed and the traffic it allows is denied; set the flag to true",
				in.Mesh, e.Namespace, e.Name),
			Objects: objects(self, in.Mesh.object()), Condition: conditions.Accepted, Reason: conditions.FeatureDisabled, Stalls: true})
	}
	out = append(out, missingServiceAccounts(in, self)...)
	dests := destinations(&e.Spec)
	if !in.Mesh.EnableEgress {
		out = append(out, openPorts(e, self)...)
		out = append(out, shadowed(in, dests, self)...)
	}
	out = append(out, portCollisions(in, dests, self)...)
	Sort(out)
	return out
}

func meshNotFound(m Mesh, self string) Finding {
	return Finding{Code: conditions.FindingMeshConfigNotFound, Severity: conditions.SeverityWarning,
		Message: fmt.Sprintf("%s does not exist, so nothing about this policy can be decided yet; create it (or point the operator at the MeshConfig it should serve)", m),
		Objects: objects(self, m.object()), Condition: conditions.Accepted, Reason: conditions.Pending}
}

func sourceKeys(e *policyv1alpha1.Egress) []types.NamespacedName {
	var out []types.NamespacedName
	for _, s := range e.Spec.Sources {
		if s.Kind == policyv1alpha1.KindServiceAccount {
			k := types.NamespacedName{Namespace: s.Namespace, Name: s.Name}
			if !slices.Contains(out, k) {
				out = append(out, k)
			}
		}
	}
	return out
}

func missingServiceAccounts(in EgressInput, self string) []Finding {
	var out []Finding
	for _, k := range sourceKeys(in.Egress) {
		if slices.Contains(in.ServiceAccounts, k) {
			continue
		}
		out = append(out, Finding{Code: conditions.FindingSourceServiceAccountNotFound, Severity: conditions.SeverityWarning,
			Message: fmt.Sprintf("source ServiceAccount %s/%s does not exist, so no pod gets this policy through it; create it or fix spec.sources", k.Namespace, k.Name),
			Objects: objects(self, Object("ServiceAccount", k.Namespace, k.Name)), Condition: conditions.ResolvedRefs, Reason: conditions.RefNotFound})
	}
	return out
}

func openPorts(e *policyv1alpha1.Egress, self string) []Finding {
	var out []Finding
	for _, p := range e.Spec.Ports {
		var msg string
		switch proto := policyv1alpha1.NormalizeProtocol(p.Protocol); {
		case proto == policyv1alpha1.ProtocolHTTP:
			msg = fmt.Sprintf("http port %d matches every destination outside the mesh on port %d whatever its address (http is routed by Host header only); list hosts, or use tcp with ipAddresses to restrict by address", p.Number, p.Number)
		case (proto == policyv1alpha1.ProtocolTCP || proto == policyv1alpha1.ProtocolTCPServerFirst) && len(e.Spec.IPAddresses) == 0:
			msg = fmt.Sprintf("%s port %d has no ipAddresses, so it matches every destination outside the mesh on port %d; list the destination CIDRs in spec.ipAddresses", proto, p.Number, p.Number)
		default:
			continue
		}
		out = append(out, Finding{Code: conditions.FindingPortOpenToAnyDestination, Severity: conditions.SeverityWarning,
			Message: msg, Objects: objects(self)})
	}
	return out
}

// shadowed reports destinations whose traffic bypasses the sidecar: first for every pod (the
// MeshConfig's exclusions), then for pods whose own annotations add exclusions.
func shadowed(in EgressInput, dests []egressDest, self string) []Finding {
	if len(in.Mesh.ConfigErrs) > 0 {
		return nil
	}
	out := shadowFindings(in.Mesh.Config, dests, nil, in.Mesh, self)
	meshKeys := bypassKeys(in.Mesh.Config, dests)
	type group struct {
		cfg  redirect.Config
		pods []string
	}
	groups := map[string]*group{}
	var order []string
	for _, pod := range sourcePods(in) {
		if !hasRedirectAnnotation(pod.Annotations) {
			continue
		}
		cfg, errs := redirect.Effective(in.Mesh.Settings, pod.Annotations)
		if len(errs) > 0 {
			continue
		}
		d := cfg.Digest()
		if groups[d] == nil {
			groups[d] = &group{cfg: cfg}
			order = append(order, d)
		}
		groups[d].pods = append(groups[d].pods, pod.Namespace+"/"+pod.Name)
	}
	for _, d := range order {
		g := groups[d]
		for _, f := range shadowFindings(g.cfg, dests, g.pods, in.Mesh, self) {
			if !meshKeys[f.Message] {
				out = append(out, f)
			}
		}
	}
	return out
}

func hasRedirectAnnotation(ann map[string]string) bool {
	for _, k := range []string{redirect.AnnotationOutboundIPRangeExclusionList, redirect.AnnotationOutboundIPRangeInclusionList,
		redirect.AnnotationOutboundPortExclusionList} {
		if _, ok := ann[k]; ok {
			return true
		}
	}
	return false
}

// bypassKeys are the messages shadowFindings produces for the mesh-wide configuration, so that
// a pod whose annotations change nothing about a destination is not reported twice.
func bypassKeys(cfg redirect.Config, dests []egressDest) map[string]bool {
	keys := map[string]bool{}
	for _, f := range shadowFindings(cfg, dests, nil, Mesh{}, "") {
		keys[f.Message] = true
	}
	return keys
}

func shadowFindings(cfg redirect.Config, dests []egressDest, pods []string, m Mesh, self string) []Finding {
	byReason := map[string][]string{}
	var reasons []string
	partial := map[string]bool{}
	for _, d := range dests {
		var list []Bypass
		if d.Any {
			if slices.Contains(cfg.OutboundPortExclusions, uint16(d.Port)) {
				list = []Bypass{{Kind: BypassPortExclusion, Port: uint16(d.Port)}}
			}
		} else {
			full, part := prefixBypass(cfg, d.Prefix, uint16(d.Port))
			if full != nil {
				list = []Bypass{*full}
			} else {
				list = part
			}
		}
		for _, b := range list {
			key := b.String()
			if _, ok := byReason[key]; !ok {
				reasons = append(reasons, key)
			}
			byReason[key] = append(byReason[key], d.String())
			partial[key] = b.Partial
		}
	}
	var out []Finding
	for _, r := range reasons {
		where := fmt.Sprintf("%s's traffic settings", m)
		objs := []string{self, m.object()}
		if len(pods) > 0 {
			where = fmt.Sprintf("the redirection annotations of pods %s", nameList(pods, 5))
			for _, p := range pods {
				ns, name, _ := strings.Cut(p, "/")
				objs = append(objs, Object("Pod", ns, name))
			}
		}
		verb := "bypasses"
		if partial[r] {
			verb = "partly bypasses"
		}
		out = append(out, Finding{Code: conditions.FindingDestinationShadowed, Severity: conditions.SeverityWarning,
			Message: fmt.Sprintf("traffic to %s %s the sidecar (%s, from %s), so this policy never applies to it; remove the exclusion if the policy should govern that traffic, or drop the destination from the policy",
				nameList(byReason[r], 6), verb, r, where),
			Objects: objects(objs...)})
	}
	return out
}

func sourcePods(in EgressInput) []*corev1.Pod {
	keys := sourceKeys(in.Egress)
	var out []*corev1.Pod
	for i := range in.Pods {
		p := &in.Pods[i]
		sa := p.Spec.ServiceAccountName
		if sa == "" {
			sa = "default"
		}
		if p.DeletionTimestamp == nil && slices.Contains(keys, types.NamespacedName{Namespace: p.Namespace, Name: sa}) {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b *corev1.Pod) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	return out
}

// portCollisions finds mesh Services listening on a port the policy opens to an external
// destination. The sidecar hands a connection to the listener of the mesh Service on that port
// before any Egress rule is consulted, so the external destination is never reached: the outage
// of seed 003, where a Redis at 10.0.0.6:7000 answered "HTTP/1.1 400" from inside the proxy.
func portCollisions(in EgressInput, dests []egressDest, self string) []Finding {
	listeners := meshListeners(in.Services, in.Monitored)
	var sas []string
	for _, k := range sourceKeys(in.Egress) {
		sas = append(sas, k.Namespace+"/"+k.Name)
	}
	usable := len(in.Mesh.ConfigErrs) == 0
	// Each pod is judged with its own configuration: an annotation may route a destination
	// around its sidecar, and then that pod is not affected.
	type podCfg struct {
		name string
		cfg  redirect.Config
	}
	var pods []podCfg
	for _, p := range sourcePods(in) {
		cfg := in.Mesh.Config
		if usable && hasRedirectAnnotation(p.Annotations) {
			if c, errs := redirect.Effective(in.Mesh.Settings, p.Annotations); len(errs) == 0 {
				cfg = c
			}
		}
		pods = append(pods, podCfg{name: p.Namespace + "/" + p.Name, cfg: cfg})
	}
	reaches := func(cfg redirect.Config, d egressDest) bool {
		if !usable {
			return true
		}
		if d.Any {
			return !slices.Contains(cfg.OutboundPortExclusions, uint16(d.Port))
		}
		full, _ := prefixBypass(cfg, d.Prefix, uint16(d.Port))
		return full == nil
	}

	// One finding per Service, listing every colliding port and destination of it.
	type hit struct {
		l        Listener
		ports    []string
		dests    []string
		affected []string
	}
	var hits []*hit
	byService := map[types.NamespacedName]*hit{}
	for _, l := range listeners {
		for _, d := range dests {
			if d.Port != l.Port || !reaches(in.Mesh.Config, d) {
				continue // bypassed everywhere: reported as shadowed instead
			}
			h := byService[l.Service]
			if h == nil {
				h = &hit{l: l}
				byService[l.Service] = h
				hits = append(hits, h)
			}
			if p := fmt.Sprint(l.Port); !slices.Contains(h.ports, p) {
				h.ports = append(h.ports, p)
			}
			h.dests = append(h.dests, d.String())
			for _, p := range pods {
				if reaches(p.cfg, d) && !slices.Contains(h.affected, p.name) {
					h.affected = append(h.affected, p.name)
				}
			}
		}
	}
	var out []Finding
	for _, h := range hits {
		slices.Sort(h.affected)
		svc := h.l.Service
		var affected string
		switch {
		case len(h.affected) > 0:
			affected = fmt.Sprintf("affected pods (service accounts %s): %s", strings.Join(sas, ", "), nameList(h.affected, 8))
		case len(pods) > 0:
			affected = fmt.Sprintf("the pods running as %s today route these destinations around their sidecar through annotations, but every new pod without them will be affected", strings.Join(sas, ", "))
		default:
			affected = fmt.Sprintf("no pod runs as %s yet; every pod that does will be affected", strings.Join(sas, ", "))
		}
		o := []string{self, h.l.object()}
		for _, sa := range sas {
			ns, name, _ := strings.Cut(sa, "/")
			o = append(o, Object("ServiceAccount", ns, name))
		}
		for _, p := range h.affected {
			ns, name, _ := strings.Cut(p, "/")
			o = append(o, Object("Pod", ns, name))
		}
		out = append(out, Finding{Code: conditions.FindingPortCollision, Severity: conditions.SeverityError,
			Message: fmt.Sprintf("mesh Service %s/%s (%s, in monitored namespace %s) exposes port %s, which this policy allows to %s: the sidecar's listener for the Service takes those connections and they never reach the external destination; %s. Fix: give the Service a different port, take its namespace out of the mesh, or exclude the external destination from interception with traffic.outboundIPRangeExclusionList (the policy then no longer governs it)",
				svc.Namespace, svc.Name, h.l.Kind, svc.Namespace, strings.Join(h.ports, ", "), nameList(h.dests, 6), affected),
			Objects: objects(o...), Condition: conditions.Ready, Reason: conditions.Conflict, Stalls: true})
	}
	return out
}
