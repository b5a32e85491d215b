package controllers

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/meshkeeper/meshkeeper/api/conditions"
)

// TestWriteMemoUnderConcurrentWriters: a pod version written by someone else before our write
// landed (a kubelet's status update, resourceVersion between the one we computed from and the
// one we wrote) cannot show our write, so the same verdict is not written again; a version after
// ours that lacks it (our conditions removed) is written again. Found by
// TestConcurrentWritersKeepTheirFields (internal/manager, docs/reliability.md case 4).
func TestWriteMemoUnderConcurrentWriters(t *testing.T) {
	key := types.NamespacedName{Namespace: "shop", Name: "web"}
	drifted := []corev1.PodCondition{{Type: conditions.PodExclusionsInSync, Status: corev1.ConditionFalse, Reason: conditions.Drifted, Message: "m"}}
	inSync := []corev1.PodCondition{{Type: conditions.PodExclusionsInSync, Status: corev1.ConditionTrue, Reason: conditions.InSync, Message: "m"}}
	for _, tt := range []struct {
		name  string
		rv    string
		conds []corev1.PodCondition
		want  bool
	}{
		{"the version computed from", "100", drifted, true},
		{"another writer's version, older than ours", "101", drifted, true},
		{"a version after ours", "103", drifted, false},
		{"a different verdict", "101", inSync, false},
		{"malformed resourceVersion", "x", drifted, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWriteMemo()
			w.record(key, "100", "102", drifted)
			if got := w.alreadyWritten(key, tt.rv, tt.conds); got != tt.want {
				t.Errorf("alreadyWritten(%s) = %t, want %t", tt.rv, got, tt.want)
			}
		})
	}
}
