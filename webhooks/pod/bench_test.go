package pod

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// BenchmarkHandle measures one in-process admission: decode, cache reads, selection, working out
// the additions and turning them into patch operations. Run it with:
//
//	go test ./webhooks/pod -run '^$' -bench Handle -benchmem
func BenchmarkHandle(b *testing.B) {
	for _, bc := range []struct {
		name string
		pod  *corev1.Pod
	}{{"typical", typicalPod()}, {"env1500_64KiB", largePod()}} {
		b.Run(bc.name, func(b *testing.B) {
			inj := newInjector(namespace("app", true, "enabled"), testMeshConfig())
			req := request(b, bc.pod, "app")
			b.SetBytes(int64(len(req.Object.Raw)))
			b.ReportAllocs()
			ctx := context.Background()
			for b.Loop() {
				resp := inj.Handle(ctx, req)
				if !resp.Allowed || len(resp.Patch) == 0 {
					b.Fatalf("not injected: %+v", resp.Result)
				}
			}
		})
	}
}

// BenchmarkAdmissionResponse adds to BenchmarkHandle what controller-runtime does with the
// response before writing it: Complete, which encodes the patch operations held in
// Response.Patches. The handler used to leave that encoding to Complete, so Handle alone would
// flatter the change that made the handler encode its patch itself. Run it with:
//
//	go test ./webhooks/pod -run '^$' -bench AdmissionResponse -benchmem
func BenchmarkAdmissionResponse(b *testing.B) {
	for _, bc := range []struct {
		name string
		pod  *corev1.Pod
	}{{"typical", typicalPod()}, {"env1500_64KiB", largePod()}} {
		b.Run(bc.name, func(b *testing.B) {
			inj := newInjector(namespace("app", true, "enabled"), testMeshConfig())
			req := request(b, bc.pod, "app")
			b.SetBytes(int64(len(req.Object.Raw)))
			b.ReportAllocs()
			ctx := context.Background()
			for b.Loop() {
				resp := inj.Handle(ctx, req)
				if err := resp.Complete(req); err != nil || !resp.Allowed || len(resp.Patch) == 0 {
					b.Fatalf("not injected: %v %+v", err, resp.Result)
				}
			}
		})
	}
}
