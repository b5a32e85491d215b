package drift

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/meshkeeper/meshkeeper/api/conditions"
)

func cond(t corev1.PodConditionType, status corev1.ConditionStatus, reason string) corev1.PodCondition {
	return corev1.PodCondition{Type: t, Status: status, Reason: reason}
}

func TestPodVerdictOf(t *testing.T) {
	const (
		yes = corev1.ConditionTrue
		no  = corev1.ConditionFalse
		unk = corev1.ConditionUnknown
	)
	injected := cond(conditions.PodSidecarInjected, yes, conditions.Injected)
	applied := cond(conditions.PodRedirectionApplied, yes, conditions.Applied)
	for _, tt := range []struct {
		name   string
		conds  []corev1.PodCondition
		want   PodVerdict
		meshed bool
	}{
		{"no conditions: not judged, not counted", nil, "", false},
		{"kubelet's conditions only", []corev1.PodCondition{{Type: corev1.PodReady, Status: yes}}, "", false},
		{"not meshed", []corev1.PodCondition{cond(conditions.PodSidecarInjected, no, conditions.NotMeshed)}, "", false},
		{"injection disabled", []corev1.PodCondition{cond(conditions.PodSidecarInjected, no, conditions.InjectionDisabled)}, "", false},
		{"host network", []corev1.PodCondition{cond(conditions.PodSidecarInjected, no, conditions.HostNetwork)}, "", false},
		{"sidecar missing", []corev1.PodCondition{cond(conditions.PodSidecarInjected, no, conditions.SidecarMissing)}, VerdictSidecarMissing, true},
		{"in sync", []corev1.PodCondition{injected, applied, cond(conditions.PodExclusionsInSync, yes, conditions.InSync)}, VerdictInSync, true},
		{"drifted", []corev1.PodCondition{injected, applied, cond(conditions.PodExclusionsInSync, no, conditions.Drifted)}, VerdictDrifted, true},
		{"rules unreadable", []corev1.PodCondition{injected, applied, cond(conditions.PodExclusionsInSync, unk, conditions.RulesUnreadable)}, VerdictUnreadable, true},
		{"init container failed", []corev1.PodCondition{injected, cond(conditions.PodRedirectionApplied, no, conditions.InitContainerFailed),
			cond(conditions.PodExclusionsInSync, yes, conditions.InSync)}, VerdictInitFailed, true},
		{"init container failed on drifted rules: the failure comes first", []corev1.PodCondition{injected,
			cond(conditions.PodRedirectionApplied, no, conditions.InitContainerFailed), cond(conditions.PodExclusionsInSync, no, conditions.Drifted)}, VerdictInitFailed, true},
		{"init container missing", []corev1.PodCondition{injected, cond(conditions.PodRedirectionApplied, no, conditions.InitContainerMissing),
			cond(conditions.PodExclusionsInSync, unk, conditions.RulesUnreadable)}, VerdictInitFailed, true},
		{"init container pending", []corev1.PodCondition{injected, cond(conditions.PodRedirectionApplied, unk, conditions.InitContainerPending),
			cond(conditions.PodExclusionsInSync, unk, conditions.InitContainerPending)}, VerdictOther, true},
		{"MeshConfig not found", []corev1.PodCondition{injected, applied, cond(conditions.PodExclusionsInSync, unk, conditions.MeshConfigNotFound)}, VerdictOther, true},
		{"Istio injector ConfigMap not found", []corev1.PodCondition{injected, applied, cond(conditions.PodExclusionsInSync, unk, conditions.InjectorConfigNotFound)}, VerdictOther, true},
		{"invalid settings", []corev1.PodCondition{injected, applied, cond(conditions.PodExclusionsInSync, unk, conditions.InvalidSpec)}, VerdictOther, true},
		{"sidecar judged, the rest not written yet", []corev1.PodCondition{injected}, VerdictOther, true},
		{"conditions in any order, among the kubelet's", []corev1.PodCondition{cond(conditions.PodExclusionsInSync, no, conditions.Drifted),
			{Type: corev1.PodReady, Status: yes}, applied, injected}, VerdictDrifted, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, meshed := PodVerdictOf(tt.conds)
			if got != tt.want || meshed != tt.meshed {
				t.Errorf("PodVerdictOf = %q, meshed %v; want %q, meshed %v", got, meshed, tt.want, tt.meshed)
			}
		})
	}
}

// Every verdict is one Counts reports, and counting a pod under it moves that count alone, so
// the verdicts always add up to the meshed pods.
func TestCountsOfEveryVerdict(t *testing.T) {
	if len(PodVerdicts) != 6 || slices.Contains(PodVerdicts, "") {
		t.Fatalf("PodVerdicts %v", PodVerdicts)
	}
	for _, v := range PodVerdicts {
		var c Counts
		c.add(v)
		for _, other := range PodVerdicts {
			want := int32(0)
			if other == v {
				want = 1
			}
			if got := c.Of(other); got != want {
				t.Errorf("one pod counted %s: Of(%s) = %d, want %d", v, other, got, want)
			}
		}
		if c.Meshed != 1 {
			t.Errorf("one pod counted %s: Meshed %d", v, c.Meshed)
		}
	}
}
