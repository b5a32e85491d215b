package controllers

import (
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
	meshPods       = gaugeVec(prometheus.GaugeOpts{Name: "meshkeeper_mesh_pods", Help: "Meshed pods of the served MeshConfig by verdict: in_sync, drifted, failed (sidecar missing or init container failed), other (not yet judged)."}, "namespace", "name", "verdict")
	namespacePods  = gaugeVec(prometheus.GaugeOpts{Name: "meshkeeper_namespace_pods", Help: "Meshed pods by the namespace they run in and verdict (in_sync, drifted, failed, other), for the mesh served."}, "mesh", "namespace", "verdict")
	driftedPods    = gaugeVec(prometheus.GaugeOpts{Name: "meshkeeper_drifted_pods", Help: "Drifted pods per workload (kind and name; pods without a controller count under none/none), for the mesh served."}, "mesh", "namespace", "kind", "workload")
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
	metrics.Registry.MustRegister(objectReady, objectFindings, meshPods, namespacePods, driftedPods, autoRestarts, podEvaluation)
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
}

// forgetVerdict removes a deleted object's series.
func forgetVerdict(kind string, key types.NamespacedName) {
	objectReady.DeleteLabelValues(kind, key.Namespace, key.Name)
	objectFindings.DeletePartialMatch(prometheus.Labels{"kind": kind, "namespace": key.Namespace, "name": key.Name})
}

// recordMeshPods exports the served MeshConfig's pod counts: in total, per namespace and per
// drifted workload. The mesh's per-namespace and per-workload series are replaced as a whole on
// each count, so a namespace that left the mesh or a workload back in sync disappears.
func recordMeshPods(key types.NamespacedName, mesh string, s drift.Summary) {
	for verdict, n := range verdictCounts(drift.Counts{Meshed: s.Meshed, InSync: s.InSync, Drifted: s.Drifted, Failed: s.Failed}) {
		meshPods.WithLabelValues(key.Namespace, key.Name, verdict).Set(n)
	}
	namespacePods.DeletePartialMatch(prometheus.Labels{"mesh": mesh})
	for ns, c := range s.Namespaces {
		for verdict, n := range verdictCounts(*c) {
			namespacePods.WithLabelValues(mesh, ns, verdict).Set(n)
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

func verdictCounts(c drift.Counts) map[string]float64 {
	return map[string]float64{"in_sync": float64(c.InSync), "drifted": float64(c.Drifted), "failed": float64(c.Failed),
		"other": float64(c.Meshed - c.InSync - c.Drifted - c.Failed)}
}
