package controllers

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	"github.com/meshkeeper/meshkeeper/internal/drift"
	"github.com/meshkeeper/meshkeeper/internal/injection"
)

// fullPod is an injected pod as the API server returns it, with everything the drift checks do
// not need.
func fullPod(t *testing.T) *corev1.Pod {
	t.Helper()
	w := &world{t: t, mesh: "trim", app: "trim-app", mc: types.NamespacedName{Namespace: "trim-system", Name: "trim-config"}}
	mc := &configv1alpha2.MeshConfig{ObjectMeta: metav1.ObjectMeta{Namespace: "trim-system", Name: "trim-config", Generation: 3}}
	mc.Spec.Traffic.OutboundPortExclusionList = []int32{6379}
	pod, err := injection.Inject(w.appPod("web", "a"), &mc.Spec, injection.Options{MeshConfig: w.mc, MeshConfigGeneration: 3,
		DefaultEnvoyImage: "envoy", DefaultInitImage: "init"})
	must(t, err)
	pod.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationUpdate,
		FieldsV1: metav1.NewFieldsV1(`{"f:metadata":{"f:labels":{}}}`)}}
	pod.Annotations[annotationLastApplied] = strings.Repeat("x", 4096)
	pod.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	pod.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "MODE", Value: "prod"}}
	pod.Status.Conditions = append(kubeletConditions(), corev1.PodCondition{Type: conditions.PodExclusionsInSync,
		Status: corev1.ConditionTrue, Reason: conditions.InSync, Message: "m"})
	initExited(0, "Completed")(pod)
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", Ready: true, Image: "x", ImageID: "sha256:abc"}}
	pod.Status.PodIP = "10.1.2.3"
	return pod
}

func TestTrimPodKeepsEveryVerdict(t *testing.T) {
	pod := fullPod(t)
	out, err := TrimPod(pod.DeepCopy())
	must(t, err)
	trimmed := out.(*corev1.Pod)

	mc := &configv1alpha2.MeshConfig{ObjectMeta: metav1.ObjectMeta{Namespace: "trim-system", Name: "trim-config", Generation: 4}}
	mc.Spec.Traffic.OutboundPortExclusionList = []int32{6379, 5432}
	ns := metav1.ObjectMeta{Name: pod.Namespace, Labels: map[string]string{injection.LabelMonitoredBy: "trim"},
		Annotations: map[string]string{injection.AnnotationSidecarInjection: "enabled"}}
	now := time.Now()
	for _, spec := range []func(){func() {}, func() { mc.Spec.Traffic.OutboundPortExclusionList = []int32{6379} }} {
		spec()
		full := drift.Evaluate(drift.Gather(pod, ns, mc, injection.SelectOptions{MeshName: "trim"}, now))
		small := drift.Evaluate(drift.Gather(trimmed, ns, mc, injection.SelectOptions{MeshName: "trim"}, now))
		if !reflect.DeepEqual(full, small) {
			t.Fatalf("verdicts differ:\nfull:    %+v\ntrimmed: %+v", full, small)
		}
	}
	if trimmed.ManagedFields != nil || trimmed.Spec.Volumes != nil || trimmed.Spec.Containers[0].Env != nil ||
		trimmed.Status.ContainerStatuses != nil || trimmed.Status.PodIP != "" {
		t.Errorf("trimmed pod still carries unused fields: %+v", trimmed)
	}
	if _, ok := trimmed.Annotations[annotationLastApplied]; ok {
		t.Error("last-applied-configuration was kept")
	}
	if len(trimmed.Status.Conditions) != 1 || trimmed.Status.Conditions[0].Type != conditions.PodExclusionsInSync {
		t.Errorf("only our conditions should be cached, got %v", trimmed.Status.Conditions)
	}
	fullJSON, _ := json.Marshal(pod)
	smallJSON, _ := json.Marshal(trimmed)
	t.Logf("pod JSON: %d bytes full, %d bytes trimmed", len(fullJSON), len(smallJSON))
	if len(smallJSON)*2 > len(fullJSON) {
		t.Errorf("trimming kept %d of %d bytes", len(smallJSON), len(fullJSON))
	}

	// Replicas share one copy of their rendered rules.
	other := fullPod(t)
	other.Name = "web-5f7d8c-b"
	out2, _ := TrimPod(other)
	a, b := trimmed.Spec.InitContainers[0].Args, out2.(*corev1.Pod).Spec.InitContainers[0].Args
	if len(a) == 0 || unsafeStringData(a[len(a)-2]) != unsafeStringData(b[len(b)-2]) {
		t.Error("identical rule strings of two replicas are not shared")
	}
	t2 := out2.(*corev1.Pod)
	for what, same := range map[string]bool{
		"labels":           reflect.ValueOf(trimmed.Labels).Pointer() == reflect.ValueOf(t2.Labels).Pointer(),
		"annotations":      reflect.ValueOf(trimmed.Annotations).Pointer() == reflect.ValueOf(t2.Annotations).Pointer(),
		"owners":           &trimmed.OwnerReferences[0] == &t2.OwnerReferences[0],
		"init containers":  &trimmed.Spec.InitContainers[0] == &t2.Spec.InitContainers[0],
		"containers":       &trimmed.Spec.Containers[0] == &t2.Spec.Containers[0],
		"init status":      &trimmed.Status.InitContainerStatuses[0] == &t2.Status.InitContainerStatuses[0],
		"conditions":       &trimmed.Status.Conditions[0] == &t2.Status.Conditions[0],
		"distinct objects": trimmed != t2,
	} {
		if !same {
			t.Errorf("%s of two replicas are not shared", what)
		}
	}
	// A replica with different labels gets its own map, and the first one is unchanged.
	third := fullPod(t)
	third.Labels["canary"] = "true"
	out3, _ := TrimPod(third)
	if _, leaked := trimmed.Labels["canary"]; leaked || out3.(*corev1.Pod).Labels["canary"] != "true" {
		t.Error("sharing mixed up two different label sets")
	}

	// A replica whose condition changed at another time keeps its own list, exact to the second.
	fourth := fullPod(t)
	for i := range fourth.Status.Conditions {
		fourth.Status.Conditions[i].LastTransitionTime.Time = fourth.Status.Conditions[i].LastTransitionTime.Add(time.Second)
	}
	out4, err := TrimPod(fourth)
	must(t, err)
	t4 := out4.(*corev1.Pod)
	if &t4.Status.Conditions[0] == &trimmed.Status.Conditions[0] ||
		!t4.Status.Conditions[0].LastTransitionTime.Equal(&fourth.Status.Conditions[len(fourth.Status.Conditions)-1].LastTransitionTime) {
		t.Errorf("conditions with another transition time were shared or changed: %+v", t4.Status.Conditions)
	}
	if cap(trimmed.Status.Conditions) != len(trimmed.Status.Conditions) {
		t.Errorf("cached conditions have spare capacity: %d of %d", len(trimmed.Status.Conditions), cap(trimmed.Status.Conditions))
	}

	if got, _ := TrimPod(&corev1.Namespace{}); !reflect.DeepEqual(got, &corev1.Namespace{}) {
		t.Error("non-pods must pass through")
	}
}

func TestSetMeshConfigStatus(t *testing.T) {
	now := time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)
	fresh := func() *configv1alpha2.MeshConfig {
		mc := &configv1alpha2.MeshConfig{ObjectMeta: metav1.ObjectMeta{Generation: 5}}
		mc.Status.ObservedGeneration = conditions.ObservedGenerationUnset
		return mc
	}
	type want struct {
		ready, readyReason string
		stalled            string // "" means absent
		reconciling        string
		podsInSync         string // "Status/Reason", or "absent"
		observed           int64
		mentions           []string // in PodsInSync's message
	}
	drifted := drift.Summary{Counts: drift.Counts{Meshed: 3, InSync: 1, Drifted: 2}, DriftedPods: []string{"a/b", "a/c"},
		Restarts: []string{"kubectl rollout restart deployment/web -n a"}}
	tests := []struct {
		name string
		v    MeshConfigVerdict
		want want
	}{
		{"in sync", MeshConfigVerdict{Summary: drift.Summary{Counts: drift.Counts{Meshed: 3, InSync: 3}}},
			want{"True", conditions.Succeeded, "", "", "True/InSync", 5, []string{"3 meshed pods, 3 in sync"}}},
		{"drifted pods leave Ready True; PodsInSync names them and the fix", MeshConfigVerdict{Summary: drifted},
			want{"True", conditions.Succeeded, "", "", "False/Drifted", 5, []string{"2 of 3 meshed pods", "(generation 5)", "a/b, a/c",
				"kubectl rollout restart deployment/web -n a", "meshkeeper.io/auto-restart=true"}}},
		{"failed pods: a missing sidecar and a failed init container are both failed", MeshConfigVerdict{Summary: drift.Summary{Counts: drift.Counts{Meshed: 4, InSync: 2, SidecarMissing: 1, InitFailed: 1}}},
			want{"True", conditions.Succeeded, "", "", "False/PodsFailed", 5, []string{"2 of 4 meshed pods lack their sidecar or their redirection failed"}}},
		{"unreadable rules and pods not judged yet are told apart", MeshConfigVerdict{Summary: drift.Summary{Counts: drift.Counts{Meshed: 4, InSync: 1, Unreadable: 2}}},
			want{"True", conditions.Succeeded, "", "", "True/InSync", 5, []string{"4 meshed pods, 1 in sync, 2 with unreadable rules, 1 not judged yet"}}},
		{"invalid spec", MeshConfigVerdict{SpecErrs: field.ErrorList{field.Invalid(field.NewPath("spec", "traffic", "outboundIPRangeExclusionList").Index(0), "999.1.1.1/32", "bad")}},
			want{"False", conditions.InvalidSpec, "True", "", "Unknown/InvalidSpec", 5, nil}},
		{"a value admission refuses outside the redirection settings: not Ready, pods still judged", MeshConfigVerdict{Summary: drift.Summary{Counts: drift.Counts{Meshed: 3, InSync: 3}},
			Invalid: field.ErrorList{field.Invalid(field.NewPath("spec", "sidecar", "configResyncInterval"), "5 minutes", "bad")}},
			want{"False", conditions.InvalidSpec, "True", "", "True/InSync", 5, nil}},
		{"transient error keeps observedGeneration", MeshConfigVerdict{Err: errors.New("cache not synced")},
			want{"False", conditions.ReconcileFailed, "", "True", "absent", conditions.ObservedGenerationUnset, nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mc := fresh()
			SetMeshConfigStatus(mc, tt.v, now)
			st := mc.Status
			r := meta.FindStatusCondition(st.Conditions, conditions.Ready)
			if r == nil || string(r.Status) != tt.want.ready || r.Reason != tt.want.readyReason || r.ObservedGeneration != 5 {
				t.Errorf("Ready = %+v", r)
			}
			for _, c := range []struct{ typ, want string }{{conditions.Stalled, tt.want.stalled}, {conditions.Reconciling, tt.want.reconciling}} {
				got := meta.FindStatusCondition(st.Conditions, c.typ)
				if (got == nil) != (c.want == "") || (got != nil && string(got.Status) != c.want) {
					t.Errorf("%s = %+v, want %q", c.typ, got, c.want)
				}
			}
			p := meta.FindStatusCondition(st.Conditions, conditions.PodsInSync)
			if got := conditionString(st.Conditions, conditions.PodsInSync); got != tt.want.podsInSync {
				t.Errorf("PodsInSync = %q, want %q", got, tt.want.podsInSync)
			}
			for _, m := range tt.want.mentions {
				if p == nil || !strings.Contains(p.Message, m) {
					t.Errorf("PodsInSync %+v does not mention %q", p, m)
				}
			}
			for _, c := range st.Conditions {
				if !conditions.Allowed(c.Type, string(c.Status), c.Reason) {
					t.Errorf("%s=%s %s is outside the vocabulary", c.Type, c.Status, c.Reason)
				}
			}
			if st.ObservedGeneration != tt.want.observed {
				t.Errorf("observedGeneration %d, want %d", st.ObservedGeneration, tt.want.observed)
			}
			if len(tt.v.SpecErrs) == 0 && tt.v.Err == nil && (st.Pods.Drifted != tt.v.Summary.Drifted || st.Pods.Failed != tt.v.Summary.Failed()) {
				t.Errorf("pods %+v", st.Pods)
			}
		})
	}
	t.Run("unchanged verdict keeps lastTransitionTime", func(t *testing.T) {
		mc := fresh()
		v := MeshConfigVerdict{Summary: drift.Summary{Counts: drift.Counts{Meshed: 1, InSync: 1}}}
		SetMeshConfigStatus(mc, v, now)
		SetMeshConfigStatus(mc, v, now.Add(time.Hour))
		if r := meta.FindStatusCondition(mc.Status.Conditions, conditions.Ready); !r.LastTransitionTime.Time.Equal(now) {
			t.Errorf("lastTransitionTime moved to %v", r.LastTransitionTime)
		}
	})
}

func TestRestartDue(t *testing.T) {
	now := time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)
	tests := []struct {
		last     time.Time
		due      bool
		wantWait time.Duration
	}{
		{time.Time{}, true, 0},
		{now.Add(-3 * time.Minute), false, 7 * time.Minute},
		{now.Add(-10 * time.Minute), true, 0},
		{now.Add(time.Minute), false, 11 * time.Minute}, // a clock skewed into the future still waits
	}
	for _, tt := range tests {
		due, wait := restartDue(tt.last, now, 10*time.Minute)
		if due != tt.due || wait != tt.wantWait {
			t.Errorf("restartDue(%v) = %v, %v; want %v, %v", tt.last, due, wait, tt.due, tt.wantWait)
		}
	}
	if !optedIn(map[string]string{AnnotationAutoRestart: "true"}) || optedIn(map[string]string{AnnotationAutoRestart: "yes"}) || optedIn(nil) {
		t.Error("only the exact value \"true\" opts in")
	}
}

// TestInvalidMeshConfigDropsOlderFindings: findings describe observedGeneration, as on Egress
// and IngressBackend. When an edit makes the spec invalid, observedGeneration moves to it, so the
// findings of the generation before must go with it.
func TestInvalidMeshConfigDropsOlderFindings(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	mc := &configv1alpha2.MeshConfig{ObjectMeta: metav1.ObjectMeta{Generation: 4}}
	SetMeshConfigStatus(mc, MeshConfigVerdict{Summary: drift.Summary{Counts: drift.Counts{Meshed: 1, InSync: 1}}}, now)
	mc.Status.Findings = []conditions.Finding{{Code: "ServiceCIDRExcluded", Severity: "Error", Message: "from generation 4"}}
	mc.Generation = 5
	SetMeshConfigStatus(mc, MeshConfigVerdict{SpecErrs: field.ErrorList{field.Invalid(field.NewPath("spec", "traffic", "outboundPortExclusionList").Index(0), 70000, "bad")}}, now)
	if mc.Status.ObservedGeneration != 5 {
		t.Fatalf("observedGeneration %d, want 5", mc.Status.ObservedGeneration)
	}
	if len(mc.Status.Findings) != 0 {
		t.Errorf("generation 5 is invalid but status.findings still holds generation 4's: %+v", mc.Status.Findings)
	}
}

// nothingTouched fails the test on any read or write: a reconciler handed a key it does not
// serve must not even look at it.
type nothingTouched struct {
	client.Client
	t *testing.T
}

func (c nothingTouched) Get(_ context.Context, key client.ObjectKey, _ client.Object, _ ...client.GetOption) error {
	c.t.Errorf("read %s", key)
	return nil
}

// TestOnlyTheServedMeshConfigIsJudged: the production cache holds only the served MeshConfig, and
// any other may be served by another meshkeeper; this one never writes a verdict on it.
func TestOnlyTheServedMeshConfigIsJudged(t *testing.T) {
	r := &MeshConfigReconciler{Client: nothingTouched{t: t}}
	r.Options.MeshConfig = types.NamespacedName{Namespace: "osm-system", Name: "osm-mesh-config"}
	other := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "other-mesh", Name: "osm-mesh-config"}}
	if _, err := r.Reconcile(context.Background(), other); err != nil {
		t.Fatal(err)
	}
}

// TestRecountWatchesEachKindOnce: the MeshConfig controller once watched Services twice, which
// registered two handlers on the one Service informer and recounted twice per Service event.
func TestRecountWatchesEachKindOnce(t *testing.T) {
	seen := map[reflect.Type]bool{}
	for _, obj := range recountOn() {
		typ := reflect.TypeOf(obj)
		if seen[typ] {
			t.Errorf("%v is watched twice", typ)
		}
		seen[typ] = true
	}
	if !seen[reflect.TypeOf(&corev1.Service{})] {
		t.Error("Services are not watched: the findings would miss Service changes")
	}
}

func TestRecountDelayGrowsWithTheRecount(t *testing.T) {
	r := &MeshConfigReconciler{}
	for last, want := range map[time.Duration]time.Duration{
		0: summaryDelay, 50 * time.Millisecond: summaryDelay, 300 * time.Millisecond: 3 * time.Second, time.Minute: maxSummaryDelay,
	} {
		r.lastSummary.Store(int64(last))
		if got := r.recountDelay(); got != want {
			t.Errorf("last recount %s: delay %s, want %s", last, got, want)
		}
	}
}
