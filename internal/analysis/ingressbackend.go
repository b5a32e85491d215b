package analysis

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	policyv1alpha1 "github.com/meshkeeper/meshkeeper/api/policy/v1alpha1"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// IngressBackendInput is everything AnalyzeIngressBackend looks at, gathered by the caller.
type IngressBackendInput struct {
	IngressBackend *policyv1alpha1.IngressBackend
	Mesh           Mesh
	// Services holds the backend and source Services that exist (others are ignored).
	Services []corev1.Service
	// Others are the other IngressBackends of the namespace, to find backends claimed twice.
	Others []policyv1alpha1.IngressBackend
	// Pods are the pods of the namespace behind the backend Services. Only those a backend
	// Service's selector picks count, so the caller may pass every pod of the namespace. A pod's
	// own inbound-port-exclusion-list annotation takes a backend port away from its sidecar just
	// as the MeshConfig's list does.
	Pods []corev1.Pod
}

// BackendKey identifies what an IngressBackend claims: a Service and a target port.
func BackendKey(namespace, service string, port int32) string {
	return fmt.Sprintf("%s/%s:%d", namespace, service, port)
}

// AnalyzeIngressBackend checks one IngressBackend: its backend Services exist and have a
// targetPort equal to the backend port (OSM matches targetPort, never port), the port is
// intercepted at all (neither the MeshConfig nor the backend pods' annotations exclude it),
// source Services exist, and no other IngressBackend claims the same backend.
func AnalyzeIngressBackend(in IngressBackendInput) []Finding {
	ib := in.IngressBackend
	self := Object("IngressBackend", ib.Namespace, ib.Name)
	if !in.Mesh.Found {
		return []Finding{meshNotFound(in.Mesh, self)}
	}
	var out []Finding
	if !in.Mesh.IngressBackendPolicy {
		out = append(out, Finding{Code: conditions.FindingIngressBackendPolicyDisabled, Severity: conditions.SeverityError,
			Message: fmt.Sprintf("%s has featureFlags.enableIngressBackendPolicy: false, so IngressBackend %s/%s is not programmed and ingress traffic to its backends is not authorised; set the flag to true",
				in.Mesh, ib.Namespace, ib.Name),
			Objects: objects(self, in.Mesh.object()), Condition: conditions.Accepted, Reason: conditions.FeatureDisabled, Stalls: true})
	}
	find := func(ns, name string) *corev1.Service {
		for i := range in.Services {
			if s := &in.Services[i]; s.Namespace == ns && s.Name == name && s.DeletionTimestamp == nil {
				return s
			}
		}
		return nil
	}
	for _, b := range ib.Spec.Backends {
		svcObj := Object("Service", ib.Namespace, b.Name)
		svc := find(ib.Namespace, b.Name)
		if svc == nil {
			out = append(out, Finding{Code: conditions.FindingBackendServiceNotFound, Severity: conditions.SeverityWarning,
				Message: fmt.Sprintf("backend Service %s/%s does not exist, so backend %s port %d receives no ingress traffic; create the Service or fix spec.backends", ib.Namespace, b.Name, b.Name, b.Port.Number),
				Objects: objects(self, svcObj), Condition: conditions.ResolvedRefs, Reason: conditions.RefNotFound})
		} else if f, bad := targetPortMismatch(svc, b, self); bad {
			out = append(out, f)
		}
		meshExcluded := in.Mesh.Found && len(in.Mesh.ConfigErrs) == 0 && slices.Contains(in.Mesh.Config.InboundPortExclusions, uint16(b.Port.Number))
		if meshExcluded {
			out = append(out, Finding{Code: conditions.FindingBackendPortNotIntercepted, Severity: conditions.SeverityError,
				Message: fmt.Sprintf("backend %s port %d is in %s's traffic.inboundPortExclusionList, so traffic to it bypasses the sidecar and this policy is not enforced: any client reaches the backend unauthenticated; remove %d from the list",
					b.Name, b.Port.Number, in.Mesh, b.Port.Number),
				Objects: objects(self, svcObj, in.Mesh.object()), Condition: conditions.Ready, Reason: conditions.Bypassed, Stalls: true})
		} else if svc != nil && len(in.Mesh.ConfigErrs) == 0 {
			if f, ok := podExcludesBackend(in, svc, b, self); ok {
				out = append(out, f)
			}
		}
		out = append(out, claimedTwice(ib, b, in.Others, self)...)
	}
	for _, s := range ib.Spec.Sources {
		if s.Kind != policyv1alpha1.KindService {
			continue
		}
		if find(s.Namespace, s.Name) == nil {
			out = append(out, Finding{Code: conditions.FindingSourceServiceNotFound, Severity: conditions.SeverityWarning,
				Message: fmt.Sprintf("source Service %s/%s does not exist, so no client is authorised through it; create it or fix spec.sources", s.Namespace, s.Name),
				Objects: objects(self, Object("Service", s.Namespace, s.Name)), Condition: conditions.ResolvedRefs, Reason: conditions.RefNotFound})
		}
	}
	Sort(out)
	return out
}

// podExcludesBackend reports the pods behind a backend Service whose own
// openservicemesh.io/inbound-port-exclusion-list annotation names the backend port: their rules
// were rendered to let that port past the sidecar, so the policy is not enforced on them.
func podExcludesBackend(in IngressBackendInput, svc *corev1.Service, b policyv1alpha1.BackendSpec, self string) (Finding, bool) {
	var names, objs []string
	for _, p := range BackendPods(svc, in.Pods) {
		if _, ok := p.Annotations[redirect.AnnotationInboundPortExclusionList]; !ok {
			continue
		}
		cfg, errs := redirect.Effective(in.Mesh.Settings, p.Annotations)
		if len(errs) > 0 || !slices.Contains(cfg.InboundPortExclusions, uint16(b.Port.Number)) {
			continue // an invalid annotation is the pod's own finding
		}
		names = append(names, p.Namespace+"/"+p.Name)
		objs = append(objs, Object("Pod", p.Namespace, p.Name))
	}
	if len(names) == 0 {
		return Finding{}, false
	}
	return Finding{Code: conditions.FindingBackendPortNotIntercepted, Severity: conditions.SeverityError,
		Message: fmt.Sprintf("backend %s port %d is in the %s annotation of pods %s (selected by Service %s/%s), so traffic to them bypasses their sidecar and this policy is not enforced there: any client reaches them unauthenticated; remove %d from the annotation in the workload's pod template and restart it",
			b.Name, b.Port.Number, redirect.AnnotationInboundPortExclusionList, nameList(names, 5), svc.Namespace, svc.Name, b.Port.Number),
		Objects:   objects(append([]string{self, Object("Service", svc.Namespace, svc.Name)}, objs...)...),
		Condition: conditions.Ready, Reason: conditions.Bypassed, Stalls: true}, true
}

// BackendPods returns the pods a Service's selector picks, in its namespace, sorted by name. A
// Service without a selector picks none: its endpoints are managed by hand.
func BackendPods(svc *corev1.Service, pods []corev1.Pod) []*corev1.Pod {
	if len(svc.Spec.Selector) == 0 {
		return nil
	}
	sel := labels.SelectorFromSet(svc.Spec.Selector)
	var out []*corev1.Pod
	for i := range pods {
		p := &pods[i]
		if p.Namespace == svc.Namespace && p.DeletionTimestamp == nil && sel.Matches(labels.Set(p.Labels)) {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b *corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// targetPortMismatch applies OSM's rule: a backend matches only when its port number is a
// targetPort of the Service. A named targetPort resolves per pod and cannot be judged here, so it
// is given the benefit of the doubt.
func targetPortMismatch(svc *corev1.Service, b policyv1alpha1.BackendSpec, self string) (Finding, bool) {
	var targets []string
	suggestion := ""
	for _, p := range svc.Spec.Ports {
		tp := p.TargetPort
		switch {
		case tp.StrVal != "" && tp.IntValue() == 0:
			return Finding{}, false
		case tp.IntValue() == 0:
			tp.IntVal = p.Port // an unset targetPort defaults to the port
		}
		if int32(tp.IntValue()) == b.Port.Number {
			return Finding{}, false
		}
		targets = append(targets, fmt.Sprintf("%d->%d", p.Port, tp.IntValue()))
		if p.Port == b.Port.Number {
			suggestion = fmt.Sprintf("; %d is the Service port, whose targetPort is %d: set port.number to %d", p.Port, tp.IntValue(), tp.IntValue())
		}
	}
	if suggestion == "" && len(targets) == 1 {
		_, tp, _ := strings.Cut(targets[0], "->")
		suggestion = fmt.Sprintf("; set port.number to %s", tp)
	}
	return Finding{Code: conditions.FindingBackendTargetPortMismatch, Severity: conditions.SeverityError,
		Message: fmt.Sprintf("backend %s port %d matches no targetPort of Service %s/%s (ports %s), and IngressBackend backends are matched on targetPort, so this backend receives nothing%s",
			b.Name, b.Port.Number, svc.Namespace, svc.Name, strings.Join(targets, ", "), suggestion),
		Objects: objects(self, Object("Service", svc.Namespace, svc.Name)), Condition: conditions.ResolvedRefs, Reason: conditions.TargetPortMismatch, Stalls: true}, true
}

// claimedTwice reports another IngressBackend claiming the same Service and port. The oldest
// claim wins (then the name, for a stable order), as Gateway API resolves conflicts: the winner
// gets a warning, the others lose Accepted.
func claimedTwice(ib *policyv1alpha1.IngressBackend, b policyv1alpha1.BackendSpec, others []policyv1alpha1.IngressBackend, self string) []Finding {
	var out []Finding
	for i := range others {
		o := &others[i]
		if o.Namespace != ib.Namespace || o.Name == ib.Name || o.DeletionTimestamp != nil {
			continue
		}
		if !slices.ContainsFunc(o.Spec.Backends, func(ob policyv1alpha1.BackendSpec) bool {
			return ob.Name == b.Name && ob.Port.Number == b.Port.Number
		}) {
			continue
		}
		other := Object("IngressBackend", o.Namespace, o.Name)
		if olderThan(o, ib) {
			out = append(out, Finding{Code: conditions.FindingBackendClaimedTwice, Severity: conditions.SeverityError,
				Message: fmt.Sprintf("IngressBackend %s/%s already claims backend %s port %d and was created first, so it wins and this one is not applied to that backend; merge the two or remove the backend from one of them",
					o.Namespace, o.Name, b.Name, b.Port.Number),
				Objects: objects(self, other, Object("Service", ib.Namespace, b.Name)), Condition: conditions.Accepted, Reason: conditions.Conflict, Stalls: true})
		} else {
			out = append(out, Finding{Code: conditions.FindingBackendClaimedTwice, Severity: conditions.SeverityWarning,
				Message: fmt.Sprintf("IngressBackend %s/%s also claims backend %s port %d; this one was created first and stays in effect, the other is not applied; merge the two or remove the backend from one of them",
					o.Namespace, o.Name, b.Name, b.Port.Number),
				Objects: objects(self, other, Object("Service", ib.Namespace, b.Name))})
		}
	}
	return out
}

func olderThan(a, b *policyv1alpha1.IngressBackend) bool {
	ta, tb := a.CreationTimestamp, b.CreationTimestamp
	if !ta.Equal(&tb) {
		return ta.Before(&tb)
	}
	return a.Name < b.Name
}

// Claims lists the backend keys (BackendKey) an IngressBackend claims, for field indexes.
func Claims(ib *policyv1alpha1.IngressBackend) []string {
	var out []string
	for _, b := range ib.Spec.Backends {
		k := BackendKey(ib.Namespace, b.Name, b.Port.Number)
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

// ReferencedServices lists the Services an IngressBackend refers to, as "namespace/name".
func ReferencedServices(ib *policyv1alpha1.IngressBackend) []string {
	var out []string
	add := func(ns, name string) {
		if k := (types.NamespacedName{Namespace: ns, Name: name}).String(); !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	for _, b := range ib.Spec.Backends {
		add(ib.Namespace, b.Name)
	}
	for _, s := range ib.Spec.Sources {
		if s.Kind == policyv1alpha1.KindService {
			add(s.Namespace, s.Name)
		}
	}
	return out
}

// IngressBackendMatch is an IngressBackend backend that governs connections arriving at one port
// of a pod.
type IngressBackendMatch struct {
	IngressBackend types.NamespacedName
	// Service is the backend Service that selects the pod; Port and Protocol are the backend's.
	Service  string
	Port     int32
	Protocol string
	// Sources are the clients it admits: "Service ns/name", "IPRange cidr" or
	// "AuthenticatedPrincipal name".
	Sources []string
}

func (m IngressBackendMatch) String() string {
	return fmt.Sprintf("IngressBackend %s/%s backend %s port %d/%s (sources: %s)", m.IngressBackend.Namespace, m.IngressBackend.Name,
		m.Service, m.Port, m.Protocol, strings.Join(m.Sources, ", "))
}

// IngressBackendsFor lists the IngressBackend backends that apply to connections arriving at
// port of pod. OSM's matching is followed: the backend names a Service of the pod's namespace
// that selects the pod, and its port number is a targetPort of that Service which resolves to
// port on this pod (a named targetPort through the pod's container ports).
func IngressBackendsFor(pod *corev1.Pod, port int32, services []corev1.Service, ibs []policyv1alpha1.IngressBackend) []IngressBackendMatch {
	selecting := map[string]bool{}
	for i := range services {
		svc := &services[i]
		if svc.Namespace != pod.Namespace || svc.DeletionTimestamp != nil || len(BackendPods(svc, []corev1.Pod{*pod})) == 0 {
			continue
		}
		if slices.Contains(targetPortsOn(svc, pod), port) {
			selecting[svc.Name] = true
		}
	}
	var out []IngressBackendMatch
	for i := range ibs {
		ib := &ibs[i]
		if ib.Namespace != pod.Namespace || ib.DeletionTimestamp != nil {
			continue
		}
		for _, b := range ib.Spec.Backends {
			if b.Port.Number != port || !selecting[b.Name] {
				continue
			}
			m := IngressBackendMatch{IngressBackend: types.NamespacedName{Namespace: ib.Namespace, Name: ib.Name}, Service: b.Name,
				Port: b.Port.Number, Protocol: b.Port.Protocol}
			for _, s := range ib.Spec.Sources {
				switch s.Kind {
				case policyv1alpha1.KindService:
					m.Sources = append(m.Sources, fmt.Sprintf("Service %s/%s", s.Namespace, s.Name))
				default:
					m.Sources = append(m.Sources, s.Kind+" "+s.Name)
				}
			}
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b IngressBackendMatch) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// targetPortsOn resolves a Service's TCP target ports for one pod: numbers as they are, an unset
// targetPort as the port, a name through the pod's container ports (unresolvable names drop out,
// as the endpoints controller drops the pod).
func targetPortsOn(svc *corev1.Service, pod *corev1.Pod) []int32 {
	var out []int32
	for _, p := range svc.Spec.Ports {
		if p.Protocol != "" && p.Protocol != corev1.ProtocolTCP {
			continue
		}
		tp := p.TargetPort
		switch {
		case tp.StrVal != "" && tp.IntValue() == 0:
			for _, c := range pod.Spec.Containers {
				for _, cp := range c.Ports {
					if cp.Name == tp.StrVal && (cp.Protocol == "" || cp.Protocol == corev1.ProtocolTCP) {
						out = append(out, cp.ContainerPort)
					}
				}
			}
		case tp.IntValue() == 0:
			out = append(out, p.Port)
		default:
			out = append(out, int32(tp.IntValue()))
		}
	}
	return out
}
