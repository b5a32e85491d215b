package analysis

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	policyv1alpha1 "github.com/meshkeeper/meshkeeper/api/policy/v1alpha1"
)

var meshRef = types.NamespacedName{Namespace: "osm-system", Name: "osm-mesh-config"}

type meshB struct{ mc *configv1alpha2.MeshConfig }

func makeMesh() *meshB {
	mc := &configv1alpha2.MeshConfig{ObjectMeta: metav1.ObjectMeta{Namespace: meshRef.Namespace, Name: meshRef.Name}}
	mc.Spec.FeatureFlags.EnableEgressPolicy = true
	mc.Spec.FeatureFlags.EnableIngressBackendPolicy = true
	return &meshB{mc: mc}
}
func (b *meshB) egressOpen() *meshB { b.mc.Spec.Traffic.EnableEgress = true; return b }
func (b *meshB) noEgressPolicy() *meshB {
	b.mc.Spec.FeatureFlags.EnableEgressPolicy = false
	return b
}
func (b *meshB) noIngressBackendPolicy() *meshB {
	b.mc.Spec.FeatureFlags.EnableIngressBackendPolicy = false
	return b
}
func (b *meshB) excludeIPs(c ...string) *meshB {
	b.mc.Spec.Traffic.OutboundIPRangeExclusionList = c
	return b
}
func (b *meshB) includeIPs(c ...string) *meshB {
	b.mc.Spec.Traffic.OutboundIPRangeInclusionList = c
	return b
}
func (b *meshB) excludePorts(p ...int32) *meshB {
	b.mc.Spec.Traffic.OutboundPortExclusionList = p
	return b
}
func (b *meshB) excludeInbound(p ...int32) *meshB {
	b.mc.Spec.Traffic.InboundPortExclusionList = p
	return b
}
func (b *meshB) obj() *configv1alpha2.MeshConfig { return b.mc }
func (b *meshB) mesh() Mesh                      { return MeshOf(meshRef, b.mc) }

type egressB struct{ e *policyv1alpha1.Egress }

func makeEgress(ns, name string) *egressB {
	return &egressB{e: &policyv1alpha1.Egress{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Generation: 1}}}
}
func (b *egressB) source(ns, sa string) *egressB {
	b.e.Spec.Sources = append(b.e.Spec.Sources, policyv1alpha1.EgressSourceSpec{Kind: policyv1alpha1.KindServiceAccount, Namespace: ns, Name: sa})
	return b
}
func (b *egressB) ips(c ...string) *egressB { b.e.Spec.IPAddresses = c; return b }
func (b *egressB) hosts(h ...string) *egressB {
	b.e.Spec.Hosts = h
	return b
}
func (b *egressB) port(n int32, proto string) *egressB {
	b.e.Spec.Ports = append(b.e.Spec.Ports, policyv1alpha1.PortSpec{Number: n, Protocol: proto})
	return b
}
func (b *egressB) obj() *policyv1alpha1.Egress { return b.e }

type svcB struct{ s *corev1.Service }

func makeService(ns, name string) *svcB {
	return &svcB{s: &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.96.0.10", ClusterIPs: []string{"10.96.0.10"}}}}
}
func (b *svcB) clusterIP(ip string) *svcB {
	b.s.Spec.ClusterIP, b.s.Spec.ClusterIPs = ip, []string{ip}
	return b
}
func (b *svcB) headless() *svcB {
	b.s.Spec.ClusterIP, b.s.Spec.ClusterIPs = corev1.ClusterIPNone, []string{corev1.ClusterIPNone}
	return b
}
func (b *svcB) externalName(host string) *svcB {
	b.s.Spec.Type, b.s.Spec.ExternalName = corev1.ServiceTypeExternalName, host
	b.s.Spec.ClusterIP, b.s.Spec.ClusterIPs = "", nil
	return b
}
func (b *svcB) port(port, target int32) *svcB {
	b.s.Spec.Ports = append(b.s.Spec.Ports, corev1.ServicePort{Name: fmt.Sprintf("p%d", port), Port: port,
		TargetPort: intstr.FromInt32(target), Protocol: corev1.ProtocolTCP})
	return b
}
func (b *svcB) namedPort(port int32, target string) *svcB {
	b.s.Spec.Ports = append(b.s.Spec.Ports, corev1.ServicePort{Port: port, TargetPort: intstr.FromString(target), Protocol: corev1.ProtocolTCP})
	return b
}
func (b *svcB) udpPort(port int32) *svcB {
	b.s.Spec.Ports = append(b.s.Spec.Ports, corev1.ServicePort{Port: port, Protocol: corev1.ProtocolUDP})
	return b
}
func (b *svcB) obj() corev1.Service { return *b.s }

func makePod(ns, name, sa string, ann ...string) corev1.Pod {
	p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.PodSpec{ServiceAccountName: sa}}
	for i := 0; i+1 < len(ann); i += 2 {
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		p.Annotations[ann[i]] = ann[i+1]
	}
	return p
}

type ibB struct {
	ib *policyv1alpha1.IngressBackend
}

func makeIngressBackend(ns, name string) *ibB {
	return &ibB{ib: &policyv1alpha1.IngressBackend{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Generation: 1,
		CreationTimestamp: metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))}}}
}
func (b *ibB) backend(svc string, port int32) *ibB {
	b.ib.Spec.Backends = append(b.ib.Spec.Backends, policyv1alpha1.BackendSpec{Name: svc,
		Port: policyv1alpha1.BackendPortSpec{Number: port, Protocol: "http"}})
	return b
}
func (b *ibB) sourceService(ns, name string) *ibB {
	b.ib.Spec.Sources = append(b.ib.Spec.Sources, policyv1alpha1.IngressSourceSpec{Kind: policyv1alpha1.KindService, Namespace: ns, Name: name})
	return b
}
func (b *ibB) sourceRange(cidr string) *ibB {
	b.ib.Spec.Sources = append(b.ib.Spec.Sources, policyv1alpha1.IngressSourceSpec{Kind: policyv1alpha1.KindIPRange, Name: cidr})
	return b
}
func (b *ibB) created(t time.Time) *ibB {
	b.ib.CreationTimestamp = metav1.NewTime(t)
	return b
}
func (b *ibB) obj() *policyv1alpha1.IngressBackend { return b.ib }

func codes(fs []Finding) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Code
	}
	return out
}

func find(fs []Finding, code string) *Finding {
	for i := range fs {
		if fs[i].Code == code {
			return &fs[i]
		}
	}
	return nil
}
