package analysis

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	policyv1alpha1 "github.com/meshkeeper/meshkeeper/api/policy/v1alpha1"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// TraceInput describes one meshed pod and the mesh around it.
type TraceInput struct {
	// Config is the pod's effective redirection configuration (redirect.Effective of the
	// MeshConfig settings and the pod's annotations).
	Config redirect.Config
	// Rules, when set, are the rules actually found in the pod (parsed from its init container
	// or from iptables-save); otherwise the rules Config renders to are used. The bypass decision
	// is always taken by walking rules, so it is the kernel's answer, not a re-derivation.
	Rules *redirect.Plan
	// ServiceAccount is the pod's service account; it selects the Egress policies that apply.
	ServiceAccount types.NamespacedName
	// Mesh supplies enableEgress and the egress feature flag.
	Mesh Mesh
	// Services and Monitored describe the mesh Services whose listeners every sidecar carries.
	Services  []corev1.Service
	Monitored map[string]bool
	// Egresses are candidate policies; those not naming ServiceAccount are ignored.
	Egresses []policyv1alpha1.Egress
}

// Outcome is where an outbound connection ends up.
type Outcome string

const (
	// OutcomeBypassed: the connection leaves the pod directly; no policy applies.
	OutcomeBypassed Outcome = "Bypassed"
	// OutcomeMeshService: the destination is a mesh Service's ClusterIP and port.
	OutcomeMeshService Outcome = "MeshService"
	// OutcomeServiceListener: a mesh Service's listener on that port takes the connection even
	// though the destination is not that Service's address (a port collision when the
	// destination is external).
	OutcomeServiceListener Outcome = "ServiceListener"
	// OutcomeEgressPolicy: an Egress policy allows the destination.
	OutcomeEgressPolicy Outcome = "EgressPolicy"
	// OutcomeEgressOpen: nothing in the sidecar matches and the mesh lets every external
	// destination through (OSM's traffic.enableEgress, Istio's outboundTrafficPolicy ALLOW_ANY).
	OutcomeEgressOpen Outcome = "EgressOpen"
	// OutcomeDenied: nothing in the sidecar matches and the mesh refuses the rest (OSM without
	// enableEgress, Istio's REGISTRY_ONLY: BlackHoleCluster).
	OutcomeDenied Outcome = "Denied"
	// OutcomeServiceEntry: an Istio ServiceEntry takes the connection.
	OutcomeServiceEntry Outcome = "ServiceEntry"
)

// MeshKind names the mesh whose sidecar model produced a Route.
type MeshKind string

const (
	// MeshOSM is the zero value: Open Service Mesh.
	MeshOSM MeshKind = ""
	// MeshIstio is Istio.
	MeshIstio MeshKind = "Istio"
)

// EgressMatch is an Egress port that matches a destination.
type EgressMatch struct {
	Egress   types.NamespacedName
	Port     int32
	Protocol string
	// Via says what matched: "any address" or the range, plus SNI hosts for https.
	Via string
}

func (m EgressMatch) String() string {
	return fmt.Sprintf("Egress %s/%s port %d/%s (%s)", m.Egress.Namespace, m.Egress.Name, m.Port, m.Protocol, m.Via)
}

// Route is the answer to "where does a connection to Destination go".
type Route struct {
	Destination netip.AddrPort
	Outcome     Outcome
	// Bypass is set when Outcome is OutcomeBypassed.
	Bypass *Bypass
	// Rules is the walk through the nat table that decided between sidecar and bypass.
	Rules redirect.Verdict
	// Listener is the mesh Service listener that takes the connection, if any.
	Listener *Listener
	// Egress lists the Egress ports that match the destination. With a Listener set they are
	// collisions: they allow the destination, but the listener wins.
	Egress []EgressMatch
	// Collisions are the other mesh Service listeners on the same port.
	Collisions []Listener
	// Mesh is the sidecar model that routed the connection.
	Mesh MeshKind
	// Entry is the Istio ServiceEntry port that takes the connection (OutcomeServiceEntry).
	Entry *EntryMatch
	// Policy is Istio's outboundTrafficPolicy, which decides when nothing else matches.
	Policy OutboundTrafficPolicy
}

// Collides reports whether a mesh Service listener swallows a destination an Egress allows.
func (r Route) Collides() bool {
	return r.Outcome == OutcomeServiceListener && len(r.Egress) > 0
}

func (r Route) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: ", r.Destination)
	if r.Mesh == MeshIstio && r.Outcome != OutcomeBypassed {
		r.istioString(&b)
		return b.String()
	}
	switch r.Outcome {
	case OutcomeBypassed:
		fmt.Fprintf(&b, "bypasses the sidecar (%s)", r.Bypass)
	case OutcomeMeshService:
		fmt.Fprintf(&b, "sidecar, to %s", r.Listener)
	case OutcomeServiceListener:
		fmt.Fprintf(&b, "sidecar, taken by the listener of %s", r.Listener)
		if len(r.Egress) > 0 {
			fmt.Fprintf(&b, "; PORT COLLISION: allowed by %s but never reaches it", r.Egress[0])
		}
	case OutcomeEgressPolicy:
		fmt.Fprintf(&b, "sidecar, allowed by %s", r.Egress[0])
	case OutcomeEgressOpen:
		b.WriteString("sidecar, passed through (traffic.enableEgress is true)")
	case OutcomeDenied:
		b.WriteString("sidecar, denied (no mesh Service and no Egress policy matches)")
	}
	for _, l := range r.Collisions {
		fmt.Fprintf(&b, "; also listening on that port: %s", l)
	}
	return b.String()
}

// SidecarModel is one mesh's proxy: what it does with an outbound connection the pod's nat
// rules handed to it. Tracing is split in two on purpose. Everything up to the proxy is the
// same for every mesh and is taken from the rules the pod runs (TraceWith walks them with
// redirect.Explain and names the bypass); only what the proxy does next differs, and that is
// all a model answers. OSM's model (Trace) matches mesh Service listeners and Egress policies;
// Istio's (TraceIstio) matches Service and ServiceEntry listeners and the outboundTrafficPolicy.
//
// RouteOutbound is called only for connections the rules redirect; r.Destination and r.Rules
// are set, and the model fills r.Outcome and whichever fields explain it.
type SidecarModel interface {
	RouteOutbound(r *Route)
}

// TraceWith follows one outbound TCP connection to dst through plan's nat rules and then
// through model. cfg, when given, is the configuration the rules were rendered from; it names
// the setting behind a bypass. Without it (rules read from a pod of another mesh) the bypass is
// named from the rule that decided it.
func TraceWith(plan *redirect.Plan, cfg *redirect.Config, model SidecarModel, dst netip.AddrPort) Route {
	dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
	r := Route{Destination: dst}
	rs := &plan.IPv4
	if dst.Addr().Is6() {
		rs = &plan.IPv6
	}
	r.Rules = redirect.Explain(rs, redirect.Packet{Direction: redirect.DirectionOutbound, Dst: dst})
	if r.Rules.Kind != redirect.VerdictRedirect {
		b, ok := Bypass{}, false
		if cfg != nil {
			b, ok = BypassOf(*cfg, dst)
		}
		if !ok {
			b = BypassOfRules(rs, r.Rules)
		}
		r.Outcome, r.Bypass = OutcomeBypassed, &b
		return r
	}
	model.RouteOutbound(&r)
	return r
}

// Trace follows one outbound TCP connection from an OSM-meshed pod. First the redirection
// rules: excluded destinations leave the pod directly. Then the sidecar: a mesh Service's
// ClusterIP and port reach that Service; any other mesh Service listening on the port takes the
// connection (whatever the destination address, which is how an external Redis on a port a mesh
// Service also uses is black-holed); otherwise an Egress policy of the pod's service account, or
// open egress, lets it out, and anything else is denied.
func Trace(in TraceInput, dst netip.AddrPort) Route {
	plan := in.Rules
	if plan == nil {
		p := redirect.Render(in.Config)
		plan = &p
	}
	return TraceWith(plan, &in.Config, osmSidecar{in}, dst)
}

// osmSidecar is OSM's outbound model.
type osmSidecar struct{ in TraceInput }

func (m osmSidecar) RouteOutbound(r *Route) {
	in, dst := m.in, r.Destination
	ip := dst.Addr()
	var onPort []Listener
	for _, l := range meshListeners(in.Services, in.Monitored) {
		if l.Port != int32(dst.Port()) {
			continue
		}
		if slices.Contains(l.Addrs, ip) && r.Listener == nil {
			l := l
			r.Outcome, r.Listener = OutcomeMeshService, &l
			continue
		}
		onPort = append(onPort, l)
	}
	if in.Mesh.EgressPolicy || !in.Mesh.Found {
		r.Egress = matchEgresses(in.Egresses, in.ServiceAccount, dst)
	}
	switch {
	case r.Listener != nil:
		r.Collisions = onPort
		r.Egress = nil
	case len(onPort) > 0:
		r.Outcome, r.Listener, r.Collisions = OutcomeServiceListener, &onPort[0], onPort[1:]
	case len(r.Egress) > 0:
		r.Outcome = OutcomeEgressPolicy
	case in.Mesh.EnableEgress:
		r.Outcome = OutcomeEgressOpen
	default:
		r.Outcome = OutcomeDenied
	}
}

// matchEgresses lists the Egress ports that allow dst for pods running as sa.
func matchEgresses(egresses []policyv1alpha1.Egress, sa types.NamespacedName, dst netip.AddrPort) []EgressMatch {
	var out []EgressMatch
	ip := dst.Addr().Unmap()
	for i := range egresses {
		e := &egresses[i]
		if e.DeletionTimestamp != nil || !slices.Contains(sourceKeys(e), sa) {
			continue
		}
		for _, d := range destinations(&e.Spec) {
			if d.Port != int32(dst.Port()) || (!d.Any && !d.Prefix.Contains(ip)) {
				continue
			}
			via := "any address"
			if !d.Any {
				via = d.Prefix.String()
			}
			if d.Protocol == policyv1alpha1.ProtocolHTTPS && len(e.Spec.Hosts) > 0 {
				via += ", SNI " + strings.Join(e.Spec.Hosts, "|")
			}
			out = append(out, EgressMatch{Egress: types.NamespacedName{Namespace: e.Namespace, Name: e.Name},
				Port: d.Port, Protocol: d.Protocol, Via: via})
		}
	}
	slices.SortFunc(out, func(a, b EgressMatch) int { return strings.Compare(a.String(), b.String()) })
	return slices.CompactFunc(out, func(a, b EgressMatch) bool { return a.String() == b.String() })
}

// EgressPorts lists the destination ports of an Egress, for field indexes.
func EgressPorts(e *policyv1alpha1.Egress) []int32 {
	var out []int32
	for _, p := range e.Spec.Ports {
		if !slices.Contains(out, p.Number) {
			out = append(out, p.Number)
		}
	}
	return out
}

// EgressServiceAccounts lists an Egress's source ServiceAccounts as "namespace/name", for
// field indexes.
func EgressServiceAccounts(e *policyv1alpha1.Egress) []string {
	keys := sourceKeys(e)
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.String()
	}
	return out
}
