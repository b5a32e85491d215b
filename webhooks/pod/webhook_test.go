package pod

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/meshkeeper/meshkeeper/internal/injection"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// apply returns the pod the API server would store after the response's patch.
func apply(t *testing.T, req admission.Request, resp admission.Response) *corev1.Pod {
	t.Helper()
	raw := req.Object.Raw
	if len(resp.Patches) > 0 {
		ops, err := json.Marshal(resp.Patches)
		if err != nil {
			t.Fatal(err)
		}
		patch, err := jsonpatch.DecodePatch(ops)
		if err != nil {
			t.Fatal(err)
		}
		if raw, err = patch.Apply(raw); err != nil {
			t.Fatal(err)
		}
	}
	pod := &corev1.Pod{}
	if err := json.Unmarshal(raw, pod); err != nil {
		t.Fatal(err)
	}
	return pod
}

func withAnnotation(p *corev1.Pod, k, v string) *corev1.Pod {
	if p.Annotations == nil {
		p.Annotations = map[string]string{}
	}
	p.Annotations[k] = v
	return p
}

func TestHandle(t *testing.T) {
	meshed := namespace("app", true, "enabled")
	hostNet := typicalPod()
	hostNet.Spec.HostNetwork = true
	tests := []struct {
		name       string
		inj        *Injector
		pod        *corev1.Pod
		ns         string
		allowed    bool
		injected   bool
		msg        []string
		warnings   []string
		noWarnings bool
	}{
		{name: "meshed namespace", inj: newInjector(meshed, testMeshConfig()), pod: typicalPod(), ns: "app", allowed: true, injected: true, noWarnings: true},
		{name: "unmonitored namespace", inj: newInjector(namespace("app", false, "enabled"), testMeshConfig()), pod: typicalPod(), ns: "app", allowed: true},
		{name: "namespace without injection annotation", inj: newInjector(namespace("app", true, ""), testMeshConfig()), pod: typicalPod(), ns: "app", allowed: true},
		{name: "pod opts out", inj: newInjector(meshed, testMeshConfig()),
			pod: withAnnotation(typicalPod(), injection.AnnotationSidecarInjection, "disabled"), ns: "app", allowed: true},
		{name: "host network", inj: newInjector(meshed, testMeshConfig()), pod: hostNet, ns: "app", allowed: true},
		{name: "invalid port annotation", inj: newInjector(meshed, testMeshConfig()),
			pod: withAnnotation(typicalPod(), redirect.AnnotationOutboundPortExclusionList, "443,99999"), ns: "app",
			msg: []string{redirect.AnnotationOutboundPortExclusionList, "99999"}},
		{name: "invalid injection annotation", inj: newInjector(meshed, testMeshConfig()),
			pod: withAnnotation(typicalPod(), injection.AnnotationSidecarInjection, "perhaps"), ns: "app",
			msg: []string{injection.AnnotationSidecarInjection, "perhaps"}},
		{name: "no MeshConfig", inj: newInjector(meshed), pod: typicalPod(), ns: "app",
			msg: []string{"MeshConfig osm-system/osm-mesh-config not found"}},
		{name: "unknown namespace", inj: newInjector(testMeshConfig()), pod: typicalPod(), ns: "app", msg: []string{"namespace app"}},
		{name: "exclusion of the Service CIDR warns", inj: func() *Injector {
			i := newInjector(meshed, testMeshConfig())
			i.Cluster.ServiceCIDRs = append(i.Cluster.ServiceCIDRs, mustPrefix(t, "10.96.0.0/12"))
			return i
		}(), pod: withAnnotation(typicalPod(), redirect.AnnotationOutboundIPRangeExclusionList, "10.0.0.0/8"), ns: "app",
			allowed: true, injected: true, warnings: []string{redirect.AnnotationOutboundIPRangeExclusionList, redirect.WarnExclusionOverlapsServiceCIDR}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := request(t, tt.pod, tt.ns)
			resp := tt.inj.Handle(context.Background(), req)
			if resp.Allowed != tt.allowed {
				t.Fatalf("allowed = %v, want %v (result %+v)", resp.Allowed, tt.allowed, resp.Result)
			}
			for _, m := range tt.msg {
				if resp.Result == nil || !strings.Contains(resp.Result.Message, m) {
					t.Errorf("message %v does not mention %q", resp.Result, m)
				}
			}
			joined := strings.Join(resp.Warnings, "\n")
			for _, w := range tt.warnings {
				if !strings.Contains(joined, w) {
					t.Errorf("warnings %q do not mention %q", joined, w)
				}
			}
			if tt.noWarnings && len(resp.Warnings) > 0 {
				t.Errorf("unexpected warnings %q", resp.Warnings)
			}
			if !tt.allowed {
				if len(resp.Patches) > 0 {
					t.Error("a denied pod must not be patched")
				}
				return
			}
			got := apply(t, req, resp)
			if injection.Injected(got) != tt.injected {
				t.Fatalf("injected = %v, want %v", injection.Injected(got), tt.injected)
			}
			if !tt.injected {
				if len(resp.Patches) > 0 {
					t.Errorf("pod left alone but patched: %v", resp.Patches)
				}
				return
			}
			if got.Annotations[injection.AnnotationMeshConfigGeneration] != "3" ||
				got.Annotations[injection.AnnotationMeshConfig] != meshConfigKey.String() ||
				got.Annotations[injection.AnnotationExclusionsDigest] == "" {
				t.Errorf("provenance annotations = %v", got.Annotations)
			}
			// The second pass (reinvocation, or a pod re-submitted from an injected one) is a no-op.
			again := tt.inj.Handle(context.Background(), request(t, got, tt.ns))
			if !again.Allowed || len(again.Patches) != 0 {
				t.Errorf("second pass: allowed=%v patches=%v", again.Allowed, again.Patches)
			}
		})
	}
}

func TestHandleRejectsGarbage(t *testing.T) {
	inj := newInjector(namespace("app", true, "enabled"), testMeshConfig())
	req := request(t, typicalPod(), "app")
	req.Object = runtime.RawExtension{Raw: []byte(`{"spec": 7}`)}
	if resp := inj.Handle(context.Background(), req); resp.Allowed || resp.Result.Code != 400 {
		t.Errorf("undecodable pod: allowed=%v result=%+v", resp.Allowed, resp.Result)
	}
	req.Object = runtime.RawExtension{}
	if resp := inj.Handle(context.Background(), req); resp.Allowed {
		t.Error("empty object admitted")
	}
}

func TestHandleHonoursCancellation(t *testing.T) {
	inj := newInjector(namespace("app", true, "enabled"), testMeshConfig())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	resp := inj.Handle(ctx, request(t, typicalPod(), "app"))
	if resp.Allowed || len(resp.Patches) > 0 {
		t.Errorf("cancelled request: allowed=%v patches=%d", resp.Allowed, len(resp.Patches))
	}
}

func TestLargePodIsAbout64KiB(t *testing.T) {
	raw, err := json.Marshal(largePod())
	if err != nil {
		t.Fatal(err)
	}
	if n := len(raw); n < 60<<10 || n > 72<<10 {
		t.Fatalf("large pod is %d bytes; the benchmark is meant for about 64 KiB", n)
	}
}

// lateReader hides the namespace for the first few reads, as an informer that has not yet seen a
// namespace created a moment before its first pod.
type lateReader struct {
	cacheReader
	misses int
}

func (l *lateReader) Get(ctx context.Context, key types.NamespacedName, obj client.Object, opts ...client.GetOption) error {
	if _, isNS := obj.(*corev1.Namespace); isNS && l.misses > 0 {
		l.misses--
		return apierrors.NewNotFound(schema.GroupResource{Resource: "namespaces"}, key.Name)
	}
	return l.cacheReader.Get(ctx, key, obj, opts...)
}

func TestHandleWaitsForANewNamespace(t *testing.T) {
	inj := newInjector(namespace("app", true, "enabled"), testMeshConfig())
	inj.Reader = &lateReader{cacheReader: inj.Reader.(cacheReader), misses: 3}
	resp := inj.Handle(context.Background(), request(t, typicalPod(), "app"))
	if !resp.Allowed || len(resp.Patches) == 0 {
		t.Fatalf("pod in a namespace the cache learnt of late was not injected: %+v", resp.Result)
	}
}
