package diagnose

import (
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"

	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	policyv1alpha1 "github.com/meshkeeper/meshkeeper/api/policy/v1alpha1"
	"github.com/meshkeeper/meshkeeper/internal/analysis"
	"github.com/meshkeeper/meshkeeper/internal/drift"
	"github.com/meshkeeper/meshkeeper/internal/injection"
	"github.com/meshkeeper/meshkeeper/internal/istio"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
	"github.com/meshkeeper/meshkeeper/internal/redirect/podspec"
)

// RouteInput describes one pod, the rules it runs and the mesh around it.
type RouteInput struct {
	Pod           *corev1.Pod
	MeshConfigRef types.NamespacedName
	// MeshConfig is nil when it does not exist or was not given; the pod's annotations alone
	// then make its configuration.
	MeshConfig *configv1alpha2.MeshConfig
	// Rules replace the pod's init container as the rules it runs; RulesSource names them.
	Rules       *redirect.Parsed
	RulesSource string

	Namespaces []corev1.Namespace
	Services   []corev1.Service
	Egresses   []policyv1alpha1.Egress
	// IngressBackends are candidates for inbound connections (RouteInbound); only those of the
	// pod's namespace whose backend Service selects the pod apply.
	IngressBackends []policyv1alpha1.IngressBackend
	// PolicyUnknown says why Services and Egress (or IngressBackend) policies were not read; the
	// answer past the sidecar then only reflects what was given.
	PolicyUnknown Unknown

	// For Istio pods: the ServiceEntries, EndpointSlices (headless Services' addresses) and the
	// mesh configuration's outboundTrafficPolicy that decide what the sidecar does.
	ServiceEntries []analysis.ServiceEntry
	EndpointSlices []discoveryv1.EndpointSlice
	IstioMesh      analysis.IstioMesh

	Selection injection.SelectOptions
}

// Path says whether a connection reaches the sidecar.
type Path string

const (
	PathSidecar Path = "sidecar"
	PathBypass  Path = "bypass"
)

// RouteResult answers "where does this pod's connection to IP:PORT go".
type RouteResult struct {
	Pod string `json:"pod"`
	// Direction is outbound (Route) or inbound (RouteInbound).
	Direction   redirect.Direction `json:"direction"`
	Destination string             `json:"destination"`
	// Source is the client address of an inbound connection, when one was given.
	Source string `json:"source,omitempty"`
	UID    uint32 `json:"uid"`
	// RulesSource is where the rules that were walked came from.
	RulesSource string `json:"rulesSource"`
	Path        Path   `json:"path"`
	// Rule is the rule that decided (chain, number and text), empty when no rule matched.
	Rule string `json:"rule"`
	// Setting is the configuration value responsible for a bypass, when one explains it.
	Setting string `json:"setting,omitempty"`
	// Outcome, Listener, Egress and Collisions describe what the sidecar does with it.
	Outcome    analysis.Outcome `json:"outcome,omitempty"`
	Listener   string           `json:"listener,omitempty"`
	Egress     []string         `json:"egress,omitempty"`
	Collisions []string         `json:"collisions,omitempty"`
	// IngressBackends are the backends that govern an inbound connection.
	IngressBackends []string `json:"ingressBackends,omitempty"`
	// Summary is one sentence for people.
	Summary string `json:"summary"`
	// Status is fail when the connection is black-holed (a mesh Service's listener takes it,
	// or nothing allows it), warn when part of the picture is unknown, pass otherwise.
	Status Status   `json:"status"`
	Notes  []string `json:"notes,omitempty"`
	// Trace is every rule looked at, in order.
	Trace []redirect.Step `json:"trace"`
}

// podRules returns the rules the pod runs: the given ones, or its parsed redirection init
// container; nil when it has none.
func podRules(in RouteInput) (*redirect.Parsed, string, error) {
	if in.Rules != nil {
		return in.Rules, in.RulesSource, nil
	}
	if istio.Injected(in.Pod) {
		return istio.PodRules(in.Pod)
	}
	c := drift.RedirectionInitContainer(in.Pod)
	if c == nil {
		return nil, "", nil
	}
	p, err := podspec.ParseContainer(c)
	if err != nil {
		return nil, "", fmt.Errorf("cannot read the rules of init container %s of pod %s/%s: %w", c.Name, in.Pod.Namespace, in.Pod.Name, err)
	}
	return p, "init container " + c.Name, nil
}

// Route follows one outbound TCP connection of the pod to dst, sent by a socket owned by uid:
// first through the rules the pod actually runs (its parsed init container, or the given rules),
// then through the sidecar's listeners and Egress policies (analysis.Trace).
func Route(in RouteInput, dst netip.AddrPort, uid uint32) (RouteResult, error) {
	pod := in.Pod
	res := RouteResult{Pod: pod.Namespace + "/" + pod.Name, Direction: redirect.DirectionOutbound, Destination: dst.String(), UID: uid, Trace: []redirect.Step{}}
	parsed, source, err := podRules(in)
	if err != nil {
		return res, err
	}
	if parsed == nil {
		res.RulesSource = "none"
		res.Path, res.Status = PathBypass, StatusFail
		res.Summary = fmt.Sprintf("%s: the pod has no %s or %s init container, so nothing redirects its traffic to a sidecar; it leaves the pod directly",
			dst, redirect.InitContainerName, redirect.OSMInitContainerName)
		return res, nil
	}
	res.RulesSource = source
	dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
	plan, rs, v := walkOutbound(&res, parsed, dst, uid)
	if istio.Injected(pod) {
		return routeIstio(in, res, plan, rs, v, dst, uid), nil
	}

	cfg, cfgValid, notes := in.podConfig(pod)
	res.Notes = append(res.Notes, notes...)
	if v.Kind != redirect.VerdictRedirect {
		res.Path, res.Status = PathBypass, StatusPass
		switch b, ok := analysis.BypassOf(cfg, dst); {
		case uid == cfg.ProxyUID && cfgValid:
			res.Setting = fmt.Sprintf("the proxy's own traffic (UID %d) is never redirected", uid)
		case ok && cfgValid:
			res.Setting = b.String()
		case in.MeshConfig == nil:
			res.Status = StatusWarn // the setting is probably in the MeshConfig nobody could read
		default:
			res.Notes = append(res.Notes, "no setting of the MeshConfig or the pod's annotations explains this bypass: the rules differ from the configuration (see the exclusions-in-sync check of diagnose)")
			res.Status = StatusWarn
		}
		res.Summary = fmt.Sprintf("%s: bypasses the sidecar (%s), leaving the pod directly; no mesh policy applies", dst, orDefault(res.Setting, "rule "+res.Rule))
		return res, nil
	}
	res.Path = PathSidecar

	monitored := map[string]bool{}
	for i := range in.Namespaces {
		monitored[in.Namespaces[i].Name] = injection.InMesh(&in.Namespaces[i], in.Selection.MeshName)
	}
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	r := analysis.Trace(analysis.TraceInput{Config: cfg, Rules: plan, ServiceAccount: types.NamespacedName{Namespace: pod.Namespace, Name: sa},
		Mesh: analysis.MeshOf(in.MeshConfigRef, in.MeshConfig), Services: in.Services, Monitored: monitored, Egresses: in.Egresses}, dst)
	res.Outcome = r.Outcome
	if r.Listener != nil {
		res.Listener = r.Listener.String()
	}
	for _, e := range r.Egress {
		res.Egress = append(res.Egress, e.String())
	}
	for _, l := range r.Collisions {
		res.Collisions = append(res.Collisions, l.String())
	}
	res.Summary = r.String()
	switch r.Outcome {
	case analysis.OutcomeServiceListener, analysis.OutcomeDenied:
		res.Status = StatusFail
	case analysis.OutcomeBypassed:
		// The rules redirect for this UID but not for the default one analysis walks with.
		res.Path, res.Status = PathBypass, StatusPass
	default:
		res.Status = StatusPass
	}
	if r.Outcome == analysis.OutcomeServiceListener && !r.Collides() {
		res.Summary += fmt.Sprintf("; PORT COLLISION: %s is not that Service's address, but its listener takes every connection on port %d", dst.Addr(), dst.Port())
	}
	if in.PolicyUnknown != "" {
		res.Notes = append(res.Notes, "mesh Services and Egress policies not read ("+string(in.PolicyUnknown)+"): listener and policy matching only reflects the objects given")
		if res.Status == StatusPass {
			res.Status = StatusWarn
		}
	}
	return res, nil
}

// routeIstio is Route for an Istio pod: the same walk through the rules it runs (rendered from
// istio-init's arguments or istio-cni's annotations, or given), then Istio's sidecar:
// ServiceEntries, the Services' listeners (an HTTP or auto-detected port's catch-all listener
// takes every destination on that port, seed 003's 400 Bad Request) and outboundTrafficPolicy.
func routeIstio(in RouteInput, res RouteResult, plan *redirect.Plan, rs *redirect.Ruleset, v redirect.Verdict, dst netip.AddrPort, uid uint32) RouteResult {
	if v.Kind != redirect.VerdictRedirect {
		res.Path, res.Status = PathBypass, StatusPass
		res.Setting = analysis.BypassOfRules(rs, v).String()
		if int64(uid) == istio.ProxyUID(in.Pod) {
			res.Setting = fmt.Sprintf("the proxy's own traffic (UID %d) is never redirected", uid)
		}
		res.Summary = fmt.Sprintf("%s: bypasses the sidecar (%s), leaving the pod directly; no mesh policy applies", dst, res.Setting)
		return res
	}
	res.Path = PathSidecar
	r := analysis.TraceIstio(analysis.IstioInput{Rules: plan, Services: in.Services, EndpointSlices: in.EndpointSlices,
		ServiceEntries: in.ServiceEntries, Mesh: in.IstioMesh}, dst)
	res.Outcome, res.Summary = r.Outcome, r.String()
	if r.Listener != nil {
		res.Listener = r.Listener.String()
	}
	for _, l := range r.Collisions {
		res.Collisions = append(res.Collisions, l.String())
	}
	switch r.Outcome {
	case analysis.OutcomeServiceListener, analysis.OutcomeDenied:
		res.Status = StatusFail
	default:
		res.Status = StatusPass
	}
	if in.PolicyUnknown != "" {
		res.Notes = append(res.Notes, "Services and ServiceEntries not all read ("+string(in.PolicyUnknown)+"): listener matching only reflects the objects given")
		if res.Status == StatusPass {
			res.Status = StatusWarn
		}
	}
	return res
}

// walkOutbound walks the rules the pod runs for one outbound connection, whatever mesh wrote
// them, and records the walk and the deciding rule in res.
func walkOutbound(res *RouteResult, parsed *redirect.Parsed, dst netip.AddrPort, uid uint32) (*redirect.Plan, *redirect.Ruleset, redirect.Verdict) {
	plan := analysis.PlanOf(parsed)
	rs := &plan.IPv4
	if dst.Addr().Is6() {
		rs = &plan.IPv6
		if parsed.IPv6 == nil {
			res.Notes = append(res.Notes, "the rules have no IPv6 table, so IPv6 traffic is never redirected")
		}
	}
	v := redirect.Explain(rs, redirect.Packet{Direction: redirect.DirectionOutbound, UID: uid, Dst: dst})
	res.Trace, res.Rule = v.Trace, decidingRule(v.Trace)
	return plan, rs, v
}

// podConfig is the configuration the pod should run: the MeshConfig's traffic settings, when
// known, merged with the pod's annotations. valid is false when that merge failed; the notes say
// what could not be used.
func (in RouteInput) podConfig(pod *corev1.Pod) (cfg redirect.Config, valid bool, notes []string) {
	var settings redirect.MeshSettings
	if in.MeshConfig != nil {
		settings = injection.MeshSettings(&in.MeshConfig.Spec)
	} else {
		notes = append(notes, fmt.Sprintf("MeshConfig %s not available: the configuration is the pod's annotations alone", in.MeshConfigRef))
	}
	cfg, errs := redirect.Effective(settings, pod.Annotations)
	if len(errs) > 0 {
		notes = append(notes, "the configuration is invalid, so bypass reasons come from the rules only: "+errs.ToAggregate().Error())
	}
	return cfg, len(errs) == 0, notes
}

// decidingRule names the last rule a packet matched ("CHAIN #N: rule"), the one that decided
// where it went; empty when only chain policies applied.
func decidingRule(trace []redirect.Step) string {
	for i := len(trace) - 1; i >= 0; i-- {
		if s := trace[i]; s.Matched && s.Index > 0 {
			return fmt.Sprintf("%s #%d: %s", s.Chain, s.Index, s.Rule)
		}
	}
	return ""
}
