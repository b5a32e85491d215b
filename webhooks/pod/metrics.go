package pod

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Outcome is what the injector decided for one pod, the label of
// meshkeeper_admission_decisions_total.
type Outcome string

const (
	// OutcomeInjected: the sidecar and meshkeeper-init were added.
	OutcomeInjected Outcome = "injected"
	// OutcomeSkipped: the pod is not to be injected (its namespace or annotation opts out, or
	// meshkeeper injected it already).
	OutcomeSkipped Outcome = "skipped"
	// OutcomeOtherInjector: another injector had already injected the pod; left untouched.
	OutcomeOtherInjector Outcome = "other_injector"
	// OutcomePaused: another injector serves the mesh; the pod went through uninjected.
	OutcomePaused Outcome = "paused"
	// OutcomeNotInjected: meshkeeper could not decide (MeshConfig missing or invalid, namespace
	// unreadable); the pod went through uninjected and will be reported SidecarMissing.
	OutcomeNotInjected Outcome = "not_injected"
	// OutcomeDenied: the pod's own annotations are invalid; refused, naming them.
	OutcomeDenied Outcome = "denied"
	// OutcomeError: the request could not be handled (undecodable, cancelled, patch encoding).
	OutcomeError Outcome = "error"
)

// Outcomes lists every outcome, so that dashboards see zeros instead of missing series.
var Outcomes = []Outcome{OutcomeInjected, OutcomeSkipped, OutcomeOtherInjector, OutcomePaused, OutcomeNotInjected, OutcomeDenied, OutcomeError}

var admissionDecisions = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "meshkeeper_admission_decisions_total",
	Help: "Pod admissions by the injector's decision: injected, skipped, other_injector, paused, not_injected, denied, error.",
}, []string{"outcome"})

func init() {
	metrics.Registry.MustRegister(admissionDecisions)
	for _, o := range Outcomes {
		admissionDecisions.WithLabelValues(string(o))
	}
}
