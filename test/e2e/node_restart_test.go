//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	"github.com/meshkeeper/meshkeeper/internal/drift"
	"github.com/meshkeeper/meshkeeper/internal/injection"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
	"github.com/meshkeeper/meshkeeper/internal/testenv"
	"github.com/meshkeeper/meshkeeper/test/e2e/e2eutil"
)

// restartNodeScript restarts the kubelet and containerd and kills every container, as a power
// loss would (hack/cluster/restart-node.sh says what is kept and what is lost).
const restartNodeScript = "hack/cluster/restart-node.sh"

// The node restarts under meshed pods, two of them drifted and two in sync, twice: once with
// the operator spared, standing in for an operator on another node that watches every status
// the kubelet writes while it starts the pods over, and once with everything on the node
// killed, the operator included. Each time the kubelet recreates every pod's sandbox and runs
// meshkeeper-init again in the new network namespace.
//
// Asserted each time: no pod is replaced, each gets a new sandbox (new network namespace) and
// its init container ran once more; meshkeeper's conditions never claim a failure and
// SidecarInjected and ExclusionsInSync keep their verdict and lastTransitionTime in every pod
// version written meanwhile, as does the verdict meshkeeper computes from each of those
// versions; RedirectionApplied at most goes Unknown (InitContainerPending) while the init
// container runs again and back to Applied; no meshkeeper event is added; the MeshConfig's
// PodsInSync does not move; every rule of the pod's own init container is in the new
// namespace exactly once, and still exactly once after meshkeeper-init ran a second time in
// that namespace. Times to node Ready, pods Ready and conditions converged are logged for
// docs/reliability.md (case 6), not asserted.
func TestNodeRestart(t *testing.T) {
	if k.mode != "inject" {
		t.Skipf("%s mode injects no pod: the rules and verdicts of meshkeeper-init need inject mode", k.mode)
	}
	if os.Getuid() != 0 {
		t.Skip("restarting the node needs root")
	}
	t0 := time.Now()
	initBin := filepath.Join(t.TempDir(), "meshkeeper-init")
	k.Run(t, "go", "build", "-o", initBin, "./cmd/meshkeeper-init")
	t.Cleanup(func() { nodeBack(t) })

	ns := testNamespace(t, "e2e-node", true)
	inSyncDeployment(t, ns, "drifted", nil)
	excludeRange(t, driftRange)
	e2eutil.Eventually(t, "the first Deployment's pods "+conditions.PodExclusionsInSync+"=False/"+conditions.Drifted, 60*time.Second, func() (bool, string) {
		return k.PodsAll(t, ns, "drifted", 2, "", drifted(driftRange))
	})
	inSyncDeployment(t, ns, "synced", nil)
	t.Logf("4 meshed pods, 2 drifted and 2 in sync, after %s", time.Since(t0).Round(10*time.Millisecond))

	w := newWatcher(t)
	for _, phase := range []struct {
		name  string
		args  []string
		spare bool
	}{
		{"operator-on-another-node", []string{"--spare", operatorNamespace}, true},
		{"whole-node", nil, false},
	} {
		t.Run(phase.name, func(t *testing.T) {
			restartNodeUnder(t, w, ns, phase.args, phase.spare, initBin)
		})
	}
}

// podState is what a node restart must keep or change in one pod.
type podState struct {
	uid          string
	conds        map[corev1.PodConditionType]corev1.PodCondition
	initRestarts int32
	sandbox      string
	netns        string
}

func restartNodeUnder(t *testing.T, w *watcher, ns string, args []string, spared bool, initBin string) {
	mc := meshConfig(t)
	var nsObj corev1.Namespace
	if err := k.c.Get(e2eutil.Ctx(t), client.ObjectKey{Name: ns}, &nsObj); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, ns)
	eventsBefore := meshkeeperEvents(t, ns)
	podsInSync := podsInSyncCondition(t)
	operatorRestarts := restartsOf(t, operatorNamespace)
	lease := managerLease(t)
	t.Logf("load before: %s (%d cores)", testenv.LoadAverage(), runtime.NumCPU())

	rec := w.record(t, ns)
	t.Cleanup(func() { rec.stop() })
	start := time.Now()
	out, err := runRestart(args)
	scriptDone := time.Since(start)
	t.Logf("%s %s (%s):\n%s", restartNodeScript, strings.Join(args, " "), scriptDone.Round(10*time.Millisecond), out)
	if err != nil {
		t.Fatal(err)
	}

	// Node Ready as reported by the restarted kubelet: its heartbeat is newer than anything the
	// stopped one can have posted (it was stopped seconds before the script returned).
	fresh := start.Add(scriptDone - 3*time.Second).Truncate(time.Second)
	var nodeReady, podsReady time.Duration
	e2eutil.Eventually(t, "node Ready from the restarted kubelet", 120*time.Second, func() (bool, string) {
		ok, msg := nodeReadySince(t, fresh)
		if ok {
			nodeReady = time.Since(start)
		}
		return ok, msg
	})
	e2eutil.Eventually(t, "every pod Ready again, its init container run once more", 180*time.Second, func() (bool, string) {
		var msgs []string
		for _, p := range meshedPods(t, ns) {
			b, ok := before[p.Name]
			switch {
			case !ok:
				msgs = append(msgs, p.Name+": a pod that was not there before")
			case initRestarts(&p) <= b.initRestarts:
				msgs = append(msgs, fmt.Sprintf("%s: %s ran %d times", p.Name, redirect.InitContainerName, initRestarts(&p)+1))
			case !e2eutil.PodRunningReady(&p):
				msgs = append(msgs, p.Name+": not Ready")
			}
		}
		if len(msgs) == 0 {
			podsReady = time.Since(start)
		}
		return len(msgs) == 0, strings.Join(msgs, "; ")
	})
	var leader time.Duration
	if !spared {
		leader = operatorBack(t, lease).Sub(start)
		t.Logf("a restarted manager leads again %s after the restart began", leader.Round(10*time.Millisecond))
	}
	e2eutil.Eventually(t, "conditions back to their verdicts from before the restart", 60*time.Second, func() (bool, string) {
		var msgs []string
		for _, p := range meshedPods(t, ns) {
			for typ, c := range before[p.Name].conds {
				now := e2eutil.PodCondition(&p, string(typ))
				if now == nil || now.Status != c.Status || now.Reason != c.Reason {
					msgs = append(msgs, fmt.Sprintf("%s: %s %s, was %s/%s", p.Name, typ, e2eutil.DescribeCondition(now), c.Status, c.Reason))
				}
			}
		}
		return len(msgs) == 0, strings.Join(msgs, "; ")
	})
	// Late writes (the restarted manager's first pass over every pod) and the asynchronous
	// event flush have time to show.
	time.Sleep(10 * time.Second)
	versions := rec.stop()
	t.Logf("load after: %s", testenv.LoadAverage())

	lastChange := judgeVersions(t, versions, before, nsObj.ObjectMeta, mc, start)
	startedOver(t, before, snapshot(t, ns))

	eventsAfter := meshkeeperEvents(t, ns)
	for pod, n := range eventsAfter {
		if n != eventsBefore[pod] {
			t.Errorf("%s: %d meshkeeper events, %d before the restart: %v", pod, n, eventsBefore[pod], eventReasons(t, ns, pod))
		}
	}
	if got := podsInSyncCondition(t); got.Status != podsInSync.Status || got.Reason != podsInSync.Reason || !got.LastTransitionTime.Equal(&podsInSync.LastTransitionTime) {
		t.Errorf("MeshConfig %s moved: %s/%s since %s, was %s/%s since %s", conditions.PodsInSync, got.Status, got.Reason, got.LastTransitionTime, podsInSync.Status, podsInSync.Reason, podsInSync.LastTransitionTime)
	}
	if now := restartsOf(t, operatorNamespace); spared && now != operatorRestarts {
		t.Errorf("the operator was to be spared, but its containers restarted %d times (%d before)", now, operatorRestarts)
	} else if !spared && now <= operatorRestarts {
		t.Errorf("the operator's containers did not restart with the node (%d restarts)", now)
	}

	for _, p := range meshedPods(t, ns) {
		rulesOnce(t, &p, "after the restart", "")
		rulesOnce(t, &p, "after running meshkeeper-init again in the same namespace", initBin)
	}

	converged := "no condition changed"
	if lastChange > 0 {
		converged = fmt.Sprintf("last condition change %s after the restart began", lastChange.Round(10*time.Millisecond))
	}
	t.Logf("MEASURED %s: script %s, node Ready %s, pods Ready %s, operator leading %s, %s; %d meshkeeper events before and after; load %s",
		t.Name(), scriptDone.Round(10*time.Millisecond), nodeReady.Round(10*time.Millisecond), podsReady.Round(10*time.Millisecond),
		orNone(leader), converged, total(eventsAfter), testenv.LoadAverage())
}

// judgeVersions goes through every version of every pod written during the restart: the
// conditions meshkeeper wrote in it, and the verdict meshkeeper computes from its status (so
// that a state the operator did not see, or saw while down, is judged too). SidecarInjected and
// ExclusionsInSync must keep their verdict and lastTransitionTime, RedirectionApplied may only
// go Unknown (InitContainerPending) and back, nothing may read False but a drifted pod's
// ExclusionsInSync. It returns when, after start, the last condition change arrived.
func judgeVersions(t *testing.T, versions map[string][]podVersion, before map[string]podState, ns metav1.ObjectMeta, mc *configv1alpha2.MeshConfig, start time.Time) time.Duration {
	t.Helper()
	sel := injection.SelectOptions{MeshName: "osm", OperatorNamespace: operatorNamespace}
	var lastChange time.Duration
	for name, b := range before {
		vs := versions[name]
		var changes []string
		prev := b.conds
		var kubeletStates []string
		for _, v := range vs {
			for _, typ := range drift.OwnedTypes {
				c := e2eutil.PodCondition(&v.pod, string(typ))
				if c == nil {
					t.Errorf("%s at %s: %s missing", name, v.pod.ResourceVersion, typ)
					continue
				}
				if p := prev[typ]; p.Status != c.Status || p.Reason != c.Reason || !p.LastTransitionTime.Equal(&c.LastTransitionTime) {
					changes = append(changes, fmt.Sprintf("%s %s/%s", strings.TrimPrefix(string(typ), "meshkeeper.io/"), c.Status, c.Reason))
					lastChange = max(lastChange, v.at.Sub(start))
				}
				if c.Status == corev1.ConditionFalse && typ != conditions.PodExclusionsInSync {
					t.Errorf("%s at %s: %s False/%s: %s", name, v.pod.ResourceVersion, typ, c.Reason, c.Message)
				}
				if typ == conditions.PodRedirectionApplied {
					if c.Status == corev1.ConditionUnknown && c.Reason != conditions.InitContainerPending {
						t.Errorf("%s at %s: %s %s", name, v.pod.ResourceVersion, typ, e2eutil.DescribeCondition(c))
					}
					continue
				}
				if o := b.conds[typ]; o.Status != c.Status || o.Reason != c.Reason || !o.LastTransitionTime.Equal(&c.LastTransitionTime) {
					t.Errorf("%s at %s: %s %s since %s, was %s/%s since %s", name, v.pod.ResourceVersion, typ,
						e2eutil.DescribeCondition(c), c.LastTransitionTime, o.Status, o.Reason, o.LastTransitionTime)
				}
			}
			prev = map[corev1.PodConditionType]corev1.PodCondition{}
			for _, c := range drift.OwnedConditions(v.pod.Status.Conditions) {
				prev[c.Type] = c
			}

			kubeletStates = appendNew(kubeletStates, initState(&v.pod))
			in := drift.Gather(&v.pod, ns, mc, sel, time.Now())
			for _, c := range drift.Evaluate(in) {
				o := b.conds[c.Type]
				switch {
				case c.Type == conditions.PodRedirectionApplied && c.Status == corev1.ConditionFalse:
					t.Errorf("%s at %s (init container %s): meshkeeper would say %s False/%s: %s", name, v.pod.ResourceVersion, initState(&v.pod), c.Type, c.Reason, c.Message)
				case c.Type != conditions.PodRedirectionApplied && (c.Status != o.Status || c.Reason != o.Reason):
					t.Errorf("%s at %s (init container %s): meshkeeper would say %s %s/%s, was %s/%s", name, v.pod.ResourceVersion, initState(&v.pod), c.Type, c.Status, c.Reason, o.Status, o.Reason)
				}
			}
		}
		if n := len(changes); n > 2 {
			t.Errorf("%s: meshkeeper's conditions changed %d times, more than one transition there and back: %v", name, n, changes)
		}
		t.Logf("%s: %d versions written; init container as the kubelet showed it: %s; meshkeeper's changes: %v", name, len(vs), strings.Join(kubeletStates, " -> "), changes)
	}
	return lastChange
}

// startedOver checks that each pod was started over, not replaced: same pod, a new sandbox, its
// init container run exactly once more, RedirectionApplied back to Applied.
func startedOver(t *testing.T, before, after map[string]podState) {
	t.Helper()
	for name, b := range before {
		a, ok := after[name]
		switch {
		case !ok:
			t.Errorf("%s: gone after the restart", name)
			continue
		case a.uid != b.uid:
			t.Errorf("%s: replaced (uid %s, was %s): the node restart must start the same pod over", name, a.uid, b.uid)
		case a.sandbox == b.sandbox:
			t.Errorf("%s: still in sandbox %s: not recreated", name, short(a.sandbox))
		case a.initRestarts != b.initRestarts+1:
			t.Errorf("%s: %s restarted %d times, was %d: it should have run exactly once more", name, redirect.InitContainerName, a.initRestarts, b.initRestarts)
		}
		// The kernel may give the new network namespace the inode number of the old one, freed
		// with it: logged, not compared.
		t.Logf("%s: sandbox %s -> %s, network namespace %s -> %s", name, short(b.sandbox), short(a.sandbox), b.netns, a.netns)
		if r := a.conds[conditions.PodRedirectionApplied]; r.Status != corev1.ConditionTrue || r.Reason != conditions.Applied {
			t.Errorf("%s: %s %s/%s after the restart", name, conditions.PodRedirectionApplied, r.Status, r.Reason)
		}
	}
}

// managerLease is the manager's leader-election Lease.
func managerLease(t *testing.T) *coordinationv1.Lease {
	t.Helper()
	var lease coordinationv1.Lease
	if err := k.c.Get(e2eutil.Ctx(t), client.ObjectKey{Namespace: operatorNamespace, Name: e2eutil.LeaseName}, &lease); err != nil {
		t.Fatal(err)
	}
	return &lease
}

// operatorBack waits until a manager process started after the node restart leads and runs its
// pod controller, and returns when it took the Lease. Until the killed leader's Lease expires,
// its pod, restarted under the same name, is not the leader: the holder's identity carries a
// new process id.
func operatorBack(t *testing.T, before *coordinationv1.Lease) time.Time {
	t.Helper()
	var acquired time.Time
	e2eutil.Eventually(t, "a restarted manager leads and its pod controller started its workers", 3*time.Minute, func() (bool, string) {
		lease := managerLease(t)
		holder := ptr.Deref(lease.Spec.HolderIdentity, "")
		if holder == "" || holder == ptr.Deref(before.Spec.HolderIdentity, "") {
			return false, "the Lease is still held by " + holder
		}
		pod, _, _ := strings.Cut(holder, "_")
		logs, err := k.TryRun("kubectl", "logs", "-n", operatorNamespace, pod, "-c", "manager")
		if err != nil {
			return false, err.Error()
		}
		for _, line := range strings.Split(logs, "\n") {
			if strings.Contains(line, `"Starting workers"`) && strings.Contains(line, `"controller":"drift-pod"`) {
				acquired = lease.Spec.AcquireTime.Time
				return true, ""
			}
		}
		return false, pod + " leads but its pod controller has not started"
	})
	return acquired
}

// snapshot is the state of every pod of the namespace, by name.
func snapshot(t *testing.T, ns string) map[string]podState {
	t.Helper()
	s := map[string]podState{}
	for _, p := range meshedPods(t, ns) {
		s[p.Name] = stateOf(t, &p)
	}
	return s
}

func runRestart(args []string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(k.root, restartNodeScript), args...)
	cmd.Dir = k.root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w\n%s", restartNodeScript, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// nodeBack leaves the cluster as the other tests expect it: the kubelet answering (started
// again by make cluster-up when a restart failed half way) and the manager rolled out, every
// replica ready and one leading.
func nodeBack(t *testing.T) {
	if _, err := k.TryRun("curl", "-fsS", "http://127.0.0.1:10248/healthz"); err != nil {
		t.Logf("the kubelet does not answer after the node restart test: starting what is missing with hack/cluster/up.sh")
		if out, err := k.TryRun(filepath.Join(k.root, "hack", "cluster", "up.sh")); err != nil {
			t.Errorf("bringing the node back: %v\n%s", err, out)
			return
		}
	}
	if _, err := k.RollOut(); err != nil {
		t.Errorf("after the node restart test: %v", err)
	}
}

func meshConfig(t *testing.T) *configv1alpha2.MeshConfig {
	t.Helper()
	var mc configv1alpha2.MeshConfig
	if err := k.c.Get(e2eutil.Ctx(t), client.ObjectKey{Namespace: meshConfigNamespace, Name: meshConfigName}, &mc); err != nil {
		t.Fatal(err)
	}
	return &mc
}

func podsInSyncCondition(t *testing.T) metav1.Condition {
	t.Helper()
	for _, c := range meshConfig(t).Status.Conditions {
		if c.Type == conditions.PodsInSync {
			return c
		}
	}
	t.Fatalf("the MeshConfig has no %s condition", conditions.PodsInSync)
	return metav1.Condition{}
}

// meshedPods are the namespace's pods not being deleted.
func meshedPods(t *testing.T, ns string) []corev1.Pod {
	t.Helper()
	var pods corev1.PodList
	if err := k.c.List(e2eutil.Ctx(t), &pods, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	return slices.DeleteFunc(pods.Items, func(p corev1.Pod) bool { return p.DeletionTimestamp != nil })
}

func stateOf(t *testing.T, p *corev1.Pod) podState {
	t.Helper()
	s := podState{uid: string(p.UID), conds: map[corev1.PodConditionType]corev1.PodCondition{}, initRestarts: initRestarts(p)}
	for _, c := range drift.OwnedConditions(p.Status.Conditions) {
		s.conds[c.Type] = c
	}
	if len(s.conds) != len(drift.OwnedTypes) {
		t.Fatalf("pod %s: meshkeeper conditions %v, want all of %v", p.Name, s.conds, drift.OwnedTypes)
	}
	pid := k.HostPID(t, p, "app")
	var err error
	if s.netns, err = os.Readlink(filepath.Join("/proc", pid, "ns", "net")); err != nil {
		t.Fatal(err)
	}
	s.sandbox = sandboxOf(t, p)
	return s
}

// sandboxOf is the id of the sandbox the pod's app container runs in, as containerd records it.
func sandboxOf(t *testing.T, p *corev1.Pod) string {
	t.Helper()
	var id string
	for _, s := range p.Status.ContainerStatuses {
		if s.Name == "app" {
			id = strings.TrimPrefix(s.ContainerID, "containerd://")
		}
	}
	out := k.Run(t, "ctr", "--namespace", "k8s.io", "containers", "info", id)
	var info struct {
		Spec struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"Spec"`
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("containerd's record of %s: %v", id, err)
	}
	sb := info.Spec.Annotations["io.kubernetes.cri.sandbox-id"]
	if sb == "" {
		t.Fatalf("containerd's record of %s names no sandbox", id)
	}
	return sb
}

func initRestarts(p *corev1.Pod) int32 {
	for _, s := range p.Status.InitContainerStatuses {
		if s.Name == redirect.InitContainerName {
			return s.RestartCount
		}
	}
	return -1
}

// initState is the init container's status in a few words: state, restarts, last termination.
func initState(p *corev1.Pod) string {
	for _, s := range p.Status.InitContainerStatuses {
		if s.Name != redirect.InitContainerName {
			continue
		}
		var st string
		switch {
		case s.State.Running != nil:
			st = "running"
		case s.State.Terminated != nil:
			st = fmt.Sprintf("exited %d", s.State.Terminated.ExitCode)
		case s.State.Waiting != nil:
			st = "waiting(" + s.State.Waiting.Reason + ")"
		}
		if t := s.LastTerminationState.Terminated; t != nil {
			st += fmt.Sprintf(", last exited %d", t.ExitCode)
		}
		return fmt.Sprintf("%s [%d restarts]", st, s.RestartCount)
	}
	return "(no status)"
}

func appendNew(list []string, s string) []string {
	if len(list) > 0 && list[len(list)-1] == s {
		return list
	}
	return append(list, s)
}

// meshkeeperEvents counts, per pod, the events meshkeeper's controllers recorded about it.
func meshkeeperEvents(t *testing.T, ns string) map[string]int {
	t.Helper()
	n := map[string]int{}
	for _, e := range podEvents(t, ns) {
		n[e.InvolvedObject.Name] += max(1, int(e.Count), int(seriesCount(e)))
	}
	return n
}

func eventReasons(t *testing.T, ns, pod string) []string {
	var out []string
	for _, e := range podEvents(t, ns) {
		if e.InvolvedObject.Name == pod {
			out = append(out, fmt.Sprintf("%s/%s at %s", e.Type, e.Reason, e.EventTime.Format(time.RFC3339)))
		}
	}
	return out
}

func podEvents(t *testing.T, ns string) []corev1.Event {
	t.Helper()
	var evs corev1.EventList
	if err := k.c.List(e2eutil.Ctx(t), &evs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	return slices.DeleteFunc(evs.Items, func(e corev1.Event) bool {
		return e.InvolvedObject.Kind != "Pod" || !strings.HasPrefix(e.ReportingController, "meshkeeper")
	})
}

func seriesCount(e corev1.Event) int32 {
	if e.Series == nil {
		return 0
	}
	return e.Series.Count
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// restartsOf adds up the restarts of every container of the namespace's pods.
func restartsOf(t *testing.T, ns string) int32 {
	t.Helper()
	var n int32
	for _, p := range meshedPods(t, ns) {
		for _, s := range p.Status.ContainerStatuses {
			n += s.RestartCount
		}
	}
	return n
}

func nodeReadySince(t *testing.T, since time.Time) (bool, string) {
	var nodes corev1.NodeList
	if err := k.c.List(e2eutil.Ctx(t), &nodes); err != nil {
		return false, err.Error()
	}
	if len(nodes.Items) != 1 {
		return false, fmt.Sprintf("%d nodes", len(nodes.Items))
	}
	for _, c := range nodes.Items[0].Status.Conditions {
		if c.Type == corev1.NodeReady {
			ok := c.Status == corev1.ConditionTrue && !c.LastHeartbeatTime.Time.Before(since)
			return ok, fmt.Sprintf("Ready=%s (%s), heartbeat %s", c.Status, c.Reason, c.LastHeartbeatTime)
		}
	}
	return false, "no Ready condition"
}

// rulesOnce checks that the nat table of the pod's network namespace holds the rules of the
// pod's own init container, each exactly once, in every chain they touch (meshkeeper's
// OSM_PROXY_* chains and the hooks in PREROUTING and OUTPUT). With initBin set it first runs
// that program again in the namespace with the init container's arguments, as a kubelet that
// restarts the init container in place would.
func rulesOnce(t *testing.T, p *corev1.Pod, when, initBin string) {
	t.Helper()
	var initC *corev1.Container
	for i := range p.Spec.InitContainers {
		if p.Spec.InitContainers[i].Name == redirect.InitContainerName {
			initC = &p.Spec.InitContainers[i]
		}
	}
	if initC == nil {
		t.Fatalf("%s: no %s", p.Name, redirect.InitContainerName)
	}
	want, err := redirect.ParseContainer(redirect.Container{Name: initC.Name, Command: initC.Command, Args: initC.Args})
	if err != nil {
		t.Fatalf("%s: the init container's rules: %v", p.Name, err)
	}
	pid := k.HostPID(t, p, "app")
	if initBin != "" {
		if out, err := k.TryRun("nsenter", append([]string{"-t", pid, "-n", initBin}, initC.Args...)...); err != nil {
			t.Fatalf("%s: meshkeeper-init again: %v\n%s", p.Name, err, out)
		}
	}
	for _, fam := range []struct {
		family redirect.Family
		saves  []string
		want   *redirect.Ruleset
	}{
		{redirect.IPv4, []string{"iptables-save", "iptables-legacy-save"}, want.IPv4},
		{redirect.IPv6, []string{"ip6tables-save", "ip6tables-legacy-save"}, want.IPv6},
	} {
		if fam.want == nil {
			continue
		}
		text, tool := natTable(t, pid, fam.saves)
		if text == "" {
			if fam.family == redirect.IPv6 && !podHasIPv6(t, pid) {
				continue
			}
			t.Errorf("%s %s: no meshkeeper rules in the pod's network namespace", p.Name, fam.family)
			continue
		}
		got, err := redirect.Parse([]byte(text))
		if err != nil {
			t.Fatalf("%s %s: parsing %s output: %v\n%s", p.Name, fam.family, tool, err, text)
		}
		have := got.IPv4
		if fam.family == redirect.IPv6 {
			have = got.IPv6
		}
		for _, ch := range fam.want.Chains {
			var h []string
			if c := have.Chain(ch.Name); c != nil {
				h = ruleStrings(c.Rules)
			}
			w := ruleStrings(ch.Rules)
			if !slices.Equal(w, h) {
				t.Errorf("%s %s %s: chain %s is not the init container's rules once:\n got %q\nwant %q", p.Name, fam.family, when, ch.Name, h, w)
			}
		}
		t.Logf("%s %s %s: %d rules in %d chains, each once (%s)", p.Name, fam.family, when, fam.want.RuleCount(), len(fam.want.Chains), tool)
	}
}

func short(id string) string { return id[:min(12, len(id))] }

func orNone(d time.Duration) string {
	if d == 0 {
		return "(not restarted)"
	}
	return d.Round(10 * time.Millisecond).String()
}

// watcher records every version of a namespace's pods the API server sends, with the time it
// arrived, so that conditions can be judged in each state the kubelet and the operator wrote,
// not only in the ones a poll happens to see.
type watcher struct {
	cs *kubernetes.Clientset
}

type podVersion struct {
	pod corev1.Pod
	at  time.Time
}

type recording struct {
	mu       sync.Mutex
	versions map[string][]podVersion
	seen     map[string]bool
	cancel   context.CancelFunc
	done     chan struct{}
	stopped  sync.Once
}

func newWatcher(t *testing.T) *watcher {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv("KUBECONFIG"))
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &watcher{cs: cs}
}

func (w *watcher) record(t *testing.T, ns string) *recording {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &recording{versions: map[string][]podVersion{}, seen: map[string]bool{}, cancel: cancel, done: make(chan struct{})}
	pods := w.cs.CoreV1().Pods(ns)
	list, err := pods.List(ctx, metav1.ListOptions{})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	for i := range list.Items {
		r.add(&list.Items[i])
	}
	go func() {
		defer close(r.done)
		rv := list.ResourceVersion
		for ctx.Err() == nil {
			wi, err := pods.Watch(ctx, metav1.ListOptions{ResourceVersion: rv})
			if err != nil {
				time.Sleep(200 * time.Millisecond)
				continue
			}
			for ev := range wi.ResultChan() {
				if ev.Type == watch.Error {
					// Too old a version (410 Gone): start again from the current state.
					rv = ""
					continue
				}
				p, ok := ev.Object.(*corev1.Pod)
				if !ok || (ev.Type != watch.Added && ev.Type != watch.Modified) {
					continue
				}
				r.add(p)
				rv = p.ResourceVersion
			}
			wi.Stop()
			time.Sleep(100 * time.Millisecond)
		}
	}()
	return r
}

func (r *recording) add(p *corev1.Pod) {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := p.Name + "@" + p.ResourceVersion
	if r.seen[key] || p.DeletionTimestamp != nil {
		return
	}
	r.seen[key] = true
	r.versions[p.Name] = append(r.versions[p.Name], podVersion{pod: *p.DeepCopy(), at: time.Now()})
}

// stop ends the recording and returns each pod's versions in the order they arrived.
func (r *recording) stop() map[string][]podVersion {
	r.stopped.Do(func() {
		r.cancel()
		<-r.done
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.versions
}
