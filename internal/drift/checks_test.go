package drift

import (
	"strings"
	"testing"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	"github.com/meshkeeper/meshkeeper/internal/injection"
	"github.com/meshkeeper/meshkeeper/internal/podtest"
)

func TestWorkloadAndAction(t *testing.T) {
	tests := []struct {
		name     string
		pod      *corev1.Pod
		want     Workload
		restart  bool
		contains string
	}{
		{"replicaset of a deployment", makePod("bookbuyer-7d9f8c-x").Deployment("bookbuyer", "7d9f8c").Obj(),
			Workload{KindDeployment, "bookbuyer", "bookbuyer"}, true, "kubectl rollout restart deployment/bookbuyer -n bookbuyer"},
		{"replicaset whose name does not end in the hash", makePod("p").Label("pod-template-hash", "abc").Owner("apps/v1", "ReplicaSet", "standalone").Obj(),
			Workload{KindReplicaSet, "standalone", "bookbuyer"}, false, "delete the pod so its ReplicaSet standalone recreates it: kubectl delete pod p -n bookbuyer"},
		{"statefulset", makePod("db-0").Owner("apps/v1", "StatefulSet", "db").Obj(),
			Workload{KindStatefulSet, "db", "bookbuyer"}, true, "kubectl rollout restart statefulset/db -n bookbuyer"},
		{"daemonset", makePod("agent-x").Owner("apps/v1", "DaemonSet", "agent").Obj(),
			Workload{KindDaemonSet, "agent", "bookbuyer"}, true, "kubectl rollout restart daemonset/agent -n bookbuyer"},
		{"job", makePod("migrate-x").Owner("batch/v1", "Job", "migrate").Obj(),
			Workload{"Job", "migrate", "bookbuyer"}, false, "kubectl delete pod migrate-x -n bookbuyer"},
		{"bare pod", makePod("debug").Obj(),
			Workload{"", "", "bookbuyer"}, false, "delete and recreate the pod from its manifest: kubectl delete pod debug -n bookbuyer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := WorkloadOf(tt.pod)
			if got != tt.want {
				t.Errorf("WorkloadOf = %+v, want %+v", got, tt.want)
			}
			if got.Restartable() != tt.restart {
				t.Errorf("Restartable = %v, want %v", got.Restartable(), tt.restart)
			}
			if a := Action(tt.pod); !strings.Contains(a, tt.contains) {
				t.Errorf("Action = %q, want it to contain %q", a, tt.contains)
			}
		})
	}
}

func TestCheckSidecarInjected(t *testing.T) {
	plainNS := metav1.ObjectMeta{Name: "bookbuyer"}
	otherMesh := meshedNamespace("bookbuyer")
	otherMesh.Labels[injection.LabelMonitoredBy] = "other"
	noInjection := meshedNamespace("bookbuyer")
	delete(noInjection.Annotations, injection.AnnotationSidecarInjection)
	tests := []struct {
		name     string
		pod      *corev1.Pod
		ns       metav1.ObjectMeta
		reason   string
		failed   bool
		contains string
	}{
		{"sidecar present", makePod("p").Sidecar().Obj(), meshedNamespace("bookbuyer"), conditions.Injected, false, "carries the envoy sidecar"},
		{"sidecar present in a namespace that left the mesh", makePod("p").Sidecar().Obj(), plainNS, conditions.Injected, false, ""},
		{"injected namespace, no sidecar", makePod("bookbuyer-7d9f8c-x").Deployment("bookbuyer", "7d9f8c").Obj(), meshedNamespace("bookbuyer"),
			conditions.SidecarMissing, true, "restart it to have it injected: kubectl rollout restart deployment/bookbuyer -n bookbuyer"},
		{"pod annotation enables injection", makePod("p").Annotate(injection.AnnotationSidecarInjection, "yes").Obj(), noInjection,
			conditions.SidecarMissing, true, "kubectl delete pod p -n bookbuyer"},
		{"pod annotation disables injection", makePod("p").Annotate(injection.AnnotationSidecarInjection, "disabled").Obj(), meshedNamespace("bookbuyer"),
			conditions.InjectionDisabled, true, "pod annotation disables injection"},
		{"namespace without injection annotation", makePod("p").Obj(), noInjection, conditions.InjectionDisabled, true, "neither the pod nor namespace"},
		{"host network", makePod("p").HostNetwork().Obj(), meshedNamespace("bookbuyer"), conditions.HostNetwork, true, "host network"},
		{"namespace not monitored", makePod("p").Obj(), plainNS, conditions.NotMeshed, true, "not labelled"},
		{"namespace of another mesh", makePod("p").Obj(), otherMesh, conditions.NotMeshed, true, "not labelled"},
		{"invalid injection annotation", makePod("p").Annotate(injection.AnnotationSidecarInjection, "sure").Obj(), meshedNamespace("bookbuyer"),
			conditions.InjectionDisabled, true, "invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Gather(tt.pod, tt.ns, meshConfig(1), testSelection, testNow)
			v := CheckSidecarInjected(in)
			documented(t, conditions.PodSidecarInjected, v)
			reason, msg, failed := v.Reason, v.Message, v.Failed()
			if reason != tt.reason || failed != tt.failed {
				t.Fatalf("got (%s, failed=%v) %q, want (%s, failed=%v)", reason, failed, msg, tt.reason, tt.failed)
			}
			if !strings.Contains(msg, tt.contains) {
				t.Errorf("message %q does not contain %q", msg, tt.contains)
			}
		})
	}
}

func TestCheckRedirectionApplied(t *testing.T) {
	seed := fixture(t, "seed001-basic.sh")
	osm := func() *podtest.PodBuilder {
		return makePod("test-58d4f8ff58-wtz4f").Namespace("test").Sidecar().OSMInit(seed)
	}
	terminated := func(code int32, reason string) corev1.ContainerState {
		return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason}}
	}
	waiting := func(reason string) corev1.ContainerState {
		return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}
	}
	tests := []struct {
		name     string
		pod      *corev1.Pod
		reason   string
		failed   bool
		contains []string
	}{
		{"seed 001: terminated, Completed, exit code 0", osm().InitDone().Obj(), conditions.Applied, false, []string{"osm-init exited with code 0"}},
		{"no status yet", osm().Obj(), conditions.InitContainerPending, false, []string{"has not started"}},
		{"waiting to start", osm().InitState(waiting("PodInitializing")).Obj(), conditions.InitContainerPending, false, []string{"has not run yet"}},
		{"running", osm().InitState(corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}).Obj(), conditions.InitContainerPending, false, []string{"is running"}},
		{"exit 1", osm().InitState(terminated(1, "Error")).Obj(), conditions.InitContainerFailed, true,
			[]string{"osm-init exited with code 1 (Error)", "kubectl logs test-58d4f8ff58-wtz4f -n test -c osm-init"}},
		{"crash loop after exit 2", osm().InitStatus(corev1.ContainerStatus{State: waiting("CrashLoopBackOff"), RestartCount: 4,
			LastTerminationState: terminated(2, "Error")}).Obj(), conditions.InitContainerFailed, true,
			[]string{"waiting (CrashLoopBackOff)", "after it exited with code 2 (Error)", "4 restarts"}},
		{"image cannot be pulled", osm().InitState(waiting("ImagePullBackOff")).Obj(), conditions.InitContainerFailed, true, []string{"ImagePullBackOff"}},
		// A new sandbox (node restart, lost sandbox) runs the completed init container again.
		{"running again after exit 0", osm().InitStatus(corev1.ContainerStatus{State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}},
			RestartCount: 1, LastTerminationState: terminated(0, "Completed")}).Obj(), conditions.InitContainerPending, false,
			[]string{"running again", "previous run exited with code 0"}},
		// Created again, not started yet: waiting without a reason, as the kubelet shows it.
		{"created again after exit 0", osm().InitStatus(corev1.ContainerStatus{State: waiting(""),
			RestartCount: 1, LastTerminationState: terminated(0, "Completed")}).Obj(), conditions.InitContainerPending, false,
			[]string{"about to run again", "previous run exited with code 0"}},
		{"stuck after exit 0", osm().InitStatus(corev1.ContainerStatus{State: waiting("CreateContainerError"),
			RestartCount: 1, LastTerminationState: terminated(0, "Completed")}).Obj(), conditions.InitContainerFailed, true,
			[]string{"waiting (CreateContainerError)", "1 restarts"}},
		{"sidecar but no init container", makePod("p").Sidecar().Obj(), conditions.InitContainerMissing, true, []string{"neither a meshkeeper-init nor an osm-init"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := CheckRedirectionApplied(gather(tt.pod, meshConfig(1)))
			documented(t, conditions.PodRedirectionApplied, v)
			reason, msg, failed := v.Reason, v.Message, v.Failed()
			if reason != tt.reason || failed != tt.failed {
				t.Fatalf("got (%s, failed=%v) %q, want (%s, failed=%v)", reason, failed, msg, tt.reason, tt.failed)
			}
			for _, c := range tt.contains {
				if !strings.Contains(msg, c) {
					t.Errorf("message %q does not contain %q", msg, c)
				}
			}
		})
	}
}

// With FallbackToLogsOnError the termination message is the log's tail: the condition quotes
// its last line, which is where meshkeeper-init says why it failed, whole characters only.
func TestDescribeTerminationQuotesTheLastLine(t *testing.T) {
	got := describeTermination(&corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error",
		Message: "meshkeeper-init: applying IPv4 rules\nmeshkeeper-init: iptables-restore: Permission denied (you must be root)\n"})
	want := "exited with code 1 (Error): meshkeeper-init: iptables-restore: Permission denied (you must be root)"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	long := describeTermination(&corev1.ContainerStateTerminated{ExitCode: 1, Message: strings.Repeat("é", 150)})
	if !utf8.ValidString(long) || !strings.HasSuffix(long, "...") {
		t.Errorf("a long message is not cut on a character boundary: %q", long)
	}
}

// A retry that is running after a failed attempt keeps the failure: reporting Pending would hide
// it from the condition and flip it on every CrashLoopBackOff retry.
func TestRunningRetryKeepsTheFailure(t *testing.T) {
	pod := makePod("test-58d4f8ff58-wtz4f").Namespace("test").Sidecar().OSMInit(fixture(t, "seed001-basic.sh")).Obj()
	pod.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "osm-init", RestartCount: 3,
		State:                corev1.ContainerState{Running: &corev1.ContainerStateRunning{}},
		LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error", Message: "iptables: Permission denied\n"}}}}
	v := CheckRedirectionApplied(Input{Pod: pod})
	reason, msg, failed := v.Reason, v.Message, v.Failed()
	if reason != conditions.InitContainerFailed || !failed {
		t.Fatalf("got %s (failed %v): %s", reason, failed, msg)
	}
	for _, want := range []string{"running again after it exited with code 1 (Error): iptables: Permission denied", "3 restarts", "--previous"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	// A first attempt that is running, or a retry after a clean exit, is still pending.
	pod.Status.InitContainerStatuses[0].LastTerminationState = corev1.ContainerState{}
	if v := CheckRedirectionApplied(Input{Pod: pod}); v.Reason != conditions.InitContainerPending {
		t.Errorf("first run: got %s", reason)
	}
}

// documented fails when a check returns a (status, reason) pair the vocabulary does not list for
// the condition type it sets: the check decides the status, the table documents it.
func documented(t *testing.T, typ string, v Verdict) {
	t.Helper()
	if !conditions.Allowed(typ, string(v.Status), v.Reason) {
		t.Errorf("%s %s/%s is not in the vocabulary (message %q)", typ, v.Status, v.Reason, v.Message)
	}
}
