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

// NamespaceKubeSystem never participates: meshing the control plane's own namespace can make a
// cluster unrecoverable.
const NamespaceKubeSystem = "kube-system"

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
	switch {
	case ns.Name == NamespaceKubeSystem:
		return Decision{Reason: "namespace kube-system never participates in the mesh"}, nil
	case opts.OperatorNamespace != "" && ns.Name == opts.OperatorNamespace:
		return Decision{Reason: fmt.Sprintf("namespace %s hosts the operator", ns.Name)}, nil
	}
	if _, ok := ns.Labels[LabelIgnore]; ok {
		return Decision{Reason: fmt.Sprintf("namespace %s is labelled %s", ns.Name, LabelIgnore)}, nil
	}
	if mesh, ok := ns.Labels[LabelMonitoredBy]; !ok || mesh != opts.MeshName {
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
