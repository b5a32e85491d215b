package drift

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	"github.com/meshkeeper/meshkeeper/internal/injection"
	"github.com/meshkeeper/meshkeeper/internal/podtest"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

var testNow = time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)

var testSelection = injection.SelectOptions{MeshName: "osm"}

// makePod is a bookbuyer pod for table tests: makePod("bookbuyer-7d9f-x").Deployment("bookbuyer", "7d9f8c").Sidecar().Obj().
func makePod(name string) *podtest.PodBuilder {
	return podtest.NewPod("bookbuyer", name, "bookbuyer:v1")
}

// The MeshConfig builders are podtest's, under the names these tests use.
var (
	meshConfig   = podtest.MeshConfig
	ipExclusions = podtest.IPExclusions
	outPorts     = podtest.OutPorts
	inPorts      = podtest.InPorts
)

// meshedNamespace is a namespace in mesh "osm" with injection enabled.
func meshedNamespace(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name,
		Labels:      map[string]string{injection.LabelMonitoredBy: "osm"},
		Annotations: map[string]string{injection.AnnotationSidecarInjection: "enabled"}}
}

func gather(pod *corev1.Pod, mc *configv1alpha2.MeshConfig) Input {
	return Gather(pod, meshedNamespace(pod.Namespace), mc, testSelection, testNow)
}

// effective is the configuration a pod with annotations ann gets under mc.
func effective(t *testing.T, mc *configv1alpha2.MeshConfig, ann map[string]string) redirect.Config {
	t.Helper()
	cfg, errs := redirect.Effective(injection.MeshSettings(&mc.Spec), ann)
	if len(errs) > 0 {
		t.Fatalf("effective config: %v", errs)
	}
	return cfg
}

func fixture(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestBuiltInitContainerIsTheInjectedOne: pods built for these tests carry the init container the
// injector really adds, security context included, so a check cannot pass here on a container
// no real pod has.
func TestBuiltInitContainerIsTheInjectedOne(t *testing.T) {
	mc := meshConfig(1)
	cfg, errs := redirect.Effective(injection.MeshSettings(&mc.Spec), nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	built := makePod("p").OurInit(cfg, "1").Obj().Spec.InitContainers[0]
	injected, err := injection.Inject(makePod("p").Obj(), &mc.Spec, injection.Options{DefaultInitImage: "meshkeeper/init:v1", DefaultEnvoyImage: "envoy:v1"})
	if err != nil {
		t.Fatal(err)
	}
	real := RedirectionInitContainer(injected)
	if real == nil {
		t.Fatal("the injected pod has no redirection init container")
	}
	if !equality.Semantic.DeepEqual(built, *real) {
		t.Errorf("built init container differs from the injected one:\nbuilt    %+v\ninjected %+v", built, *real)
	}
}
