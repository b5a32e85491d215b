package injection

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gomodules.xyz/jsonpatch/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	"github.com/meshkeeper/meshkeeper/internal/golden"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

func testOptions() Options {
	return Options{
		MeshConfig:           types.NamespacedName{Namespace: "osm-system", Name: "osm-mesh-config"},
		MeshConfigGeneration: 7,
		Version:              "v0.1.0-test",
	}
}

func testSpec() *configv1alpha2.MeshConfigSpec {
	return &configv1alpha2.MeshConfigSpec{
		Sidecar: configv1alpha2.SidecarSpec{
			EnvoyImage:         "envoyproxy/envoy:v1.31.2",
			InitContainerImage: "ghcr.io/meshkeeper/init:v0.1.0",
			LogLevel:           "debug",
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
			},
		},
		Traffic: configv1alpha2.TrafficSpec{
			OutboundIPRangeExclusionList: []string{"169.254.169.254/32"},
			OutboundPortExclusionList:    []int32{5432},
		},
	}
}

// testPod is a typical application pod as a Deployment would create it.
func testPod() *corev1.Pod {
	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: "bookstore-6d8f9c7b5-",
			Namespace:    "bookstore",
			Labels:       map[string]string{"app": "bookstore"},
		},
		Spec: corev1.PodSpec{
			ServiceAccountName: "bookstore",
			Containers: []corev1.Container{{
				Name:  "bookstore",
				Image: "openservicemesh/bookstore:v1.2.0",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 14001, Protocol: corev1.ProtocolTCP}},
			}},
		},
	}
}

func withAnnotations(p *corev1.Pod, kv ...string) *corev1.Pod {
	if p.Annotations == nil {
		p.Annotations = map[string]string{}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		p.Annotations[kv[i]] = kv[i+1]
	}
	return p
}

// patchFor is the generic JSON diff from one pod to another, with operations sorted so the result
// does not depend on map order. It checks, independently of JSONPatch, that a pod changed nowhere.
func patchFor(t *testing.T, before, after *corev1.Pod) []jsonpatch.Operation {
	t.Helper()
	a, err := json.Marshal(before)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(after)
	if err != nil {
		t.Fatal(err)
	}
	ops, err := jsonpatch.CreatePatch(a, b)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(ops, func(x, y jsonpatch.Operation) int {
		return strings.Compare(x.Operation+x.Path, y.Operation+y.Path)
	})
	return ops
}

func TestInjectGolden(t *testing.T) {
	podIPSpec := testSpec()
	podIPSpec.Sidecar.LocalProxyMode = configv1alpha2.LocalProxyModePodIP
	privSpec := testSpec()
	privSpec.Sidecar.EnablePrivilegedInitContainer = true
	bootstrapOpts := testOptions()
	bootstrapOpts.BootstrapSecret = "envoy-bootstrap"
	tests := []struct {
		name   string
		pod    *corev1.Pod
		spec   *configv1alpha2.MeshConfigSpec
		opts   Options
		golden string
	}{
		{"typical", testPod(), testSpec(), testOptions(), "typical.patch.json"},
		{"pod annotations merged", withAnnotations(testPod(),
			redirect.AnnotationOutboundIPRangeExclusionList, "10.96.0.10/32, 2001:db8::/64",
			redirect.AnnotationOutboundPortExclusionList, "6379,5432",
			redirect.AnnotationInboundPortExclusionList, "9090"), testSpec(), testOptions(), "annotations.patch.json"},
		{"pod IP mode", testPod(), podIPSpec, testOptions(), "podip.patch.json"},
		{"privileged init", testPod(), privSpec, testOptions(), "privileged.patch.json"},
		{"bootstrap secret", testPod(), testSpec(), bootstrapOpts, "bootstrap.patch.json"},
		{"appended to existing lists and annotations", existingListsPod(), testSpec(), bootstrapOpts, "existing.patch.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.pod.DeepCopy()
			got, err := Inject(tt.pod, tt.spec, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(before, tt.pod) {
				t.Fatal("Inject modified its input pod")
			}
			add, err := Compute(tt.pod, tt.spec, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			ops := add.JSONPatch(tt.pod)
			if want := applyPatch(t, tt.pod, ops); !equality.Semantic.DeepEqual(want, got) {
				t.Fatalf("the patch does not yield the injected pod:\npatched  %s\ninjected %s", mustJSON(t, want), mustJSON(t, got))
			}
			out, err := json.MarshalIndent(ops, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, tt.golden, append(out, '\n'))
		})
	}
}

func container(cs []corev1.Container, name string) *corev1.Container {
	for i := range cs {
		if cs[i].Name == name {
			return &cs[i]
		}
	}
	return nil
}

func TestInjectShape(t *testing.T) {
	spec := testSpec()
	got, err := Inject(testPod(), spec, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	if n := len(got.Spec.InitContainers); n != 1 {
		t.Fatalf("init containers = %d, want 1", n)
	}
	ic := container(got.Spec.InitContainers, redirect.InitContainerName)
	if ic == nil {
		t.Fatalf("no init container %q", redirect.InitContainerName)
	}
	if !slices.Equal(ic.Command, []string{redirect.InitCommand}) {
		t.Errorf("init command = %q", ic.Command)
	}
	for _, a := range append(ic.Command, ic.Args...) {
		if strings.Contains(a, "sh -c") || a == "sh" || a == "/bin/sh" {
			t.Errorf("init argv contains a shell: %q", a)
		}
	}
	sc := ic.SecurityContext
	if sc == nil || sc.Capabilities == nil {
		t.Fatal("init container has no security context")
	}
	if !slices.Equal(sc.Capabilities.Add, []corev1.Capability{"NET_ADMIN", "NET_RAW"}) {
		t.Errorf("init capabilities add = %v", sc.Capabilities.Add)
	}
	if !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("init capabilities drop = %v", sc.Capabilities.Drop)
	}
	if sc.RunAsUser == nil || *sc.RunAsUser != 0 || sc.RunAsNonRoot == nil || *sc.RunAsNonRoot {
		t.Errorf("init must run as root: runAsUser=%v runAsNonRoot=%v", sc.RunAsUser, sc.RunAsNonRoot)
	}
	if sc.Privileged == nil || *sc.Privileged {
		t.Errorf("init must not be privileged unless MeshConfig says so")
	}
	if len(ic.Env) != 0 {
		t.Errorf("Localhost mode needs no env, got %v", ic.Env)
	}

	env := container(got.Spec.Containers, SidecarName)
	if env == nil {
		t.Fatal("no envoy sidecar")
	}
	if env.Image != spec.Sidecar.EnvoyImage {
		t.Errorf("envoy image = %q", env.Image)
	}
	if !slices.Contains(env.Args, "debug") {
		t.Errorf("envoy args %q lack the MeshConfig log level", env.Args)
	}
	if !reflect.DeepEqual(env.Resources, spec.Sidecar.Resources) {
		t.Errorf("envoy resources = %v", env.Resources)
	}
	esc := env.SecurityContext
	if esc == nil || esc.RunAsUser == nil || *esc.RunAsUser != 1500 ||
		esc.AllowPrivilegeEscalation == nil || *esc.AllowPrivilegeEscalation ||
		esc.ReadOnlyRootFilesystem == nil || !*esc.ReadOnlyRootFilesystem {
		t.Errorf("envoy security context = %+v", esc)
	}
	var ports []int32
	for _, p := range env.Ports {
		ports = append(ports, p.ContainerPort)
	}
	if !slices.Equal(ports, []int32{15000, 15001, 15003, 15010}) {
		t.Errorf("envoy ports = %v", ports)
	}

	cfg, errs := redirect.Effective(MeshSettings(spec), nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	wantAnn := map[string]string{
		AnnotationExclusionsDigest:     cfg.Digest(),
		AnnotationMeshConfigGeneration: "7",
		AnnotationMeshConfig:           "osm-system/osm-mesh-config",
		AnnotationInjectedBy:           "v0.1.0-test",
	}
	for k, v := range wantAnn {
		if got.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, got.Annotations[k], v)
		}
	}
}

func TestInjectPodIPEnv(t *testing.T) {
	spec := testSpec()
	spec.Sidecar.LocalProxyMode = configv1alpha2.LocalProxyModePodIP
	got, err := Inject(testPod(), spec, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	ic := container(got.Spec.InitContainers, redirect.InitContainerName)
	if len(ic.Env) != 1 || ic.Env[0].Name != redirect.PodIPEnvVar || ic.Env[0].ValueFrom == nil ||
		ic.Env[0].ValueFrom.FieldRef == nil || ic.Env[0].ValueFrom.FieldRef.FieldPath != "status.podIP" {
		t.Errorf("PodIP mode needs POD_IP from the downward API, got %+v", ic.Env)
	}
}

func TestInjectPrivileged(t *testing.T) {
	spec := testSpec()
	spec.Sidecar.EnablePrivilegedInitContainer = true
	got, err := Inject(testPod(), spec, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	ic := container(got.Spec.InitContainers, redirect.InitContainerName)
	if ic.SecurityContext.Privileged == nil || !*ic.SecurityContext.Privileged {
		t.Error("enablePrivilegedInitContainer must make the init container privileged")
	}
}

func TestInjectIdempotent(t *testing.T) {
	first, err := Inject(testPod(), testSpec(), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	// A different MeshConfig on the second pass must not re-render anything.
	spec := testSpec()
	spec.Traffic.OutboundPortExclusionList = []int32{1, 2, 3}
	second, err := Inject(first, spec, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	if ops := patchFor(t, first, second); len(ops) != 0 {
		t.Fatalf("second pass produced a patch: %+v", ops)
	}
}

func TestInjectErrors(t *testing.T) {
	noImages := testSpec()
	noImages.Sidecar.EnvoyImage = ""
	noImages.Sidecar.InitContainerImage = ""
	badMesh := testSpec()
	badMesh.Traffic.OutboundIPRangeExclusionList = []string{"999.1.1.1/32"}
	onlyEnvoy := testPod()
	onlyEnvoy.Spec.Containers = append(onlyEnvoy.Spec.Containers, corev1.Container{Name: SidecarName, Image: "x"})
	onlyInit := testPod()
	onlyInit.Spec.InitContainers = append(onlyInit.Spec.InitContainers, corev1.Container{Name: redirect.InitContainerName, Image: "x"})

	tests := []struct {
		name     string
		pod      *corev1.Pod
		spec     *configv1alpha2.MeshConfigSpec
		want     []string
		conflict bool
	}{
		{"port out of range", withAnnotations(testPod(), redirect.AnnotationOutboundPortExclusionList, "80,70000"), testSpec(),
			[]string{redirect.AnnotationOutboundPortExclusionList, "70000"}, false},
		{"inbound port not a number", withAnnotations(testPod(), redirect.AnnotationInboundPortExclusionList, "http"), testSpec(),
			[]string{redirect.AnnotationInboundPortExclusionList, "http"}, false},
		{"shell in a CIDR", withAnnotations(testPod(), redirect.AnnotationOutboundIPRangeExclusionList, "10.0.0.0/8$(reboot)"), testSpec(),
			[]string{redirect.AnnotationOutboundIPRangeExclusionList, "10.0.0.0/8$(reboot)"}, false},
		{"bad inclusion", withAnnotations(testPod(), redirect.AnnotationOutboundIPRangeInclusionList, "10.0.0.1"), testSpec(),
			[]string{redirect.AnnotationOutboundIPRangeInclusionList, "10.0.0.1"}, false},
		{"bad MeshConfig CIDR", testPod(), badMesh, []string{"outboundIPRangeExclusionList", "999.1.1.1/32"}, false},
		{"no images", testPod(), noImages, []string{"spec.sidecar.envoyImage", "spec.sidecar.initContainerImage"}, false},
		{"envoy without init", onlyEnvoy, testSpec(), []string{`"envoy"`}, true},
		{"init without envoy", onlyInit, testSpec(), []string{`"meshkeeper-init"`}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.pod.DeepCopy()
			got, err := Inject(tt.pod, tt.spec, testOptions())
			if err == nil {
				t.Fatalf("expected an error, got a pod with %d containers", len(got.Spec.Containers))
			}
			if got != nil {
				t.Error("a failed injection must not return a pod")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if errors.Is(err, ErrConflict) != tt.conflict {
				t.Errorf("errors.Is(err, ErrConflict) = %v, want %v", !tt.conflict, tt.conflict)
			}
			if !reflect.DeepEqual(before, tt.pod) {
				t.Error("a failed injection modified the input pod")
			}
		})
	}
}

func TestInjectNil(t *testing.T) {
	if _, err := Inject(nil, testSpec(), testOptions()); err == nil {
		t.Error("nil pod accepted")
	}
	if _, err := Inject(testPod(), nil, testOptions()); err == nil {
		t.Error("nil spec accepted")
	}
}

func TestInjectDefaultImagesAndLogLevel(t *testing.T) {
	spec := testSpec()
	spec.Sidecar.EnvoyImage, spec.Sidecar.InitContainerImage, spec.Sidecar.LogLevel = "", "", ""
	opts := testOptions()
	opts.DefaultEnvoyImage, opts.DefaultInitImage = "envoy:default", "init:default"
	got, err := Inject(testPod(), spec, opts)
	if err != nil {
		t.Fatal(err)
	}
	if c := container(got.Spec.Containers, SidecarName); c.Image != "envoy:default" || !slices.Contains(c.Args, DefaultEnvoyLogLevel) {
		t.Errorf("envoy image %q args %q", c.Image, c.Args)
	}
	if c := container(got.Spec.InitContainers, redirect.InitContainerName); c.Image != "init:default" {
		t.Errorf("init image %q", c.Image)
	}
}

// An OSM MeshConfig names OSM's init image, which has no meshkeeper-init program: the operator's
// image must win unless the operator opted in to the MeshConfig's image.
func TestInjectInitImageComesFromTheOperator(t *testing.T) {
	spec := testSpec()
	spec.Sidecar.InitContainerImage = "openservicemesh/init:v1.2.4"
	for _, tc := range []struct {
		name string
		use  bool
		want string
	}{
		{"operator image wins by default", false, "ghcr.io/meshkeeper/init:op"},
		{"MeshConfig image when opted in", true, "openservicemesh/init:v1.2.4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := testOptions()
			opts.DefaultEnvoyImage, opts.DefaultInitImage, opts.UseMeshConfigInitImage = "envoy:op", "ghcr.io/meshkeeper/init:op", tc.use
			got, err := Inject(testPod(), spec, opts)
			if err != nil {
				t.Fatal(err)
			}
			if c := container(got.Spec.InitContainers, redirect.InitContainerName); c.Image != tc.want {
				t.Errorf("init image %q, want %q", c.Image, tc.want)
			}
		})
	}
}
