package controllers

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	policyv1alpha1 "github.com/meshkeeper/meshkeeper/api/policy/v1alpha1"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

func waitIngressBackend(t *testing.T, key client.ObjectKey, check func(*policyv1alpha1.IngressBackend) error) *policyv1alpha1.IngressBackend {
	t.Helper()
	ib := &policyv1alpha1.IngressBackend{}
	eventually(t, 30*time.Second, func() error {
		if err := env.Client.Get(ctx, key, ib); err != nil {
			return err
		}
		if ib.Status.ObservedGeneration != ib.Generation {
			return fmt.Errorf("observedGeneration %d, generation %d", ib.Status.ObservedGeneration, ib.Generation)
		}
		return check(ib)
	})
	checkVocabulary(t, ib.Status.Conditions)
	return ib
}

func osmStatus(current string) func(*policyv1alpha1.IngressBackend) error {
	return func(ib *policyv1alpha1.IngressBackend) error {
		if ib.Status.CurrentStatus != current {
			return fmt.Errorf("currentStatus %q (%s), want %q", ib.Status.CurrentStatus, ib.Status.Reason, current)
		}
		return nil
	}
}

func webBackend(ns, name string, port int32) *policyv1alpha1.IngressBackend {
	return &policyv1alpha1.IngressBackend{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: policyv1alpha1.IngressBackendSpec{
			Backends: []policyv1alpha1.BackendSpec{{Name: "web", Port: policyv1alpha1.BackendPortSpec{Number: port, Protocol: "http"}}},
			Sources:  []policyv1alpha1.IngressSourceSpec{{Kind: "Service", Namespace: ns, Name: "gateway"}},
		}}
}

// TestIngressBackendTargetPort: a backend port equal to the Service port instead of its
// targetPort is inert in OSM. The status says which port would match and OSM's currentStatus
// reads "error"; correcting the port clears the finding and commits the policy.
func TestIngressBackendTargetPort(t *testing.T) {
	w := newWorld(t, "ibport", enableEgressPolicy)
	web := tcpService(w.app, "web", 80)
	web.Spec.Ports[0].TargetPort = intstr.FromInt32(8080)
	must(t, env.Client.Create(ctx, web))
	must(t, env.Client.Create(ctx, tcpService(w.app, "gateway", 443)))
	installPolicyCRDs(t)
	ib := webBackend(w.app, "web", 80)
	must(t, env.Client.Create(ctx, ib))
	if got := kstatusOf(t, ib); got != kstatus.InProgressStatus {
		t.Fatalf("fresh IngressBackend: kstatus %s, want InProgress", got)
	}
	h := startPolicyManager(t, "ibport")
	key := client.ObjectKeyFromObject(ib)

	start := time.Now()
	ib = waitIngressBackend(t, key, osmStatus(policyv1alpha1.CurrentStatusError))
	t.Logf("error reported after %s", time.Since(start).Round(time.Millisecond))
	f := findingOf(ib.Status.Findings, conditions.FindingBackendTargetPortMismatch)
	if f == nil {
		t.Fatalf("findings = %v", ib.Status.Findings)
	}
	for _, want := range []string{w.app + "/web", "80->8080", "set port.number to 8080"} {
		if !strings.Contains(f.Message, want) {
			t.Errorf("message lacks %q: %s", want, f.Message)
		}
	}
	if !strings.Contains(ib.Status.Reason, "8080") {
		t.Errorf("OSM reason %q does not say which port would match", ib.Status.Reason)
	}
	if got := conditionString(ib.Status.Conditions, conditions.ResolvedRefs); got != "False/TargetPortMismatch" {
		t.Errorf("ResolvedRefs = %s", got)
	}
	if got := kstatusOf(t, ib); got != kstatus.FailedStatus {
		t.Errorf("mismatched IngressBackend: kstatus %s, want Failed", got)
	}

	ib.Spec.Backends[0].Port.Number = 8080
	must(t, env.Client.Update(ctx, ib))
	ib = waitIngressBackend(t, key, osmStatus(policyv1alpha1.CurrentStatusCommitted))
	if len(ib.Status.Findings) != 0 {
		t.Errorf("findings after the fix: %v", ib.Status.Findings)
	}
	if got := kstatusOf(t, ib); got != kstatus.CurrentStatus {
		t.Errorf("fixed IngressBackend: kstatus %s, want Current", got)
	}

	// Settled: re-evaluations caused by unrelated changes write nothing.
	writes := h.statusWrites(ib)
	events := func() string { return strings.Join(h.events.About(ib.Namespace, ib.Name), ", ") }
	if got := events(); got != "Warning TargetPortMismatch, Normal Ready" {
		t.Errorf("events %q: one per transition (stalled, then ready)", got)
	}
	gw := &corev1.Service{}
	must(t, env.Client.Get(ctx, client.ObjectKey{Namespace: w.app, Name: "gateway"}, gw))
	gw.Labels = map[string]string{"touched": "yes"}
	must(t, env.Client.Update(ctx, gw))
	consistently(t, 2*time.Second, func() error {
		if n := h.statusWrites(ib); n != writes {
			return fmt.Errorf("%d status writes while nothing the policy reads changed", n-writes)
		}
		return nil
	})
	if got := events(); got != "Warning TargetPortMismatch, Normal Ready" {
		t.Errorf("events %q after re-evaluations that changed nothing", got)
	}

	// An AuthenticatedPrincipal source over plain http passes the schema (no webhook here) but
	// can never match anyone: invalid but admitted, so stalled and kstatus Failed.
	bad := webBackend(w.app, "principal-over-http", 8080)
	bad.Spec.Sources = []policyv1alpha1.IngressSourceSpec{{Kind: "AuthenticatedPrincipal", Name: "ingress.example.cluster.local"}}
	must(t, env.Client.Create(ctx, bad))
	bad = waitIngressBackend(t, client.ObjectKeyFromObject(bad), osmStatus(policyv1alpha1.CurrentStatusError))
	if got := conditionString(bad.Status.Conditions, conditions.Accepted); got != "False/InvalidSpec" {
		t.Errorf("Accepted = %s (%s)", got, bad.Status.Reason)
	}
	if got := kstatusOf(t, bad); got != kstatus.FailedStatus {
		t.Errorf("invalid-but-admitted IngressBackend: kstatus %s, want Failed", got)
	}
}

// TestIngressBackendDependencies: a missing source Service heals when it is created (Service
// watch), and a second IngressBackend claiming the same backend loses Accepted while the first
// one keeps working; deleting the second clears the warning on the first (claim index).
func TestIngressBackendDependencies(t *testing.T) {
	w := newWorld(t, "ibdeps", enableEgressPolicy)
	web := tcpService(w.app, "web", 80)
	web.Spec.Ports[0].TargetPort = intstr.FromInt32(8080)
	must(t, env.Client.Create(ctx, web))
	startPolicyManager(t, "ibdeps")

	first := webBackend(w.app, "first", 8080)
	must(t, env.Client.Create(ctx, first))
	firstKey := client.ObjectKeyFromObject(first)
	first = waitIngressBackend(t, firstKey, osmStatus(policyv1alpha1.CurrentStatusError))
	if findingOf(first.Status.Findings, conditions.FindingSourceServiceNotFound) == nil {
		t.Fatalf("findings = %v", first.Status.Findings)
	}
	if got := kstatusOf(t, first); got != kstatus.InProgressStatus {
		t.Errorf("missing source Service: kstatus %s, want InProgress", got)
	}
	must(t, env.Client.Create(ctx, tcpService(w.app, "gateway", 443)))
	waitIngressBackend(t, firstKey, osmStatus(policyv1alpha1.CurrentStatusCommitted))

	time.Sleep(1100 * time.Millisecond) // creation timestamps have one-second resolution
	second := webBackend(w.app, "second", 8080)
	must(t, env.Client.Create(ctx, second))
	second = waitIngressBackend(t, client.ObjectKeyFromObject(second), osmStatus(policyv1alpha1.CurrentStatusError))
	if got := conditionString(second.Status.Conditions, conditions.Accepted); got != "False/Conflict" {
		t.Errorf("second Accepted = %s", got)
	}
	waitIngressBackend(t, firstKey, func(ib *policyv1alpha1.IngressBackend) error {
		if findingOf(ib.Status.Findings, conditions.FindingBackendClaimedTwice) == nil {
			return fmt.Errorf("first has no BackendClaimedTwice warning: %v", ib.Status.Findings)
		}
		return osmStatus(policyv1alpha1.CurrentStatusCommitted)(ib)
	})
	must(t, env.Client.Delete(ctx, second))
	waitIngressBackend(t, firstKey, func(ib *policyv1alpha1.IngressBackend) error {
		if len(ib.Status.Findings) != 0 {
			return fmt.Errorf("findings remain: %v", ib.Status.Findings)
		}
		return nil
	})
}

// setPodMeta changes a pod's labels and annotations the way `kubectl label/annotate` would.
func setPodMeta(t *testing.T, pod *corev1.Pod, change func(*corev1.Pod)) {
	t.Helper()
	must(t, env.Client.Get(ctx, client.ObjectKeyFromObject(pod), pod))
	before := pod.DeepCopy()
	change(pod)
	must(t, env.Client.Patch(ctx, pod, client.MergeFrom(before)))
}

// TestIngressBackendBackendPods: a backend pod whose own inbound-port-exclusion-list annotation
// names the backend port lets traffic past its sidecar, so the IngressBackend reports
// BackendPortNotIntercepted naming the pod. The pod watch maps label changes both ways (a pod
// leaving and re-entering the selector) and annotation removal, and pod changes the policy does
// not read write nothing.
func TestIngressBackendBackendPods(t *testing.T) {
	w := newWorld(t, "ibpods", enableEgressPolicy)
	web := tcpService(w.app, "web", 80)
	web.Spec.Ports[0].TargetPort = intstr.FromInt32(8080)
	must(t, env.Client.Create(ctx, web))
	must(t, env.Client.Create(ctx, tcpService(w.app, "gateway", 443)))
	h := startPolicyManager(t, "ibpods")
	ib := webBackend(w.app, "web", 8080)
	must(t, env.Client.Create(ctx, ib))
	key := client.ObjectKeyFromObject(ib)
	waitIngressBackend(t, key, osmStatus(policyv1alpha1.CurrentStatusCommitted))

	backend := w.appPod("web", "a") // app=web: selected by Service web
	backend.Annotations = map[string]string{redirect.AnnotationInboundPortExclusionList: "9090,8080"}
	must(t, env.Client.Create(ctx, backend))
	other := w.appPod("billing", "b") // app=billing: selected by no backend Service
	must(t, env.Client.Create(ctx, other))

	bypassed := func(ib *policyv1alpha1.IngressBackend) error {
		f := findingOf(ib.Status.Findings, conditions.FindingBackendPortNotIntercepted)
		if f == nil {
			return fmt.Errorf("no %s finding: %v", conditions.FindingBackendPortNotIntercepted, ib.Status.Findings)
		}
		if !slices.Contains(f.Objects, "Pod/"+w.app+"/"+backend.Name) || !strings.Contains(f.Message, w.app+"/"+backend.Name) {
			return fmt.Errorf("finding does not name pod %s: %s %v", backend.Name, f.Message, f.Objects)
		}
		if slices.Contains(f.Objects, "Pod/"+w.app+"/"+other.Name) {
			return fmt.Errorf("finding names the unselected pod %s: %v", other.Name, f.Objects)
		}
		return osmStatus(policyv1alpha1.CurrentStatusError)(ib)
	}
	intercepted := func(ib *policyv1alpha1.IngressBackend) error {
		if len(ib.Status.Findings) != 0 {
			return fmt.Errorf("findings remain: %v", ib.Status.Findings)
		}
		return osmStatus(policyv1alpha1.CurrentStatusCommitted)(ib)
	}

	start := time.Now()
	got := waitIngressBackend(t, key, bypassed)
	t.Logf("annotated backend pod reported after %s", time.Since(start).Round(time.Millisecond))
	if c := conditionString(got.Status.Conditions, conditions.Ready); c != "False/Bypassed" {
		t.Errorf("Ready = %s", c)
	}

	// Settled: pod changes the policy does not read write nothing. The unselected pod gains the
	// annotation; the backend pod gains an unrelated annotation.
	writes := h.statusWrites(got)
	setPodMeta(t, other, func(p *corev1.Pod) {
		p.Annotations = map[string]string{redirect.AnnotationInboundPortExclusionList: "8080"}
	})
	setPodMeta(t, backend, func(p *corev1.Pod) { p.Annotations["example.com/owner"] = "payments" })
	consistently(t, 2*time.Second, func() error {
		if n := h.statusWrites(got); n != writes {
			return fmt.Errorf("%d status writes while nothing the policy reads changed", n-writes)
		}
		return nil
	})

	// Relabelled out of the selector: the old object maps to the IngressBackend, which clears.
	setPodMeta(t, backend, func(p *corev1.Pod) { p.Labels["app"] = "web-canary" })
	waitIngressBackend(t, key, intercepted)
	setPodMeta(t, backend, func(p *corev1.Pod) { p.Labels["app"] = "web" })
	waitIngressBackend(t, key, bypassed)

	// The annotation removed: the port is intercepted again.
	setPodMeta(t, backend, func(p *corev1.Pod) { delete(p.Annotations, redirect.AnnotationInboundPortExclusionList) })
	waitIngressBackend(t, key, intercepted)
}

// TestBackendPodChanged: the pod watch passes only the updates that can change a backend pod's
// part in an IngressBackend's status.
func TestBackendPodChanged(t *testing.T) {
	base := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-1",
		Labels:      map[string]string{"app": "web"},
		Annotations: map[string]string{redirect.AnnotationInboundPortExclusionList: "8080", "example.com/owner": "payments"}}}
	now := metav1.Now()
	for _, tc := range []struct {
		name   string
		change func(*corev1.Pod)
		want   bool
	}{
		{"nothing", func(*corev1.Pod) {}, false},
		{"status", func(p *corev1.Pod) { p.Status.Phase = corev1.PodRunning }, false},
		{"other annotation", func(p *corev1.Pod) { p.Annotations["example.com/owner"] = "billing" }, false},
		{"exclusion list value", func(p *corev1.Pod) { p.Annotations[redirect.AnnotationInboundPortExclusionList] = "9090" }, true},
		{"exclusion list removed", func(p *corev1.Pod) { delete(p.Annotations, redirect.AnnotationInboundPortExclusionList) }, true},
		{"exclusion list emptied", func(p *corev1.Pod) { p.Annotations[redirect.AnnotationInboundPortExclusionList] = "" }, true},
		{"label value", func(p *corev1.Pod) { p.Labels["app"] = "web-canary" }, true},
		{"label added", func(p *corev1.Pod) { p.Labels["tier"] = "front" }, true},
		{"terminating", func(p *corev1.Pod) { p.DeletionTimestamp = &now }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			changed := base.DeepCopy()
			tc.change(changed)
			if got := backendPodChanged.Update(event.UpdateEvent{ObjectOld: base, ObjectNew: changed}); got != tc.want {
				t.Errorf("Update = %t, want %t", got, tc.want)
			}
		})
	}
	if !backendPodChanged.Create(event.CreateEvent{Object: base}) || !backendPodChanged.Delete(event.DeleteEvent{Object: base}) {
		t.Error("creation and deletion must pass")
	}
	if backendPodChanged.Generic(event.GenericEvent{Object: base}) {
		t.Error("generic events must not pass")
	}
}
