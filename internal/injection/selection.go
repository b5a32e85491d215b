package injection

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Labels and annotations that place namespaces and pods in the mesh. The names are OSM's so that
// namespaces and workloads prepared for OSM behave the same here.
const (
	// LabelMonitoredBy on a namespace names the mesh that owns it.
	LabelMonitoredBy = "openservicemesh.io/monitored-by"
	// LabelIgnore on a namespace keeps it out of the mesh whatever else it carries.
	LabelIgnore = "openservicemesh.io/ignore"
	// AnnotationSidecarInjection turns injection on or off for a namespace or a pod; the pod wins.
	AnnotationSidecarInjection = "openservicemesh.io/sidecar-injection"
)

// NamespaceKubeSystem and NamespaceKubePublic never participate: meshing the cluster's own
// namespaces can make a cluster unrecoverable, and OSM's injector refused both whatever labels they
// carried (kube-system is where the AKS add-on puts the mesh itself).
const (
	NamespaceKubeSystem = "kube-system"
	NamespaceKubePublic = "kube-public"
)

// Membership says whether a namespace is part of a mesh and, when it is not, which rule keeps it
// out, so that callers can word their advice without re-deriving the rule.
type Membership int

const (
	// Member: labelled for the mesh and not excluded.
	Member Membership = iota
	// SystemNamespace: kube-system or kube-public, never part of any mesh.
	SystemNamespace
	// IgnoredNamespace: labelled LabelIgnore (any value), which wins over every other label.
	IgnoredNamespace
	// Unlabelled: no LabelMonitoredBy label.
	Unlabelled
	// OtherMesh: labelled for a mesh with another name.
	OtherMesh
)

// NamespaceMembership is the one definition of "is this namespace in our mesh", OSM's rule: the
// namespace carries LabelMonitoredBy naming the mesh, is not labelled LabelIgnore, and is neither
// kube-system nor kube-public. An empty meshName accepts any mesh name, for callers (offline
// analysis) that do not know which mesh they serve. A nil namespace is Unlabelled.
func NamespaceMembership(ns *corev1.Namespace, meshName string) Membership {
	if ns == nil {
		return Unlabelled
	}
	if ns.Name == NamespaceKubeSystem || ns.Name == NamespaceKubePublic {
		return SystemNamespace
	}
	if _, ok := ns.Labels[LabelIgnore]; ok {
		return IgnoredNamespace
	}
	v, ok := ns.Labels[LabelMonitoredBy]
	switch {
	case !ok:
		return Unlabelled
	case meshName != "" && v != meshName:
		return OtherMesh
	}
	return Member
}

// InMesh reports whether ns is part of the mesh named meshName; see NamespaceMembership.
func InMesh(ns *corev1.Namespace, meshName string) bool {
	return NamespaceMembership(ns, meshName) == Member
}

// SelectOptions identify the mesh being served.
type SelectOptions struct {
	// MeshName is the value of LabelMonitoredBy that marks a namespace as ours.
	MeshName string
	// OperatorNamespace is never injected: the webhook must not depend on itself to start.
	OperatorNamespace string
}

// Decision is the outcome of selection. Reason is meant for logs and admission messages.
type Decision struct {
	Inject bool
	Reason string
}

// ParseInjectionValue reads the value of AnnotationSidecarInjection. OSM accepted three spellings
// for each state; anything else is an error rather than a silent "no", because a typo in an
// opt-out annotation would otherwise mesh a workload that asked not to be.
func ParseInjectionValue(v string) (enabled bool, err error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "enabled", "yes", "true":
		return true, nil
	case "disabled", "no", "false":
		return false, nil
	}
	return false, fmt.Errorf("must be one of enabled, yes, true, disabled, no, false")
}

// Select decides whether pod, being created in ns, gets a sidecar. ns must be the namespace the
// pod is admitted into (the pod's own namespace field may still be empty at admission time).
// An invalid injection annotation is an error naming the annotation, on whichever object holds it.
func Select(ns *corev1.Namespace, pod *corev1.Pod, opts SelectOptions) (Decision, error) {
	if ns == nil {
		return Decision{}, fmt.Errorf("namespace of the pod is unknown")
	}
	if opts.OperatorNamespace != "" && ns.Name == opts.OperatorNamespace {
		return Decision{Reason: fmt.Sprintf("namespace %s hosts the operator", ns.Name)}, nil
	}
	switch NamespaceMembership(ns, opts.MeshName) {
	case SystemNamespace:
		return Decision{Reason: fmt.Sprintf("namespace %s never participates in the mesh", ns.Name)}, nil
	case IgnoredNamespace:
		return Decision{Reason: fmt.Sprintf("namespace %s is labelled %s", ns.Name, LabelIgnore)}, nil
	case Unlabelled, OtherMesh:
		return Decision{Reason: fmt.Sprintf("namespace %s is not labelled %s=%s", ns.Name, LabelMonitoredBy, opts.MeshName)}, nil
	}
	if pod.Spec.HostNetwork {
		return Decision{Reason: "pod uses the host network; redirecting it would capture the node's traffic"}, nil
	}

	if v, ok := pod.Annotations[AnnotationSidecarInjection]; ok {
		on, err := ParseInjectionValue(v)
		if err != nil {
			return Decision{}, field.Invalid(field.NewPath("metadata", "annotations").Key(AnnotationSidecarInjection), v, err.Error())
		}
		if on {
			return Decision{Inject: true, Reason: "pod annotation enables injection"}, nil
		}
		return Decision{Reason: "pod annotation disables injection"}, nil
	}
	if v, ok := ns.Annotations[AnnotationSidecarInjection]; ok {
		on, err := ParseInjectionValue(v)
		if err != nil {
			return Decision{}, fmt.Errorf("namespace %s: %w", ns.Name,
				field.Invalid(field.NewPath("metadata", "annotations").Key(AnnotationSidecarInjection), v, err.Error()))
		}
		if on {
			return Decision{Inject: true, Reason: fmt.Sprintf("namespace %s enables injection", ns.Name)}, nil
		}
		return Decision{Reason: fmt.Sprintf("namespace %s disables injection", ns.Name)}, nil
	}
	return Decision{Reason: fmt.Sprintf("neither the pod nor namespace %s is annotated %s", ns.Name, AnnotationSidecarInjection)}, nil
}
