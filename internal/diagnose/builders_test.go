package diagnose

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	"github.com/meshkeeper/meshkeeper/internal/injection"
	"github.com/meshkeeper/meshkeeper/internal/podtest"
)

var testNow = time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)

var meshRef = types.NamespacedName{Namespace: "osm-system", Name: "osm-mesh-config"}

// script reads an OSM init script from the drift package's seed fixtures.
func script(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "drift", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// makePod is a replica of Deployment test in namespace test: makePod("web").OSMInit(s).Sidecar().Running(initOK).Obj().
func makePod(name string) *podtest.PodBuilder {
	return podtest.NewPod("test", name, "app:v1").Deployment("test", "58d4f8ff58").ServiceAccount("frontend")
}

var initOK = podtest.Completed

func makeMeshConfig(mutate ...func(*configv1alpha2.MeshConfigSpec)) *configv1alpha2.MeshConfig {
	return podtest.MeshConfig(3, mutate...)
}

var ranges = podtest.IPExclusions

func namespace(name string, labels, annotations map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, Annotations: annotations}}
}

func meshedNamespace() *corev1.Namespace {
	return namespace("test", map[string]string{injection.LabelMonitoredBy: "osm"}, map[string]string{injection.AnnotationSidecarInjection: "enabled"})
}

func webhookService() types.NamespacedName {
	return types.NamespacedName{Namespace: "meshkeeper-system", Name: "meshkeeper-webhook-service"}
}

func mutating(name string, ca []byte) admissionregistrationv1.MutatingWebhookConfiguration {
	svc := webhookService()
	return admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: name},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{Name: "inject.meshkeeper.io", ClientConfig: admissionregistrationv1.WebhookClientConfig{
			Service: &admissionregistrationv1.ServiceReference{Namespace: svc.Namespace, Name: svc.Name, Path: ptr.To("/mutate-v1-pod")}, CABundle: ca}}}}
}

func validating(name string, ca []byte) admissionregistrationv1.ValidatingWebhookConfiguration {
	svc := webhookService()
	return admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: name},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{Name: "egress.meshkeeper.io", ClientConfig: admissionregistrationv1.WebhookClientConfig{
			Service: &admissionregistrationv1.ServiceReference{Namespace: svc.Namespace, Name: svc.Name}, CABundle: ca}}}}
}

func deployment(available bool) appsv1.Deployment {
	status := corev1.ConditionFalse
	n := int32(0)
	if available {
		status, n = corev1.ConditionTrue, 1
	}
	return appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "meshkeeper-controller-manager", Namespace: "meshkeeper-system"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To(int32(1))},
		Status: appsv1.DeploymentStatus{AvailableReplicas: n, Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: status,
			Message: "Deployment does not have minimum availability."}}}}
}

// healthy is a complete, healthy input around pod: every cluster fact present and good.
func healthy(pod *corev1.Pod, mc *configv1alpha2.MeshConfig) PodInput {
	crds := map[string]bool{}
	for _, n := range RequiredCRDs {
		crds[n] = true
	}
	return PodInput{
		Pod: pod, Namespace: meshedNamespace(), MeshConfigRef: meshRef, MeshConfig: mc,
		CRDs:              crds,
		Mutating:          []admissionregistrationv1.MutatingWebhookConfiguration{mutating("meshkeeper-mutating-webhook-configuration", []byte("CA"))},
		Validating:        []admissionregistrationv1.ValidatingWebhookConfiguration{validating("meshkeeper-validating-webhook-configuration", []byte("CA"))},
		Services:          map[types.NamespacedName]bool{webhookService(): true},
		OperatorNamespace: "meshkeeper-system",
		Deployments:       []appsv1.Deployment{deployment(true)},
		Selection:         injection.SelectOptions{MeshName: "osm", OperatorNamespace: "meshkeeper-system"},
		Now:               testNow,
	}
}
