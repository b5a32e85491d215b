package controllers

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	"github.com/meshkeeper/meshkeeper/internal/drift"
	"github.com/meshkeeper/meshkeeper/internal/istio"
	"github.com/meshkeeper/meshkeeper/internal/podtest"
)

// BenchmarkDriftMixedMeshes is the drift wave with Istio pods mixed in, beside the same count of
// OSM pods alone, in one run on one API server: half the pods are Istio's (istio-init,
// istio-proxy, judged against the injector ConfigMap), half OSM's; the MeshConfig and the
// injector's values change together and every pod must be written once. The ratio mixed/OSM-only
// says whether Istio pods cost more than OSM pods. MESHKEEPER_BENCH_PODS sets the count (first
// value; default 5,000).
func BenchmarkDriftMixedMeshes(b *testing.B) {
	pods := 5000
	if v := os.Getenv("MESHKEEPER_BENCH_PODS"); v != "" {
		n, err := strconv.Atoi(strings.Split(v, ",")[0])
		if err != nil || n < 2 {
			b.Fatalf("MESHKEEPER_BENCH_PODS=%q", v)
		}
		pods = n
	}
	var osmOnly time.Duration
	b.Run("osm-only", func(b *testing.B) { osmOnly = mixedWave(b, pods, 0) })
	b.Run("half-istio", func(b *testing.B) {
		d := mixedWave(b, pods, pods/2)
		b.ReportMetric(d.Seconds()/osmOnly.Seconds(), "mixed/osm-only")
	})
}

func mixedWave(b *testing.B, pods, istioPods int) time.Duration {
	const namespaces, perDeployment = 10, 50
	benchRuns++
	w := newWorld(b, fmt.Sprintf("mixed%d", benchRuns), func(s *configv1alpha2.MeshConfigSpec) {
		s.Traffic.OutboundPortExclusionList = []int32{6379}
	})
	mc := w.meshConfig()
	nsNames, nsMeta := benchNamespaces(b, w, namespaces)
	createPods(b, w, mc, nsNames, nsMeta, pods-istioPods, perDeployment)

	controlPlane, shop := w.mesh+"-istio-system", w.mesh+"-shop"
	must(b, env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: controlPlane}}))
	shopNS := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: shop, Labels: map[string]string{"istio-injection": "enabled"}}}
	must(b, env.Client.Create(ctx, shopNS))
	cm := podtest.IstioInjectorConfigMap(istioTestValues)
	cm.Namespace = controlPlane
	must(b, env.Client.Create(ctx, cm))
	ref := drift.InjectorRef(controlPlane, istio.DefaultRevision)
	for i := range istioPods {
		pod := podtest.NewPod(shop, fmt.Sprintf("web%03d-5f7d-%d", i/perDeployment, i), "web:v1").
			Deployment(fmt.Sprintf("web%03d", i/perDeployment), "5f7d").IstioInit(istioArgsNow...).Obj()
		must(b, env.Client.Create(ctx, pod))
		pod.Status.Phase = corev1.PodRunning
		initExited(0, "Completed")(pod)
		pod.Status.Conditions, _ = drift.SetPodConditions(kubeletConditions(), drift.Evaluate(drift.GatherIstio(pod, shopNS.ObjectMeta, drift.ReadIstioInjector(ref, cm), nil, time.Now()))...)
		must(b, env.Client.Status().Update(ctx, pod))
	}

	evaluated := evaluations(b)
	h := startManager(b, w.mesh, func(o *DriftOptions) { o.IstioNamespace = controlPlane })
	for t0 := time.Now(); evaluations(b)-evaluated < uint64(pods); time.Sleep(20 * time.Millisecond) {
		if time.Since(t0) > 10*time.Minute {
			b.Fatalf("%d of %d pods evaluated after %s", evaluations(b)-evaluated, pods, time.Since(t0))
		}
	}
	h.settleTB(b, 3*time.Second)
	startWrites, _ := h.client.Writes()
	h.client.Reset()

	var elapsed time.Duration
	for b.Loop() {
		t0 := time.Now()
		w.updateMeshConfig(func(s *configv1alpha2.MeshConfigSpec) {
			s.Traffic.OutboundPortExclusionList = append(s.Traffic.OutboundPortExclusionList, 7000)
		})
		if istioPods > 0 {
			cur := &corev1.ConfigMap{}
			must(b, env.Client.Get(ctx, types.NamespacedName{Namespace: controlPlane, Name: istio.InjectorConfigMapName}, cur))
			cur.Data[istio.InjectorValuesKey] = strings.Replace(istioTestValues, `"excludeIPRanges":"10.0.0.0/24"`, `"excludeIPRanges":"10.0.0.0/24,10.0.1.0/24"`, 1)
			must(b, env.Client.Update(ctx, cur))
		}
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
	h.stop()
	b.ReportMetric(elapsed.Seconds(), "s/config-change")
	b.ReportMetric(float64(writes["*v1.Pod/status"])/float64(pods), "writes/changed-pod")
	b.ReportMetric(float64(startWrites["*v1.Pod/status"]), "pod-writes-at-start")
	b.ReportMetric(float64(istioPods), "istio-pods")
	return elapsed
}
