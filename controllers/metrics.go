package controllers

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	"github.com/meshkeeper/meshkeeper/internal/drift"
)

// gaugeVec is a gauge family with the given labels.
func gaugeVec(opts prometheus.GaugeOpts, labels ...string) *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(opts, labels)
}

// Verdict gauges. They are written on every reconcile whether or not the kind can store a status,
// so a cluster whose CRDs have no status subresource (OSM's) still shows every verdict somewhere
// an alert can read it.
var (
	objectReady    = gaugeVec(prometheus.GaugeOpts{Name: "meshkeeper_object_ready", Help: "1 when a MeshConfig, Egress or IngressBackend is Ready, 0 when it is not."}, "kind", "namespace", "name")
	objectFindings = gaugeVec(prometheus.GaugeOpts{Name: "meshkeeper_object_findings", Help: "Findings reported on a MeshConfig, Egress or IngressBackend, by severity."}, "kind", "namespace", "name", "severity")
	findingsByCode = gaugeVec(prometheus.GaugeOpts{Name: "meshkeeper_findings", Help: "Findings reported on MeshConfigs, Egresses and IngressBackends, summed over the objects, by kind, finding code and severity."}, "kind", "code", "severity")
	meshPods       = gaugeVec(prometheus.GaugeOpts{Name: "meshkeeper_mesh_pods", Help: "Meshed pods of the served MeshConfig by verdict: in_sync, drifted, init_failed, sidecar_missing, unreadable, other (not judged yet)."}, "namespace", "name", "verdict")
	namespacePods  = gaugeVec(prometheus.GaugeOpts{Name: "meshkeeper_namespace_pods", Help: "Meshed pods by mesh (the OSM mesh served, or istio), the namespace they run in and verdict (in_sync, drifted, init_failed, sidecar_missing, unreadable, other)."}, "mesh", "namespace", "verdict")
	driftedPods    = gaugeVec(prometheus.GaugeOpts{Name: "meshkeeper_drifted_pods", Help: "Drifted pods per workload (kind and name; pods without a controller count under none/none), by mesh (the OSM mesh served, or istio)."}, "mesh", "namespace", "kind", "workload")
	autoRestarts   = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshkeeper_auto_restarts_total",
		Help: "Workloads restarted by the opt-in auto-restart (meshkeeper.io/auto-restart), by namespace and workload kind.",
	}, []string{"namespace", "kind"})
	podEvaluation = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "meshkeeper_pod_evaluation_duration_seconds",
		Help: "Time to judge one pod: its namespace and the MeshConfig read from the cache, its rules parsed, the checks run (API writes excluded).",
		// 50 µs to about 0.4 s: a cached parse takes microseconds, a first parse of a large pod
		// a few milliseconds; anything near the top means the manager is starved of CPU.
		Buckets: prometheus.ExponentialBuckets(0.00005, 2, 14),
	})
)

func init() {
	metrics.Registry.MustRegister(objectReady, objectFindings, findingsByCode, meshPods, namespacePods, driftedPods, autoRestarts, podEvaluation)
}

// severities are every finding severity, so a gauge drops to 0 instead of keeping a stale count.
var severities = []conditions.Severity{conditions.SeverityInfo, conditions.SeverityWarning, conditions.SeverityError}

// recordVerdict exports one object's verdict.
func recordVerdict(kind string, key types.NamespacedName, conds []metav1.Condition, findings []conditions.Finding) {
	ready := 0.0
	if meta.IsStatusConditionTrue(conds, conditions.Ready) {
		ready = 1
	}
	objectReady.WithLabelValues(kind, key.Namespace, key.Name).Set(ready)
	for _, sev := range severities {
		n := 0
		for _, f := range findings {
			if f.Severity == sev {
				n++
			}
		}
		objectFindings.WithLabelValues(kind, key.Namespace, key.Name, string(sev)).Set(float64(n))
	}
	codeTotals.set(objectRef{kind, key}, tallyFindings(kind, findings))
}

// forgetVerdict removes a deleted object's series, and its findings from the sums.
func forgetVerdict(kind string, key types.NamespacedName) {
	objectReady.DeleteLabelValues(kind, key.Namespace, key.Name)
	objectFindings.DeletePartialMatch(prometheus.Labels{"kind": kind, "namespace": key.Namespace, "name": key.Name})
	codeTotals.set(objectRef{kind, key}, nil)
}

// findingKey is one series of meshkeeper_findings. Its labels come from closed sets (the kinds
// judged, the Finding* codes, three severities), so the series are bounded whatever the number
// of objects.
type findingKey struct {
	kind     string
	code     string
	severity conditions.Severity
}

type objectRef struct {
	kind string
	key  types.NamespacedName
}

// tallyFindings counts one object's findings by code and severity.
func tallyFindings(kind string, findings []conditions.Finding) map[findingKey]int {
	out := map[findingKey]int{}
	for _, f := range findings {
		out[findingKey{kind, f.Code, f.Severity}]++
	}
	return out
}

// findingTotals sums the findings of every object by code into a gauge. Each object's last
// tally is kept so that a new one replaces it in the sums: summing over every object at each
// reconcile would cost as much as there are objects.
type findingTotals struct {
	gauge *prometheus.GaugeVec
	// mu also covers the gauge writes: the policy controllers reconcile objects concurrently,
	// and a total computed first must not be written last.
	mu       sync.Mutex
	byObject map[objectRef]map[findingKey]int
	totals   map[findingKey]int
}

var codeTotals = &findingTotals{gauge: findingsByCode}

// set replaces obj's tally (nil forgets it) and writes the new totals of every key the old or
// new tally names. A key once seen keeps its series, at 0, so a code that stops being reported
// reads 0 rather than disappearing.
func (t *findingTotals) set(obj objectRef, tally map[findingKey]int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byObject == nil {
		t.byObject, t.totals = map[objectRef]map[findingKey]int{}, map[findingKey]int{}
	}
	old := t.byObject[obj]
	for k, n := range old {
		t.totals[k] -= n
	}
	for k, n := range tally {
		t.totals[k] += n
	}
	for _, m := range []map[findingKey]int{old, tally} {
		for k := range m {
			t.gauge.WithLabelValues(k.kind, k.code, string(k.severity)).Set(float64(t.totals[k]))
		}
	}
	if len(tally) == 0 {
		delete(t.byObject, obj)
	} else {
		t.byObject[obj] = tally
	}
}

// recordMeshConfigPods exports the served MeshConfig's pod counts by verdict.
func recordMeshConfigPods(key types.NamespacedName, c drift.Counts) {
	for _, v := range drift.PodVerdicts {
		meshPods.WithLabelValues(key.Namespace, key.Name, string(v)).Set(float64(c.Of(v)))
	}
}

// recordPodVerdicts exports a mesh's pod counts per namespace and per drifted workload. The
// mesh's series are replaced as a whole on each count, so a namespace that left the mesh or a
// workload back in sync disappears.
func recordPodVerdicts(mesh string, s drift.Summary) {
	namespacePods.DeletePartialMatch(prometheus.Labels{"mesh": mesh})
	for ns, c := range s.Namespaces {
		for _, v := range drift.PodVerdicts {
			namespacePods.WithLabelValues(mesh, ns, string(v)).Set(float64(c.Of(v)))
		}
	}
	driftedPods.DeletePartialMatch(prometheus.Labels{"mesh": mesh})
	for w, n := range s.DriftedByWorkload {
		kind, name := w.Kind, w.Name
		if kind == "" {
			kind, name = "none", "none"
		}
		driftedPods.WithLabelValues(mesh, w.Namespace, kind, name).Set(float64(n))
	}
}
