package injection

import (
	"reflect"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// Operation is one RFC 6902 operation. It is encoded by encoding/json as it stands; the
// controller-runtime type has its own MarshalJSON, whose output encoding/json scans a second time
// in full, and for a typical pod that second scan of the containers cost more than the rest of
// the admission.
type Operation struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

// JSONPatch returns the RFC 6902 operations that turn the JSON of pod, as the API server sends
// it, into the JSON of the injected pod. pod must be the pod the additions were computed for:
// whether a list or the annotations already exist decides between appending to them and creating
// them.
//
// Only `add` operations are produced, one per added item, so nothing the pod already holds is
// restated, and fields this build of the Kubernetes API does not know survive the patch. A list
// that is empty in pod may be absent, null or [] in its JSON; adding the whole list covers all
// three, because `add` replaces an existing member. The same holds for the annotations, and for
// metadata and spec themselves when pod holds nothing in them.
func (a *Additions) JSONPatch(pod *corev1.Pod) []Operation {
	if a.Empty() {
		return nil
	}
	shape := shapeOf(pod)
	ops := make([]Operation, 0, len(a.InitContainers)+len(a.Containers)+len(a.Volumes)+len(a.Annotations))
	switch {
	case len(a.Annotations) == 0:
	case shape&emptyMetadata != 0:
		ops = append(ops, add("/metadata", metav1.ObjectMeta{Annotations: a.Annotations}))
	case shape&noAnnotations != 0:
		ops = append(ops, add("/metadata/annotations", a.Annotations))
	default:
		keys := make([]string, 0, len(a.Annotations))
		for k := range a.Annotations {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			ops = append(ops, add("/metadata/annotations/"+escapePointerToken(k), a.Annotations[k]))
		}
	}
	if len(a.InitContainers) == 0 && len(a.Containers) == 0 && len(a.Volumes) == 0 {
		return ops
	}
	if shape&emptySpec != 0 {
		return append(ops, add("/spec", corev1.PodSpec{InitContainers: a.InitContainers, Containers: a.Containers, Volumes: a.Volumes}))
	}
	ops = appendItems(ops, "/spec/initContainers", shape&noInitContainers != 0, a.InitContainers)
	ops = appendItems(ops, "/spec/containers", shape&noContainers != 0, a.Containers)
	ops = appendItems(ops, "/spec/volumes", shape&noVolumes != 0, a.Volumes)
	return ops
}

// patchShape is all JSONPatch reads from the pod: which of the maps and lists it adds to are
// empty. Pods of equal shape get the same operations for the same additions.
type patchShape uint8

const (
	emptyMetadata patchShape = 1 << iota
	noAnnotations
	emptySpec
	noInitContainers
	noContainers
	noVolumes
)

func shapeOf(pod *corev1.Pod) patchShape {
	var s patchShape
	if reflect.DeepEqual(pod.ObjectMeta, metav1.ObjectMeta{}) {
		s |= emptyMetadata
	}
	if len(pod.Annotations) == 0 {
		s |= noAnnotations
	}
	if reflect.DeepEqual(pod.Spec, corev1.PodSpec{}) {
		s |= emptySpec
	}
	if len(pod.Spec.InitContainers) == 0 {
		s |= noInitContainers
	}
	if len(pod.Spec.Containers) == 0 {
		s |= noContainers
	}
	if len(pod.Spec.Volumes) == 0 {
		s |= noVolumes
	}
	return s
}

// PatchKey names everything Compute and JSONPatch read from a pod that is neither injected nor in
// Conflict: the values of the exclusion annotations (redirect.ExclusionAnnotations, absent and
// empty told apart) and the pod's patch shape. Two such pods with equal keys, injected from the
// same MeshConfig object with the same Options, get byte-identical patches, so the admission
// webhook encodes each patch once per key. TestPatchKeyCoversEverythingThePatchReads fails if
// Compute or JSONPatch start reading anything else.
func PatchKey(pod *corev1.Pod) string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(int(shapeOf(pod))))
	for _, name := range redirect.ExclusionAnnotations {
		v, ok := pod.Annotations[name]
		if !ok {
			b.WriteString("|-")
			continue
		}
		// Length-prefixed, so no value can forge a separator.
		b.WriteString("|" + strconv.Itoa(len(v)) + ":" + v)
	}
	return b.String()
}

// appendItems adds items to the list at path: the whole list when the pod has none, otherwise one
// append ("/-") per item.
func appendItems[T any](ops []Operation, path string, none bool, items []T) []Operation {
	if len(items) == 0 {
		return ops
	}
	if none {
		return append(ops, add(path, items))
	}
	for i := range items {
		ops = append(ops, add(path+"/-", items[i]))
	}
	return ops
}

func add(path string, value any) Operation {
	return Operation{Op: "add", Path: path, Value: value}
}

// escapePointerToken makes s one reference token of a JSON pointer (RFC 6901): "~" becomes "~0"
// and "/" becomes "~1", in that order so an escaped slash is not read back as a tilde.
func escapePointerToken(s string) string {
	if !strings.ContainsAny(s, "~/") {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}
