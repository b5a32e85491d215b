package drift

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	"github.com/meshkeeper/meshkeeper/internal/injection"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
	"github.com/meshkeeper/meshkeeper/internal/redirect/podspec"
)

var testNow = time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)

var testSelection = injection.SelectOptions{MeshName: "osm"}

// podBuilder makes pods for table tests: makePod("bookbuyer-7d9f-x").deployment("bookbuyer").sidecar().obj().
type podBuilder struct{ p corev1.Pod }

func makePod(name string) *podBuilder {
	return &podBuilder{p: corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "bookbuyer"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "bookbuyer:v1"}}},
	}}
}

func (b *podBuilder) ns(ns string) *podBuilder { b.p.Namespace = ns; return b }

func (b *podBuilder) owner(apiVersion, kind, name string) *podBuilder {
	b.p.OwnerReferences = append(b.p.OwnerReferences, metav1.OwnerReference{
		APIVersion: apiVersion, Kind: kind, Name: name, UID: "u", Controller: ptr.To(true)})
	return b
}

// deployment makes the pod look like a replica of Deployment name (through its ReplicaSet).
func (b *podBuilder) deployment(name string) *podBuilder {
	b.label("pod-template-hash", "7d9f8c")
	return b.owner("apps/v1", "ReplicaSet", name+"-7d9f8c")
}

func (b *podBuilder) label(k, v string) *podBuilder {
	if b.p.Labels == nil {
		b.p.Labels = map[string]string{}
	}
	b.p.Labels[k] = v
	return b
}

func (b *podBuilder) annotate(k, v string) *podBuilder {
	if b.p.Annotations == nil {
		b.p.Annotations = map[string]string{}
	}
	b.p.Annotations[k] = v
	return b
}

func (b *podBuilder) sidecar() *podBuilder {
	b.p.Spec.Containers = append(b.p.Spec.Containers, corev1.Container{Name: injection.SidecarName, Image: "envoy:v1"})
	return b
}

func (b *podBuilder) hostNetwork() *podBuilder { b.p.Spec.HostNetwork = true; return b }

// osmInit adds an osm-init container running script through /bin/sh -c, as every OSM release did.
func (b *podBuilder) osmInit(script string) *podBuilder {
	b.p.Spec.InitContainers = append(b.p.Spec.InitContainers, corev1.Container{
		Name: redirect.OSMInitContainerName, Image: "openservicemesh/init:v1.2.4",
		Command: []string{"/bin/sh"}, Args: []string{"-c", script}})
	return b
}

// ourInit adds our init container rendered from cfg and stamps the digest the injector would.
func (b *podBuilder) ourInit(cfg redirect.Config, generation string) *podBuilder {
	b.p.Spec.InitContainers = append(b.p.Spec.InitContainers, podspec.InitContainer(redirect.Render(cfg), "meshkeeper/init:v1", false))
	b.annotate(injection.AnnotationExclusionsDigest, cfg.Digest())
	return b.annotate(injection.AnnotationMeshConfigGeneration, generation)
}

func (b *podBuilder) initState(st corev1.ContainerState) *podBuilder {
	return b.initStatus(corev1.ContainerStatus{State: st})
}

func (b *podBuilder) initStatus(st corev1.ContainerStatus) *podBuilder {
	st.Name = b.p.Spec.InitContainers[0].Name
	b.p.Status.InitContainerStatuses = []corev1.ContainerStatus{st}
	return b
}

func (b *podBuilder) initDone() *podBuilder {
	return b.initState(corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed"}})
}

func (b *podBuilder) condition(c corev1.PodCondition) *podBuilder {
	b.p.Status.Conditions = append(b.p.Status.Conditions, c)
	return b
}

func (b *podBuilder) obj() *corev1.Pod { return b.p.DeepCopy() }

// meshConfig is osm-system/osm-mesh-config at the given generation.
func meshConfig(generation int64, mutate ...func(*configv1alpha2.MeshConfigSpec)) *configv1alpha2.MeshConfig {
	mc := &configv1alpha2.MeshConfig{ObjectMeta: metav1.ObjectMeta{Name: "osm-mesh-config", Namespace: "osm-system", Generation: generation}}
	for _, m := range mutate {
		m(&mc.Spec)
	}
	return mc
}

func ipExclusions(cidrs ...string) func(*configv1alpha2.MeshConfigSpec) {
	return func(s *configv1alpha2.MeshConfigSpec) { s.Traffic.OutboundIPRangeExclusionList = cidrs }
}

func outPorts(ports ...int32) func(*configv1alpha2.MeshConfigSpec) {
	return func(s *configv1alpha2.MeshConfigSpec) { s.Traffic.OutboundPortExclusionList = ports }
}

func inPorts(ports ...int32) func(*configv1alpha2.MeshConfigSpec) {
	return func(s *configv1alpha2.MeshConfigSpec) { s.Traffic.InboundPortExclusionList = ports }
}

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
	built := makePod("p").ourInit(cfg, "1").obj().Spec.InitContainers[0]
	injected, err := injection.Inject(makePod("p").obj(), &mc.Spec, injection.Options{DefaultInitImage: "meshkeeper/init:v1", DefaultEnvoyImage: "envoy:v1"})
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
