package drift

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshkeeper/meshkeeper/api/conditions"
)

// Summary counts verdicts across the pods of a mesh, for the MeshConfig's status and the metrics.
type Summary struct {
	// Counts are the mesh's totals.
	Counts
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

// Counts are meshed pods by verdict (PodVerdictOf); the pods of no other verdict are Meshed's
// remainder, Of(VerdictOther).
type Counts struct {
	// Meshed pods carry the sidecar or should.
	Meshed         int32
	InSync         int32
	Drifted        int32
	InitFailed     int32
	SidecarMissing int32
	Unreadable     int32
}

// Failed counts the pods whose traffic bypasses the sidecar: the MeshConfig reports them as one
// number (status.pods.failed, PodsFailed), since both are fixed by a new pod.
func (c Counts) Failed() int32 { return c.SidecarMissing + c.InitFailed }

// Of is the number of pods with verdict v.
func (c Counts) Of(v PodVerdict) int32 {
	switch v {
	case VerdictInSync:
		return c.InSync
	case VerdictDrifted:
		return c.Drifted
	case VerdictInitFailed:
		return c.InitFailed
	case VerdictSidecarMissing:
		return c.SidecarMissing
	case VerdictUnreadable:
		return c.Unreadable
	case VerdictOther:
		return c.Meshed - c.InSync - c.Drifted - c.InitFailed - c.SidecarMissing - c.Unreadable
	}
	return 0
}

func (c *Counts) add(v PodVerdict) {
	c.Meshed++
	switch v {
	case VerdictInSync:
		c.InSync++
	case VerdictDrifted:
		c.Drifted++
	case VerdictInitFailed:
		c.InitFailed++
	case VerdictSidecarMissing:
		c.SidecarMissing++
	case VerdictUnreadable:
		c.Unreadable++
	}
}

// Add counts one pod by the verdict its conditions give (PodVerdictOf); pods that are not
// meshed are ignored.
func (s *Summary) Add(pod *corev1.Pod, conds []corev1.PodCondition) {
	v, meshed := PodVerdictOf(conds)
	s.AddVerdict(pod, v, meshed)
}

// AddVerdict counts one pod by a verdict already read (PodVerdictOf); pods that are not meshed
// are ignored.
func (s *Summary) AddVerdict(pod *corev1.Pod, v PodVerdict, meshed bool) {
	if !meshed {
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
	s.add(v)
	ns.add(v)
	if v != VerdictDrifted {
		return
	}
	if s.DriftedByWorkload == nil {
		s.DriftedByWorkload = map[Workload]int32{}
	}
	w := WorkloadOf(pod)
	s.DriftedByWorkload[w]++
	s.DriftedPods = append(s.DriftedPods, pod.Namespace+"/"+pod.Name)
	// A restartable workload's command depends on the workload only, so it is worked out for its
	// first drifted pod; other pods get commands naming themselves, so each is new. (Checking
	// every command against the list cost a string comparison per workload per drifted pod.)
	if !w.Restartable() || s.DriftedByWorkload[w] == 1 {
		if a := Action(pod); !w.Restartable() || !slices.Contains(s.Restarts, a) {
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
		if s.Failed() > 0 {
			fmt.Fprintf(&b, "; %d more pods failed (see their %s and %s conditions)", s.Failed(), conditions.PodSidecarInjected, conditions.PodRedirectionApplied)
		}
		return metav1.ConditionFalse, conditions.Drifted, b.String()
	case s.Failed() > 0:
		return metav1.ConditionFalse, conditions.PodsFailed, fmt.Sprintf(
			"%d of %d meshed pods lack their sidecar or their redirection failed; their %s and %s conditions say why and how to fix it",
			s.Failed(), s.Meshed, conditions.PodSidecarInjected, conditions.PodRedirectionApplied)
	}
	msg := fmt.Sprintf("%d meshed pods, %d in sync", s.Meshed, s.InSync)
	if s.Unreadable > 0 {
		msg += fmt.Sprintf(", %d with unreadable rules", s.Unreadable)
	}
	if other := s.Of(VerdictOther); other > 0 {
		msg += fmt.Sprintf(", %d not judged yet", other)
	}
	if s.Meshed > s.InSync {
		msg += fmt.Sprintf(" (see their %s condition)", conditions.PodExclusionsInSync)
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
