package drift

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	"github.com/meshkeeper/meshkeeper/internal/injection"
	"github.com/meshkeeper/meshkeeper/internal/istio"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
	"github.com/meshkeeper/meshkeeper/internal/text"
)

// Check judges one aspect of a pod.
type Check func(Input) Verdict

// Verdict is a check's answer, in the terms of the condition it sets: True (the aspect holds),
// False (it is broken) or Unknown (cannot tell yet), a reason from the vocabulary in
// api/conditions and a message for people. The check decides the status itself; the vocabulary
// documents it and tests hold the two together.
type Verdict struct {
	Status  corev1.ConditionStatus
	Reason  string
	Message string
	// Rerun marks an Unknown that only says the init container is running again after it
	// succeeded, as the kubelet does when it recreates a pod's sandbox (a node restart, a lost
	// sandbox). It applies the rules it applied before, so the checks that judge those rules go
	// on judging them: turning them Unknown for the second of the re-run would move their
	// lastTransitionTime, tell a drifted pod's Drifted event again and, on a node full of
	// drifted pods, make the MeshConfig report them all in sync until the kubelet is done.
	Rerun bool
}

// Failed reports whether the aspect is known to be broken.
func (v Verdict) Failed() bool { return v.Status == corev1.ConditionFalse }

func verdictTrue(reason, message string) Verdict {
	return Verdict{Status: corev1.ConditionTrue, Reason: reason, Message: message}
}

func verdictFalse(reason, message string) Verdict {
	return Verdict{Status: corev1.ConditionFalse, Reason: reason, Message: message}
}

func verdictUnknown(reason, message string) Verdict {
	return Verdict{Status: corev1.ConditionUnknown, Reason: reason, Message: message}
}

// verdictRerun is the Unknown of an init container running again after a successful run.
func verdictRerun(message string) Verdict {
	return Verdict{Status: corev1.ConditionUnknown, Reason: conditions.InitContainerPending, Message: message, Rerun: true}
}

// HasSidecar reports whether the pod carries the proxy container.
func HasSidecar(pod *corev1.Pod) bool {
	return findContainer(pod.Spec.Containers, injection.SidecarName) != nil
}

// RedirectionInitContainer returns the init container that installs the rules: ours, OSM's for
// pods admitted before the migration, or Istio's (istio-init, or istio-validation where
// istio-cni installs them).
func RedirectionInitContainer(pod *corev1.Pod) *corev1.Container {
	if c := findContainer(pod.Spec.InitContainers, redirect.InitContainerName); c != nil {
		return c
	}
	if c := findContainer(pod.Spec.InitContainers, redirect.OSMInitContainerName); c != nil {
		return c
	}
	c, _ := istio.RedirectionContainer(pod)
	return c
}

func findContainer(cs []corev1.Container, name string) *corev1.Container {
	for i := range cs {
		if cs[i].Name == name {
			return &cs[i]
		}
	}
	return nil
}

func initStatus(pod *corev1.Pod, name string) *corev1.ContainerStatus {
	for i := range pod.Status.InitContainerStatuses {
		if pod.Status.InitContainerStatuses[i].Name == name {
			return &pod.Status.InitContainerStatuses[i]
		}
	}
	return nil
}

// CheckSidecarInjected compares the pod's containers with what the injector would decide for it
// today. A pod without the sidecar that should have one was created before its namespace joined
// the mesh or while the injector was unavailable; only a new pod fixes that.
func CheckSidecarInjected(in Input) Verdict {
	if in.Istio != nil {
		return checkIstioSidecarInjected(in)
	}
	pod := in.Pod
	if HasSidecar(pod) {
		return verdictTrue(conditions.Injected, fmt.Sprintf("pod carries the %s sidecar", injection.SidecarName))
	}
	ns := &corev1.Namespace{ObjectMeta: in.Namespace}
	decision, err := injection.Select(ns, pod, in.Selection)
	switch {
	case err != nil:
		return verdictFalse(conditions.InjectionDisabled, fmt.Sprintf("pod has no sidecar and its injection setting is invalid: %v", err))
	case decision.Inject:
		return verdictFalse(conditions.SidecarMissing, fmt.Sprintf("pod has no %s sidecar although %s, so its traffic bypasses the mesh; restart it to have it injected: %s",
			injection.SidecarName, decision.Reason, Action(pod)))
	case pod.Spec.HostNetwork:
		return verdictFalse(conditions.HostNetwork, "pod uses the host network and is never injected")
	case !injection.InMesh(&corev1.Namespace{ObjectMeta: in.Namespace}, in.Selection.MeshName):
		return verdictFalse(conditions.NotMeshed, "pod is not meshed: "+decision.Reason)
	default:
		return verdictFalse(conditions.InjectionDisabled, "pod is not meshed: "+decision.Reason)
	}
}

// waitingBeforeFirstRun lists the waiting reasons the kubelet uses before a container has had a
// chance to run; any other waiting reason (image pull errors, config errors, back-off) means the
// pod is stuck.
var waitingBeforeFirstRun = map[string]bool{"": true, "PodInitializing": true, "ContainerCreating": true}

// CheckRedirectionApplied reads the init container's status the way `kubectl describe pod` shows
// it: terminated with exit code 0 means the rules are in place.
func CheckRedirectionApplied(in Input) Verdict {
	if in.Istio != nil {
		return checkIstioRedirectionApplied(in)
	}
	pod := in.Pod
	c := RedirectionInitContainer(pod)
	if c == nil {
		return verdictFalse(conditions.InitContainerMissing, fmt.Sprintf("pod has a sidecar but neither a %s nor an %s init container, so nothing redirects its traffic to the sidecar; restart it: %s",
			redirect.InitContainerName, redirect.OSMInitContainerName, Action(pod)))
	}
	return initContainerVerdict(pod, c)
}

// initContainerVerdict reads the status of the init container that applies (or checks) the
// rules, for any mesh.
func initContainerVerdict(pod *corev1.Pod, c *corev1.Container) Verdict {
	st := initStatus(pod, c.Name)
	if st == nil {
		return verdictUnknown(conditions.InitContainerPending, fmt.Sprintf("init container %s has not started yet", c.Name))
	}
	switch {
	case st.State.Terminated != nil && st.State.Terminated.ExitCode == 0:
		return verdictTrue(conditions.Applied, fmt.Sprintf("init container %s exited with code 0", c.Name))
	case st.State.Terminated != nil:
		return verdictFalse(conditions.InitContainerFailed, fmt.Sprintf("init container %s %s; inspect it with: kubectl logs %s -n %s -c %s",
			c.Name, describeTermination(st.State.Terminated), pod.Name, pod.Namespace, c.Name))
	case st.State.Running != nil && failedBefore(st):
		// A retry in CrashLoopBackOff: until it ends, the last attempt is the truth. Saying
		// Pending here would hide the failure and flip the condition on every retry.
		return verdictFalse(conditions.InitContainerFailed, fmt.Sprintf("init container %s is running again after it %s, %d restarts; inspect it with: kubectl logs %s -n %s -c %s --previous",
			c.Name, describeTermination(st.LastTerminationState.Terminated), st.RestartCount, pod.Name, pod.Namespace, c.Name))
	case st.State.Running != nil && succeededBefore(st):
		return verdictRerun(fmt.Sprintf("init container %s is running again; its previous run exited with code 0", c.Name))
	case st.State.Running != nil:
		return verdictUnknown(conditions.InitContainerPending, fmt.Sprintf("init container %s is running", c.Name))
	}
	var waitReason, waitMsg string
	if st.State.Waiting != nil {
		waitReason, waitMsg = st.State.Waiting.Reason, st.State.Waiting.Message
	}
	last := st.LastTerminationState.Terminated
	switch {
	case last == nil && st.RestartCount == 0 && waitingBeforeFirstRun[waitReason]:
		return verdictUnknown(conditions.InitContainerPending, fmt.Sprintf("init container %s has not run yet", c.Name))
	case succeededBefore(st) && waitingBeforeFirstRun[waitReason]:
		// Created again and not started yet: the kubelet shows such a container waiting with
		// no reason, its successful run as the last termination and one more restart. Nothing
		// failed.
		return verdictRerun(fmt.Sprintf("init container %s is about to run again; its previous run exited with code 0", c.Name))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "init container %s is waiting", c.Name)
	if waitReason != "" {
		fmt.Fprintf(&b, " (%s", waitReason)
		if waitMsg != "" {
			fmt.Fprintf(&b, ": %s", waitMsg)
		}
		b.WriteString(")")
	}
	if last != nil {
		fmt.Fprintf(&b, " after it %s", describeTermination(last))
	}
	if st.RestartCount > 0 {
		fmt.Fprintf(&b, ", %d restarts", st.RestartCount)
	}
	fmt.Fprintf(&b, "; inspect it with: kubectl describe pod %s -n %s", pod.Name, pod.Namespace)
	return verdictFalse(conditions.InitContainerFailed, b.String())
}

// failedBefore: the container's previous attempt exited with an error.
func failedBefore(st *corev1.ContainerStatus) bool {
	t := st.LastTerminationState.Terminated
	return t != nil && t.ExitCode != 0
}

// succeededBefore: the container's previous attempt exited with code 0. A completed init
// container runs again only when the kubelet starts the whole pod over, as it does after
// recreating the pod's sandbox.
func succeededBefore(st *corev1.ContainerStatus) bool {
	t := st.LastTerminationState.Terminated
	return t != nil && t.ExitCode == 0
}

func describeTermination(t *corev1.ContainerStateTerminated) string {
	s := fmt.Sprintf("exited with code %d", t.ExitCode)
	if t.Reason != "" {
		s += " (" + t.Reason + ")"
	}
	if t.Signal != 0 {
		s += fmt.Sprintf(" on signal %d", t.Signal)
	}
	if msg := lastLine(t.Message); msg != "" {
		s += ": " + text.Truncate(msg, 200)
	}
	return s
}

// lastLine is the last non-empty line of a termination message: with FallbackToLogsOnError it
// holds the container's last log lines, and meshkeeper-init (like most programs) says why it
// failed last.
func lastLine(msg string) string {
	lines := strings.Split(strings.TrimSpace(msg), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
