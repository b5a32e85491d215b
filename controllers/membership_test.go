package controllers

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	"github.com/meshkeeper/meshkeeper/internal/drift"
	"github.com/meshkeeper/meshkeeper/internal/injection"
)

// TestMembershipAgreesWithDrift holds the pod controller's choice of which pods to judge to the
// same namespace rule drift reports with: a pod the controller judges as part of the mesh must
// not be reported NotMeshed, and a pod drift calls NotMeshed must not be judged unless it still
// carries a verdict of ours to correct.
func TestMembershipAgreesWithDrift(t *testing.T) {
	sel := injection.SelectOptions{MeshName: "osm", OperatorNamespace: "meshkeeper-system"}
	r := &PodReconciler{Options: DriftOptions{Selection: sel}}
	r.Options.MeshConfig.Namespace, r.Options.MeshConfig.Name = "osm-system", "osm-mesh-config"
	labels := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name   string
		ns     metav1.ObjectMeta
		judged bool
	}{
		{"ours", metav1.ObjectMeta{Name: "app", Labels: labels(injection.LabelMonitoredBy, "osm")}, true},
		{"unlabelled", metav1.ObjectMeta{Name: "app"}, false},
		{"another mesh", metav1.ObjectMeta{Name: "app", Labels: labels(injection.LabelMonitoredBy, "other")}, false},
		{"ignored", metav1.ObjectMeta{Name: "app", Labels: labels(injection.LabelMonitoredBy, "osm", injection.LabelIgnore, "")}, false},
		{"kube-system labelled", metav1.ObjectMeta{Name: "kube-system", Labels: labels(injection.LabelMonitoredBy, "osm")}, false},
		{"kube-public labelled", metav1.ObjectMeta{Name: "kube-public", Labels: labels(injection.LabelMonitoredBy, "osm")}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: tt.ns.Name}}
			ns := &corev1.Namespace{ObjectMeta: tt.ns}
			if got := r.ours(ns, pod); got != tt.judged {
				t.Fatalf("ours = %v, want %v", got, tt.judged)
			}
			v := drift.CheckSidecarInjected(drift.Input{Pod: pod, Namespace: tt.ns, Selection: sel})
			reason := v.Reason
			if notMeshed := reason == conditions.NotMeshed; notMeshed == tt.judged {
				t.Fatalf("drift reason %s while the controller judges the pod: %v", reason, tt.judged)
			}
		})
	}
}
