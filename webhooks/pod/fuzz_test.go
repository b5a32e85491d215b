package pod

import (
	"context"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// FuzzHandle sends arbitrary bytes as the pod of an admission request. The handler must answer
// every one (allowed, denied or errored) without panicking, and never patch a pod it denied.
func FuzzHandle(f *testing.F) {
	f.Add([]byte(`{"metadata":{"annotations":{"openservicemesh.io/outbound-port-exclusion-list":"1,2,3"}},"spec":{"containers":[{"name":"a"}]}}`))
	f.Add([]byte(`{"spec":{"hostNetwork":true}}`))
	f.Add([]byte(`{"spec":{"initContainers":[{"name":"meshkeeper-init"}],"containers":[{"name":"envoy"}]}}`))
	f.Add([]byte(`null`))
	inj := newInjector(namespace("app", true, "enabled"), testMeshConfig())
	f.Fuzz(func(t *testing.T, raw []byte) {
		req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
			UID: "f", Namespace: "app", Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw},
		}}
		resp := inj.Handle(context.Background(), req)
		if !resp.Allowed && len(resp.Patches) > 0 {
			t.Fatal("denied request carries a patch")
		}
	})
}
