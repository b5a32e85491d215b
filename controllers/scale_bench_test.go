package controllers

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	"github.com/meshkeeper/meshkeeper/internal/drift"
	"github.com/meshkeeper/meshkeeper/internal/injection"
)

// BenchmarkDriftAtScale measures the drift controllers on the envtest API server with 5,000
// meshed pods (MESHKEEPER_BENCH_PODS overrides the count): the time from a MeshConfig patch
// until every pod's ExclusionsInSync condition says Drifted on the server, the pod writes per
// changed pod, the writes made when the manager starts on pods already in sync, and the heap
// the manager holds per cached pod. Run it with `make bench`.
func BenchmarkDriftAtScale(b *testing.B) {
	pods := 5000
	if v := os.Getenv("MESHKEEPER_BENCH_PODS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("MESHKEEPER_BENCH_PODS=%q: want a positive number", v)
		}
		pods = n
	}
	const namespaces, perDeployment = 10, 50
	benchRuns++ // -count runs the benchmark again in the same control plane
	w := newWorld(b, fmt.Sprintf("scale%d", benchRuns), func(s *configv1alpha2.MeshConfigSpec) {
		s.Traffic.OutboundIPRangeExclusionList = []string{"169.254.169.254/32"}
		s.Traffic.OutboundPortExclusionList = []int32{6379}
	})
	mc := w.meshConfig()
	nsNames := []string{w.app}
	for i := 1; i < namespaces; i++ {
		name := fmt.Sprintf("%s-%d", w.app, i)
		w.namespace(name, true)
		nsNames = append(nsNames, name)
	}
	nsMeta := map[string]metav1.ObjectMeta{}
	for _, name := range nsNames {
		ns := &corev1.Namespace{}
		must(b, env.Client.Get(ctx, types.NamespacedName{Name: name}, ns))
		nsMeta[name] = ns.ObjectMeta
	}

	start := time.Now()
	createPods(b, w, mc, nsNames, nsMeta, pods, perDeployment)
	b.Logf("created %d pods in %s", pods, time.Since(start).Round(time.Second))

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	h := startManager(b, w.mesh) // the operator's defaults
	eventually(b, 5*time.Minute, func() error {
		if st := w.meshConfig().Status; st.Pods.InSync != int32(pods) {
			return fmt.Errorf("pods %+v", st.Pods)
		}
		return nil
	})
	h.waitReevaluatedTB(b, pods)
	h.settleTB(b, 3*time.Second)
	startWrites, _ := h.client.Writes()

	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	heapPerPod := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(pods)

	var elapsed time.Duration
	for b.Loop() {
		h.client.Reset()
		t0 := time.Now()
		w.updateMeshConfig(func(s *configv1alpha2.MeshConfigSpec) {
			s.Traffic.OutboundPortExclusionList = append(s.Traffic.OutboundPortExclusionList, 7000+int32(time.Now().UnixNano()%1000))
		})
		eventually(b, 10*time.Minute, func() error {
			writes, _ := h.client.Writes()
			if n := writes["*v1.Pod/status"]; n < pods {
				return fmt.Errorf("%d of %d pods written", n, pods)
			}
			return nil
		})
		elapsed = time.Since(t0)
	}
	b.StopTimer()
	h.settleTB(b, 3*time.Second)
	writes, _ := h.client.Writes()
	verifyAllDrifted(b, nsNames, pods)
	h.stop()
	deletePods(b, nsNames)

	b.ReportMetric(elapsed.Seconds(), "s/config-change")
	b.ReportMetric(float64(writes["*v1.Pod/status"])/float64(pods), "writes/changed-pod")
	b.ReportMetric(float64(startWrites["*v1.Pod/status"]), "pod-writes-at-start")
	b.ReportMetric(heapPerPod, "heap-B/cached-pod")
	b.ReportMetric(float64(pods), "pods")
	b.Logf("pods=%d config-change=%s writes=%v start-writes=%v heap/pod=%.0f B (heap %d -> %d MiB)",
		pods, elapsed.Round(time.Millisecond), writes, startWrites, heapPerPod, before.HeapAlloc>>20, after.HeapAlloc>>20)
}

var benchRuns int

// deletePods removes the run's pods at once (no kubelet confirms graceful deletion here), so a
// following run measures its own pods only.
func deletePods(b *testing.B, nsNames []string) {
	for _, ns := range nsNames {
		must(b, env.Client.DeleteAllOf(ctx, &corev1.Pod{}, client.InNamespace(ns), client.GracePeriodSeconds(0)))
	}
	eventually(b, 2*time.Minute, func() error {
		for _, ns := range nsNames {
			list := &metav1.PartialObjectMetadataList{}
			list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("PodList"))
			if err := env.Client.List(ctx, list, client.InNamespace(ns), client.Limit(1)); err != nil {
				return err
			}
			if len(list.Items) > 0 {
				return fmt.Errorf("pods left in %s", ns)
			}
		}
		return nil
	})
}

// createPods creates injected Deployment replicas across the namespaces, in parallel, and plays
// the kubelet: init container exited 0, kubelet conditions, and our own in-sync conditions as an
// earlier run of the operator would have left them, so the start itself must write nothing.
func createPods(b *testing.B, w *world, mc *configv1alpha2.MeshConfig, nsNames []string, nsMeta map[string]metav1.ObjectMeta, pods, perDeployment int) {
	jobs := make(chan int)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				if err := createOne(w, mc, nsNames, nsMeta, i, perDeployment); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	for i := range pods {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
}

func createOne(w *world, mc *configv1alpha2.MeshConfig, nsNames []string, nsMeta map[string]metav1.ObjectMeta, i, perDeployment int) error {
	deployment := fmt.Sprintf("app%03d", i/perDeployment)
	pod := w.appPod(deployment, strconv.Itoa(i))
	pod.Namespace = nsNames[(i/perDeployment)%len(nsNames)]
	pod, err := injection.Inject(pod, &mc.Spec, injection.Options{MeshConfig: w.mc, MeshConfigGeneration: mc.Generation,
		Version: "bench", DefaultEnvoyImage: "envoyproxy/envoy:v1.31.2", DefaultInitImage: "meshkeeper/init:bench"})
	if err != nil {
		return err
	}
	if err := env.Client.Create(ctx, pod); err != nil {
		return err
	}
	pod.Status.Phase = corev1.PodRunning
	initExited(0, "Completed")(pod)
	in := drift.Gather(pod, nsMeta[pod.Namespace], mc, injection.SelectOptions{MeshName: w.mesh}, time.Now())
	pod.Status.Conditions, _ = drift.SetPodConditions(kubeletConditions(), drift.Evaluate(in)...)
	return env.Client.Status().Update(ctx, pod)
}

func verifyAllDrifted(b *testing.B, nsNames []string, pods int) {
	drifted := 0
	for _, ns := range nsNames {
		list := &corev1.PodList{}
		for {
			must(b, env.Client.List(ctx, list, client.InNamespace(ns), client.Limit(500), client.Continue(list.Continue)))
			for i := range list.Items {
				if c := drift.Find(list.Items[i].Status.Conditions, conditions.PodExclusionsInSync); c != nil && c.Reason == conditions.Drifted {
					drifted++
				}
			}
			if list.Continue == "" {
				break
			}
		}
	}
	if drifted != pods {
		b.Fatalf("%d of %d pods report Drifted on the server", drifted, pods)
	}
}
