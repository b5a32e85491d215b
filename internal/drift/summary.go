package drift

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
	// Restarts are the commands that replace the drifted pods (one per workload), sorted, at
	// most the limit given to Cap.
	Restarts []string
	// Namespaces holds the same counts per namespace of the pods, for the metrics (never capped:
	// namespaces are few).
	Namespaces map[string]*Counts
	// DriftedByWorkload counts drifted pods per workload, for the metrics (never capped:
	// bounded by the workloads, not by the pods).
	DriftedByWorkload map[Workload]int32
}

// Counts are a namespace's share of a Summary.
type Counts struct {
	Meshed, InSync, Drifted, Failed int32
}

// Add counts one pod's computed conditions; pods that are not meshed are ignored.
func (s *Summary) Add(pod *corev1.Pod, conds []corev1.PodCondition) {
	sidecar := Find(conds, conditions.PodSidecarInjected)
	if sidecar == nil || (sidecar.Status != corev1.ConditionTrue && sidecar.Reason != conditions.SidecarMissing) {
		return
	}
	if s.Namespaces == nil {
		s.Namespaces = map[string]*Counts{}
	}
	ns := s.Namespaces[pod.Namespace]
	if ns == nil {
		ns = &Counts{}
		s.Namespaces[pod.Namespace] = ns
	}
	s.Meshed++
	ns.Meshed++
	redir := Find(conds, conditions.PodRedirectionApplied)
	excl := Find(conds, conditions.PodExclusionsInSync)
	switch {
	case sidecar.Status != corev1.ConditionTrue || (redir != nil && redir.Status == corev1.ConditionFalse):
		s.Failed++
		ns.Failed++
	case excl != nil && excl.Status == corev1.ConditionTrue:
		s.InSync++
		ns.InSync++
	case excl != nil && excl.Status == corev1.ConditionFalse && excl.Reason == conditions.Drifted:
		s.Drifted++
		ns.Drifted++
		if s.DriftedByWorkload == nil {
			s.DriftedByWorkload = map[Workload]int32{}
		}
		s.DriftedByWorkload[WorkloadOf(pod)]++
		s.DriftedPods = append(s.DriftedPods, pod.Namespace+"/"+pod.Name)
		if a := Action(pod); !slices.Contains(s.Restarts, a) {
			s.Restarts = append(s.Restarts, a)
		}
	}
}

// Cap sorts the drifted pod names and restart commands and keeps the first n of each, so the
// status stays small and stable.
func (s *Summary) Cap(n int) {
	slices.Sort(s.DriftedPods)
	if len(s.DriftedPods) > n {
		s.DriftedPods = s.DriftedPods[:n]
	}
	slices.Sort(s.Restarts)
	if len(s.Restarts) > n {
		s.Restarts = s.Restarts[:n]
	}
}

// maxNamed bounds how many pods and commands the PodsInSync message spells out; the rest are
// in status.driftedPods and in each pod's own condition.
const maxNamed = 5

// PodsInSync is the MeshConfig's verdict on its pods: True when every meshed pod runs what the
// MeshConfig asks for, False (Drifted, or PodsFailed) with the pods and the commands that fix
// them otherwise. It is kept apart from Ready on purpose: pods only pick up a change when they
// restart, so a valid MeshConfig is always "drifted" for a while after an edit, and a Ready that
// waited for restarts would hold every GitOps pipeline that applies it.
func (s Summary) PodsInSync(generation int64) (status metav1.ConditionStatus, reason, message string) {
	switch {
	case s.Drifted > 0:
		var b strings.Builder
		fmt.Fprintf(&b, "%d of %d meshed pods run exclusions that differ from this MeshConfig (generation %d): %s",
			s.Drifted, s.Meshed, generation, named(s.DriftedPods, int(s.Drifted)))
		b.WriteString("; rules are rendered only when a pod starts, so restart them")
		if len(s.Restarts) > 0 {
			fmt.Fprintf(&b, ": %s", named(s.Restarts, len(s.Restarts)))
		}
		fmt.Fprintf(&b, "; or let the operator do it with the annotation meshkeeper.io/auto-restart=true on the namespace or workload; each pod's %s condition names the values that differ",
			conditions.PodExclusionsInSync)
		if s.Failed > 0 {
			fmt.Fprintf(&b, "; %d more pods failed (see their %s and %s conditions)", s.Failed, conditions.PodSidecarInjected, conditions.PodRedirectionApplied)
		}
		return metav1.ConditionFalse, conditions.Drifted, b.String()
	case s.Failed > 0:
		return metav1.ConditionFalse, conditions.PodsFailed, fmt.Sprintf(
			"%d of %d meshed pods lack their sidecar or their redirection failed; their %s and %s conditions say why and how to fix it",
			s.Failed, s.Meshed, conditions.PodSidecarInjected, conditions.PodRedirectionApplied)
	}
	msg := fmt.Sprintf("%d meshed pods, %d in sync", s.Meshed, s.InSync)
	if rest := s.Meshed - s.InSync; rest > 0 {
		msg += fmt.Sprintf(", %d not judged yet or with unreadable rules (see their %s condition)", rest, conditions.PodExclusionsInSync)
	}
	return metav1.ConditionTrue, conditions.InSync, msg
}

// named joins up to maxNamed items and says how many more there are out of total.
func named(items []string, total int) string {
	shown := items[:min(len(items), maxNamed)]
	out := strings.Join(shown, ", ")
	if more := total - len(shown); more > 0 {
		out += fmt.Sprintf(" and %d more", more)
	}
	return out
}
