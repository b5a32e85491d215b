//go:build e2e

package osm

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
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const (
	osmNamespace      = "osm-system"
	meshConfigName    = "osm-mesh-config"
	meshName          = "osm"
	operatorNamespace = "meshkeeper-system"
	managerDeployment = "meshkeeper-controller-manager"
	// auditOverlay is config/default (audit mode) with the images built by hack/imagebuild.
	auditOverlay = "test/e2e/deploy/audit"
	// osmCRDLabel is the label OSM's CRDs carry (cmd/osm-bootstrap/crds).
	osmCRDLabel = "app.kubernetes.io/name"
	osmCRDValue = "openservicemesh.io"
)

var (
	c    client.Client
	root string
	// skipReason is why the tests cannot run: OSM is not installed. Empty when they can.
	skipReason string
	// osmPodsBefore are OSM's pods as they were before meshkeeper was deployed.
	osmPodsBefore []corev1.Pod
)

func TestMain(m *testing.M) {
	if os.Getenv("KUBECONFIG") == "" {
		fmt.Fprintln(os.Stderr, "e2e/osm: KUBECONFIG is not set; run `make e2e-osm` (after `make cluster-up`)")
		os.Exit(1)
	}
	if err := setup(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e/osm:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func setup() error {
	cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv("KUBECONFIG"))
	if err != nil {
		return err
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		return err
	}
	if c, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		return err
	}
	if root, err = filepath.Abs(filepath.Join("..", "..", "..")); err != nil {
		return err
	}
	if skipReason, err = osmMissing(); err != nil || skipReason != "" {
		return err
	}
	var pods corev1.PodList
	if err := c.List(context.Background(), &pods, client.InNamespace(osmNamespace)); err != nil {
		return err
	}
	osmPodsBefore = pods.Items
	return deployAudit()
}

// osmMissing says why OSM is not there to test beside, or "" when it is: its controller's
// Deployment and its own MeshConfig CRD.
func osmMissing() (string, error) {
	ctx := context.Background()
	var d appsv1.Deployment
	err := c.Get(ctx, client.ObjectKey{Namespace: osmNamespace, Name: "osm-controller"}, &d)
	if apierrors.IsNotFound(err) {
		return "OSM is not installed (no Deployment " + osmNamespace + "/osm-controller): run `make e2e-osm`, or hack/cluster/osm.sh install", nil
	}
	if err != nil {
		return "", err
	}
	var crd apiextensionsv1.CustomResourceDefinition
	err = c.Get(ctx, client.ObjectKey{Name: "meshconfigs.config.openservicemesh.io"}, &crd)
	if apierrors.IsNotFound(err) {
		return "OSM's MeshConfig CRD is not installed", nil
	}
	if err != nil {
		return "", err
	}
	if crd.Labels[osmCRDLabel] != osmCRDValue {
		return fmt.Sprintf("the MeshConfig CRD is not OSM's (labels %v): these tests need OSM's own", crd.Labels), nil
	}
	return "", nil
}

func requireOSM(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
}

// deployAudit deploys meshkeeper in audit mode with the overlay users' entry point is tested
// with, and restarts the manager when its pod runs an image older than the archive's.
func deployAudit() error {
	t0 := time.Now()
	if _, err := tryRun("kubectl", "apply", "--server-side", "--force-conflicts", "-k", auditOverlay); err != nil {
		return err
	}
	wait := func() error {
		_, err := tryRun("kubectl", "rollout", "status", "deployment/"+managerDeployment, "-n", operatorNamespace, "--timeout=170s")
		return err
	}
	if err := wait(); err != nil {
		return err
	}
	id, err := imageID("manager")
	if err != nil {
		return err
	}
	var pods corev1.PodList
	if err := c.List(context.Background(), &pods, client.InNamespace(operatorNamespace), client.MatchingLabels{"control-plane": "controller-manager"}); err != nil {
		return err
	}
	for _, p := range pods.Items {
		if len(p.Status.ContainerStatuses) > 0 && p.Status.ContainerStatuses[0].ImageID != id {
			fmt.Printf("e2e/osm: pod %s runs %s, the image is now %s: restarting the manager\n", p.Name, p.Status.ContainerStatuses[0].ImageID, id)
			if _, err := tryRun("kubectl", "rollout", "restart", "deployment/"+managerDeployment, "-n", operatorNamespace); err != nil {
				return err
			}
			if err := wait(); err != nil {
				return err
			}
			break
		}
	}
	fmt.Printf("e2e/osm: meshkeeper deployed from %s and rolled out in %s\n", auditOverlay, time.Since(t0).Round(100*time.Millisecond))
	return nil
}

// imageID is the image ID of an archive written by hack/imagebuild (the digest of its
// configuration), as the kubelet reports it.
func imageID(name string) (string, error) {
	f, err := os.Open(filepath.Join(root, "bin", "images", name+".tar"))
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

func tryRun(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w\n%s%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := tryRun("kubectl", args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// eventually polls cond every half second until it returns true or timeout passes; the last
// message cond gave is reported on failure. The time it took is logged, never asserted.
func eventually(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
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

func ctx(t *testing.T) context.Context {
	cx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return cx
}

func podCondition(p *corev1.Pod, typ string) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if string(p.Status.Conditions[i].Type) == typ {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

func describeCondition(cond *corev1.PodCondition) string {
	if cond == nil {
		return "(none)"
	}
	return fmt.Sprintf("%s/%s: %s", cond.Status, cond.Reason, cond.Message)
}

func podRunningReady(p *corev1.Pod) bool {
	cond := podCondition(p, string(corev1.PodReady))
	return p.Status.Phase == corev1.PodRunning && cond != nil && cond.Status == corev1.ConditionTrue
}

func containerNames(cs []corev1.Container) []string {
	var out []string
	for _, x := range cs {
		out = append(out, x.Name)
	}
	return out
}

// hostPID is the host pid of a running container of a pod, from containerd: the pod's network
// namespace is that process's.
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
	out, err := tryRun("ctr", "--namespace", "k8s.io", "tasks", "ls")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == id && f[2] == "RUNNING" {
			return f[1]
		}
	}
	t.Fatalf("container %s (%s) is not a running containerd task", container, id)
	return ""
}
