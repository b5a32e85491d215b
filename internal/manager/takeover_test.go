package manager

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"

	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	"github.com/meshkeeper/meshkeeper/internal/osmtest"
	"github.com/meshkeeper/meshkeeper/internal/testenv"
)

// TestInstallCRDsOverOSM runs hack/install-crds.sh, as `make install` does, against OSM v1.2.4's
// CRDs installed the way osm-bootstrap installs them: it refuses without FORCE_TAKEOVER=1, and
// with it the stored MeshConfig survives, OSM's labels stay, meshkeeper's label is added and the
// status subresource appears (the migration guide's step 4).
func TestInstallCRDsOverOSM(t *testing.T) {
	if testing.Short() {
		t.Skip("envtest")
	}
	env, err := osmtest.StartEnv()
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := env.Stop(); err != nil {
			t.Error(err)
		}
	}()
	ctx := context.Background()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	mc := &configv1alpha2.MeshConfig{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "osm-mesh-config"}}
	mc.Spec.Traffic.OutboundIPRangeExclusionList = []string{"10.0.0.0/8"}
	mc.Spec.Certificate.ServiceCertValidityDuration, mc.Spec.Certificate.CertKeyBitSize = "24h", 2048 // required by OSM's schema
	if err := env.Client.Create(ctx, mc); err != nil {
		t.Fatal(err)
	}

	install := func(takeover bool) (string, error) {
		cmd := exec.Command(filepath.Join(root, "hack", "install-crds.sh"))
		cmd.Env = append(os.Environ(), "KUBECONFIG="+env.Kubeconfig, "KUBECTL="+filepath.Join(env.Assets, "kubectl"))
		if takeover {
			cmd.Env = append(cmd.Env, "FORCE_TAKEOVER=1")
		}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
	out, err := install(false)
	if err == nil || !strings.Contains(out, "meshconfigs.config.openservicemesh.io") || !strings.Contains(out, "docs/migrating-from-osm.md") {
		t.Fatalf("install over OSM's CRDs without FORCE_TAKEOVER: err %v\n%s", err, out)
	}
	if out, err := install(true); err != nil {
		t.Fatalf("FORCE_TAKEOVER=1: %v\n%s", err, out)
	}

	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := env.Client.Get(ctx, types.NamespacedName{Name: "meshconfigs.config.openservicemesh.io"}, crd); err != nil {
		t.Fatal(err)
	}
	if crd.Labels[LabelOSMCRD] != "openservicemesh.io" || crd.Labels["app.kubernetes.io/part-of"] != "meshkeeper" {
		t.Errorf("labels after the takeover = %v: OSM's must stay, meshkeeper's must be added", crd.Labels)
	}
	got := &configv1alpha2.MeshConfig{}
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: "kube-system", Name: "osm-mesh-config"}, got); err != nil {
		t.Fatalf("the stored MeshConfig is gone: %v", err)
	}
	if len(got.Spec.Traffic.OutboundIPRangeExclusionList) != 1 || got.Spec.Traffic.OutboundIPRangeExclusionList[0] != "10.0.0.0/8" {
		t.Errorf("stored spec changed: %+v", got.Spec.Traffic)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	report, err := judgeAPIs(dc, func(string) map[string]string { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if report.Controllers.NoMeshConfigStatus || report.Controllers.NoEgressStatus {
		t.Errorf("after the takeover the status subresources are still missing: %+v", report.Controllers)
	}
	// A second run is an update of meshkeeper's own CRDs and needs no flag.
	if out, err := install(false); err != nil {
		t.Errorf("re-running make install over meshkeeper's CRDs: %v\n%s", err, out)
	}
}
