//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
)

// cluster is what every test shares: the API client, the repository root and the overlay the
// operator was deployed with.
type cluster struct {
	c       client.Client
	root    string
	overlay string
	// mode is the manager's --mode as deployed: "inject" or "audit".
	mode string
}

var k *cluster

func TestMain(m *testing.M) {
	if os.Getenv("KUBECONFIG") == "" {
		fmt.Fprintln(os.Stderr, "e2e: KUBECONFIG is not set; run `make e2e` (after `make cluster-up`)")
		os.Exit(1)
	}
	var err error
	if k, err = newCluster(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	if err = deployOperator(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: deploying the operator:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func newCluster() (*cluster, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv("KUBECONFIG"))
	if err != nil {
		return nil, err
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := configv1alpha2.AddToScheme(scheme); err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return nil, err
	}
	overlay := os.Getenv("E2E_OVERLAY")
	if overlay == "" {
		overlay = "test/e2e/deploy/injector"
	}
	return &cluster{c: c, root: root, overlay: overlay}, nil
}

// run runs a command from the repository root and returns its standard output; the test fails
// with both outputs when it exits non-zero.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := tryRun(name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return out
}

func tryRun(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = k.root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w\n%s%s", err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	return run(t, "kubectl", args...)
}

// eventually polls cond every half second until it returns true or timeout passes; the last
// message cond gave is reported on failure.
func eventually(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	t0 := time.Now()
	var msg string
	for {
		var ok bool
		ok, msg = cond()
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

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// podReady reports whether the pod runs with every container ready, describing it otherwise.
func podReady(t *testing.T, ns, name string) (bool, string) {
	var p corev1.Pod
	if err := k.c.Get(ctx(t), client.ObjectKey{Namespace: ns, Name: name}, &p); err != nil {
		return false, err.Error()
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return true, ""
		}
	}
	b, _ := json.Marshal(p.Status)
	return false, string(b)
}

// hostPID is the host pid of a running container of a pod, found through containerd (the pod's
// network namespace is that process's).
func hostPID(t *testing.T, p *corev1.Pod, container string) string {
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
	out := run(t, "ctr", "--namespace", "k8s.io", "tasks", "ls")
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == id && f[2] == "RUNNING" {
			return f[1]
		}
	}
	t.Fatalf("container %s (%s) is not a running containerd task:\n%s", container, id, out)
	return ""
}

// dumpState writes what a failed test needs to be understood into the cluster's log directory:
// the namespace's pods and events, and the operator's pods and logs (deleted with the namespace
// otherwise).
func dumpState(t *testing.T, ns string) {
	dir := filepath.Join(k.root, ".cluster", "log", "e2e-"+strings.ReplaceAll(t.Name(), "/", "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("dump: %v", err)
		return
	}
	dumps := map[string][]string{
		"pods.yaml":           {"get", "pods", "-n", ns, "-o", "yaml"},
		"events.txt":          {"get", "events", "-n", ns, "--sort-by=.lastTimestamp"},
		"operator-pods.yaml":  {"get", "pods", "-n", operatorNamespace, "-o", "yaml"},
		"operator.log":        {"logs", "-n", operatorNamespace, "-l", "control-plane=controller-manager", "--all-containers", "--prefix", "--tail=-1"},
		"operator-events.txt": {"get", "events", "-n", operatorNamespace, "--sort-by=.lastTimestamp"},
		"leases.yaml":         {"get", "leases", "-n", operatorNamespace, "-o", "yaml"},
	}
	for file, args := range dumps {
		out, err := tryRun("kubectl", args...)
		if err != nil {
			out += "\n" + err.Error()
		}
		if err := os.WriteFile(filepath.Join(dir, file), []byte(out), 0o644); err != nil {
			t.Logf("dump: %v", err)
		}
	}
	t.Logf("the cluster's state when %s failed: %s", t.Name(), dir)
}
