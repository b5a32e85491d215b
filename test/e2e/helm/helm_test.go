//go:build e2e

package helm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshkeeper/meshkeeper/test/e2e/e2eutil"
)

const (
	release   = "meshkeeper"
	namespace = e2eutil.OperatorNamespace
	chart     = "charts/meshkeeper"
	// sampleMeshConfig is osm-system/osm-mesh-config as OSM writes it.
	sampleMeshConfig = "config/samples/config_v1alpha2_meshconfig.yaml"
)

// values: the images hack/imagebuild built and imported (tag dev, never pulled).
var values = []string{"--set", "image.tag=dev", "--set", "image.pullPolicy=IfNotPresent"}

func helm(t *testing.T, k *e2eutil.Cluster, args ...string) string {
	t.Helper()
	h := os.Getenv("HELM")
	if h == "" {
		t.Fatal("HELM is not set: run `make e2e-helm`, which builds the pinned helm")
	}
	return k.Run(t, h, args...)
}

func TestHelmInstallAuditMode(t *testing.T) {
	k, err := e2eutil.New("e2e/helm", filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	for _, v := range []string{"HELM_CONFIG_HOME", "HELM_CACHE_HOME", "HELM_DATA_HOME"} {
		t.Setenv(v, tmp)
	}
	ctx := context.Background()
	var existing appsv1.Deployment
	if err := k.C.Get(ctx, client.ObjectKey{Namespace: namespace, Name: e2eutil.ManagerDeployment}, &existing); err == nil {
		t.Fatalf("a manager is already deployed in %s (labels %v): remove it first (make e2e-helm does)", namespace, existing.Labels)
	} else if !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}

	// The manager is Ready once it serves a MeshConfig: the sample's, unless the cluster has one.
	if out, _ := k.TryRun("kubectl", "get", "meshconfigs", "-A", "-o", "name"); strings.TrimSpace(out) == "" {
		createdNS := k.Run(t, "kubectl", "get", "namespace", "osm-system", "--ignore-not-found", "-o", "name") == ""
		if createdNS {
			k.Run(t, "kubectl", "create", "namespace", "osm-system")
		}
		k.Run(t, "kubectl", "apply", "-f", sampleMeshConfig)
		t.Cleanup(func() {
			_, _ = k.TryRun("kubectl", "delete", "--ignore-not-found", "-f", sampleMeshConfig)
			if createdNS {
				_, _ = k.TryRun("kubectl", "delete", "namespace", "osm-system", "--ignore-not-found", "--wait=false")
			}
		})
	}

	t0 := time.Now()
	args := append([]string{"install", release, chart, "--namespace", namespace, "--create-namespace", "--wait", "--timeout", "3m"}, values...)
	helm(t, k, args...)
	uninstalled := false
	t.Cleanup(func() {
		if !uninstalled {
			_, _ = k.TryRun(os.Getenv("HELM"), "uninstall", release, "--namespace", namespace, "--wait", "--timeout", "2m")
		}
	})
	t.Logf("helm install --wait: %s", time.Since(t0).Round(100*time.Millisecond))
	leader, err := k.RollOut()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("manager leader %s, %s after helm install started", leader, time.Since(t0).Round(100*time.Millisecond))

	t.Run("manager Ready in audit mode", func(t *testing.T) {
		var d appsv1.Deployment
		if err := k.C.Get(e2eutil.Ctx(t), client.ObjectKey{Namespace: namespace, Name: e2eutil.ManagerDeployment}, &d); err != nil {
			t.Fatal(err)
		}
		if d.Labels["app.kubernetes.io/managed-by"] != "Helm" || d.Labels["app.kubernetes.io/instance"] != release {
			t.Errorf("the Deployment's labels %v are not the release's", d.Labels)
		}
		if d.Status.ReadyReplicas != *d.Spec.Replicas {
			t.Errorf("%d of %d replicas Ready", d.Status.ReadyReplicas, *d.Spec.Replicas)
		}
		args := d.Spec.Template.Spec.Containers[0].Args
		if !slices.Contains(args, "--mode=audit") {
			t.Errorf("args %q: not audit mode", args)
		}
		var pods corev1.PodList
		if err := k.C.List(e2eutil.Ctx(t), &pods, client.InNamespace(namespace), client.MatchingLabels{"control-plane": "controller-manager"}); err != nil {
			t.Fatal(err)
		}
		for _, p := range pods.Items {
			if p.DeletionTimestamp != nil {
				continue
			}
			if !e2eutil.PodRunningReady(&p) {
				t.Errorf("pod %s is not Running and Ready: %s", p.Name, p.Status.Phase)
			}
			for _, cs := range p.Status.ContainerStatuses {
				if cs.RestartCount > 0 {
					t.Errorf("pod %s: container %s restarted %d times", p.Name, cs.Name, cs.RestartCount)
				}
			}
		}
		out := helm(t, k, "status", release, "--namespace", namespace)
		if !strings.Contains(out, "STATUS: deployed") {
			t.Errorf("helm status:\n%s", out)
		}
	})

	t.Run("the MeshConfig is judged", func(t *testing.T) {
		e2eutil.Eventually(t, "MeshConfig Ready condition", time.Minute, func() (bool, string) {
			out, err := k.TryRun("kubectl", "get", "meshconfigs", "-A", "-o",
				`jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name} Ready={.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`)
			if err != nil {
				return false, err.Error()
			}
			return strings.Contains(out, "Ready=True"), out
		})
	})

	t.Run("audit mode serves no webhook", func(t *testing.T) {
		for _, o := range []client.Object{
			&admissionregistrationv1.MutatingWebhookConfiguration{}, &admissionregistrationv1.ValidatingWebhookConfiguration{},
		} {
			name := "meshkeeper-mutating-webhook-configuration"
			if _, ok := o.(*admissionregistrationv1.ValidatingWebhookConfiguration); ok {
				name = "meshkeeper-validating-webhook-configuration"
			}
			if err := k.C.Get(e2eutil.Ctx(t), client.ObjectKey{Name: name}, o); !apierrors.IsNotFound(err) {
				t.Errorf("%s: %v, want not found", name, err)
			}
		}
	})

	t.Run("metrics Service selects the manager", func(t *testing.T) {
		e2eutil.Eventually(t, "metrics Service endpoints", time.Minute, func() (bool, string) {
			out, err := k.TryRun("kubectl", "get", "endpointslices", "-n", namespace,
				"-l", "kubernetes.io/service-name=meshkeeper-controller-manager-metrics-service",
				"-o", "jsonpath={range .items[*].endpoints[*]}{.conditions.ready}{\" \"}{end}")
			if err != nil {
				return false, err.Error()
			}
			return strings.Count(out, "true") >= 1, fmt.Sprintf("ready endpoints: %q", out)
		})
	})

	t.Run("uninstall removes what the release owns", func(t *testing.T) {
		helm(t, k, "uninstall", release, "--namespace", namespace, "--wait", "--timeout", "2m")
		uninstalled = true
		e2eutil.Eventually(t, "manager pods gone", 2*time.Minute, func() (bool, string) {
			var pods corev1.PodList
			if err := k.C.List(context.Background(), &pods, client.InNamespace(namespace), client.MatchingLabels{"control-plane": "controller-manager"}); err != nil {
				return false, err.Error()
			}
			return len(pods.Items) == 0, fmt.Sprintf("%d pods left", len(pods.Items))
		})
		for _, o := range []client.Object{&appsv1.Deployment{}, &corev1.ServiceAccount{}, &corev1.Service{}} {
			name := e2eutil.ManagerDeployment
			if _, ok := o.(*corev1.Service); ok {
				name += "-metrics-service"
			}
			if err := k.C.Get(e2eutil.Ctx(t), client.ObjectKey{Namespace: namespace, Name: name}, o); !apierrors.IsNotFound(err) {
				t.Errorf("%T %s after uninstall: %v", o, name, err)
			}
		}
		for _, name := range []string{"meshkeeper-manager-role", "meshkeeper-metrics-auth-role", "meshkeeper-metrics-reader"} {
			if err := k.C.Get(e2eutil.Ctx(t), client.ObjectKey{Name: name}, &rbacv1.ClusterRole{}); !apierrors.IsNotFound(err) {
				t.Errorf("ClusterRole %s after uninstall: %v", name, err)
			}
		}
	})
}
