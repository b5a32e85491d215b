package analysis

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"

	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	"github.com/meshkeeper/meshkeeper/internal/injection"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// Mesh is what the policy analyses need to know about the MeshConfig the operator serves.
type Mesh struct {
	// Ref names the MeshConfig, for messages.
	Ref types.NamespacedName
	// Found is false when the MeshConfig does not exist; nothing else is meaningful then.
	Found bool
	// Settings are the raw redirection settings; Config is their effective form for a pod without
	// annotations, and ConfigErrs is non-empty when the settings cannot be rendered.
	Settings   redirect.MeshSettings
	Config     redirect.Config
	ConfigErrs field.ErrorList
	// EnableEgress is traffic.enableEgress: every external destination is reachable.
	EnableEgress bool
	// EgressPolicy and IngressBackendPolicy are the feature flags that make those kinds act.
	EgressPolicy         bool
	IngressBackendPolicy bool
}

// MeshOf reads a MeshConfig; nil means it does not exist.
func MeshOf(ref types.NamespacedName, mc *configv1alpha2.MeshConfig) Mesh {
	m := Mesh{Ref: ref}
	if mc == nil {
		return m
	}
	m.Found = true
	m.Settings = injection.MeshSettings(&mc.Spec)
	m.Config, m.ConfigErrs = redirect.Effective(m.Settings, nil)
	m.EnableEgress = mc.Spec.Traffic.EnableEgress
	m.EgressPolicy = mc.Spec.FeatureFlags.EnableEgressPolicy
	m.IngressBackendPolicy = mc.Spec.FeatureFlags.EnableIngressBackendPolicy
	return m
}

func (m Mesh) String() string {
	return fmt.Sprintf("MeshConfig %s/%s", m.Ref.Namespace, m.Ref.Name)
}

func (m Mesh) object() string { return Object("MeshConfig", m.Ref.Namespace, m.Ref.Name) }

// ServiceKind says how a Service's sidecar listener matches destinations.
type ServiceKind string

const (
	// ServiceClusterIP has virtual IPs.
	ServiceClusterIP ServiceKind = "ClusterIP"
	// ServiceHeadless (clusterIP None) is reached at its endpoints' addresses.
	ServiceHeadless ServiceKind = "Headless"
	// ServiceExternalName is a DNS alias with no address of its own.
	ServiceExternalName ServiceKind = "ExternalName"
)

// Listener is one TCP port a mesh Service makes the sidecar listen for on outbound traffic.
type Listener struct {
	Service types.NamespacedName
	Kind    ServiceKind
	// Port is the destination port the listener matches; PortName is the Service port's name.
	Port     int32
	PortName string
	// Addrs are the Service's ClusterIPs; empty for headless and ExternalName Services. In
	// Istio's model a headless Service's TCP listeners carry its endpoints' addresses instead.
	Addrs []netip.Addr
	// Protocol is the protocol the mesh assumes for the port and ProtocolFrom what decided it
	// (Istio only: see IstioProtocolOf).
	Protocol     IstioProtocol
	ProtocolFrom string
	// Wildcard says the sidecar listens on 0.0.0.0:Port for this port, so the listener takes a
	// connection to any address on Port, not only to Addrs (Istio's HTTP and auto-detected
	// ports). OSM's model treats every listener that way and does not set it.
	Wildcard bool
}

func (l Listener) String() string {
	return fmt.Sprintf("%s Service %s/%s port %d", l.Kind, l.Service.Namespace, l.Service.Name, l.Port)
}

func (l Listener) object() string { return Object("Service", l.Service.Namespace, l.Service.Name) }

// KindOf classifies a Service.
func KindOf(svc *corev1.Service) ServiceKind {
	switch {
	case svc.Spec.Type == corev1.ServiceTypeExternalName:
		return ServiceExternalName
	case svc.Spec.ClusterIP == corev1.ClusterIPNone:
		return ServiceHeadless
	}
	return ServiceClusterIP
}

// Listeners lists the outbound listeners a Service gives every sidecar of the mesh: one per TCP
// port. A headless Service is reached on its endpoints' addresses at the target port, so a
// numeric targetPort that differs from the port is a listener too.
func Listeners(svc *corev1.Service) []Listener {
	kind := KindOf(svc)
	addrs := clusterIPs(svc)
	key := types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}
	var out []Listener
	add := func(port int32, name string) {
		if port < 1 || port > 65535 || slices.ContainsFunc(out, func(l Listener) bool { return l.Port == port }) {
			return
		}
		out = append(out, Listener{Service: key, Kind: kind, Port: port, PortName: name, Addrs: addrs})
	}
	for _, p := range svc.Spec.Ports {
		if p.Protocol != "" && p.Protocol != corev1.ProtocolTCP {
			continue
		}
		add(p.Port, p.Name)
		if kind == ServiceHeadless && p.TargetPort.IntValue() > 0 {
			add(int32(p.TargetPort.IntValue()), p.Name)
		}
	}
	return out
}

// clusterIPs are the virtual addresses of a ClusterIP Service; none for other kinds.
func clusterIPs(svc *corev1.Service) []netip.Addr {
	if KindOf(svc) != ServiceClusterIP {
		return nil
	}
	ips := svc.Spec.ClusterIPs
	if len(ips) == 0 && svc.Spec.ClusterIP != "" {
		ips = []string{svc.Spec.ClusterIP}
	}
	var addrs []netip.Addr
	for _, s := range ips {
		if a, err := netip.ParseAddr(s); err == nil {
			addrs = append(addrs, a)
		}
	}
	return addrs
}

// meshListeners returns the listeners of the Services in monitored namespaces, sorted by
// Service then port, so that every finding built from them is stable.
func meshListeners(services []corev1.Service, monitored map[string]bool) []Listener {
	var out []Listener
	for i := range services {
		svc := &services[i]
		if !monitored[svc.Namespace] || svc.DeletionTimestamp != nil {
			continue
		}
		out = append(out, Listeners(svc)...)
	}
	slices.SortFunc(out, func(a, b Listener) int {
		if c := strings.Compare(a.Service.String(), b.Service.String()); c != 0 {
			return c
		}
		return int(a.Port - b.Port)
	})
	return out
}
