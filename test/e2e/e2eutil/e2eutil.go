//go:build e2e

package e2eutil

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshkeeper/meshkeeper/api/scheme"
)

const (
	// OperatorNamespace and ManagerDeployment are where config/ deploys the manager.
	OperatorNamespace = "meshkeeper-system"
	ManagerDeployment = "meshkeeper-controller-manager"
	// LeaseName is the manager's leader-election Lease (--leader-election-id).
	LeaseName = "meshkeeper.meshkeeper.io"
	// managerSelector selects the manager's pods.
	managerLabel, managerLabelValue = "control-plane", "controller-manager"
)

// Cluster is the real-node cluster of KUBECONFIG, seen from the repository at Root.
type Cluster struct {
	C    client.Client
	Root string
	// Name prefixes what the suite prints ("e2e", "e2e/osm").
	Name string
}

// New connects to KUBECONFIG's cluster; root is the repository root relative to the caller's
// package directory ("../.." for test/e2e).
func New(name, root string) (*Cluster, error) {
	if os.Getenv("KUBECONFIG") == "" {
		return nil, fmt.Errorf("KUBECONFIG is not set; run `make e2e` or `make e2e-osm` (after `make cluster-up`)")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv("KUBECONFIG"))
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	return &Cluster{C: c, Root: abs, Name: name}, nil
}

// TryRun runs a command from the repository root and returns its standard output; the error
// carries the command line and both outputs.
func (k *Cluster) TryRun(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = k.Root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w\n%s%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// Run is TryRun that fails the test.
func (k *Cluster) Run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := k.TryRun(name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Kubectl runs kubectl with args and fails the test on an error.
func (k *Cluster) Kubectl(t *testing.T, args ...string) string {
	t.Helper()
	return k.Run(t, "kubectl", args...)
}

// Eventually polls cond every half second until it returns true or timeout passes; the last
// message cond gave is reported on failure. The time it took is logged, never asserted.
func Eventually(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	t0 := time.Now()
	deadline := t0.Add(timeout)
	for {
		ok, msg := cond()
		if ok {
			t.Logf("%s: after %s", what, time.Since(t0).Round(10*time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s: %s", what, timeout, msg)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// Ctx is a context for one API call of a test, cancelled when the test ends.
func Ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// PodCondition is the condition of the given type on a pod, nil when it has none.
func PodCondition(p *corev1.Pod, typ string) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if string(p.Status.Conditions[i].Type) == typ {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// DescribeCondition prints a condition as status/reason: message.
func DescribeCondition(c *corev1.PodCondition) string {
	if c == nil {
		return "(none)"
	}
	return fmt.Sprintf("%s/%s: %s", c.Status, c.Reason, c.Message)
}

// PodRunningReady reports whether the pod runs and the kubelet calls it Ready.
func PodRunningReady(p *corev1.Pod) bool {
	c := PodCondition(p, string(corev1.PodReady))
	return p.Status.Phase == corev1.PodRunning && c != nil && c.Status == corev1.ConditionTrue
}

// HostPID is the host pid of a running container of a pod, found through containerd: the pod's
// network namespace is that process's.
func (k *Cluster) HostPID(t *testing.T, p *corev1.Pod, container string) string {
	t.Helper()
	var id string
	for _, s := range p.Status.ContainerStatuses {
		if s.Name == container {
			id = strings.TrimPrefix(s.ContainerID, "containerd://")
		}
	}
	if id == "" {
		t.Fatalf("pod %s/%s: container %s has no ID", p.Namespace, p.Name, container)
	}
	out := k.Run(t, "ctr", "--namespace", "k8s.io", "tasks", "ls")
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == id && f[2] == "RUNNING" {
			return f[1]
		}
	}
	t.Fatalf("container %s (%s) is not a running containerd task:\n%s", container, id, out)
	return ""
}

// ImageID is the image ID (the digest of its configuration) of an archive written by
// hack/imagebuild, as the kubelet reports it in a container status.
func (k *Cluster) ImageID(name string) (string, error) {
	f, err := os.Open(filepath.Join(k.Root, "bin", "images", name+".tar"))
	if err != nil {
		return "", fmt.Errorf("image archive: %w (run hack/cluster/images.sh)", err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return "", fmt.Errorf("%s.tar has no manifest.json", name)
		}
		if err != nil {
			return "", err
		}
		if h.Name != "manifest.json" {
			continue
		}
		var m []struct{ Config string }
		if err := json.NewDecoder(tr).Decode(&m); err != nil || len(m) != 1 {
			return "", fmt.Errorf("%s.tar: manifest.json: %v", name, err)
		}
		return "sha256:" + strings.TrimSuffix(m[0].Config, ".json"), nil
	}
}

// RollOut waits for the manager's rollout and until a running manager pod holds the leader
// Lease: Ready pods serve the webhooks at once, but only the leader runs the controllers. It
// returns the leader's name. A pod running an older build of the image than the archive in
// bin/images (nothing is pulled and the tag stays "dev") is restarted first, before waiting:
// an older build that never turns Ready would otherwise hold the rollout until it times out.
func (k *Cluster) RollOut() (string, error) {
	stale, err := k.staleManagerPod()
	if err != nil {
		return "", err
	}
	if stale != "" {
		fmt.Printf("%s: %s: restarting the manager\n", k.Name, stale)
		if _, err := k.TryRun("kubectl", "rollout", "restart", "deployment/"+ManagerDeployment, "-n", OperatorNamespace); err != nil {
			return "", err
		}
	}
	if _, err := k.TryRun("kubectl", "rollout", "status", "deployment/"+ManagerDeployment, "-n", OperatorNamespace, "--timeout=170s"); err != nil {
		return "", fmt.Errorf("%w\n%s", err, k.whyNotRolledOut())
	}
	return k.AwaitLeader(2 * time.Minute)
}

// staleManagerPod names a manager pod that runs another build of the manager image than
// bin/images holds, "" when there is none. Pods whose container has not started yet run the
// image containerd holds now.
func (k *Cluster) staleManagerPod() (string, error) {
	id, err := k.ImageID("manager")
	if err != nil {
		return "", err
	}
	var pods corev1.PodList
	if err := k.C.List(context.Background(), &pods, client.InNamespace(OperatorNamespace), client.MatchingLabels{managerLabel: managerLabelValue}); err != nil {
		return "", err
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && len(p.Status.ContainerStatuses) > 0 && p.Status.ContainerStatuses[0].ImageID != "" &&
			p.Status.ContainerStatuses[0].ImageID != id {
			return fmt.Sprintf("pod %s runs %s, the image is now %s", p.Name, p.Status.ContainerStatuses[0].ImageID, id), nil
		}
	}
	return "", nil
}

// whyNotRolledOut describes the manager's pods for a rollout that did not finish: each pod's
// phase and Ready condition, and the last lines of the log of those not Ready, so that the end
// of a CI log says why. The whole logs go to .cluster/log/<Name>-rollout.
func (k *Cluster) whyNotRolledOut() string {
	var pods corev1.PodList
	if err := k.C.List(context.Background(), &pods, client.InNamespace(OperatorNamespace), client.MatchingLabels{managerLabel: managerLabelValue}); err != nil {
		return "listing the manager's pods: " + err.Error()
	}
	dir := filepath.Join(k.Root, ".cluster", "log", strings.ReplaceAll(k.Name, "/", "-")+"-rollout")
	_ = os.MkdirAll(dir, 0o755)
	var b strings.Builder
	for i := range pods.Items {
		p := &pods.Items[i]
		fmt.Fprintf(&b, "pod %s: %s, %s\n", p.Name, p.Status.Phase, DescribeCondition(PodCondition(p, string(corev1.PodReady))))
		log, err := k.TryRun("kubectl", "logs", "-n", OperatorNamespace, p.Name, "--all-containers")
		if err != nil {
			fmt.Fprintf(&b, "  logs: %v\n", err)
			continue
		}
		_ = os.WriteFile(filepath.Join(dir, p.Name+".log"), []byte(log), 0o644)
		if PodRunningReady(p) {
			continue
		}
		lines := strings.Split(strings.TrimSpace(log), "\n")
		for _, l := range lines[max(0, len(lines)-15):] {
			fmt.Fprintf(&b, "  %s\n", l)
		}
	}
	if events, err := k.TryRun("kubectl", "get", "events", "-n", OperatorNamespace, "--sort-by=.lastTimestamp"); err == nil {
		_ = os.WriteFile(filepath.Join(dir, "events.txt"), []byte(events), 0o644)
	}
	fmt.Fprintf(&b, "whole logs and events: %s", dir)
	return b.String()
}

// AwaitLeader waits until the leader-election Lease is held by a running manager pod that is
// not being deleted, and returns that pod's name.
func (k *Cluster) AwaitLeader(timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		holder, why := k.currentLeader()
		if holder != "" {
			return holder, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no manager pod leads after %s: %s", timeout, why)
		}
		time.Sleep(time.Second)
	}
}

func (k *Cluster) currentLeader() (pod, why string) {
	c := context.Background()
	var lease coordinationv1.Lease
	if err := k.C.Get(c, client.ObjectKey{Namespace: OperatorNamespace, Name: LeaseName}, &lease); err != nil {
		return "", err.Error()
	}
	holder := ""
	if lease.Spec.HolderIdentity != nil {
		holder = *lease.Spec.HolderIdentity
	}
	var pods corev1.PodList
	if err := k.C.List(c, &pods, client.InNamespace(OperatorNamespace), client.MatchingLabels{managerLabel: managerLabelValue}); err != nil {
		return "", err.Error()
	}
	for _, p := range pods.Items {
		// controller-runtime's identity is "<hostname>_<uuid>", and a pod's hostname is its name.
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && strings.HasPrefix(holder, p.Name+"_") {
			return p.Name, ""
		}
	}
	return "", fmt.Sprintf("the Lease is held by %q, not by a running manager pod", holder)
}

// DeploymentPods lists the pods labelled app=<app> in ns that are not being deleted.
func (k *Cluster) DeploymentPods(t *testing.T, ns, app string) []corev1.Pod {
	t.Helper()
	var pods corev1.PodList
	if err := k.C.List(Ctx(t), &pods, client.InNamespace(ns), client.MatchingLabels{"app": app}); err != nil {
		t.Fatal(err)
	}
	var live []corev1.Pod
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			live = append(live, p)
		}
	}
	return live
}

// PodsAll reports whether exactly want live pods of the Deployment are there, none from the
// ReplicaSet notHash names (when not empty), and each satisfies ok (which describes the pod
// otherwise); the message says what is missing. For Eventually.
func (k *Cluster) PodsAll(t *testing.T, ns, app string, want int, notHash string, ok func(p *corev1.Pod) (bool, string)) (bool, string) {
	pods := k.DeploymentPods(t, ns, app)
	var msgs []string
	n := 0
	for i := range pods {
		p := &pods[i]
		if notHash != "" && p.Labels[appsv1.DefaultDeploymentUniqueLabelKey] == notHash {
			msgs = append(msgs, p.Name+": still from the old ReplicaSet")
			continue
		}
		n++
		if good, why := ok(p); !good {
			msgs = append(msgs, p.Name+": "+why)
		}
	}
	if n != want {
		msgs = append(msgs, fmt.Sprintf("%d pods, want %d", n, want))
	}
	return len(msgs) == 0, strings.Join(msgs, "; ")
}
