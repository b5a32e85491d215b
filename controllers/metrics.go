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

// Verdict gauges. They are written on every reconcile whether or not the kind can store a status,
// so a cluster whose CRDs have no status subresource (OSM's) still shows every verdict somewhere
// an alert can read it.
var (
	objectReady = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "meshkeeper_object_ready",
		Help: "1 when a MeshConfig, Egress or IngressBackend is Ready, 0 when it is not.",
	}, []string{"kind", "namespace", "name"})
	objectFindings = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "meshkeeper_object_findings",
		Help: "Findings reported on a MeshConfig, Egress or IngressBackend, by severity.",
	}, []string{"kind", "namespace", "name", "severity"})
	meshPods = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "meshkeeper_mesh_pods",
		Help: "Meshed pods of the served MeshConfig by verdict: in_sync, drifted, failed (sidecar missing or init container failed), other (not yet judged).",
	}, []string{"namespace", "name", "verdict"})
	autoRestarts = prometheus.NewCounterVec(prometheus.CounterOpts{
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
	metrics.Registry.MustRegister(objectReady, objectFindings, meshPods, autoRestarts, podEvaluation)
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

// recordMeshPods exports the served MeshConfig's pod counts.
func recordMeshPods(key types.NamespacedName, s drift.Summary) {
	other := s.Meshed - s.InSync - s.Drifted - s.Failed
	for verdict, n := range map[string]int32{"in_sync": s.InSync, "drifted": s.Drifted, "failed": s.Failed, "other": other} {
		meshPods.WithLabelValues(key.Namespace, key.Name, verdict).Set(float64(n))
	}
}
