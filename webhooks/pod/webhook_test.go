package pod

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	dto "github.com/prometheus/client_model/go"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	"github.com/meshkeeper/meshkeeper/internal/injection"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// apply returns the pod the API server would store after the response's patch.
func apply(t *testing.T, req admission.Request, resp admission.Response) *corev1.Pod {
	t.Helper()
	raw := req.Object.Raw
	if len(resp.Patches) > 0 {
		t.Fatal("the handler encodes its patch itself; Patches would replace it")
	}
	if len(resp.Patch) > 0 {
		if resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
			t.Fatalf("patch type %v", resp.PatchType)
		}
		patch, err := jsonpatch.DecodePatch(resp.Patch)
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
		{name: "no MeshConfig: let through, not refused", inj: newInjector(meshed), pod: typicalPod(), ns: "app", allowed: true,
			warnings: []string{"did not inject", "MeshConfig osm-system/osm-mesh-config not found"}},
		{name: "unknown namespace: let through, not refused", inj: newInjector(testMeshConfig()), pod: typicalPod(), ns: "app", allowed: true,
			warnings: []string{"did not inject", "namespace app"}},
		{name: "invalid MeshConfig: let through with the field, not refused", inj: func() *Injector {
			mc := testMeshConfig()
			mc.Spec.Traffic.OutboundIPRangeExclusionList = []string{"999.1.1.1/32"}
			return newInjector(meshed, mc)
		}(), pod: typicalPod(), ns: "app", allowed: true, warnings: []string{"did not inject", "is invalid", "999.1.1.1/32"}},
		{name: "injected by OSM: untouched, with a warning", inj: newInjector(meshed, testMeshConfig()), pod: osmInjected(), ns: "app", allowed: true,
			warnings: []string{"another injector", `init container "osm-init"`}},
		{name: "injection paused: untouched, with the reason", inj: func() *Injector {
			i := newInjector(meshed, testMeshConfig())
			i.Gate = NewGate()
			i.Gate.Pause(injection.InjectorConflictMessage("osm", []string{"osm-webhook-osm"}))
			return i
		}(), pod: typicalPod(), ns: "app", allowed: true, warnings: []string{"did not inject", "osm-webhook-osm", "--mode=audit"}},
		{name: "gate resumed: injected", inj: func() *Injector {
			i := newInjector(meshed, testMeshConfig())
			i.Gate = NewGate()
			i.Gate.Resume()
			return i
		}(), pod: typicalPod(), ns: "app", allowed: true, injected: true, noWarnings: true},
		{name: "exclusion of the Service CIDR warns", inj: func() *Injector {
			i := newInjector(meshed, testMeshConfig())
			i.Cluster.ServiceCIDRs = append(i.Cluster.ServiceCIDRs, mustPrefix(t, "10.96.0.0/12"))
			return i
		}(), pod: withAnnotation(typicalPod(), redirect.AnnotationOutboundIPRangeExclusionList, "10.0.0.0/8"), ns: "app",
			allowed: true, injected: true, warnings: []string{redirect.AnnotationOutboundIPRangeExclusionList, redirect.WarnExclusionOverlapsServiceCIDR}},
	}
	// Each decision is counted once, under its outcome (meshkeeper_admission_decisions_total).
	outcomes := map[string]Outcome{
		"meshed namespace": OutcomeInjected, "unmonitored namespace": OutcomeSkipped,
		"namespace without injection annotation": OutcomeSkipped, "pod opts out": OutcomeSkipped,
		"host network": OutcomeSkipped, "invalid port annotation": OutcomeDenied,
		"invalid injection annotation": OutcomeDenied, "no MeshConfig: let through, not refused": OutcomeNotInjected,
		"unknown namespace: let through, not refused":                 OutcomeNotInjected,
		"invalid MeshConfig: let through with the field, not refused": OutcomeNotInjected,
		"injected by OSM: untouched, with a warning":                  OutcomeOtherInjector,
		"injection paused: untouched, with the reason":                OutcomePaused,
		"gate resumed: injected":                                      OutcomeInjected,
		"exclusion of the Service CIDR warns":                         OutcomeInjected,
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := request(t, tt.pod, tt.ns)
			outcome, ok := outcomes[tt.name]
			if !ok {
				t.Fatalf("no outcome listed for case %q", tt.name)
			}
			before := decisionCounts()
			resp := tt.inj.Handle(context.Background(), req)
			after := decisionCounts()
			for _, o := range Outcomes {
				want := before[o]
				if o == outcome {
					want++
				}
				if after[o] != want {
					t.Errorf("meshkeeper_admission_decisions_total{outcome=%q} went from %v to %v, want %v", o, before[o], after[o], want)
				}
			}
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
				if len(resp.Patch) > 0 {
					t.Error("a denied pod must not be patched")
				}
				return
			}
			got := apply(t, req, resp)
			if injection.Injected(got) != tt.injected {
				t.Fatalf("injected = %v, want %v", injection.Injected(got), tt.injected)
			}
			if !tt.injected {
				if len(resp.Patch) > 0 {
					t.Errorf("pod left alone but patched: %s", resp.Patch)
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
			if !again.Allowed || len(again.Patch) != 0 {
				t.Errorf("second pass: allowed=%v patch=%s", again.Allowed, again.Patch)
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
	if resp.Allowed || len(resp.Patch) > 0 {
		t.Errorf("cancelled request: allowed=%v patches=%d", resp.Allowed, len(resp.Patch))
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
	if !resp.Allowed || len(resp.Patch) == 0 {
		t.Fatalf("pod in a namespace the cache learnt of late was not injected: %+v", resp.Result)
	}
}

// expectedPod is what injection.Inject makes of pod with the options the handler uses.
func expectedPod(t testing.TB, inj *Injector, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	mc := &configv1alpha2.MeshConfig{}
	if err := inj.Reader.Get(context.Background(), inj.MeshConfig, mc); err != nil {
		t.Fatal(err)
	}
	opts := inj.Options
	opts.MeshConfig = inj.MeshConfig
	opts.MeshConfigGeneration = mc.Generation
	want, err := injection.Inject(pod, &mc.Spec, opts)
	if err != nil {
		t.Fatal(err)
	}
	return want
}

// The handler's patch, applied by an independent JSON patch implementation, must give exactly the
// pod injection.Inject returns.
// patchCases are pods of every patch shape: lists absent, empty or populated, annotation keys
// that need escaping, a 64 KiB pod, a pod with its own exclusions.
func patchCases() map[string]*corev1.Pod {
	withLists := typicalPod()
	withLists.Spec.InitContainers = []corev1.Container{{Name: "migrate", Image: "migrate:v1"}}
	withLists.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	withLists = withAnnotation(withAnnotation(withLists, "example.com/a~b", "1"), "a/b/c", "2")
	tilde := withAnnotation(withAnnotation(typicalPod(), "~", "x"), "x.io/~1", "y")
	emptyLists := typicalPod()
	emptyLists.Annotations = map[string]string{}
	emptyLists.Spec.InitContainers = []corev1.Container{}
	emptyLists.Spec.Volumes = []corev1.Volume{}
	return map[string]*corev1.Pod{
		"typical":                       typicalPod(),
		"env1500_64KiB":                 largePod(),
		"existing init, volume, annots": withLists,
		"annotation keys with ~":        tilde,
		"empty lists":                   emptyLists,
		"exclusion annotation":          withAnnotation(typicalPod(), redirect.AnnotationOutboundPortExclusionList, "6379"),
	}
}

func TestHandlePatchEqualsInject(t *testing.T) {
	pods := patchCases()
	for _, secret := range []string{"", "envoy-bootstrap"} {
		for name, pod := range pods {
			t.Run(name+"/secret="+secret, func(t *testing.T) {
				inj := newInjector(namespace("app", true, "enabled"), testMeshConfig())
				inj.Options.BootstrapSecret = secret
				req := request(t, pod, "app")
				resp := inj.Handle(context.Background(), req)
				if !resp.Allowed || len(resp.Patch) == 0 {
					t.Fatalf("not injected: %+v", resp.Result)
				}
				var ops []struct{ Op, Path string }
				if err := json.Unmarshal(resp.Patch, &ops); err != nil {
					t.Fatal(err)
				}
				for _, op := range ops {
					if op.Op != "add" {
						t.Errorf("operation %s %s: the handler only adds", op.Op, op.Path)
					}
				}
				got, want := apply(t, req, resp), expectedPod(t, inj, pod)
				if !equality.Semantic.DeepEqual(got, want) {
					t.Fatalf("patched pod differs from injection.Inject's")
				}
				gotJSON, _ := json.Marshal(got)
				wantJSON, _ := json.Marshal(want)
				if !bytes.Equal(gotJSON, wantJSON) {
					t.Fatalf("patched  %s\ninjected %s", gotJSON, wantJSON)
				}
			})
		}
	}
}

// The memo must answer each pod exactly as a fresh computation would, across pods sharing a key,
// and forget everything when the MeshConfig object changes.
func TestHandleMemoisedPatches(t *testing.T) {
	mc := testMeshConfig()
	mc.UID, mc.ResourceVersion = "mc-uid", "1"
	inj := newInjector(namespace("app", true, "enabled"), mc)
	check := func(t *testing.T, pod *corev1.Pod) {
		t.Helper()
		req := request(t, pod, "app")
		resp := inj.Handle(context.Background(), req)
		if !resp.Allowed || len(resp.Patch) == 0 {
			t.Fatalf("not injected: %+v", resp.Result)
		}
		got, want := apply(t, req, resp), expectedPod(t, inj, pod)
		gotJSON, _ := json.Marshal(got)
		wantJSON, _ := json.Marshal(want)
		if !bytes.Equal(gotJSON, wantJSON) {
			t.Fatalf("patched  %s\ninjected %s", gotJSON, wantJSON)
		}
	}
	for round := range 2 {
		for name, pod := range patchCases() {
			t.Run(fmt.Sprintf("%s/round%d", name, round), func(t *testing.T) { check(t, pod) })
		}
	}
	if n := len(inj.patches.patches); n == 0 || n >= len(patchCases()) {
		t.Errorf("memo holds %d patches for %d pods: expected some pods to share a key", n, len(patchCases()))
	}

	// A new MeshConfig version: the next pod gets the new exclusion, not the memoised patch.
	changed := testMeshConfig()
	changed.UID, changed.ResourceVersion = "mc-uid", "2"
	changed.Spec.Traffic.OutboundPortExclusionList = append(changed.Spec.Traffic.OutboundPortExclusionList, 6379)
	inj.Reader.(cacheReader)[meshConfigKey] = changed
	check(t, typicalPod())
	resp := inj.Handle(context.Background(), request(t, typicalPod(), "app"))
	if !strings.Contains(string(resp.Patch), "6379") {
		t.Errorf("patch after the MeshConfig change lacks the new port: %s", resp.Patch)
	}

	// A pod whose key matches a memoised one but which already holds a container of ours is left
	// untouched, not given the memoised patch.
	conflict := typicalPod()
	conflict.Spec.Containers = append(conflict.Spec.Containers, corev1.Container{Name: redirect.InitContainerName, Image: "x"})
	if injection.PatchKey(conflict) != injection.PatchKey(typicalPod()) {
		t.Fatal("the conflicting pod must share the memoised pod's key")
	}
	if resp := inj.Handle(context.Background(), request(t, conflict, "app")); !resp.Allowed || len(resp.Patch) > 0 {
		t.Errorf("pod holding %s: %+v", redirect.InitContainerName, resp)
	}
}

// serve sends pod through controller-runtime's webhook handler, as the API server would, and
// returns the raw "response" member of the AdmissionReview written back.
func serve(t *testing.T, inj *Injector, pod *corev1.Pod) (admission.Request, map[string]json.RawMessage) {
	t.Helper()
	req := request(t, pod, "app")
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request:  &req.AdmissionRequest,
	}
	body, err := json.Marshal(review)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	httpReq := httptest.NewRequest(http.MethodPost, Path, bytes.NewReader(body))
	httpReq.Header.Set("Content-Type", "application/json")
	(&webhook.Admission{Handler: inj}).ServeHTTP(rec, httpReq)
	if rec.Code != http.StatusOK {
		t.Fatalf("HTTP %d: %s", rec.Code, rec.Body)
	}
	var out struct {
		Response map[string]json.RawMessage `json:"response"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if string(out.Response["allowed"]) != "true" {
		t.Fatalf("pod not admitted: %s", rec.Body)
	}
	return req, out.Response
}

// An injected pod coming back (reinvocation, or a manifest copied from a running pod) must be
// admitted with no patch at all on the wire, not with an empty one.
func TestHandleInjectedPodIsANoOp(t *testing.T) {
	inj := newInjector(namespace("app", true, "enabled"), testMeshConfig())
	_, resp := serve(t, inj, expectedPod(t, inj, typicalPod()))
	for _, k := range []string{"patch", "patchType"} {
		if _, ok := resp[k]; ok {
			t.Errorf("response to an injected pod carries %q: %s", k, resp[k])
		}
	}
}

// The patch the handler encodes is the one on the wire: controller-runtime must not replace it.
func TestServedPatchIsTheHandlers(t *testing.T) {
	inj := newInjector(namespace("app", true, "enabled"), testMeshConfig())
	req, resp := serve(t, inj, typicalPod())
	if string(resp["patchType"]) != `"JSONPatch"` {
		t.Fatalf("patchType = %s", resp["patchType"])
	}
	var patch []byte
	if err := json.Unmarshal(resp["patch"], &patch); err != nil {
		t.Fatal(err)
	}
	direct := inj.Handle(context.Background(), req)
	if !bytes.Equal(patch, direct.Patch) {
		t.Fatalf("served patch %s\nhandler's    %s", patch, direct.Patch)
	}
	pt := admissionv1.PatchTypeJSONPatch
	got := apply(t, req, admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{Patch: patch, PatchType: &pt}})
	if want := expectedPod(t, inj, typicalPod()); !equality.Semantic.DeepEqual(got, want) {
		t.Fatal("served patch does not yield injection.Inject's pod")
	}
}

// osmInjected is a pod as OSM v1.2's injector returns it: osm-init, envoy, osm-proxy-uuid.
func osmInjected() *corev1.Pod {
	p := typicalPod()
	p.Labels = map[string]string{injection.LabelOSMProxyUUID: "0c1d2e3f"}
	p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Name: redirect.OSMInitContainerName, Image: "openservicemesh/init:v1.2.4",
		Command: []string{"/bin/sh"}, Args: []string{"-c", "iptables-restore --noflush <<EOF\n*nat\nCOMMIT\nEOF\n"}})
	p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: injection.SidecarName, Image: "envoyproxy/envoy:v1.22.11"})
	return p
}

func decisionCounts() map[Outcome]float64 {
	m := map[Outcome]float64{}
	for _, o := range Outcomes {
		var d dto.Metric
		if err := admissionDecisions.WithLabelValues(string(o)).Write(&d); err != nil {
			panic(err)
		}
		m[o] = d.GetCounter().GetValue()
	}
	return m
}
