package pod

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// FuzzHandle sends arbitrary bytes as the pod of an admission request. The handler must answer
// every one (allowed, denied or errored) without panicking, and never patch a pod it denied.
//
// Whenever the bytes decode into a pod, that pod is also sent as the API server would serialise
// it, and the patch applied to it must give the JSON of the pod injection.Inject returns. The
// arbitrary bytes themselves are not patched: Go's decoder accepts what no API server sends
// (keys in another case, duplicate keys), and the patch addresses the JSON members by name.
func FuzzHandle(f *testing.F) {
	f.Add([]byte(`{"metadata":{"annotations":{"openservicemesh.io/outbound-port-exclusion-list":"1,2,3"}},"spec":{"containers":[{"name":"a"}]}}`))
	f.Add([]byte(`{"spec":{"hostNetwork":true}}`))
	f.Add([]byte(`{"spec":{"initContainers":[{"name":"meshkeeper-init"}],"containers":[{"name":"envoy"}]}}`))
	f.Add([]byte(`{"metadata":{"annotations":{"a/b~c":"1","~":""}},"spec":{"initContainers":[{"name":"i"}],"volumes":[{"name":"v"}],"containers":[]}}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	inj := newInjector(namespace("app", true, "enabled"), testMeshConfig())
	f.Fuzz(func(t *testing.T, raw []byte) {
		req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
			UID: "f", Namespace: "app", Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw},
		}}
		resp := inj.Handle(context.Background(), req)
		if !resp.Allowed && (len(resp.Patch) > 0 || len(resp.Patches) > 0) {
			t.Fatal("denied request carries a patch")
		}

		pod := &corev1.Pod{}
		if json.Unmarshal(raw, pod) != nil {
			return
		}
		canonical, err := json.Marshal(pod)
		if err != nil {
			return
		}
		req.Object.Raw = canonical
		resp = inj.Handle(context.Background(), req)
		if !resp.Allowed || len(resp.Patch) == 0 {
			return
		}
		ops := resp.Patch
		patch, err := jsonpatch.DecodePatch(ops)
		if err != nil {
			t.Fatal(err)
		}
		patched, err := patch.Apply(canonical)
		if err != nil {
			t.Fatalf("patch %s does not apply to %s: %v", ops, canonical, err)
		}
		got := &corev1.Pod{}
		if err := json.Unmarshal(patched, got); err != nil {
			t.Fatal(err)
		}
		want := expectedPod(t, inj, pod)
		gotJSON, _ := json.Marshal(got)
		wantJSON, _ := json.Marshal(want)
		if !bytes.Equal(gotJSON, wantJSON) {
			t.Fatalf("pod %s\npatch %s\npatched  %s\ninjected %s", canonical, ops, gotJSON, wantJSON)
		}
	})
}
