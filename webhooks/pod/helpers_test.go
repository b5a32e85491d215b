package pod

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	"github.com/meshkeeper/meshkeeper/internal/injection"
)

// cacheReader stands in for the manager's informer cache: a lookup plus a deep copy per Get.
type cacheReader map[types.NamespacedName]client.Object

func (c cacheReader) Get(_ context.Context, key types.NamespacedName, obj client.Object, _ ...client.GetOption) error {
	src, ok := c[key]
	if !ok {
		return apierrors.NewNotFound(schema.GroupResource{}, key.String())
	}
	switch dst := obj.(type) {
	case *corev1.Namespace:
		s, ok := src.(*corev1.Namespace)
		if !ok {
			return apierrors.NewNotFound(schema.GroupResource{}, key.String())
		}
		s.DeepCopyInto(dst)
	case *configv1alpha2.MeshConfig:
		s, ok := src.(*configv1alpha2.MeshConfig)
		if !ok {
			return apierrors.NewNotFound(schema.GroupResource{}, key.String())
		}
		s.DeepCopyInto(dst)
	default:
		return fmt.Errorf("unexpected type %T", obj)
	}
	return nil
}

func (c cacheReader) List(context.Context, client.ObjectList, ...client.ListOption) error {
	return fmt.Errorf("the injector must not list")
}

var meshConfigKey = types.NamespacedName{Namespace: "osm-system", Name: "osm-mesh-config"}

func namespace(name string, monitored bool, injectionValue string) *corev1.Namespace {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}, Annotations: map[string]string{}}}
	if monitored {
		ns.Labels[injection.LabelMonitoredBy] = "osm"
	}
	if injectionValue != "" {
		ns.Annotations[injection.AnnotationSidecarInjection] = injectionValue
	}
	return ns
}

func testMeshConfig() *configv1alpha2.MeshConfig {
	return &configv1alpha2.MeshConfig{
		ObjectMeta: metav1.ObjectMeta{Name: meshConfigKey.Name, Namespace: meshConfigKey.Namespace, Generation: 3},
		Spec: configv1alpha2.MeshConfigSpec{
			Sidecar: configv1alpha2.SidecarSpec{EnvoyImage: "envoyproxy/envoy:v1.31.2", InitContainerImage: "ghcr.io/meshkeeper/init:test", LogLevel: "error"},
			Traffic: configv1alpha2.TrafficSpec{OutboundIPRangeExclusionList: []string{"169.254.169.254/32"}, OutboundPortExclusionList: []int32{5432}},
		},
	}
}

func newInjector(objs ...client.Object) *Injector {
	r := cacheReader{}
	for _, o := range objs {
		r[types.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetName()}] = o
	}
	return &Injector{
		Reader:     r,
		MeshConfig: meshConfigKey,
		Select:     injection.SelectOptions{MeshName: "osm", OperatorNamespace: "meshkeeper-system"},
		Options:    injection.Options{Version: "test"},
	}
}

func typicalPod() *corev1.Pod {
	return &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{GenerateName: "bookstore-", Namespace: "app", Labels: map[string]string{"app": "bookstore"}},
		Spec: corev1.PodSpec{
			ServiceAccountName: "bookstore",
			Containers: []corev1.Container{{
				Name: "bookstore", Image: "openservicemesh/bookstore:v1.2.0",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 14001}},
				Env:   []corev1.EnvVar{{Name: "IDENTITY", Value: "bookstore-v1"}},
			}},
		},
	}
}

// largePod is about 64 KiB of JSON: one container with 1,500 environment variables.
func largePod() *corev1.Pod {
	p := typicalPod()
	env := make([]corev1.EnvVar, 1500)
	for i := range env {
		env[i] = corev1.EnvVar{Name: fmt.Sprintf("ENV_%04d", i), Value: fmt.Sprintf("%04d-abcdefgh", i)}
	}
	p.Spec.Containers[0].Env = env
	return p
}

func request(t testing.TB, pod *corev1.Pod, ns string) admission.Request {
	t.Helper()
	raw, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID:       "0001",
		Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
		Namespace: ns,
		Operation: admissionv1.Create,
		Object:    runtime.RawExtension{Raw: raw},
	}}
}

func mustPrefix(t testing.TB, s string) netip.Prefix {
	t.Helper()
	p, err := netip.ParsePrefix(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
