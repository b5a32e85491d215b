package validation

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	policyv1alpha1 "github.com/meshkeeper/meshkeeper/api/policy/v1alpha1"
)

// egressBuilder builds Egress objects for table tests: MakeEgress("x").Port(443, "https").Obj().
type egressBuilder struct{ e policyv1alpha1.Egress }

func MakeEgress(name string) *egressBuilder {
	return &egressBuilder{e: policyv1alpha1.Egress{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "app"},
		Spec: policyv1alpha1.EgressSpec{
			Sources: []policyv1alpha1.EgressSourceSpec{{Kind: policyv1alpha1.KindServiceAccount, Name: "client", Namespace: "app"}},
		},
	}}
}

func (b *egressBuilder) Source(kind, name, ns string) *egressBuilder {
	b.e.Spec.Sources = append(b.e.Spec.Sources, policyv1alpha1.EgressSourceSpec{Kind: kind, Name: name, Namespace: ns})
	return b
}
func (b *egressBuilder) Port(n int32, proto string) *egressBuilder {
	b.e.Spec.Ports = append(b.e.Spec.Ports, policyv1alpha1.PortSpec{Number: n, Protocol: proto})
	return b
}
func (b *egressBuilder) Hosts(h ...string) *egressBuilder {
	b.e.Spec.Hosts = append(b.e.Spec.Hosts, h...)
	return b
}
func (b *egressBuilder) IPs(c ...string) *egressBuilder {
	b.e.Spec.IPAddresses = append(b.e.Spec.IPAddresses, c...)
	return b
}
func (b *egressBuilder) Match(group, kind, name string) *egressBuilder {
	b.e.Spec.Matches = append(b.e.Spec.Matches, corev1.TypedLocalObjectReference{APIGroup: ptr.To(group), Kind: kind, Name: name})
	return b
}
func (b *egressBuilder) Obj() *policyv1alpha1.Egress { return b.e.DeepCopy() }

type ibBuilder struct{ ib policyv1alpha1.IngressBackend }

func MakeIngressBackend(name string) *ibBuilder {
	return &ibBuilder{ib: policyv1alpha1.IngressBackend{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "app"}}}
}

func (b *ibBuilder) Backend(name string, port int32, proto string) *ibBuilder {
	b.ib.Spec.Backends = append(b.ib.Spec.Backends, policyv1alpha1.BackendSpec{Name: name, Port: policyv1alpha1.BackendPortSpec{Number: port, Protocol: proto}})
	return b
}

// TLS sets the tls block of the last backend.
func (b *ibBuilder) TLS(skip bool, sni ...string) *ibBuilder {
	be := &b.ib.Spec.Backends[len(b.ib.Spec.Backends)-1]
	be.TLS = policyv1alpha1.TLSSpec{SkipClientCertValidation: skip, SNIHosts: sni}
	return b
}
func (b *ibBuilder) Source(kind, name, ns string) *ibBuilder {
	b.ib.Spec.Sources = append(b.ib.Spec.Sources, policyv1alpha1.IngressSourceSpec{Kind: kind, Name: name, Namespace: ns})
	return b
}
func (b *ibBuilder) Match(kind, name string) *ibBuilder {
	b.ib.Spec.Matches = append(b.ib.Spec.Matches, corev1.TypedLocalObjectReference{Kind: kind, Name: name})
	return b
}
func (b *ibBuilder) Obj() *policyv1alpha1.IngressBackend { return b.ib.DeepCopy() }
