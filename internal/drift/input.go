package drift

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	"github.com/meshkeeper/meshkeeper/internal/injection"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// MeshRef names the MeshConfig a pod is judged against; messages quote it so a person can find
// the value that changed.
type MeshRef struct {
	// Kind is the kind of the object holding the mesh-wide settings: MeshConfig (the default
	// when empty) or, for Istio pods, the injector's ConfigMap.
	Kind       string
	Namespace  string
	Name       string
	Generation int64
	// Source names the file the MeshConfig was read from when it did not come from the API
	// server (the CLI's offline mode); such a MeshConfig has no generation to quote.
	Source string
}

// String is how messages refer to the MeshConfig.
func (m MeshRef) String() string {
	return fmt.Sprintf("%s %s/%s", m.kind(), m.Namespace, m.Name)
}

func (m MeshRef) kind() string {
	if m.Kind == "" {
		return "MeshConfig"
	}
	return m.Kind
}

// WithGeneration is String plus the generation, for messages about a specific change. A
// MeshConfig read from a file is named by the file instead, and one without a generation by
// its name alone: "(generation 0)" would point at a version that never existed.
func (m MeshRef) WithGeneration() string {
	switch {
	case m.kind() != "MeshConfig":
		return m.String()
	case m.Source != "" && m.Generation > 0:
		return fmt.Sprintf("MeshConfig %s/%s (generation %d, from file %s)", m.Namespace, m.Name, m.Generation, m.Source)
	case m.Source != "":
		return fmt.Sprintf("MeshConfig %s/%s (from file %s)", m.Namespace, m.Name, m.Source)
	case m.Generation == 0:
		return m.String()
	}
	return fmt.Sprintf("MeshConfig %s/%s (generation %d)", m.Namespace, m.Name, m.Generation)
}

// Input is everything the checks may look at. It is built once per evaluation by Gather and
// never modified by a check.
type Input struct {
	Pod       *corev1.Pod
	Namespace metav1.ObjectMeta
	Mesh      MeshRef
	// Selection identifies our mesh, to decide whether the pod should carry a sidecar.
	Selection injection.SelectOptions
	// Expected is what the pod's rules should say today; ExpectedErrs is non-empty when the
	// MeshConfig or the pod's annotations are invalid, in which case Expected is meaningless.
	Expected     redirect.Config
	ExpectedErrs field.ErrorList
	Now          time.Time
	// Rules, when set, remembers parsed init containers across evaluations; nil parses each time.
	Rules *RuleCache
	// MeshMissing is true when the served MeshConfig does not exist (deleted, or never created):
	// there is no desired state, so exclusions cannot be judged; Mesh still names the object.
	MeshMissing bool
	// Istio is set for pods Istio injected; Mesh then names the injector ConfigMap and
	// ExpectedErrs holds Istio's errors.
	Istio *IstioInput
}

// GatherWithoutMeshConfig is Gather for a MeshConfig that does not exist: the pod's injection
// and init container can still be judged, its exclusions cannot.
func GatherWithoutMeshConfig(pod *corev1.Pod, ns metav1.ObjectMeta, ref MeshRef, sel injection.SelectOptions, now time.Time) Input {
	in := Gather(pod, ns, &configv1alpha2.MeshConfig{ObjectMeta: metav1.ObjectMeta{Namespace: ref.Namespace, Name: ref.Name}}, sel, now)
	in.MeshMissing = true
	return in
}

// Gather builds the Input from objects already read. It computes the expected configuration
// once so that every check and the digest fast path share it.
func Gather(pod *corev1.Pod, ns metav1.ObjectMeta, mc *configv1alpha2.MeshConfig, sel injection.SelectOptions, now time.Time) Input {
	expected, errs := redirect.Effective(injection.MeshSettings(&mc.Spec), pod.Annotations)
	return Input{
		Pod:          pod,
		Namespace:    ns,
		Mesh:         MeshRef{Namespace: mc.Namespace, Name: mc.Name, Generation: mc.Generation},
		Selection:    sel,
		Expected:     expected,
		ExpectedErrs: errs,
		Now:          now,
	}
}
