package controllers

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/meshkeeper/meshkeeper/api/conditions"
)

// TestPodChangedSkipsOnlyWhatNoCheckReads: the pod updates dropped before the queue are the
// echo of our own write and changes the trimmed pod does not show; everything a verdict reads,
// someone else's edit of our conditions and a resync still reach Reconcile.
func TestPodChangedSkipsOnlyWhatNoCheckReads(t *testing.T) {
	key := types.NamespacedName{Namespace: "shop", Name: "web"}
	drifted := []corev1.PodCondition{{Type: conditions.PodExclusionsInSync, Status: corev1.ConditionFalse, Reason: conditions.Drifted, Message: "m"}}
	inSync := []corev1.PodCondition{{Type: conditions.PodExclusionsInSync, Status: corev1.ConditionTrue, Reason: conditions.InSync, Message: "m"}}
	pod := func(rv string, conds []corev1.PodCondition, edit func(*corev1.Pod)) *corev1.Pod {
		p, err := TrimPod(&corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name, ResourceVersion: rv,
				Annotations: map[string]string{"a": "b"}},
			Spec: corev1.PodSpec{
				InitContainers: []corev1.Container{{Name: "osm-init", Image: "init", Args: []string{"-c", "rules"}}},
				Containers:     []corev1.Container{{Name: "app", Image: "app"}, {Name: "envoy", Image: "envoy"}},
			},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: append([]corev1.PodCondition{
				{Type: corev1.PodReady, Status: corev1.ConditionTrue}}, conds...)},
		})
		if err != nil {
			t.Fatal(err)
		}
		out := p.(*corev1.Pod)
		if edit != nil {
			edit(out)
		}
		return out
	}
	for _, tt := range []struct {
		name       string
		memo       []corev1.PodCondition // our last write, if any
		old, new   *corev1.Pod
		want       bool
		memoRemain bool
	}{
		{"the echo of our write", inSync, pod("1", drifted, nil), pod("2", inSync, nil), false, false},
		{"a kubelet update the trim hides", nil, pod("1", drifted, nil), pod("2", drifted, nil), false, false},
		{"someone else rewrote our conditions", inSync, pod("1", inSync, nil), pod("2", drifted, nil), true, true},
		{"our conditions removed", nil, pod("1", inSync, nil), pod("2", nil, nil), true, false},
		{"a resync", nil, pod("1", drifted, nil), pod("1", drifted, nil), true, false},
		{"an annotation changed", nil, pod("1", drifted, nil), pod("2", drifted, func(p *corev1.Pod) { p.Annotations = map[string]string{"a": "c"} }), true, false},
		{"the echo arriving with an init container restart", inSync, pod("1", drifted, nil), pod("2", inSync, func(p *corev1.Pod) {
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "osm-init", RestartCount: 1}}
		}), true, true},
		{"deleted", nil, pod("1", drifted, nil), pod("2", drifted, func(p *corev1.Pod) { p.DeletionTimestamp = &metav1.Time{} }), true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := &PodReconciler{written: newWriteMemo()}
			if tt.memo != nil {
				r.written.record(key, "1", "2", tt.memo)
			}
			if got := r.podChanged(event.UpdateEvent{ObjectOld: tt.old, ObjectNew: tt.new}); got != tt.want {
				t.Errorf("podChanged = %t, want %t", got, tt.want)
			}
			if _, remains := r.written.m[key]; remains != tt.memoRemain {
				t.Errorf("write memo entry kept = %t, want %t", remains, tt.memoRemain)
			}
		})
	}
}
