package controllers

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	policyv1alpha1 "github.com/meshkeeper/meshkeeper/api/policy/v1alpha1"
)

func enableEgressPolicy(s *configv1alpha2.MeshConfigSpec) {
	s.FeatureFlags.EnableEgressPolicy = true
	s.FeatureFlags.EnableIngressBackendPolicy = true
}

func redisEgress(ns string) *policyv1alpha1.Egress {
	e := &policyv1alpha1.Egress{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "redis"},
		Spec: policyv1alpha1.EgressSpec{
			Sources:     []policyv1alpha1.EgressSourceSpec{{Kind: "ServiceAccount", Namespace: ns, Name: "frontend"}},
			IPAddresses: []string{"10.0.0.6/32"},
		}}
	for p := int32(7000); p <= 7003; p++ {
		e.Spec.Ports = append(e.Spec.Ports, policyv1alpha1.PortSpec{Number: p, Protocol: "tcp"})
	}
	return e
}

func tcpService(ns, name string, port int32) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": name},
			Ports: []corev1.ServicePort{{Name: "tcp", Port: port, TargetPort: intstr.FromInt32(port), Protocol: corev1.ProtocolTCP}}}}
}

func findingOf(fs []conditions.Finding, code string) *conditions.Finding {
	for i := range fs {
		if fs[i].Code == code {
			return &fs[i]
		}
	}
	return nil
}

// waitEgress polls the Egress until check passes and returns it.
func waitEgress(t *testing.T, key client.ObjectKey, check func(*policyv1alpha1.Egress) error) *policyv1alpha1.Egress {
	t.Helper()
	e := &policyv1alpha1.Egress{}
	eventually(t, 30*time.Second, func() error {
		if err := env.Client.Get(ctx, key, e); err != nil {
			return err
		}
		return check(e)
	})
	checkVocabulary(t, e.Status.Conditions)
	return e
}

func egressReady(status string) func(*policyv1alpha1.Egress) error {
	return func(e *policyv1alpha1.Egress) error {
		if e.Status.ObservedGeneration != e.Generation {
			return fmt.Errorf("observedGeneration %d, generation %d", e.Status.ObservedGeneration, e.Generation)
		}
		if got := conditionString(e.Status.Conditions, conditions.Ready); !strings.HasPrefix(got, status) {
			return fmt.Errorf("Ready = %s, want %s (findings %v)", got, status, e.Status.Findings)
		}
		return nil
	}
}

// TestEgressSeed003PortCollision replays seed 003: a policy allows tcp to the external Redis at
// 10.0.0.6 on ports 7000-7003, and a mesh Service in a monitored namespace uses port 7000. The
// Egress status, read back from the API server, must name the Service, the port and the pods.
func TestEgressSeed003PortCollision(t *testing.T) {
	w := newWorld(t, "seed3", enableEgressPolicy)
	installPolicyCRDs(t)
	must(t, env.Client.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: w.app, Name: "frontend"}}))
	pod := w.appPod("frontend", "a1b2c")
	pod.Spec.ServiceAccountName = "frontend"
	must(t, env.Client.Create(ctx, pod))
	e := redisEgress(w.app)
	must(t, env.Client.Create(ctx, e))
	key := client.ObjectKeyFromObject(e)

	// Before any controller ran, the object is fresh: observedGeneration is the schema's -1.
	if got := kstatusOf(t, e); got != kstatus.InProgressStatus {
		t.Fatalf("fresh Egress: kstatus %s, want InProgress (status %+v)", got, e.Status)
	}

	h := startPolicyManager(t, "seed3")
	start := time.Now()
	e = waitEgress(t, key, egressReady("True"))
	if got := kstatusOf(t, e); got != kstatus.CurrentStatus {
		t.Fatalf("healthy Egress: kstatus %s, want Current", got)
	}
	t.Logf("healthy after %s", time.Since(start).Round(time.Millisecond))
	wantEvents := func(want ...string) {
		t.Helper()
		if got := h.events.About(e.Namespace, e.Name); strings.Join(got, ", ") != strings.Join(want, ", ") {
			t.Errorf("events %q, want %q", got, want)
		}
	}
	wantEvents("Normal Ready")

	// The mesh Service on 7000 appears in another monitored namespace: the Service watch and
	// port index must bring the Egress back without any change to it.
	w.namespace("seed3-b", false)
	start = time.Now()
	must(t, env.Client.Create(ctx, tcpService("seed3-b", "rediscluster", 7000)))
	e = waitEgress(t, key, func(e *policyv1alpha1.Egress) error {
		if findingOf(e.Status.Findings, conditions.FindingPortCollision) == nil {
			return fmt.Errorf("no PortCollision yet: %v", e.Status.Findings)
		}
		return egressReady("False")(e)
	})
	t.Logf("PortCollision reported %s after the Service appeared", time.Since(start).Round(time.Millisecond))
	f := findingOf(e.Status.Findings, conditions.FindingPortCollision)
	for _, want := range []string{"seed3-b/rediscluster", "port 7000", "10.0.0.6/32:7000", pod.Namespace + "/" + pod.Name, "service accounts " + w.app + "/frontend"} {
		if !strings.Contains(f.Message, want) {
			t.Errorf("PortCollision message lacks %q: %s", want, f.Message)
		}
	}
	if f.Severity != conditions.SeverityError || f.Objects[1] != "Service/seed3-b/rediscluster" {
		t.Errorf("finding = %+v", f)
	}
	if got := conditionString(e.Status.Conditions, conditions.Stalled); got != "True/Conflict" {
		t.Errorf("Stalled = %s", got)
	}
	if got := kstatusOf(t, e); got != kstatus.FailedStatus {
		t.Errorf("colliding Egress: kstatus %s, want Failed", got)
	}
	wantEvents("Normal Ready", "Warning Conflict")

	// A second pod of the service account shows up in the finding (pod watch and index).
	pod2 := w.appPod("frontend", "d3e4f")
	pod2.Spec.ServiceAccountName = "frontend"
	must(t, env.Client.Create(ctx, pod2))
	waitEgress(t, key, func(e *policyv1alpha1.Egress) error {
		if f := findingOf(e.Status.Findings, conditions.FindingPortCollision); f == nil || !strings.Contains(f.Message, pod2.Name) {
			return fmt.Errorf("finding does not name %s yet", pod2.Name)
		}
		return nil
	})

	// Nothing changes, so nothing is written.
	writes := h.statusWrites(e)
	consistently(t, 2*time.Second, func() error {
		if n := h.statusWrites(e); n != writes {
			return fmt.Errorf("%d status writes while nothing changed", n-writes)
		}
		return nil
	})
	// A new pod in a finding's message, and resyncs, are no transitions: no event.
	wantEvents("Normal Ready", "Warning Conflict")

	// Fixing it: the Service moves to another port.
	svc := &corev1.Service{}
	must(t, env.Client.Get(ctx, client.ObjectKey{Namespace: "seed3-b", Name: "rediscluster"}, svc))
	svc.Spec.Ports[0].Port, svc.Spec.Ports[0].TargetPort = 17000, intstr.FromInt32(17000)
	must(t, env.Client.Update(ctx, svc))
	e = waitEgress(t, key, egressReady("True"))
	if len(e.Status.Findings) != 0 {
		t.Errorf("findings after the fix: %v", e.Status.Findings)
	}
	if got := kstatusOf(t, e); got != kstatus.CurrentStatus {
		t.Errorf("fixed Egress: kstatus %s, want Current", got)
	}
	wantEvents("Normal Ready", "Warning Conflict", "Normal Ready")
}

// TestEgressReferencesAndSpec covers a missing ServiceAccount (not stalled: it may be applied
// next), a spec the schema admits but the validator refuses (stalled, kstatus Failed), and the
// feature flag.
func TestEgressReferencesAndSpec(t *testing.T) {
	w := newWorld(t, "egref", enableEgressPolicy)
	startPolicyManager(t, "egref")

	e := redisEgress(w.app)
	must(t, env.Client.Create(ctx, e))
	key := client.ObjectKeyFromObject(e)
	e = waitEgress(t, key, egressReady("False"))
	if got := conditionString(e.Status.Conditions, conditions.ResolvedRefs); got != "False/RefNotFound" {
		t.Errorf("ResolvedRefs = %s", got)
	}
	if findingOf(e.Status.Findings, conditions.FindingSourceServiceAccountNotFound) == nil {
		t.Errorf("findings = %v", e.Status.Findings)
	}
	if got := kstatusOf(t, e); got != kstatus.InProgressStatus {
		t.Errorf("missing ServiceAccount: kstatus %s, want InProgress", got)
	}
	must(t, env.Client.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: w.app, Name: "frontend"}}))
	waitEgress(t, key, egressReady("True"))

	// http without hosts passes the schema (no webhook here) but cannot be acted on.
	bad := &policyv1alpha1.Egress{ObjectMeta: metav1.ObjectMeta{Namespace: w.app, Name: "http-no-hosts"},
		Spec: policyv1alpha1.EgressSpec{
			Sources: []policyv1alpha1.EgressSourceSpec{{Kind: "ServiceAccount", Namespace: w.app, Name: "frontend"}},
			Ports:   []policyv1alpha1.PortSpec{{Number: 80, Protocol: "http"}}}}
	must(t, env.Client.Create(ctx, bad))
	bad = waitEgress(t, client.ObjectKeyFromObject(bad), egressReady("False"))
	if got := conditionString(bad.Status.Conditions, conditions.Accepted); got != "False/InvalidSpec" {
		t.Errorf("Accepted = %s", got)
	}
	if got := kstatusOf(t, bad); got != kstatus.FailedStatus {
		t.Errorf("invalid-but-admitted Egress: kstatus %s, want Failed", got)
	}

	// The feature flag off stalls every Egress; egress-open mode makes them moot but healthy.
	w.updateMeshConfig(func(s *configv1alpha2.MeshConfigSpec) { s.FeatureFlags.EnableEgressPolicy = false })
	e = waitEgress(t, key, egressReady("False"))
	if got := conditionString(e.Status.Conditions, conditions.Accepted); got != "False/FeatureDisabled" {
		t.Errorf("Accepted = %s", got)
	}
	w.updateMeshConfig(func(s *configv1alpha2.MeshConfigSpec) { s.Traffic.EnableEgress = true })
	e = waitEgress(t, key, egressReady("True"))
	if got := conditionString(e.Status.Conditions, conditions.Accepted); got != "False/Ignored" {
		t.Errorf("Accepted = %s", got)
	}
	if findingOf(e.Status.Findings, conditions.FindingEgressMoot) == nil {
		t.Errorf("findings = %v", e.Status.Findings)
	}
}
