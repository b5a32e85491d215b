package drift

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Workload kinds whose pods are replaced by a rollout restart.
const (
	KindDeployment  = "Deployment"
	KindStatefulSet = "StatefulSet"
	KindDaemonSet   = "DaemonSet"
	KindReplicaSet  = "ReplicaSet"
)

// Workload is what has to be restarted to give a pod fresh rules. Kind is empty for a bare pod.
type Workload struct {
	Kind      string
	Name      string
	Namespace string
}

// Restartable reports whether `kubectl rollout restart` (or the operator's opt-in restart) can
// replace the pod's replicas.
func (w Workload) Restartable() bool {
	switch w.Kind {
	case KindDeployment, KindStatefulSet, KindDaemonSet:
		return true
	}
	return false
}

// WorkloadOf follows the pod's controller reference. A ReplicaSet created by a Deployment is
// named <deployment>-<pod-template-hash>, and its pods carry that hash as a label, so the
// Deployment name is recovered without reading the ReplicaSet.
func WorkloadOf(pod *corev1.Pod) Workload {
	w := Workload{Namespace: pod.Namespace}
	ref := metav1.GetControllerOfNoCopy(pod)
	if ref == nil {
		return w
	}
	w.Kind, w.Name = ref.Kind, ref.Name
	if ref.Kind == KindReplicaSet && strings.HasPrefix(ref.APIVersion, "apps/") {
		if hash := pod.Labels["pod-template-hash"]; hash != "" && strings.HasSuffix(ref.Name, "-"+hash) {
			w.Kind, w.Name = KindDeployment, strings.TrimSuffix(ref.Name, "-"+hash)
		}
	}
	return w
}

// Action is the command a person runs to replace the pod so it is admitted again.
func Action(pod *corev1.Pod) string {
	w := WorkloadOf(pod)
	if w.Restartable() {
		return fmt.Sprintf("kubectl rollout restart %s/%s -n %s", strings.ToLower(w.Kind), w.Name, w.Namespace)
	}
	if w.Kind == "" {
		return fmt.Sprintf("delete and recreate the pod from its manifest: kubectl delete pod %s -n %s && kubectl apply -f <manifest>", pod.Name, pod.Namespace)
	}
	return fmt.Sprintf("delete the pod so its %s %s recreates it: kubectl delete pod %s -n %s", w.Kind, w.Name, pod.Name, pod.Namespace)
}
