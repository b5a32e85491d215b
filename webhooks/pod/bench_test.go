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
				if !resp.Allowed || len(resp.Patches) == 0 {
					b.Fatalf("not injected: %+v", resp.Result)
				}
			}
		})
	}
}
