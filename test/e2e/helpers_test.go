//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshkeeper/meshkeeper/test/e2e/e2eutil"
)

// cluster is what every test shares: the API client, the repository root and the overlay the
// operator was deployed with.
type cluster struct {
	*e2eutil.Cluster
	c       client.Client
	root    string
	overlay string
	// mode is the manager's --mode as deployed: "inject" or "audit".
	mode string
}

var k *cluster

func TestMain(m *testing.M) {
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
	base, err := e2eutil.New("e2e", filepath.Join("..", ".."))
	if err != nil {
		return nil, err
	}
	overlay := os.Getenv("E2E_OVERLAY")
	if overlay == "" {
		overlay = "test/e2e/deploy/injector"
	}
	return &cluster{Cluster: base, c: base.C, root: base.Root, overlay: overlay}, nil
}

// podReady reports whether the pod runs with every container ready, describing it otherwise.
func podReady(t *testing.T, ns, name string) (bool, string) {
	var p corev1.Pod
	if err := k.c.Get(e2eutil.Ctx(t), client.ObjectKey{Namespace: ns, Name: name}, &p); err != nil {
		return false, err.Error()
	}
	if e2eutil.PodRunningReady(&p) {
		return true, ""
	}
	b, _ := json.Marshal(p.Status)
	return false, string(b)
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
		out, err := k.TryRun("kubectl", args...)
		if err != nil {
			out += "\n" + err.Error()
		}
		if err := os.WriteFile(filepath.Join(dir, file), []byte(out), 0o644); err != nil {
			t.Logf("dump: %v", err)
		}
	}
	t.Logf("the cluster's state when %s failed: %s", t.Name(), dir)
}
