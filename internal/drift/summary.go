package drift

import (
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/meshkeeper/meshkeeper/api/conditions"
)

// Summary counts verdicts across the pods of a mesh, for the MeshConfig's status.
type Summary struct {
	// Meshed pods carry the sidecar or should.
	Meshed int32
	// InSync pods run the exclusions the MeshConfig asks for.
	InSync int32
	// Drifted pods run outdated exclusions.
	Drifted int32
	// Failed pods lack the sidecar they should have, or their init container failed or is missing.
	Failed int32
	// DriftedPods names drifted pods as namespace/name, sorted, at most the limit given to Add's
	// caller through Cap.
	DriftedPods []string
}

// Add counts one pod's computed conditions; pods that are not meshed are ignored.
func (s *Summary) Add(pod *corev1.Pod, conds []corev1.PodCondition) {
	sidecar := Find(conds, conditions.PodSidecarInjected)
	if sidecar == nil || (sidecar.Status != corev1.ConditionTrue && sidecar.Reason != conditions.SidecarMissing) {
		return
	}
	s.Meshed++
	redir := Find(conds, conditions.PodRedirectionApplied)
	excl := Find(conds, conditions.PodExclusionsInSync)
	switch {
	case sidecar.Status != corev1.ConditionTrue || (redir != nil && redir.Status == corev1.ConditionFalse):
		s.Failed++
	case excl != nil && excl.Status == corev1.ConditionTrue:
		s.InSync++
	case excl != nil && excl.Status == corev1.ConditionFalse && excl.Reason == conditions.Drifted:
		s.Drifted++
		s.DriftedPods = append(s.DriftedPods, pod.Namespace+"/"+pod.Name)
	}
}

// Cap sorts the drifted pod names and keeps the first n, so the status stays small and stable.
func (s *Summary) Cap(n int) {
	slices.Sort(s.DriftedPods)
	if len(s.DriftedPods) > n {
		s.DriftedPods = s.DriftedPods[:n]
	}
}
