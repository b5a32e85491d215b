package controllers

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	"github.com/meshkeeper/meshkeeper/internal/drift"
)

const (
	condTrue    = corev1.ConditionTrue
	condFalse   = corev1.ConditionFalse
	condUnknown = corev1.ConditionUnknown
)

// TestDriftAfterConfigChangeAndRecoveryAfterRecreation is the story drift detection exists for:
// a pod injected under one MeshConfig keeps its rules when the MeshConfig changes, is reported
// with the value and the command, and is in sync again once it is recreated.
func TestDriftAfterConfigChangeAndRecoveryAfterRecreation(t *testing.T) {
	w := newWorld(t, "story", nil)
	h := startManager(t, w.mesh)
	old := w.create(w.injected(w.appPod("bookbuyer", "a")), initExited(0, "Completed"))

	w.condition(old.Name, conditions.PodSidecarInjected, condTrue, conditions.Injected)
	w.condition(old.Name, conditions.PodRedirectionApplied, condTrue, conditions.Applied)
	w.condition(old.Name, conditions.PodExclusionsInSync, condTrue, conditions.InSync)

	mc := w.updateMeshConfig(func(s *configv1alpha2.MeshConfigSpec) {
		s.Traffic.OutboundIPRangeExclusionList = []string{"169.254.169.254/32"}
		s.Traffic.OutboundPortExclusionList = []int32{5432}
	})
	c := w.condition(old.Name, conditions.PodExclusionsInSync, condFalse, conditions.Drifted)
	for _, want := range []string{
		fmt.Sprintf("outbound IP range 169.254.169.254/32 from MeshConfig %s (generation %d) is not in the meshkeeper-init rules", w.mc, mc.Generation),
		fmt.Sprintf("outbound port 5432 from MeshConfig %s (generation %d)", w.mc, mc.Generation),
		"kubectl rollout restart deployment/bookbuyer -n " + w.app,
	} {
		if !strings.Contains(c.Message, want) {
			t.Errorf("Drifted message %q does not contain %q", c.Message, want)
		}
	}
	eventually(t, 10*time.Second, func() error {
		if h.events.Count(conditions.Drifted) != 1 {
			return fmt.Errorf("events: %v", h.events.Events())
		}
		return nil
	})
	eventually(t, 10*time.Second, func() error {
		st := w.meshConfig().Status
		if st.Pods.Drifted != 1 || len(st.DriftedPods) != 1 || st.DriftedPods[0] != w.app+"/"+old.Name {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	// The MeshConfig itself is fine: Ready stays True and kstatus reads Current, so a GitOps
	// pipeline applying the change is not held until somebody restarts the pod. PodsInSync
	// names the pod and the fix.
	st := w.meshConfig().Status
	if got := conditionString(st.Conditions, conditions.Ready); got != "True/Succeeded" {
		t.Errorf("Ready = %s while a pod is drifted", got)
	}
	if got := w.kstatus(); got.Status != kstatus.CurrentStatus {
		t.Errorf("kstatus %s (%s) while a pod is drifted, want Current", got.Status, got.Message)
	}
	p := meta.FindStatusCondition(st.Conditions, conditions.PodsInSync)
	if p == nil || p.Status != metav1.ConditionFalse || p.Reason != conditions.Drifted {
		t.Fatalf("PodsInSync = %+v", p)
	}
	for _, want := range []string{w.app + "/" + old.Name, "kubectl rollout restart deployment/bookbuyer -n " + w.app, "meshkeeper.io/auto-restart"} {
		if !strings.Contains(p.Message, want) {
			t.Errorf("PodsInSync message %q does not contain %q", p.Message, want)
		}
	}
	// One Ready event when the MeshConfig was first judged, none for the drift.
	if got := h.events.About(w.mc.Namespace, w.mc.Name); strings.Join(got, ",") != "Normal Ready" {
		t.Errorf("MeshConfig events %q, want one Ready", got)
	}

	// Recreate: the replacement is admitted under the new MeshConfig.
	must(t, env.Client.Delete(ctx, old))
	fresh := w.create(w.injected(w.appPod("bookbuyer", "b")), initExited(0, "Completed"))
	w.condition(fresh.Name, conditions.PodExclusionsInSync, condTrue, conditions.InSync)
	eventually(t, 10*time.Second, func() error {
		st := w.meshConfig().Status
		if st.Pods.Meshed != 1 || st.Pods.InSync != 1 || st.Pods.Drifted != 0 || len(st.DriftedPods) != 0 {
			return fmt.Errorf("status %+v", st)
		}
		if got := conditionString(st.Conditions, conditions.PodsInSync); got != "True/InSync" {
			return fmt.Errorf("PodsInSync = %s", got)
		}
		return nil
	})
}

func TestInitContainerExitingNonZeroIsReported(t *testing.T) {
	w := newWorld(t, "initfail", nil)
	h := startManager(t, w.mesh)
	pod := w.create(w.injected(w.appPod("bookstore", "a")), initExited(1, "Error"))
	c := w.condition(pod.Name, conditions.PodRedirectionApplied, condFalse, conditions.InitContainerFailed)
	if !strings.Contains(c.Message, "meshkeeper-init exited with code 1 (Error)") {
		t.Errorf("message %q lacks the exit code", c.Message)
	}
	eventually(t, 10*time.Second, func() error {
		if h.events.Count(conditions.InitContainerFailed) != 1 {
			return fmt.Errorf("events: %v", h.events.Events())
		}
		if f := w.meshConfig().Status.Pods.Failed; f != 1 {
			return fmt.Errorf("failed pods %d", f)
		}
		return nil
	})
}

func TestPodWithoutSidecarInInjectedNamespaceIsReported(t *testing.T) {
	w := newWorld(t, "nosidecar", nil)
	h := startManager(t, w.mesh)
	pod := w.create(w.appPod("bookthief", "a"))
	c := w.condition(pod.Name, conditions.PodSidecarInjected, condFalse, conditions.SidecarMissing)
	if !strings.Contains(c.Message, "kubectl rollout restart deployment/bookthief -n "+w.app) {
		t.Errorf("message %q lacks the restart command", c.Message)
	}
	eventually(t, 10*time.Second, func() error {
		if h.events.Count(conditions.SidecarMissing) != 1 {
			return fmt.Errorf("events: %v", h.events.Events())
		}
		return nil
	})
	if n := len(ownConditions(w.pod(pod.Name))); n != 1 {
		t.Errorf("a pod without sidecar should carry only SidecarInjected, has %d of our conditions", n)
	}

	// A namespace that is in the mesh without injection leaves its pods alone.
	quiet := w.app + "-quiet"
	w.namespace(quiet, false)
	plain := w.appPod("tool", "a")
	plain.Namespace = quiet
	w.create(plain)
	consistently(t, 2*time.Second, func() error {
		if n := len(ownConditions(w.podIn(quiet, plain.Name))); n != 0 {
			return fmt.Errorf("pod in a namespace without injection got %d conditions", n)
		}
		return nil
	})
}

// TestOSMFormatsAreRead feeds pods injected by OSM v0.x (seed 001's `sh -c` chain) and v1.2 (the
// iptables-restore here-document) and checks both in sync, then both drifted by meaning.
func TestOSMFormatsAreRead(t *testing.T) {
	w := newWorld(t, "osmformats", func(s *configv1alpha2.MeshConfigSpec) {
		s.Traffic.OutboundIPRangeExclusionList = []string{"10.0.0.0/8"}
		s.Traffic.OutboundPortExclusionList = []int32{6379, 7070}
		s.Traffic.InboundPortExclusionList = []int32{9090}
	})
	h := startManager(t, w.mesh)
	v0 := w.create(w.osmPod("legacy", "a", fixture(t, "seed001-basic.sh")), initExited(0, "Completed"))
	v12 := w.create(w.osmPod("modern", "a", fixture(t, "osm-v12-heredoc.sh")), initExited(0, "Completed"))

	w.condition(v12.Name, conditions.PodExclusionsInSync, condTrue, conditions.InSync)
	c := w.condition(v0.Name, conditions.PodExclusionsInSync, condFalse, conditions.Drifted)
	for _, want := range []string{"outbound IP range 10.0.0.0/8", "outbound port 6379", "outbound port 7070", "inbound port 9090", "osm-init rules"} {
		if !strings.Contains(c.Message, want) {
			t.Errorf("v0 message %q lacks %q", c.Message, want)
		}
	}

	// Now a MeshConfig that matches the v0 pod (no exclusions) and not the v1.2 one.
	w.updateMeshConfig(func(s *configv1alpha2.MeshConfigSpec) { s.Traffic = configv1alpha2.TrafficSpec{} })
	w.condition(v0.Name, conditions.PodExclusionsInSync, condTrue, conditions.InSync)
	c = w.condition(v12.Name, conditions.PodExclusionsInSync, condFalse, conditions.Drifted)
	eventually(t, 10*time.Second, func() error {
		// v0 drifted then came back; v1.2 was in sync then drifted.
		if h.events.Count(conditions.InSync) != 1 || h.events.Count(conditions.Drifted) != 2 {
			return fmt.Errorf("events: %v", h.events.Events())
		}
		return nil
	})
	if !strings.Contains(c.Message, "outbound IP range 10.0.0.0/8 is in the osm-init rules but neither") {
		t.Errorf("v1.2 message %q", c.Message)
	}
}

// TestKubeletConditionsSurvive checks the status patch is a merge by condition type: the
// kubelet's conditions are untouched by our writes, even when the kubelet changes one of them
// between our reads and writes (our cache does not even hold them).
func TestKubeletConditionsSurvive(t *testing.T) {
	w := newWorld(t, "kubelet", nil)
	startManager(t, w.mesh)
	pod := w.create(w.injected(w.appPod("web", "a")), initExited(0, "Completed"))
	w.condition(pod.Name, conditions.PodExclusionsInSync, condTrue, conditions.InSync)
	assertKubeletConditions(t, w.pod(pod.Name), kubeletConditions())

	// The kubelet marks the pod unready; then a MeshConfig change makes us write again.
	p := w.pod(pod.Name)
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodReady {
			p.Status.Conditions[i].Status, p.Status.Conditions[i].Reason = condFalse, "ContainersNotReady"
		}
	}
	must(t, env.Client.Status().Update(ctx, p))
	want := kubeletConditions()
	for i := range want {
		if want[i].Type == corev1.PodReady {
			want[i].Status, want[i].Reason = condFalse, "ContainersNotReady"
		}
	}
	w.updateMeshConfig(func(s *configv1alpha2.MeshConfigSpec) { s.Traffic.OutboundPortExclusionList = []int32{25} })
	w.condition(pod.Name, conditions.PodExclusionsInSync, condFalse, conditions.Drifted)
	assertKubeletConditions(t, w.pod(pod.Name), want)
}

func assertKubeletConditions(t *testing.T, pod *corev1.Pod, want []corev1.PodCondition) {
	t.Helper()
	for _, k := range want {
		got := drift.Find(pod.Status.Conditions, k.Type)
		if got == nil {
			t.Errorf("kubelet condition %s was dropped; conditions now %v", k.Type, pod.Status.Conditions)
			continue
		}
		if got.Status != k.Status || got.Reason != k.Reason || !got.LastTransitionTime.Equal(&k.LastTransitionTime) {
			t.Errorf("kubelet condition %s changed: got %+v, want %+v", k.Type, *got, k)
		}
	}
}

func ownConditions(pod *corev1.Pod) []corev1.PodCondition {
	return drift.OwnedConditions(pod.Status.Conditions)
}

// TestPodsOfAnotherMeshAreLeftAlone runs the operator of one mesh next to pods of another mesh
// that carry conditions written by that mesh's operator: it must neither judge nor rewrite them.
func TestPodsOfAnotherMeshAreLeftAlone(t *testing.T) {
	mine := newWorld(t, "meshone", nil)
	theirs := newWorld(t, "meshtwo", func(s *configv1alpha2.MeshConfigSpec) { s.Traffic.OutboundPortExclusionList = []int32{1234} })
	foreign := theirs.create(theirs.injected(theirs.appPod("other", "a")), initExited(0, "Completed"), func(p *corev1.Pod) {
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: conditions.PodExclusionsInSync,
			Status: condTrue, Reason: conditions.InSync, Message: "written by the other mesh's operator"})
	})
	h := startManager(t, mine.mesh)
	own := mine.create(mine.injected(mine.appPod("web", "a")), initExited(0, "Completed"))
	mine.condition(own.Name, conditions.PodExclusionsInSync, condTrue, conditions.InSync)
	consistently(t, 2*time.Second, func() error {
		conds := ownConditions(theirs.pod(foreign.Name))
		if len(conds) != 1 || conds[0].Message != "written by the other mesh's operator" {
			return fmt.Errorf("the other mesh's pod was rewritten: %+v", conds)
		}
		return nil
	})
	if writes, _ := h.client.Writes(); writes["*v1.Pod/status"] != 1 {
		t.Errorf("pod writes %v, want exactly one (our own pod)", writes)
	}
}
