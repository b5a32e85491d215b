//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	"github.com/meshkeeper/meshkeeper/controllers"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
	"github.com/meshkeeper/meshkeeper/test/e2e/e2eutil"
)

const (
	meshConfigNamespace = "osm-system"
	meshConfigName      = "osm-mesh-config"
	// driftRange is added to the MeshConfig's outbound exclusions: TEST-NET-1, reached by
	// nothing.
	driftRange = "192.0.2.0/24"
)

// describePod names a pod's init containers and every meshkeeper condition it has, so a failed
// wait says whether the pod was injected and what the operator last concluded.
func describePod(p *corev1.Pod) string {
	var inits, conds []string
	for _, c := range p.Spec.InitContainers {
		inits = append(inits, c.Name)
	}
	for i := range p.Status.Conditions {
		if c := &p.Status.Conditions[i]; strings.HasPrefix(string(c.Type), "meshkeeper.io/") {
			conds = append(conds, string(c.Type)+"="+e2eutil.DescribeCondition(c))
		}
	}
	return fmt.Sprintf("init containers %v, conditions %v", inits, conds)
}

func inSync(p *corev1.Pod) (bool, string) {
	c := e2eutil.PodCondition(p, conditions.PodExclusionsInSync)
	if !e2eutil.PodRunningReady(p) {
		return false, "not Ready (" + string(p.Status.Phase) + ")"
	}
	if c == nil || c.Status != corev1.ConditionTrue || c.Reason != conditions.InSync {
		return false, conditions.PodExclusionsInSync + " " + e2eutil.DescribeCondition(c) + "; " + describePod(p)
	}
	return true, ""
}

// inSyncDeployment creates a 2-replica Deployment of the test app in a meshed namespace and
// waits until both pods are Ready and in sync; it returns them and their ReplicaSet's hash.
func inSyncDeployment(t *testing.T, ns, app string, annotations map[string]string) ([]corev1.Pod, string) {
	t.Helper()
	replicas := int32(2)
	pod := testappPod(ns, app, plainPort)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: app, Annotations: annotations},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}},
			Template: corev1.PodTemplateSpec{ObjectMeta: pod.ObjectMeta, Spec: pod.Spec},
		},
	}
	d.Spec.Template.Namespace, d.Spec.Template.Name = "", ""
	t0 := time.Now()
	if err := k.c.Create(e2eutil.Ctx(t), d); err != nil {
		t.Fatal(err)
	}
	e2eutil.Eventually(t, "2 pods Ready and "+conditions.PodExclusionsInSync+"=True", 180*time.Second, func() (bool, string) {
		return k.PodsAll(t, ns, app, 2, "", inSync)
	})
	t.Logf("Deployment created to 2 pods Ready and in sync in %s", time.Since(t0).Round(10*time.Millisecond))
	pods := k.DeploymentPods(t, ns, app)
	return pods, pods[0].Labels[appsv1.DefaultDeploymentUniqueLabelKey]
}

// excludeRange adds cidr to the MeshConfig's outbound exclusions as a user would, and puts the
// list back when the test ends, for the other tests.
func excludeRange(t *testing.T, cidr string) {
	t.Helper()
	var mc configv1alpha2.MeshConfig
	if err := k.c.Get(e2eutil.Ctx(t), client.ObjectKey{Namespace: meshConfigNamespace, Name: meshConfigName}, &mc); err != nil {
		t.Fatal(err)
	}
	original := mc.Spec.Traffic.OutboundIPRangeExclusionList
	t.Cleanup(func() {
		b, _ := json.Marshal(map[string]any{"spec": map[string]any{"traffic": map[string]any{"outboundIPRangeExclusionList": original}}})
		if _, err := k.TryRun("kubectl", "patch", "meshconfig", meshConfigName, "-n", meshConfigNamespace, "--type=merge", "-p", string(b)); err != nil {
			t.Errorf("restoring the MeshConfig: %v", err)
		}
	})
	k.Kubectl(t, "patch", "meshconfig", meshConfigName, "-n", meshConfigNamespace, "--type=json",
		"-p", `[{"op":"add","path":"/spec/traffic/outboundIPRangeExclusionList/-","value":"`+cidr+`"}]`)
}

// drifted accepts a running pod whose exclusions are out of sync and whose message names cidr.
func drifted(cidr string) func(p *corev1.Pod) (bool, string) {
	return func(p *corev1.Pod) (bool, string) {
		c := e2eutil.PodCondition(p, conditions.PodExclusionsInSync)
		if c == nil || c.Status != corev1.ConditionFalse || c.Reason != conditions.Drifted {
			return false, e2eutil.DescribeCondition(c)
		}
		if !strings.Contains(c.Message, cidr) {
			return false, "the message does not name " + cidr + ": " + c.Message
		}
		return true, ""
	}
}

// A MeshConfig change turns the running pods of a Deployment ExclusionsInSync=False (Drifted),
// naming what changed; `kubectl rollout restart`, carried out by the real controller-manager,
// replaces them with pods that are in sync.
func TestDriftAfterMeshConfigChange(t *testing.T) {
	if k.mode != "inject" {
		t.Skipf("%s mode injects no pod: drift of pods meshkeeper injected needs inject mode", k.mode)
	}
	ns := testNamespace(t, "e2e-drift", true)
	const app = "drifter"
	before, oldHash := inSyncDeployment(t, ns, app, nil)
	excludeRange(t, driftRange)
	t1 := time.Now()
	e2eutil.Eventually(t, "both running pods "+conditions.PodExclusionsInSync+"=False/"+conditions.Drifted, 60*time.Second, func() (bool, string) {
		return k.PodsAll(t, ns, app, 2, "", drifted(driftRange))
	})
	t.Logf("MeshConfig patched to both pods Drifted in %s", time.Since(t1).Round(10*time.Millisecond))
	for _, p := range k.DeploymentPods(t, ns, app) {
		if !e2eutil.PodRunningReady(&p) {
			t.Errorf("pod %s: drifted but it should still run: %s", p.Name, p.Status.Phase)
		}
		t.Logf("pod %s: %s", p.Name, e2eutil.DescribeCondition(e2eutil.PodCondition(&p, conditions.PodExclusionsInSync)))
	}

	t2 := time.Now()
	k.Kubectl(t, "rollout", "restart", "deployment/"+app, "-n", ns)
	k.Kubectl(t, "rollout", "status", "deployment/"+app, "-n", ns, "--timeout=170s")
	t.Logf("rollout restart to rollout complete in %s", time.Since(t2).Round(10*time.Millisecond))
	e2eutil.Eventually(t, "the replaced pods "+conditions.PodExclusionsInSync+"=True/"+conditions.InSync, 60*time.Second, func() (bool, string) {
		return k.PodsAll(t, ns, app, 2, oldHash, inSync)
	})
	t.Logf("rollout restart to 2 new pods in sync in %s", time.Since(t2).Round(10*time.Millisecond))
	for _, p := range before {
		var gone corev1.Pod
		if err := k.c.Get(e2eutil.Ctx(t), client.ObjectKeyFromObject(&p), &gone); err == nil && gone.DeletionTimestamp == nil {
			t.Errorf("pod %s from before the restart is still there", p.Name)
		}
	}
}

// autoRestartRange is a second exclusion for the auto-restart test: TEST-NET-2, reached by
// nothing.
const autoRestartRange = "198.51.100.0/24"

// With meshkeeper.io/auto-restart on the Deployment, a MeshConfig change replaces its drifted pods
// without anyone running `kubectl rollout restart`: one restart for the whole workload (not one
// per pod), carried out by the real controller-manager, recorded as one event. A second change
// within the rate limit's interval leaves the pods drifted and the Deployment alone.
func TestAutoRestartAfterMeshConfigChange(t *testing.T) {
	if k.mode != "inject" {
		t.Skipf("%s mode restarts nothing: auto-restart needs inject mode", k.mode)
	}
	ns := testNamespace(t, "e2e-restart", true)
	const app = "restarter"
	before, oldHash := inSyncDeployment(t, ns, app, map[string]string{controllers.AnnotationAutoRestart: "true"})
	t0 := time.Now()
	excludeRange(t, driftRange)
	e2eutil.Eventually(t, "2 replaced pods "+conditions.PodExclusionsInSync+"=True/"+conditions.InSync+" without a manual restart", 180*time.Second, func() (bool, string) {
		return k.PodsAll(t, ns, app, 2, oldHash, inSync)
	})
	t.Logf("MeshConfig patched to 2 restarted pods in sync in %s", time.Since(t0).Round(10*time.Millisecond))
	for _, p := range before {
		var gone corev1.Pod
		if err := k.c.Get(e2eutil.Ctx(t), client.ObjectKeyFromObject(&p), &gone); err == nil && gone.DeletionTimestamp == nil {
			t.Errorf("pod %s from before the change is still there", p.Name)
		}
	}
	var d appsv1.Deployment
	if err := k.c.Get(e2eutil.Ctx(t), client.ObjectKey{Namespace: ns, Name: app}, &d); err != nil {
		t.Fatal(err)
	}
	stamp := d.Spec.Template.Annotations[controllers.AnnotationRestartedAt]
	if stamp == "" {
		t.Fatalf("the pod template has no %s annotation: the pods were replaced by something else", controllers.AnnotationRestartedAt)
	}
	restarts := func() (replicaSets, events int) {
		var rs appsv1.ReplicaSetList
		if err := k.c.List(e2eutil.Ctx(t), &rs, client.InNamespace(ns), client.MatchingLabels{"app": app}); err != nil {
			t.Fatal(err)
		}
		var evs corev1.EventList
		if err := k.c.List(e2eutil.Ctx(t), &evs, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		for _, e := range evs.Items {
			if e.Reason == controllers.EventReasonAutoRestart && e.InvolvedObject.Kind == "Deployment" && e.InvolvedObject.Name == app {
				events += max(1, int(e.Count), int(ptr.Deref(e.Series, corev1.EventSeries{}).Count))
			}
		}
		return len(rs.Items), events
	}
	// Two ReplicaSets: the original and the one restart; a restart per drifted pod would make three.
	if rs, evs := restarts(); rs != 2 || evs != 1 {
		t.Fatalf("after one MeshConfig change: %d ReplicaSets and %d %s events, want 2 and 1", rs, evs, controllers.EventReasonAutoRestart)
	}

	// A second change inside the interval: the new pods drift and stay so. The restart decision
	// is taken in the same reconcile that writes the Drifted condition, so once the pods show it
	// a restart would already have been requested.
	excludeRange(t, autoRestartRange)
	e2eutil.Eventually(t, "the restarted pods "+conditions.PodExclusionsInSync+"=False/"+conditions.Drifted, 60*time.Second, func() (bool, string) {
		return k.PodsAll(t, ns, app, 2, oldHash, drifted(autoRestartRange))
	})
	time.Sleep(3 * time.Second)
	if err := k.c.Get(e2eutil.Ctx(t), client.ObjectKey{Namespace: ns, Name: app}, &d); err != nil {
		t.Fatal(err)
	}
	if got := d.Spec.Template.Annotations[controllers.AnnotationRestartedAt]; got != stamp {
		t.Errorf("restarted again within the rate limit: %s went from %s to %s", controllers.AnnotationRestartedAt, stamp, got)
	}
	if rs, evs := restarts(); rs != 2 || evs != 1 {
		t.Errorf("after a second change within the interval: %d ReplicaSets and %d %s events, want still 2 and 1", rs, evs, controllers.EventReasonAutoRestart)
	}
}

// seccompDir is where the kubelet (default root directory) finds Localhost seccomp profiles.
const seccompDir = "/var/lib/kubelet/seccomp"

// A node-level policy that denies what meshkeeper-init needs: a seccomp profile on the node,
// named by the pod, that makes socket(2) fail with EPERM, so no iptables backend can talk to
// the kernel. The init container really runs and really fails; the pod condition carries the
// exit code the kubelet reported, and `meshkeeper diagnose pod` says the same.
func TestInitContainerFailureIsReported(t *testing.T) {
	if k.mode != "inject" {
		t.Skipf("%s mode injects no init container", k.mode)
	}
	profile := "meshkeeper-e2e-deny-socket.json"
	if err := os.MkdirAll(seccompDir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(seccompDir, profile)
	if err := os.WriteFile(path, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["socket"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(path) })

	ns := testNamespace(t, "e2e-initfail", true)
	p := testappPod(ns, "denied", plainPort)
	p.Spec.SecurityContext = &corev1.PodSecurityContext{SeccompProfile: &corev1.SeccompProfile{
		Type:             corev1.SeccompProfileTypeLocalhost,
		LocalhostProfile: &profile,
	}}
	t0 := time.Now()
	if err := k.c.Create(e2eutil.Ctx(t), p); err != nil {
		t.Fatal(err)
	}
	var term *corev1.ContainerStateTerminated
	e2eutil.Eventually(t, redirect.InitContainerName+" terminated by the kubelet", 120*time.Second, func() (bool, string) {
		var got corev1.Pod
		if err := k.c.Get(e2eutil.Ctx(t), client.ObjectKeyFromObject(p), &got); err != nil {
			return false, err.Error()
		}
		for _, s := range got.Status.InitContainerStatuses {
			if s.Name != redirect.InitContainerName {
				continue
			}
			if s.State.Terminated != nil {
				term = s.State.Terminated
			} else if s.LastTerminationState.Terminated != nil {
				term = s.LastTerminationState.Terminated
			}
		}
		b, _ := json.Marshal(got.Status.InitContainerStatuses)
		return term != nil, string(b)
	})
	if term.ExitCode == 0 {
		t.Fatalf("%s exited 0 under a profile that denies socket(2): %+v", redirect.InitContainerName, term)
	}
	t.Logf("%s exited with code %d (%s) after %s: %q", redirect.InitContainerName, term.ExitCode, term.Reason, time.Since(t0).Round(10*time.Millisecond), term.Message)

	code := fmt.Sprintf("exited with code %d", term.ExitCode)
	var cond *corev1.PodCondition
	e2eutil.Eventually(t, conditions.PodRedirectionApplied+"=False/"+conditions.InitContainerFailed, 60*time.Second, func() (bool, string) {
		var got corev1.Pod
		if err := k.c.Get(e2eutil.Ctx(t), client.ObjectKeyFromObject(p), &got); err != nil {
			return false, err.Error()
		}
		cond = e2eutil.PodCondition(&got, conditions.PodRedirectionApplied)
		if cond == nil || cond.Status != corev1.ConditionFalse || cond.Reason != conditions.InitContainerFailed {
			return false, e2eutil.DescribeCondition(cond)
		}
		return strings.Contains(cond.Message, code), "the message does not say " + code + ": " + cond.Message
	})
	t.Logf("%s: %s", conditions.PodRedirectionApplied, e2eutil.DescribeCondition(cond))
	// The condition quotes the termination message up to 200 characters.
	if last := lastLine(term.Message); len(strings.TrimSpace(term.Message)) <= 200 && last != "" && !strings.Contains(cond.Message, last) {
		t.Errorf("the condition does not carry the init container's last log line %q: %s", last, cond.Message)
	}

	// The CLI, built from the tree, run against the cluster as a user would.
	cli := filepath.Join(t.TempDir(), "meshkeeper")
	k.Run(t, "go", "build", "-o", cli, "./cmd/meshkeeper")
	// The kubelet restarts the init container with back-off; while an attempt runs, diagnose
	// rightly says it is running. Ask until it reports a finished attempt.
	var out, line string
	e2eutil.Eventually(t, "meshkeeper diagnose pod reports the failure", 60*time.Second, func() (bool, string) {
		var err error
		out, err = k.TryRun(cli, "diagnose", "pod", p.Name, "-n", ns)
		line = ""
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "init-container" {
				line = l
				if f[1] != "fail" {
					return false, l
				}
			}
		}
		if line == "" {
			return false, "no init-container check:\n" + out
		}
		if err == nil {
			return false, "exited 0 although a check failed:\n" + out
		}
		return true, ""
	})
	t.Logf("meshkeeper diagnose pod %s -n %s:\n%s", p.Name, ns, out)
	if !strings.Contains(line, redirect.InitContainerName) || !strings.Contains(line, code) {
		t.Errorf("meshkeeper diagnose pod does not say %s %s: %s", redirect.InitContainerName, code, line)
	}
	// The line the init container last logged, as the kubelet kept it, is the one diagnose quotes.
	// The init container restarts with back-off; read the log of an attempt the kubelet still has.
	var last string
	e2eutil.Eventually(t, "the log of "+redirect.InitContainerName, 30*time.Second, func() (bool, string) {
		logs, err := k.TryRun("kubectl", "logs", "-n", ns, p.Name, "-c", redirect.InitContainerName)
		if err != nil {
			return false, err.Error()
		}
		last = lastLine(logs)
		return strings.HasPrefix(last, redirect.InitContainerName+":"), logs
	})
	if !strings.Contains(last, "Permission denied") {
		t.Errorf("the init container's last log line does not show the kernel's denial: %q", last)
	}
	if !strings.Contains(line, "last log line: "+last) {
		t.Errorf("meshkeeper diagnose pod does not quote the init container's last log line %q: %s", last, line)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
