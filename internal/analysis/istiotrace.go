package analysis

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// IstioInput describes one Istio-injected pod and the mesh around it.
type IstioInput struct {
	// Rules are the nat rules the pod runs: parsed from iptables-save taken in the pod, or
	// rendered from its istio-init arguments. They alone decide whether a connection reaches
	// the sidecar.
	Rules *redirect.Plan
	// Services are every Service of the cluster: without a Sidecar resource narrowing it, an
	// Istio sidecar carries listeners for all of them, whichever namespace they are in.
	Services []corev1.Service
	// EndpointSlices give headless Services' TCP listeners their addresses (optional).
	EndpointSlices []discoveryv1.EndpointSlice
	// ServiceEntries are every ServiceEntry of the cluster.
	ServiceEntries []ServiceEntry
	// Mesh supplies outboundTrafficPolicy.
	Mesh IstioMesh
}

// EntryMatch is a ServiceEntry port that takes a destination.
type EntryMatch struct {
	Entry      types.NamespacedName
	Port       int32
	Protocol   IstioProtocol
	Resolution string
	Hosts      []string
	// Via is the address range that matched, or "any address" for an entry without addresses.
	Via string
}

func (m EntryMatch) String() string {
	return fmt.Sprintf("ServiceEntry %s/%s port %d/%s (%s, resolution %s)", m.Entry.Namespace, m.Entry.Name, m.Port, m.Protocol, m.Via, m.Resolution)
}

// TraceIstio answers "where does a TCP connection to dst from this Istio pod go". The rules come
// first (TraceWith): a destination they exclude leaves the pod directly. A redirected connection
// reaches the sidecar's outbound listener, which hands it to the listener bound to the
// destination, most specific first:
//
//  1. a Service's ClusterIP and port, or a headless Service's TCP port on one of its endpoint
//     addresses: that Service;
//  2. a ServiceEntry port whose addresses contain the destination: that entry (resolution NONE
//     passes it on to the original destination);
//  3. a 0.0.0.0:<port> listener, which every HTTP-class or auto-detected Service port gets: the
//     listener takes the connection whatever its address, and serves it as HTTP. A client that
//     does not speak HTTP (Redis, MySQL, any raw TCP) is answered "HTTP/1.1 400 Bad Request" by
//     the proxy and never reaches its destination: seed 003's outage;
//  4. a ServiceEntry port without addresses (its listener is 0.0.0.0:<port> too);
//  5. nothing: outboundTrafficPolicy decides, ALLOW_ANY passing the connection on to its
//     original destination (PassthroughCluster), REGISTRY_ONLY dropping it (BlackHoleCluster).
//
// docs/istio-analysis.md says what the model leaves out (Sidecar resources, VirtualServices,
// DestinationRules, exportTo, and the TCP fall-through chain newer Istio releases add).
func TraceIstio(in IstioInput, dst netip.AddrPort) Route {
	plan := in.Rules
	if plan == nil {
		plan = &redirect.Plan{}
	}
	return TraceWith(plan, nil, istioSidecar{in}, dst)
}

// PlanOf turns parsed rules into the plan TraceWith walks; a family the rules do not cover is
// an empty ruleset, which redirects nothing.
func PlanOf(p *redirect.Parsed) *redirect.Plan {
	plan := &redirect.Plan{IPv4: redirect.Ruleset{Family: redirect.IPv4}, IPv6: redirect.Ruleset{Family: redirect.IPv6}}
	if p == nil {
		return plan
	}
	if p.IPv4 != nil {
		plan.IPv4 = *p.IPv4
	}
	if p.IPv6 != nil {
		plan.IPv6 = *p.IPv6
	}
	return plan
}

type istioSidecar struct{ in IstioInput }

func (m istioSidecar) RouteOutbound(r *Route) {
	in, dst := m.in, r.Destination
	ip, port := dst.Addr(), int32(dst.Port())
	r.Mesh, r.Policy = MeshIstio, in.Mesh.policy()
	var wild []Listener
	for _, l := range istioMeshListeners(in.Services, in.EndpointSlices) {
		if l.Port != port {
			continue
		}
		if slices.Contains(l.Addrs, ip) {
			l := l
			r.Outcome, r.Listener = OutcomeMeshService, &l
			return
		}
		if l.Wildcard {
			wild = append(wild, l)
		}
	}
	if e := matchEntries(in.ServiceEntries, dst, false); len(e) > 0 {
		r.Outcome, r.Entry = OutcomeServiceEntry, &e[0]
		return
	}
	if len(wild) > 0 {
		r.Outcome, r.Listener, r.Collisions = OutcomeServiceListener, &wild[0], wild[1:]
		return
	}
	if e := matchEntries(in.ServiceEntries, dst, true); len(e) > 0 {
		r.Outcome, r.Entry = OutcomeServiceEntry, &e[0]
		return
	}
	if r.Policy == RegistryOnly {
		r.Outcome = OutcomeDenied
		return
	}
	r.Outcome = OutcomeEgressOpen
}

// matchEntries lists the ServiceEntry ports on dst's port whose addresses contain dst (or, with
// wildcard, those of entries without addresses), most specific address first.
func matchEntries(entries []ServiceEntry, dst netip.AddrPort, wildcard bool) []EntryMatch {
	var out []EntryMatch
	bits := map[string]int{}
	for i := range entries {
		e := &entries[i]
		if wildcard != (len(e.Addresses) == 0) {
			continue
		}
		for _, p := range e.Ports {
			if p.Number != int32(dst.Port()) {
				continue
			}
			m := EntryMatch{Entry: e.key(), Port: p.Number, Protocol: p.Protocol, Resolution: e.Resolution, Hosts: e.Hosts, Via: "any address"}
			if !wildcard {
				best := -1
				for _, a := range e.Addresses {
					if a.Contains(dst.Addr()) && a.Bits() > best {
						best, m.Via = a.Bits(), a.String()
					}
				}
				if best < 0 {
					continue
				}
				bits[m.String()] = best
			}
			out = append(out, m)
		}
	}
	slices.SortStableFunc(out, func(a, b EntryMatch) int {
		if d := bits[b.String()] - bits[a.String()]; d != 0 {
			return d
		}
		return strings.Compare(a.String(), b.String())
	})
	return out
}

// IstioListeners lists the outbound listeners a Service gives every Istio sidecar, one per
// proxied port: HTTP-class and auto-detected ports are Wildcard (0.0.0.0:<port>), with the
// ClusterIPs kept in Addrs for the exact match; TCP-class ports listen on the ClusterIPs, or, for
// a headless Service, on its endpoints' addresses (from slices; no endpoints, no listener).
// UDP and SCTP ports are not proxied. ExternalName Services get none: current Istio treats them
// as aliases of their target.
func IstioListeners(svc *corev1.Service, slices []discoveryv1.EndpointSlice) []Listener {
	kind := KindOf(svc)
	if kind == ServiceExternalName {
		return nil
	}
	addrs := clusterIPs(svc)
	var endpoints []netip.Addr
	if kind == ServiceHeadless {
		endpoints = endpointAddrs(svc, slices)
	}
	key := types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}
	var out []Listener
	for _, p := range svc.Spec.Ports {
		proto, from := IstioProtocolOf(p)
		if proto == IstioUDP || p.Port < 1 || p.Port > 65535 {
			continue
		}
		l := Listener{Service: key, Kind: kind, Port: p.Port, PortName: p.Name, Addrs: addrs, Protocol: proto, ProtocolFrom: from, Wildcard: proto.Wildcard()}
		if !l.Wildcard && kind == ServiceHeadless {
			if len(endpoints) == 0 {
				continue
			}
			l.Addrs = endpoints
		}
		out = append(out, l)
	}
	return out
}

func endpointAddrs(svc *corev1.Service, eps []discoveryv1.EndpointSlice) []netip.Addr {
	var out []netip.Addr
	for i := range eps {
		s := &eps[i]
		if s.Namespace != svc.Namespace || s.Labels[discoveryv1.LabelServiceName] != svc.Name {
			continue
		}
		for _, ep := range s.Endpoints {
			for _, a := range ep.Addresses {
				if ip, err := netip.ParseAddr(a); err == nil && !slices.Contains(out, ip) {
					out = append(out, ip)
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return out
}

// istioMeshListeners returns the listeners of every Service, sorted by Service then port.
func istioMeshListeners(services []corev1.Service, eps []discoveryv1.EndpointSlice) []Listener {
	var out []Listener
	for i := range services {
		if services[i].DeletionTimestamp != nil {
			continue
		}
		out = append(out, IstioListeners(&services[i], eps)...)
	}
	slices.SortFunc(out, func(a, b Listener) int {
		if c := strings.Compare(a.Service.String(), b.Service.String()); c != 0 {
			return c
		}
		return int(a.Port - b.Port)
	})
	return out
}

// bind is where the sidecar listens for l on port: 0.0.0.0:<port> for a wildcard listener,
// otherwise the listener's first address.
func (l Listener) bind() string {
	if l.Wildcard || len(l.Addrs) == 0 {
		return fmt.Sprintf("0.0.0.0:%d", l.Port)
	}
	return netip.AddrPortFrom(l.Addrs[0], uint16(l.Port)).String()
}

// istioString renders a route of Istio's model.
func (r Route) istioString(b *strings.Builder) {
	proxy := "istio-proxy"
	if r.Rules.Port != 0 {
		proxy = fmt.Sprintf("istio-proxy (redirected to %d)", r.Rules.Port)
	}
	switch r.Outcome {
	case OutcomeMeshService:
		fmt.Fprintf(b, "%s, to %s through listener %s (%s)", proxy, r.Listener, r.Listener.bind(), r.Listener.Protocol)
	case OutcomeServiceListener:
		l := r.Listener
		fmt.Fprintf(b, "%s, CAUGHT by listener %s of %s, protocol %s (%s): it takes every destination on port %d whatever the address and serves it as HTTP, so a client that does not speak HTTP (Redis, MySQL, raw TCP) gets \"HTTP/1.1 400 Bad Request\" from the proxy and %s is never reached",
			proxy, l.bind(), l, l.Protocol, l.ProtocolFrom, l.Port, r.Destination)
	case OutcomeServiceEntry:
		e := r.Entry
		fmt.Fprintf(b, "%s, to %s: ", proxy, e)
		if e.Resolution == "NONE" {
			fmt.Fprintf(b, "passed on to the original destination %s (ORIGINAL_DST cluster)", r.Destination)
		} else {
			fmt.Fprintf(b, "sent to the entry's %s endpoints for %s, not necessarily to %s", strings.ToLower(e.Resolution), strings.Join(e.Hosts, ", "), r.Destination.Addr())
		}
	case OutcomeEgressOpen:
		fmt.Fprintf(b, "%s, no listener for it: outboundTrafficPolicy %s passes it on to the original destination (PassthroughCluster)", proxy, r.Policy)
	case OutcomeDenied:
		fmt.Fprintf(b, "%s, no listener for it: outboundTrafficPolicy %s drops it (BlackHoleCluster)", proxy, r.Policy)
	}
	for _, l := range r.Collisions {
		fmt.Fprintf(b, "; also on 0.0.0.0:%d: %s", l.Port, l)
	}
}
