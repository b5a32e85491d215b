package controllers

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	"github.com/meshkeeper/meshkeeper/internal/drift"
	"github.com/meshkeeper/meshkeeper/internal/injection"
	"github.com/meshkeeper/meshkeeper/internal/testenv"
)

// BenchmarkDriftAtScale measures the drift controllers on the envtest API server with 5,000
// meshed pods (MESHKEEPER_BENCH_PODS overrides the count; a comma-separated list runs one
// sub-benchmark per count, e.g. MESHKEEPER_BENCH_PODS=5000,20000). In one run, on the same API
// server and the same pods:
//
//   - raw-patch-time: a plain client sends every pod the status patch the controller would send
//     (the same strategic-merge body, built by the same code) with as many requests in flight
//     as the controller has workers, as fast as the server takes them: the limit. It is timed
//     before the manager starts and again after it stopped, and the mean of the two is used;
//   - start-up: the manager starts on pods already in sync, until every pod has been evaluated,
//     with the writes that start made (none expected) and the heap in use at that point;
//   - config-change: from a MeshConfig patch until every pod's new condition is acknowledged,
//     and its ratio to raw-patch-time.
//
// MESHKEEPER_BENCH_HEAPPROFILE=file writes a heap profile once the manager has started and
// synced. MESHKEEPER_BENCH_CPUPROFILE=prefix writes CPU profiles of this process and of the
// API server (prefix-{raw,change}-{test,apiserver}.pprof) while the raw patches before the run
// and the config change are sent. It takes minutes, so only `make bench` or an explicit -bench runs it:
//
//	go test ./controllers -run '^$' -bench DriftAtScale -benchtime 1x
func BenchmarkDriftAtScale(b *testing.B) {
	counts := []int{5000}
	if v := os.Getenv("MESHKEEPER_BENCH_PODS"); v != "" {
		counts = counts[:0]
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				b.Fatalf("MESHKEEPER_BENCH_PODS=%q: want positive numbers, comma-separated", v)
			}
			counts = append(counts, n)
		}
	}
	if len(counts) == 1 {
		driftAtScale(b, counts[0])
		return
	}
	for _, n := range counts {
		b.Run(fmt.Sprintf("pods=%d", n), func(b *testing.B) { driftAtScale(b, n) })
	}
}

func driftAtScale(b *testing.B, pods int) {
	const namespaces, perDeployment = 10, 50
	benchRuns++ // -count runs the benchmark again in the same control plane
	loadAtStart := testenv.LoadAverage()
	w := newWorld(b, fmt.Sprintf("scale%d", benchRuns), func(s *configv1alpha2.MeshConfigSpec) {
		s.Traffic.OutboundIPRangeExclusionList = []string{"169.254.169.254/32"}
		s.Traffic.OutboundPortExclusionList = []int32{6379}
	})
	mc := w.meshConfig()
	nsNames, nsMeta := benchNamespaces(b, w, namespaces)

	start := time.Now()
	createPods(b, w, mc, nsNames, nsMeta, pods, perDeployment)
	b.Logf("created %d pods in %s", pods, time.Since(start).Round(time.Second))
	opts := DriftOptions{MeshConfig: w.mc, Selection: injection.SelectOptions{MeshName: w.mesh}}
	addPort := func(s *configv1alpha2.MeshConfigSpec) {
		s.Traffic.OutboundPortExclusionList = append(s.Traffic.OutboundPortExclusionList, 7000+int32(len(s.Traffic.OutboundPortExclusionList)))
	}

	// The limit: the verdicts the next MeshConfig will produce, sent by a plain client with the
	// controller's concurrency. Bodies are built before the clock starts.
	// It is measured again after the controller's run, with the manager stopped, so that the
	// two bracket it and whatever the API server does over time counts on both sides.
	var cpuRaw []cpuTimes // before and after
	rawLimit := func(mc *configv1alpha2.MeshConfig, profile string) time.Duration {
		next := mc.DeepCopy()
		addPort(&next.Spec)
		next.Generation++
		patches := rawPatches(b, nsNames, nsMeta, next, opts)
		stop := startProfiles(b, profile)
		cpu0 := cpuNow()
		d := sendPatches(b, patches, opts.maxConcurrent())
		cpuRaw = append(cpuRaw, cpuNow().sub(cpu0))
		stop()
		return d
	}
	rawBefore := rawLimit(mc, "raw")
	w.updateMeshConfig(addPort)

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	// Start-up on pods in sync with the MeshConfig: every pod evaluated, nothing written.
	evaluatedBefore := evaluations(b)
	t0 := time.Now()
	h := startManager(b, w.mesh) // the operator's defaults
	for evaluations(b)-evaluatedBefore < uint64(pods) {
		if time.Since(t0) > 10*time.Minute {
			b.Fatalf("%d of %d pods evaluated after %s", evaluations(b)-evaluatedBefore, pods, time.Since(t0))
		}
		time.Sleep(10 * time.Millisecond)
	}
	startup := time.Since(t0)
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	heapPerPod := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(pods)
	if path := os.Getenv("MESHKEEPER_BENCH_HEAPPROFILE"); path != "" {
		writeHeapProfile(b, path)
	}
	eventually(b, 5*time.Minute, func() error {
		if st := w.meshConfig().Status; st.Pods.Drifted != int32(pods) {
			return fmt.Errorf("pods %+v", st.Pods)
		}
		return nil
	})
	h.settleTB(b, 3*time.Second)
	startWrites, _ := h.client.Writes()

	var elapsed time.Duration
	var cpuChange cpuTimes
	evaluatedStart := evaluations(b)
	for b.Loop() {
		h.client.Reset()
		stop := startProfiles(b, "change")
		cpu0 := cpuNow()
		t0 := time.Now()
		w.updateMeshConfig(addPort)
		eventually(b, 10*time.Minute, func() error {
			writes, _ := h.client.Writes()
			if n := writes["*v1.Pod/status"]; n < pods {
				return fmt.Errorf("%d of %d pods written", n, pods)
			}
			return nil
		})
		elapsed = time.Since(t0)
		cpuChange = cpuNow().sub(cpu0)
		stop()
	}
	b.StopTimer()
	h.settleTB(b, 3*time.Second)
	writes, _ := h.client.Writes()
	evaluated := evaluations(b) - evaluatedStart
	verifyAllDrifted(b, nsNames, pods)
	h.stop()
	rawAfter := rawLimit(w.meshConfig(), "")
	deletePods(b, nsNames)
	rawTime := (rawBefore + rawAfter) / 2

	b.ReportMetric(elapsed.Seconds(), "s/config-change")
	b.ReportMetric(rawTime.Seconds(), "s/raw-patches")
	b.ReportMetric(rawBefore.Seconds(), "s/raw-patches-before")
	b.ReportMetric(rawAfter.Seconds(), "s/raw-patches-after")
	b.ReportMetric(elapsed.Seconds()/rawTime.Seconds(), "convergence/raw-patch-time")
	b.ReportMetric(float64(writes["*v1.Pod/status"])/float64(pods), "writes/changed-pod")
	b.ReportMetric(float64(startWrites["*v1.Pod/status"]), "pod-writes-at-start")
	// One evaluation per changed pod is the floor; the echo of each write judged again, or a
	// write retried, shows here.
	b.ReportMetric(float64(evaluated)/float64(pods), "evaluations/changed-pod")
	b.ReportMetric(startup.Seconds(), "s/start-up")
	b.ReportMetric(float64(after.HeapAlloc)/(1<<20), "heap-MiB-at-start-up")
	b.ReportMetric(heapPerPod, "heap-B/cached-pod")
	b.ReportMetric(float64(pods), "pods")
	// The same ratio in CPU time (this process, the API server and etcd together): on a shared
	// machine the wall-clock one moves with what else runs, this one much less.
	rawCPU := (cpuRaw[0].total() + cpuRaw[1].total()) / 2
	b.ReportMetric(cpuChange.total().Seconds()/rawCPU.Seconds(), "convergence-cpu/raw-patch-cpu")
	// The raw phases involve none of the code under test, yet their cost varies by a third
	// between runs on a shared VM, and one run's pair moves its own ratio most. With -count, every
	// raw phase of this pod count so far estimates the same limit; their median is the steadier
	// denominator.
	rawPhases[pods] = append(rawPhases[pods], cpuRaw[0].total(), cpuRaw[1].total())
	pooled := testenv.Quantile(rawPhases[pods], 0.5)
	b.ReportMetric(cpuChange.total().Seconds()/pooled.Seconds(), "convergence-cpu/pooled-raw-cpu")
	b.ReportMetric(float64(len(rawPhases[pods])), "raw-phases-pooled")
	b.Logf("CPU during the raw patches before: %s; after: %s; during the config change: %s; pooled limit %s of CPU (median of %d raw phases); load average %s at the start, %s at the end",
		cpuRaw[0], cpuRaw[1], cpuChange, pooled.Round(100*time.Millisecond), len(rawPhases[pods]), loadAtStart, testenv.LoadAverage())
	b.Logf("pods=%d raw=%s (before %s, after %s) config-change=%s (ratio %.2f) start-up=%s writes=%v start-writes=%v heap/pod=%.0f B (heap %d -> %d MiB)",
		pods, rawTime.Round(time.Millisecond), rawBefore.Round(time.Millisecond), rawAfter.Round(time.Millisecond), elapsed.Round(time.Millisecond), elapsed.Seconds()/rawTime.Seconds(),
		startup.Round(time.Millisecond), writes, startWrites, heapPerPod, before.HeapAlloc>>20, after.HeapAlloc>>20)
}

// benchNamespaces makes the world's application namespace and n-1 more in its mesh, and returns
// their names and metadata as the drift checks read them.
func benchNamespaces(b *testing.B, w *world, n int) ([]string, map[string]metav1.ObjectMeta) {
	nsNames := []string{w.app}
	for i := 1; i < n; i++ {
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
	return nsNames, nsMeta
}

// evaluations is the number of pods the drift controller has judged in this process.
func evaluations(b *testing.B) uint64 {
	var m dto.Metric
	must(b, podEvaluation.Write(&m))
	return m.GetHistogram().GetSampleCount()
}

func writeHeapProfile(b *testing.B, path string) {
	f, err := os.Create(path)
	must(b, err)
	defer f.Close()
	must(b, pprof.Lookup("heap").WriteTo(f, 0))
}

// startProfiles profiles this process and the API server (through its /debug/pprof) until the
// returned function is called, when MESHKEEPER_BENCH_CPUPROFILE is set and name is not empty.
func startProfiles(b *testing.B, name string) (stop func()) {
	prefix := os.Getenv("MESHKEEPER_BENCH_CPUPROFILE")
	if prefix == "" || name == "" {
		return func() {}
	}
	f, err := os.Create(fmt.Sprintf("%s-%s-test.pprof", prefix, name))
	must(b, err)
	must(b, pprof.StartCPUProfile(f))
	// The API server's profile runs for a fixed time: as long as the phase is expected to take.
	seconds := os.Getenv("MESHKEEPER_BENCH_CPUPROFILE_SECONDS")
	if seconds == "" {
		seconds = "15"
	}
	cs, err := kubernetes.NewForConfig(env.Config)
	must(b, err)
	done := make(chan []byte, 1)
	go func() {
		data, err := cs.Discovery().RESTClient().Get().AbsPath("/debug/pprof/profile").Param("seconds", seconds).DoRaw(ctx)
		if err != nil {
			b.Logf("API server profile: %v", err)
		}
		done <- data
	}()
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		if data := <-done; len(data) > 0 {
			must(b, os.WriteFile(fmt.Sprintf("%s-%s-apiserver.pprof", prefix, name), data, 0o600))
		}
	}
}

// cpuTimes is the CPU time used by this process and by its children that are still running
// (envtest's kube-apiserver and etcd), by command name.
type cpuTimes map[string]time.Duration

func cpuNow() cpuTimes {
	self, _ := testenv.ProcessCPU()
	out := cpuTimes{"test": self}
	tasks, _ := filepath.Glob("/proc/self/task/*/children")
	for _, t := range tasks {
		data, _ := os.ReadFile(t)
		for _, f := range strings.Fields(string(data)) {
			pid, err := strconv.Atoi(f)
			if err != nil {
				continue
			}
			if cpu, comm, err := testenv.PIDCPU(pid); err == nil {
				out[comm] += cpu
			}
		}
	}
	return out
}

func (c cpuTimes) sub(o cpuTimes) cpuTimes {
	out := cpuTimes{}
	for k, v := range c {
		out[k] = v - o[k]
	}
	return out
}

func (c cpuTimes) total() time.Duration {
	var t time.Duration
	for _, v := range c {
		t += v
	}
	return t
}

func (c cpuTimes) String() string {
	keys := slices.Sorted(maps.Keys(c))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %.1f s", k, c[k].Seconds())
	}
	return strings.Join(parts, ", ")
}

// rawPatch is one pod's status patch, as PodReconciler.patchConditions sends it.
type rawPatch struct {
	pod  *corev1.Pod
	body []byte
}

// rawPatches lists the pods from the server and computes, for each, the conditions the
// controller will write once mc is served, encoded as the controller encodes them.
func rawPatches(b *testing.B, nsNames []string, nsMeta map[string]metav1.ObjectMeta, mc *configv1alpha2.MeshConfig, opts DriftOptions) []rawPatch {
	var out []rawPatch
	now := time.Now()
	for _, ns := range nsNames {
		list := &corev1.PodList{}
		for {
			must(b, env.Client.List(ctx, list, client.InNamespace(ns), client.Limit(500), client.Continue(list.Continue)))
			for i := range list.Items {
				pod := &list.Items[i]
				conds, changed := drift.SetPodConditions(pod.Status.Conditions, drift.Evaluate(drift.Gather(pod, nsMeta[ns], mc, opts.Selection, now))...)
				if !changed {
					b.Fatalf("pod %s/%s: the next MeshConfig changes nothing", pod.Namespace, pod.Name)
				}
				body, err := conditionsPatch(conds)
				must(b, err)
				out = append(out, rawPatch{pod: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name}}, body: body})
			}
			if list.Continue == "" {
				break
			}
		}
	}
	return out
}

// sendPatches sends every patch with a plain client (client-side rate limiting off, as in a
// controller-runtime manager) from workers goroutines and returns the time until the last one
// was acknowledged.
func sendPatches(b *testing.B, patches []rawPatch, workers int) time.Duration {
	cfg := rest.CopyConfig(env.Config)
	cfg.QPS = -1
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	must(b, err)
	// The first request pays for discovery (the REST mapping of pods); the controller's client
	// paid it when its cache started.
	must(b, c.Get(ctx, client.ObjectKeyFromObject(patches[0].pod), &corev1.Pod{}))
	next := make(chan rawPatch)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	t0 := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range next {
				if err := c.Status().Patch(ctx, p.pod, client.RawPatch(types.StrategicMergePatchType, p.body)); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	for _, p := range patches {
		next <- p
	}
	close(next)
	wg.Wait()
	elapsed := time.Since(t0)
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	return elapsed
}

var benchRuns int

// rawPhases holds the CPU time of every raw phase of BenchmarkDriftAtScale in this process, by
// pod count, for the pooled ratio.
var rawPhases = map[int][]time.Duration{}

// deletePods removes the run's pods at once (no kubelet confirms graceful deletion here), so a
// following run measures its own pods only.
func deletePods(b *testing.B, nsNames []string) {
	for _, ns := range nsNames {
		must(b, env.Client.DeleteAllOf(ctx, &corev1.Pod{}, client.InNamespace(ns), client.GracePeriodSeconds(0)))
	}
	eventually(b, 10*time.Minute, func() error {
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
