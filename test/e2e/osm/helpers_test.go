//go:build e2e

package osm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshkeeper/meshkeeper/test/e2e/e2eutil"
)

const (
	osmNamespace      = "osm-system"
	meshConfigName    = "osm-mesh-config"
	meshName          = "osm"
	operatorNamespace = e2eutil.OperatorNamespace
	managerDeployment = e2eutil.ManagerDeployment
	// auditOverlay is config/default (audit mode) with the images built by hack/imagebuild.
	auditOverlay = "test/e2e/deploy/audit"
	// osmCRDLabel is the label OSM's CRDs carry (cmd/osm-bootstrap/crds).
	osmCRDLabel = "app.kubernetes.io/name"
	osmCRDValue = "openservicemesh.io"
)

var (
	k    *e2eutil.Cluster
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
	var err error
	if k, err = e2eutil.New("e2e/osm", filepath.Join("..", "..", "..")); err != nil {
		return err
	}
	c, root = k.C, k.Root
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
// with, restarts the manager when its pod runs an image older than the archive's, and waits for
// its leader.
func deployAudit() error {
	t0 := time.Now()
	if _, err := k.TryRun("kubectl", "apply", "--server-side", "--force-conflicts", "-k", auditOverlay); err != nil {
		return err
	}
	leader, err := k.RollOut()
	if err != nil {
		return err
	}
	fmt.Printf("e2e/osm: meshkeeper deployed from %s and rolled out in %s; leader %s\n", auditOverlay, time.Since(t0).Round(100*time.Millisecond), leader)
	return nil
}

func containerNames(cs []corev1.Container) []string {
	var out []string
	for _, x := range cs {
		out = append(out, x.Name)
	}
	return out
}
