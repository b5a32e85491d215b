package demo

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	"github.com/meshkeeper/meshkeeper/internal/injection"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// Verdict judges one pod: ok, and a short account of what was seen.
type Verdict func(pod *corev1.Pod) (ok bool, detail string)

// PodCondition returns the pod's condition of the given type, or nil.
func PodCondition(pod *corev1.Pod, typ string) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if string(pod.Status.Conditions[i].Type) == typ {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

func describeCondition(pod *corev1.Pod, typ string) string {
	c := PodCondition(pod, typ)
	if c == nil {
		return typ + " not set yet"
	}
	return fmt.Sprintf("%s=%s (%s)", typ, c.Status, c.Reason)
}

func conditionIs(pod *corev1.Pod, typ string, status corev1.ConditionStatus, reason string) bool {
	c := PodCondition(pod, typ)
	return c != nil && c.Status == status && (reason == "" || c.Reason == reason)
}

func hasContainer(cs []corev1.Container, name string) bool {
	for i := range cs {
		if cs[i].Name == name {
			return true
		}
	}
	return false
}

// Injected checks that the injector added the sidecar and the init container that writes the
// redirection rules.
func Injected(pod *corev1.Pod) (bool, string) {
	var missing []string
	if !hasContainer(pod.Spec.Containers, injection.SidecarName) {
		missing = append(missing, "container "+injection.SidecarName)
	}
	if !hasContainer(pod.Spec.InitContainers, redirect.InitContainerName) {
		missing = append(missing, "init container "+redirect.InitContainerName)
	}
	if len(missing) > 0 {
		return false, "not injected: no " + strings.Join(missing, ", no ")
	}
	return true, fmt.Sprintf("injected: init container %s, sidecar %s", redirect.InitContainerName, injection.SidecarName)
}

// InSync checks that an injected pod runs and that all three meshkeeper conditions are True.
func InSync(pod *corev1.Pod) (bool, string) {
	if ok, detail := Injected(pod); !ok {
		return false, detail
	}
	if pod.Status.Phase != corev1.PodRunning {
		return false, fmt.Sprintf("phase %s, not Running yet", orNothing(string(pod.Status.Phase)))
	}
	var off []string
	for _, typ := range []string{conditions.PodSidecarInjected, conditions.PodRedirectionApplied, conditions.PodExclusionsInSync} {
		if !conditionIs(pod, typ, corev1.ConditionTrue, "") {
			off = append(off, describeCondition(pod, typ))
		}
	}
	if len(off) > 0 {
		return false, strings.Join(off, ", ")
	}
	return true, "Running; " + PodCondition(pod, conditions.PodExclusionsInSync).Message
}

// Drifted checks that the pod's ExclusionsInSync condition says Drifted and that its message
// names every value in mentions (the exclusions that changed).
func Drifted(mentions ...string) Verdict {
	return func(pod *corev1.Pod) (bool, string) {
		c := PodCondition(pod, conditions.PodExclusionsInSync)
		if c == nil || c.Status != corev1.ConditionFalse || c.Reason != conditions.Drifted {
			return false, describeCondition(pod, conditions.PodExclusionsInSync)
		}
		var absent []string
		for _, m := range mentions {
			if !strings.Contains(c.Message, m) {
				absent = append(absent, m)
			}
		}
		if len(absent) > 0 {
			return false, fmt.Sprintf("Drifted, but the message does not mention %s: %s", strings.Join(absent, ", "), c.Message)
		}
		return true, c.Message
	}
}

// InitFailed checks that RedirectionApplied reports the failed init container with its exit code.
func InitFailed(exitCode int) Verdict {
	return func(pod *corev1.Pod) (bool, string) {
		c := PodCondition(pod, conditions.PodRedirectionApplied)
		if c == nil || c.Status != corev1.ConditionFalse || c.Reason != conditions.InitContainerFailed {
			return false, describeCondition(pod, conditions.PodRedirectionApplied)
		}
		want := fmt.Sprintf("exited with code %d", exitCode)
		if !containsNumber(c.Message, want) {
			return false, fmt.Sprintf("InitContainerFailed, but the message does not say %q: %s", want, c.Message)
		}
		return true, c.Message
	}
}

// Every applies verdict to each pod and requires exactly want pods. On success the detail lists
// each pod's account, one per line, so the output shows what every pod reports.
func Every(pods []corev1.Pod, want int, verdict Verdict) (bool, string) {
	sorted := make([]*corev1.Pod, len(pods))
	for i := range pods {
		sorted[i] = &pods[i]
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	var lines, bad []string
	for _, p := range sorted {
		ok, detail := verdict(p)
		lines = append(lines, p.Name+": "+detail)
		if !ok {
			bad = append(bad, p.Name+": "+detail)
		}
	}
	if len(pods) != want {
		return false, fmt.Sprintf("want %d pods, found %d", want, len(pods))
	}
	if len(bad) > 0 {
		return false, strings.Join(bad, "; ")
	}
	return true, strings.Join(lines, "\n           ")
}

// MeshConfigCounts checks the pod summary in the MeshConfig's status against want.
func MeshConfigCounts(mc *configv1alpha2.MeshConfig, want configv1alpha2.PodSummary) (bool, string) {
	got := mc.Status.Pods
	text := fmt.Sprintf("status.pods: meshed=%d inSync=%d drifted=%d failed=%d", got.Meshed, got.InSync, got.Drifted, got.Failed)
	if len(mc.Status.DriftedPods) > 0 {
		text += ", driftedPods=" + strings.Join(mc.Status.DriftedPods, ",")
	}
	if got != want {
		return false, fmt.Sprintf("%s (want meshed=%d inSync=%d drifted=%d failed=%d)", text, want.Meshed, want.InSync, want.Drifted, want.Failed)
	}
	return true, text
}

// ReadyCondition checks that conds hold Ready=True written for the object's current generation.
func ReadyCondition(conds []metav1.Condition, generation int64) (bool, string) {
	c := meta.FindStatusCondition(conds, conditions.Ready)
	switch {
	case c == nil:
		return false, "no Ready condition yet"
	case c.ObservedGeneration != generation:
		return false, fmt.Sprintf("Ready condition is for generation %d, the object is at %d", c.ObservedGeneration, generation)
	case c.Status != metav1.ConditionTrue:
		return false, fmt.Sprintf("Ready=%s (%s): %s", c.Status, c.Reason, c.Message)
	}
	return true, fmt.Sprintf("Ready=True (%s)", c.Reason)
}

// HasFinding checks that findings include one with code whose message mentions mention.
func HasFinding(findings []conditions.Finding, code, mention string) (bool, string) {
	var seen []string
	for _, f := range findings {
		if f.Code == code && strings.Contains(f.Message, mention) {
			return true, fmt.Sprintf("%s %s: %s", f.Severity, f.Code, f.Message)
		}
		seen = append(seen, f.Code)
	}
	if len(seen) == 0 {
		return false, "no findings"
	}
	return false, fmt.Sprintf("no %s finding mentioning %s; findings: %s", code, mention, strings.Join(seen, ", "))
}

// containsNumber reports whether s contains prefix (which ends in a number) not followed by
// another digit, so that "code 1" does not match "code 137".
func containsNumber(s, prefix string) bool {
	for i := 0; ; {
		j := strings.Index(s[i:], prefix)
		if j < 0 {
			return false
		}
		end := i + j + len(prefix)
		if end == len(s) || s[end] < '0' || s[end] > '9' {
			return true
		}
		i = end
	}
}

// ReadyWhileDrifted checks that a MeshConfig whose pods run outdated rules is still Ready for
// its generation, and that PodsInSync carries the drift instead: GitOps tools wait on Ready, and
// pods only pick up a change when they restart.
func ReadyWhileDrifted(mc *configv1alpha2.MeshConfig) (bool, string) {
	ok, detail := ReadyCondition(mc.Status.Conditions, mc.Generation)
	if !ok {
		return false, detail
	}
	p := meta.FindStatusCondition(mc.Status.Conditions, conditions.PodsInSync)
	if p == nil || p.Status != metav1.ConditionFalse || p.Reason != conditions.Drifted {
		return false, fmt.Sprintf("%s, but PodsInSync is %v", detail, p)
	}
	return true, fmt.Sprintf("%s, PodsInSync=False (%s)", detail, p.Reason)
}
