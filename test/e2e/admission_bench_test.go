//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshkeeper/meshkeeper/internal/injection"
	"github.com/meshkeeper/meshkeeper/internal/testenv"
	"github.com/meshkeeper/meshkeeper/test/e2e/e2eutil"
)

// BenchmarkPodAdmission measures, on the real node and in one run, what meshkeeper's webhook
// costs a pod: the same test-app pod is created alternately in a namespace outside the mesh
// (the API server does not call the webhook) and in a meshed one (the webhook injects
// meshkeeper-init and the sidecar). Reported per pod, as medians over b.N pairs:
//
//	create-ms:  the create call, admission included;
//	ready-ms:   create call to the pod's Ready condition (the kubelet runs the init container and
//	            starts the sidecar too for the meshed pod);
//
// and the ratios meshed/plain. Alternating the two keeps a busy machine's load on both sides.
//
//	make e2e E2E_FLAGS='-run=^$ -bench=PodAdmission -benchtime=20x'
func BenchmarkPodAdmission(b *testing.B) {
	if k.mode != "inject" {
		b.Skipf("%s mode has no webhook on pods", k.mode)
	}
	plainNS := benchNamespace(b, "bench-plain", false)
	meshNS := benchNamespace(b, "bench-mesh", true)
	var createPlain, createMesh, readyPlain, readyMesh []time.Duration
	b.ResetTimer()
	for i := range b.N {
		c, r := createToReady(b, testappPod(plainNS, fmt.Sprintf("plain-%d", i), plainPort), false)
		createPlain, readyPlain = append(createPlain, c), append(readyPlain, r)
		c, r = createToReady(b, testappPod(meshNS, fmt.Sprintf("mesh-%d", i), plainPort), true)
		createMesh, readyMesh = append(createMesh, c), append(readyMesh, r)
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	median := func(ds []time.Duration) time.Duration { return testenv.Quantile(ds, 0.5) }
	cp, cm, rp, rm := median(createPlain), median(createMesh), median(readyPlain), median(readyMesh)
	b.ReportMetric(ms(cp), "create-ms/plain")
	b.ReportMetric(ms(cm), "create-ms/webhook")
	b.ReportMetric(ms(rp), "ready-ms/plain")
	b.ReportMetric(ms(rm), "ready-ms/injected")
	b.ReportMetric(float64(cm)/float64(cp), "create-ratio")
	b.ReportMetric(float64(rm)/float64(rp), "ready-ratio")
	b.Logf("%d pairs: create %s plain vs %s through the webhook; create-to-Ready %s plain vs %s injected (medians)",
		b.N, cp.Round(100*time.Microsecond), cm.Round(100*time.Microsecond), rp.Round(time.Millisecond), rm.Round(time.Millisecond))
}

// benchNamespace is testNamespace for benchmarks: created now, deleted when the benchmark ends.
func benchNamespace(b *testing.B, prefix string, meshed bool) string {
	b.Helper()
	ns := newNamespace(prefix, meshed)
	name := ns.Name
	if err := k.c.Create(context.Background(), ns); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _, _ = k.TryRun("kubectl", "delete", "namespace", name, "--wait=false") })
	return name
}

// createToReady creates the pod, times the create call and the wait for Ready (polled every
// 20 ms), then deletes it without waiting.
func createToReady(b *testing.B, p *corev1.Pod, wantInjected bool) (create, ready time.Duration) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t0 := time.Now()
	if err := k.c.Create(ctx, p); err != nil {
		b.Fatalf("create pod %s/%s: %v", p.Namespace, p.Name, err)
	}
	create = time.Since(t0)
	if got := injection.Injected(p); got != wantInjected {
		b.Fatalf("pod %s/%s: injected=%t, want %t", p.Namespace, p.Name, got, wantInjected)
	}
	for {
		var got corev1.Pod
		err := k.c.Get(ctx, client.ObjectKeyFromObject(p), &got)
		if err != nil && !apierrors.IsNotFound(err) {
			b.Fatal(err)
		}
		if e2eutil.PodRunningReady(&got) {
			ready = time.Since(t0)
			break
		}
		if ctx.Err() != nil {
			b.Fatalf("pod %s/%s not Ready after 2m: %s", p.Namespace, p.Name, describePod(&got))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := k.c.Delete(context.Background(), p, client.GracePeriodSeconds(0)); err != nil {
		b.Fatal(err)
	}
	return create, ready
}
