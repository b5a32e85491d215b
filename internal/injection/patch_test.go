package injection

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// applyRaw applies ops, as the API server would, to the pod JSON raw and decodes the result.
func applyRaw(t *testing.T, raw []byte, ops []Operation) *corev1.Pod {
	t.Helper()
	if len(ops) > 0 {
		patch, err := jsonpatch.DecodePatch(mustJSON(t, ops))
		if err != nil {
			t.Fatal(err)
		}
		if raw, err = patch.Apply(raw); err != nil {
			t.Fatalf("applying %s to %s: %v", mustJSON(t, ops), raw, err)
		}
	}
	out := &corev1.Pod{}
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatal(err)
	}
	return out
}

func applyPatch(t *testing.T, pod *corev1.Pod, ops []Operation) *corev1.Pod {
	t.Helper()
	return applyRaw(t, mustJSON(t, pod), ops)
}

// checkPatchEqualsInject decodes raw as the webhook does and requires that JSONPatch applied to raw
// yields exactly Inject's pod, using only adds, one per added item unless the whole list or map
// is created. It returns the operations.
func checkPatchEqualsInject(t *testing.T, raw []byte, opts Options) []Operation {
	t.Helper()
	pod := &corev1.Pod{}
	if err := json.Unmarshal(raw, pod); err != nil {
		t.Fatal(err)
	}
	injected, err := Inject(pod, testSpec(), opts)
	if err != nil {
		t.Fatalf("pod %s: %v", raw, err)
	}
	add, err := Compute(pod, testSpec(), opts)
	if err != nil {
		t.Fatal(err)
	}
	ops := add.JSONPatch(pod)
	patched := applyRaw(t, raw, ops)
	if !equality.Semantic.DeepEqual(patched, injected) {
		t.Fatalf("pod %s\npatch %s\npatched  %s\ninjected %s", raw, mustJSON(t, ops), mustJSON(t, patched), mustJSON(t, injected))
	}
	if a, b := mustJSON(t, patched), mustJSON(t, injected); string(a) != string(b) {
		t.Fatalf("JSON differs:\npatched  %s\ninjected %s", a, b)
	}
	items := len(add.InitContainers) + len(add.Containers) + len(add.Volumes) + len(add.Annotations)
	if len(ops) > items {
		t.Errorf("%d operations for %d added items: %s", len(ops), items, mustJSON(t, ops))
	}
	// A whole list, map or object may only be written where the pod holds nothing, or the patch
	// would restate (and on a newer API server, overwrite) what the pod already has.
	wholeOK := map[string]bool{
		"/metadata":             reflect.DeepEqual(pod.ObjectMeta, metav1.ObjectMeta{}),
		"/metadata/annotations": len(pod.Annotations) == 0,
		"/spec":                 reflect.DeepEqual(pod.Spec, corev1.PodSpec{}),
		"/spec/initContainers":  len(pod.Spec.InitContainers) == 0,
		"/spec/containers":      len(pod.Spec.Containers) == 0,
		"/spec/volumes":         len(pod.Spec.Volumes) == 0,
	}
	for _, op := range ops {
		if op.Op != "add" {
			t.Errorf("operation %q: injection only adds", op.Op)
		}
		if ok, whole := wholeOK[op.Path]; whole && !ok {
			t.Errorf("%s is replaced although the pod already holds it", op.Path)
		}
	}
	return ops
}

func TestEscapePointerToken(t *testing.T) {
	for in, want := range map[string]string{
		"plain":              "plain",
		"meshkeeper.io/mesh": "meshkeeper.io~1mesh",
		"a~b":                "a~0b",
		"a~1b":               "a~01b",
		"~/":                 "~0~1",
		"/~":                 "~1~0",
		"":                   "",
	} {
		if got := escapePointerToken(in); got != want {
			t.Errorf("escapePointerToken(%q) = %q, want %q", in, got, want)
		}
	}
}

// existingListsPod already has an init container, a volume and annotations, so every addition is
// an append.
func existingListsPod() *corev1.Pod {
	p := withAnnotations(testPod(), "team", "books", "example.com/owner~x", "a/b~c")
	p.Spec.InitContainers = []corev1.Container{{Name: "migrate", Image: "bookstore-migrate:v1"}}
	p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	return p
}

func TestJSONPatchEqualsInject(t *testing.T) {
	bootstrap := testOptions()
	bootstrap.BootstrapSecret = "envoy-bootstrap"
	tilde := withAnnotations(testPod(), "x.io/a~1b", "1", "x.io/a/b", "2", "~", "3", "/", "4")
	ours := withAnnotations(testPod(), AnnotationInjectedBy, "someone-else", AnnotationMeshConfigGeneration, "99")
	emptyLists := testPod()
	emptyLists.Annotations = map[string]string{}
	emptyLists.Spec.InitContainers = []corev1.Container{}
	emptyLists.Spec.Volumes = []corev1.Volume{}
	unknownFields := `{"metadata":{"name":"p","annotations":{"k":"v"},"futureMeta":1},"spec":{"futureField":{"x":[1]},"containers":[{"name":"a","futureContainerField":true}]}}`
	pods := []struct {
		name string
		pod  *corev1.Pod
		raw  string
	}{
		{name: "typical", pod: testPod()},
		{name: "existing lists and annotations", pod: existingListsPod()},
		{name: "annotation keys with / and ~", pod: tilde},
		{name: "our annotations already present", pod: ours},
		{name: "empty lists and map", pod: emptyLists},
		{name: "null lists and annotations", raw: `{"metadata":{"name":"p","annotations":null},"spec":{"initContainers":null,"volumes":null,"containers":[{"name":"a"}]}}`},
		{name: "empty JSON lists", raw: `{"metadata":{"name":"p","annotations":{}},"spec":{"initContainers":[],"volumes":[],"containers":[]}}`},
		{name: "no containers", raw: `{"metadata":{"name":"p"},"spec":{"containers":null}}`},
		{name: "no metadata or spec", raw: `{}`},
		{name: "null metadata and spec", raw: `{"metadata":null,"spec":null}`},
		{name: "empty metadata and spec", raw: `{"metadata":{},"spec":{}}`},
		{name: "only spec", raw: `{"spec":{"containers":[{"name":"a"}]}}`},
		{name: "only metadata", raw: `{"metadata":{"annotations":{"k":"v"}}}`},
		{name: "fields unknown to this build", raw: unknownFields},
	}
	for _, opts := range []struct {
		name string
		o    Options
	}{{"inline bootstrap", testOptions()}, {"bootstrap secret", bootstrap}} {
		for _, p := range pods {
			t.Run(opts.name+"/"+p.name, func(t *testing.T) {
				raw := []byte(p.raw)
				if p.pod != nil {
					raw = mustJSON(t, p.pod)
				}
				checkPatchEqualsInject(t, raw, opts.o)
			})
		}
	}
}

// Fields this build does not know must survive: the patch names only what is added.
func TestJSONPatchKeepsUnknownFields(t *testing.T) {
	raw := []byte(`{"metadata":{"name":"p","futureMeta":1},"spec":{"futureField":{"x":[1]},"containers":[{"name":"a","futureContainerField":true}]}}`)
	pod := &corev1.Pod{}
	if err := json.Unmarshal(raw, pod); err != nil {
		t.Fatal(err)
	}
	add, err := Compute(pod, testSpec(), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	patch, err := jsonpatch.DecodePatch(mustJSON(t, add.JSONPatch(pod)))
	if err != nil {
		t.Fatal(err)
	}
	out, err := patch.Apply(raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"futureMeta":1`, `"futureField":{"x":[1]}`, `"futureContainerField":true`} {
		if !strings.Contains(string(out), field) {
			t.Errorf("patched pod lost %s: %s", field, out)
		}
	}
}

func TestJSONPatchEmptyForInjectedPod(t *testing.T) {
	first, err := Inject(testPod(), testSpec(), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	add, err := Compute(first, testSpec(), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	if !add.Empty() {
		t.Errorf("additions for an injected pod: %+v", add)
	}
	if ops := add.JSONPatch(first); ops != nil {
		t.Errorf("patch for an injected pod: %s", mustJSON(t, ops))
	}
}

// randomPod builds a pod whose lists and annotations are, each independently, absent, empty or
// populated, with annotation keys that need escaping in a JSON pointer.
func randomPod(r *rand.Rand) *corev1.Pod {
	p := &corev1.Pod{}
	if r.IntN(4) > 0 {
		p.ObjectMeta = metav1.ObjectMeta{Name: fmt.Sprintf("p%d", r.IntN(1000)), Namespace: "app"}
	}
	keys := []string{"a", "x.io/y", "x.io/y~z", "~", "/", "~1", "a/b/c", AnnotationInjectedBy, AnnotationExclusionsDigest,
		redirect.AnnotationOutboundPortExclusionList, redirect.AnnotationInboundPortExclusionList}
	values := map[string][]string{
		redirect.AnnotationOutboundPortExclusionList: {"443", "80,8080", ""},
		redirect.AnnotationInboundPortExclusionList:  {"9090", ""},
	}
	switch r.IntN(3) {
	case 0:
	case 1:
		p.Annotations = map[string]string{}
	default:
		p.Annotations = map[string]string{}
		for range 1 + r.IntN(5) {
			k := keys[r.IntN(len(keys))]
			v := fmt.Sprintf("v%d", r.IntN(100))
			if vs, ok := values[k]; ok {
				v = vs[r.IntN(len(vs))]
			}
			p.Annotations[k] = v
		}
	}
	containers := func(prefix string) []corev1.Container {
		switch n := r.IntN(4); n {
		case 0:
			return nil
		case 1:
			return []corev1.Container{}
		default:
			cs := make([]corev1.Container, n-1)
			for i := range cs {
				cs[i] = corev1.Container{Name: fmt.Sprintf("%s%d", prefix, i), Image: "img", Env: []corev1.EnvVar{{Name: "E", Value: fmt.Sprint(i)}}}
			}
			return cs
		}
	}
	p.Spec.InitContainers = containers("init")
	p.Spec.Containers = containers("app")
	switch r.IntN(3) {
	case 0:
	case 1:
		p.Spec.Volumes = []corev1.Volume{}
	default:
		p.Spec.Volumes = []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	}
	if r.IntN(5) == 0 {
		p.Spec.ServiceAccountName = "sa"
	}
	return p
}

func TestJSONPatchEqualsInjectRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	bootstrap := testOptions()
	bootstrap.BootstrapSecret = "envoy-bootstrap"
	shapes := map[string]int{}
	for i := range 2000 {
		pod := randomPod(r)
		opts := testOptions()
		if r.IntN(2) == 0 {
			opts = bootstrap
		}
		raw := mustJSON(t, pod)
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			for _, op := range checkPatchEqualsInject(t, raw, opts) {
				shapes[strings.TrimRight(strings.SplitN(op.Path, "~", 2)[0], "/-")]++
			}
		})
		if t.Failed() {
			break
		}
	}
	// The random pods must have reached every shape of patch, or the test proves less than it says.
	for _, path := range []string{"/metadata", "/metadata/annotations", "/metadata/annotations/meshkeeper.io", "/spec",
		"/spec/initContainers", "/spec/containers", "/spec/volumes"} {
		if shapes[path] == 0 {
			t.Errorf("no random pod produced an operation on %s (seen %v)", path, shapes)
		}
	}
}

// TestPatchKeyCoversEverythingThePatchReads groups random pods by PatchKey: within a group the
// encoded patches must be byte-identical, or the admission webhook's memo would answer one pod
// with another's patch. The random pods differ in names, containers, other annotations and
// service accounts, none of which may reach the patch.
func TestPatchKeyCoversEverythingThePatchReads(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, opts := range []Options{testOptions(), func() Options { o := testOptions(); o.BootstrapSecret = "envoy-bootstrap"; return o }()} {
		first := map[string][]byte{}
		shared := 0
		for range 3000 {
			pod := randomPod(r)
			if Conflict(pod) != nil || Injected(pod) {
				continue
			}
			add, err := Compute(pod, testSpec(), opts)
			if err != nil {
				continue // invalid annotation values: the webhook refuses these before any memo
			}
			patch := mustJSON(t, add.JSONPatch(pod))
			key := PatchKey(pod)
			if prev, ok := first[key]; ok {
				shared++
				if string(prev) != string(patch) {
					t.Fatalf("pods with key %q got different patches:\n%s\n%s", key, prev, patch)
				}
				continue
			}
			first[key] = patch
		}
		if shared < 1000 || len(first) < 20 {
			t.Errorf("the random pods share too few keys to prove anything: %d keys, %d pods matched an earlier one", len(first), shared)
		}
	}
}

func TestPatchKeyTellsAnnotationsApart(t *testing.T) {
	with := func(kv ...string) *corev1.Pod {
		p := testPod()
		p.Annotations = map[string]string{"other": "x"}
		for i := 0; i < len(kv); i += 2 {
			p.Annotations[kv[i]] = kv[i+1]
		}
		return p
	}
	keys := map[string]string{}
	for name, pod := range map[string]*corev1.Pod{
		"absent":           with(),
		"empty":            with(redirect.AnnotationOutboundPortExclusionList, ""),
		"value":            with(redirect.AnnotationOutboundPortExclusionList, "443"),
		"other list":       with(redirect.AnnotationInboundPortExclusionList, "443"),
		"forged separator": with(redirect.AnnotationOutboundPortExclusionList, "|-|-"),
		"no annotations":   testPod(),
	} {
		k := PatchKey(pod)
		if other, dup := keys[k]; dup {
			t.Errorf("%s and %s share key %q", name, other, k)
		}
		keys[k] = name
	}
	if PatchKey(with("unrelated", "1")) != PatchKey(with("unrelated", "2")) {
		t.Error("an annotation no rule reads changed the key")
	}
}
