package demo

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
)

func cond(typ string, status corev1.ConditionStatus, reason, msg string) corev1.PodCondition {
	return corev1.PodCondition{Type: corev1.PodConditionType(typ), Status: status, Reason: reason, Message: msg}
}

// meshedPod is an injected, Running pod with the given meshkeeper conditions.
func meshedPod(name string, conds ...corev1.PodCondition) corev1.Pod {
	return corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop"},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "meshkeeper-init"}},
			Containers:     []corev1.Container{{Name: "app"}, {Name: "envoy"}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: append([]corev1.PodCondition{
			cond("Ready", corev1.ConditionTrue, "", ""),
		}, conds...)},
	}
}

var allTrue = []corev1.PodCondition{
	cond(conditions.PodSidecarInjected, corev1.ConditionTrue, conditions.Injected, ""),
	cond(conditions.PodRedirectionApplied, corev1.ConditionTrue, conditions.Applied, ""),
	cond(conditions.PodExclusionsInSync, corev1.ConditionTrue, conditions.InSync, "rules match"),
}

func TestInSync(t *testing.T) {
	notInjected := meshedPod("a", allTrue...)
	notInjected.Spec.InitContainers = nil
	pending := meshedPod("a", allTrue...)
	pending.Status.Phase = corev1.PodPending
	drifted := meshedPod("a", allTrue[0], allTrue[1],
		cond(conditions.PodExclusionsInSync, corev1.ConditionFalse, conditions.Drifted, "port 6379 missing"))
	tests := []struct {
		name   string
		pod    corev1.Pod
		want   bool
		detail string
	}{
		{"in sync", meshedPod("a", allTrue...), true, "rules match"},
		{"no init container", notInjected, false, "no init container meshkeeper-init"},
		{"not running", pending, false, "phase Pending"},
		{"no conditions yet", meshedPod("a"), false, "meshkeeper.io/SidecarInjected not set yet"},
		{"drifted", drifted, false, "meshkeeper.io/ExclusionsInSync=False (Drifted)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, detail := InSync(&tt.pod)
			if got != tt.want || !strings.Contains(detail, tt.detail) {
				t.Fatalf("InSync = %v, %q; want %v and a detail with %q", got, detail, tt.want, tt.detail)
			}
		})
	}
}

func TestDrifted(t *testing.T) {
	msg := "outbound IP range 192.0.2.0/24 from MeshConfig osm-system/osm-mesh-config is not in the rules; outbound port 6379 ..."
	tests := []struct {
		name     string
		pod      corev1.Pod
		mentions []string
		want     bool
		detail   string
	}{
		{"drifted naming both", meshedPod("a", cond(conditions.PodExclusionsInSync, corev1.ConditionFalse, conditions.Drifted, msg)),
			[]string{"192.0.2.0/24", "6379"}, true, msg},
		{"drifted, a value missing from the message", meshedPod("a", cond(conditions.PodExclusionsInSync, corev1.ConditionFalse, conditions.Drifted, msg)),
			[]string{"6380"}, false, "does not mention 6380"},
		{"still in sync", meshedPod("a", allTrue...), []string{"6379"}, false, "ExclusionsInSync=True (InSync)"},
		{"unreadable is not drift", meshedPod("a", cond(conditions.PodExclusionsInSync, corev1.ConditionUnknown, conditions.RulesUnreadable, msg)),
			nil, false, "(RulesUnreadable)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, detail := Drifted(tt.mentions...)(&tt.pod)
			if got != tt.want || !strings.Contains(detail, tt.detail) {
				t.Fatalf("Drifted = %v, %q; want %v and a detail with %q", got, detail, tt.want, tt.detail)
			}
		})
	}
}

func TestInitFailed(t *testing.T) {
	failed := "init container meshkeeper-init exited with code 1 (Error): boom"
	tests := []struct {
		name string
		pod  corev1.Pod
		want bool
	}{
		{"exit 1", meshedPod("a", cond(conditions.PodRedirectionApplied, corev1.ConditionFalse, conditions.InitContainerFailed, failed)), true},
		{"other exit code", meshedPod("a", cond(conditions.PodRedirectionApplied, corev1.ConditionFalse, conditions.InitContainerFailed,
			"init container meshkeeper-init exited with code 137 (OOMKilled)")), false},
		{"still pending", meshedPod("a", cond(conditions.PodRedirectionApplied, corev1.ConditionUnknown, conditions.InitContainerPending, "")), false},
		{"applied", meshedPod("a", allTrue...), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, detail := InitFailed(1)(&tt.pod); got != tt.want {
				t.Fatalf("InitFailed(1) = %v (%s), want %v", got, detail, tt.want)
			}
		})
	}
}

func TestEvery(t *testing.T) {
	good, bad := meshedPod("b", allTrue...), meshedPod("a")
	tests := []struct {
		name   string
		pods   []corev1.Pod
		want   int
		ok     bool
		detail string
	}{
		{"all good, sorted by name", []corev1.Pod{meshedPod("z", allTrue...), good}, 2, true, "b: Running; rules match\n           z: "},
		{"one bad pod is named", []corev1.Pod{good, bad}, 2, false, "a: meshkeeper.io/SidecarInjected not set yet"},
		{"too few pods", []corev1.Pod{good}, 2, false, "want 2 pods, found 1"},
		{"too many pods", []corev1.Pod{good, good}, 1, false, "want 1 pods, found 2"},
		{"no pods", nil, 1, false, "want 1 pods, found 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, detail := Every(tt.pods, tt.want, InSync)
			if ok != tt.ok || !strings.Contains(detail, tt.detail) {
				t.Fatalf("Every = %v, %q; want %v and a detail with %q", ok, detail, tt.ok, tt.detail)
			}
		})
	}
}

func TestMeshConfigCounts(t *testing.T) {
	mc := &configv1alpha2.MeshConfig{Status: configv1alpha2.MeshConfigStatus{
		Pods:        configv1alpha2.PodSummary{Meshed: 2, InSync: 1, Drifted: 1},
		DriftedPods: []string{"shop/a"},
	}}
	ok, detail := MeshConfigCounts(mc, configv1alpha2.PodSummary{Meshed: 2, InSync: 1, Drifted: 1})
	if !ok || !strings.Contains(detail, "driftedPods=shop/a") {
		t.Errorf("matching counts: %v, %q", ok, detail)
	}
	ok, detail = MeshConfigCounts(mc, configv1alpha2.PodSummary{Meshed: 2, Drifted: 2})
	if ok || !strings.Contains(detail, "want meshed=2 inSync=0 drifted=2 failed=0") {
		t.Errorf("different counts: %v, %q", ok, detail)
	}
}

func TestReadyCondition(t *testing.T) {
	ready := metav1.Condition{Type: conditions.Ready, Status: metav1.ConditionTrue, Reason: "Succeeded", ObservedGeneration: 2}
	stale := ready
	stale.ObservedGeneration = 1
	notReady := ready
	notReady.Status, notReady.Reason, notReady.Message = metav1.ConditionFalse, "RefNotFound", "ServiceAccount curl not found"
	tests := []struct {
		name   string
		conds  []metav1.Condition
		ok     bool
		detail string
	}{
		{"ready", []metav1.Condition{ready}, true, "Ready=True (Succeeded)"},
		{"stale generation", []metav1.Condition{stale}, false, "generation 1, the object is at 2"},
		{"not ready", []metav1.Condition{notReady}, false, "ServiceAccount curl not found"},
		{"none", nil, false, "no Ready condition"},
	}
	for _, tt := range tests {
		ok, detail := ReadyCondition(tt.conds, 2)
		if ok != tt.ok || !strings.Contains(detail, tt.detail) {
			t.Errorf("%s: ReadyCondition = %v, %q", tt.name, ok, detail)
		}
	}
}

func TestHasFinding(t *testing.T) {
	fs := []conditions.Finding{
		{Code: conditions.FindingPortOpenToAnyDestination, Severity: conditions.SeverityWarning, Message: "port 80"},
		{Code: conditions.FindingDestinationShadowed, Severity: conditions.SeverityWarning, Message: "203.0.113.10/32:6379 bypasses the sidecar"},
	}
	if ok, detail := HasFinding(fs, conditions.FindingDestinationShadowed, "6379"); !ok || !strings.HasPrefix(detail, "Warning DestinationShadowed") {
		t.Errorf("present: %v, %q", ok, detail)
	}
	if ok, detail := HasFinding(fs, conditions.FindingDestinationShadowed, "5432"); ok || !strings.Contains(detail, "PortOpenToAnyDestination, DestinationShadowed") {
		t.Errorf("other port: %v, %q", ok, detail)
	}
	if ok, detail := HasFinding(nil, conditions.FindingDestinationShadowed, "6379"); ok || detail != "no findings" {
		t.Errorf("none: %v, %q", ok, detail)
	}
}

func TestContainsNumber(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{"exited with code 1", true},
		{"exited with code 1 (Error)", true},
		{"exited with code 137 (OOMKilled)", false},
		{"exited with code 10; earlier it exited with code 1: x", true},
		{"no code", false},
	}
	for _, tt := range tests {
		if got := containsNumber(tt.s, "exited with code 1"); got != tt.want {
			t.Errorf("containsNumber(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}

func TestReadyWhileDrifted(t *testing.T) {
	mc := func(conds ...metav1.Condition) *configv1alpha2.MeshConfig {
		m := &configv1alpha2.MeshConfig{ObjectMeta: metav1.ObjectMeta{Generation: 2}}
		m.Status.Conditions = conds
		return m
	}
	ready := metav1.Condition{Type: conditions.Ready, Status: metav1.ConditionTrue, Reason: conditions.Succeeded, ObservedGeneration: 2}
	drifted := metav1.Condition{Type: conditions.PodsInSync, Status: metav1.ConditionFalse, Reason: conditions.Drifted, ObservedGeneration: 2}
	inSync := metav1.Condition{Type: conditions.PodsInSync, Status: metav1.ConditionTrue, Reason: conditions.InSync, ObservedGeneration: 2}
	notReady := metav1.Condition{Type: conditions.Ready, Status: metav1.ConditionFalse, Reason: conditions.InvalidSpec, ObservedGeneration: 2}
	for _, tt := range []struct {
		name string
		mc   *configv1alpha2.MeshConfig
		want bool
	}{
		{"ready and drifted", mc(ready, drifted), true},
		{"ready, pods in sync", mc(ready, inSync), false},
		{"ready, no PodsInSync yet", mc(ready), false},
		{"not ready", mc(notReady, drifted), false},
	} {
		if ok, detail := ReadyWhileDrifted(tt.mc); ok != tt.want {
			t.Errorf("%s: %v (%s), want %v", tt.name, ok, detail, tt.want)
		}
	}
}
