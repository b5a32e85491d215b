package controllers

import (
	"fmt"
	dto "github.com/prometheus/client_model/go"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	"github.com/meshkeeper/meshkeeper/internal/drift"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (w *world) deployment(namespace, name string, annotations map[string]string) {
	w.t.Helper()
	labels := map[string]string{"app": name}
	must(w.t, env.Client.Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Annotations: annotations},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example/" + name + ":v1"}}}},
		},
	}))
}

func restartedAt(t testing.TB, namespace, name string) string {
	t.Helper()
	d := &appsv1.Deployment{}
	must(t, env.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, d))
	return d.Spec.Template.Annotations[AnnotationRestartedAt]
}

func TestAutoRestartIsOptInAndRateLimited(t *testing.T) {
	w := newWorld(t, "restart", nil)
	clock := &fakeClock{t: time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)}
	h := startManager(t, w.mesh, func(o *DriftOptions) { o.Clock = clock.Now; o.AutoRestartMinInterval = 10 * time.Minute })

	// w.app opts in at namespace level; "manual" does not, except for one workload.
	ns := &corev1.Namespace{}
	must(t, env.Client.Get(ctx, client.ObjectKey{Name: w.app}, ns))
	before := ns.DeepCopy()
	ns.Annotations[AnnotationAutoRestart] = "true"
	must(t, env.Client.Patch(ctx, ns, client.MergeFrom(before)))
	manual := w.app + "-manual"
	w.namespace(manual, true)

	w.deployment(w.app, "bookbuyer", nil)
	w.deployment(manual, "bookstore", nil)
	w.deployment(manual, "bookwarehouse", map[string]string{AnnotationAutoRestart: "true"})
	buyer := w.create(w.injected(w.appPod("bookbuyer", "a")), initExited(0, "Completed"))
	store := w.appPod("bookstore", "a")
	store.Namespace = manual
	store = w.create(w.injected(store), initExited(0, "Completed"))
	warehouse := w.appPod("bookwarehouse", "a")
	warehouse.Namespace = manual
	w.create(w.injected(warehouse), initExited(0, "Completed"))
	w.condition(buyer.Name, conditions.PodExclusionsInSync, condTrue, conditions.InSync)

	w.updateMeshConfig(func(s *configv1alpha2.MeshConfigSpec) { s.Traffic.OutboundPortExclusionList = []int32{5432} })
	w.condition(buyer.Name, conditions.PodExclusionsInSync, condFalse, conditions.Drifted)
	first := clock.Now().UTC().Format(time.RFC3339)
	eventually(t, 20*time.Second, func() error {
		if got := restartedAt(t, w.app, "bookbuyer"); got != first {
			return fmt.Errorf("bookbuyer restartedAt %q, want %q", got, first)
		}
		if got := restartedAt(t, manual, "bookwarehouse"); got != first {
			return fmt.Errorf("bookwarehouse (workload opt-in) restartedAt %q, want %q", got, first)
		}
		if h.events.Count(EventReasonAutoRestart) != 2 {
			return fmt.Errorf("events %v", h.events.Events())
		}
		return nil
	})
	podDrifted := func(ns, name string) error {
		p := w.podIn(ns, name)
		for _, c := range ownConditions(p) {
			if c.Type == conditions.PodExclusionsInSync && c.Reason == conditions.Drifted {
				return nil
			}
		}
		return fmt.Errorf("pod %s/%s not drifted yet", ns, name)
	}
	eventually(t, 20*time.Second, func() error { return podDrifted(manual, store.Name) })
	if got := restartedAt(t, manual, "bookstore"); got != "" {
		t.Errorf("bookstore did not opt in but was restarted at %s", got)
	}

	// Still drifted five minutes later (the old pod is still there, nothing recreated it in
	// envtest): a new MeshConfig change re-evaluates it, but the interval has not passed.
	clock.Advance(5 * time.Minute)
	w.updateMeshConfig(func(s *configv1alpha2.MeshConfigSpec) { s.Traffic.OutboundPortExclusionList = []int32{5432, 5433} })
	eventually(t, 20*time.Second, func() error {
		c := drift.Find(w.pod(buyer.Name).Status.Conditions, conditions.PodExclusionsInSync)
		if c == nil || !strings.Contains(c.Message, "5433") {
			return fmt.Errorf("not re-evaluated yet")
		}
		return nil
	})
	consistently(t, 2*time.Second, func() error {
		if got := restartedAt(t, w.app, "bookbuyer"); got != first {
			return fmt.Errorf("restarted again within the interval: %s", got)
		}
		return nil
	})

	// Past the interval, the next evaluation restarts again.
	clock.Advance(6 * time.Minute)
	second := clock.Now().UTC().Format(time.RFC3339)
	w.updateMeshConfig(func(s *configv1alpha2.MeshConfigSpec) { s.Traffic.OutboundPortExclusionList = []int32{5432} })
	eventually(t, 20*time.Second, func() error {
		if got := restartedAt(t, w.app, "bookbuyer"); got != second {
			return fmt.Errorf("restartedAt %q, want %q", got, second)
		}
		return nil
	})
	if got := restartedAt(t, manual, "bookstore"); got != "" {
		t.Errorf("bookstore did not opt in but was restarted at %s", got)
	}
}

// The drifted pods of one workload are reconciled side by side after a MeshConfig change; the
// workload is restarted once, with one event, not once per pod.
func TestAutoRestartOncePerWorkload(t *testing.T) {
	w := newWorld(t, "restart-once", nil)
	clock := &fakeClock{t: time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)}
	h := startManager(t, w.mesh, func(o *DriftOptions) {
		o.Clock = clock.Now
		o.AutoRestartMinInterval = 10 * time.Minute
		o.MaxConcurrentReconciles = 8
	})
	w.deployment(w.app, "bookbuyer", map[string]string{AnnotationAutoRestart: "true"})
	var pods []*corev1.Pod
	for i := range 6 {
		pods = append(pods, w.create(w.injected(w.appPod("bookbuyer", fmt.Sprintf("p%d", i))), initExited(0, "Completed")))
	}
	for _, p := range pods {
		w.condition(p.Name, conditions.PodExclusionsInSync, condTrue, conditions.InSync)
	}

	w.updateMeshConfig(func(s *configv1alpha2.MeshConfigSpec) { s.Traffic.OutboundPortExclusionList = []int32{5432} })
	for _, p := range pods {
		w.condition(p.Name, conditions.PodExclusionsInSync, condFalse, conditions.Drifted)
	}
	// The metrics count the drifted pods per workload and per namespace (from the MeshConfig's
	// recount, which follows the pods' conditions).
	eventually(t, 20*time.Second, func() error {
		var m dto.Metric
		if err := driftedPods.WithLabelValues(w.mesh, w.app, drift.KindDeployment, "bookbuyer").Write(&m); err != nil {
			return err
		}
		var ns dto.Metric
		if err := namespacePods.WithLabelValues(w.mesh, w.app, "drifted").Write(&ns); err != nil {
			return err
		}
		if m.GetGauge().GetValue() != 6 || ns.GetGauge().GetValue() != 6 {
			return fmt.Errorf("meshkeeper_drifted_pods{workload=bookbuyer} = %v and meshkeeper_namespace_pods{verdict=drifted} = %v, want 6 and 6",
				m.GetGauge().GetValue(), ns.GetGauge().GetValue())
		}
		return nil
	})
	want := clock.Now().UTC().Format(time.RFC3339)
	eventually(t, 20*time.Second, func() error {
		if got := restartedAt(t, w.app, "bookbuyer"); got != want {
			return fmt.Errorf("restartedAt %q, want %q", got, want)
		}
		return nil
	})
	var m dto.Metric
	must(t, autoRestarts.WithLabelValues(w.app, drift.KindDeployment).Write(&m))
	if got := m.GetCounter().GetValue(); got != 1 {
		t.Errorf("meshkeeper_auto_restarts_total{namespace=%q,kind=Deployment} = %v, want 1", w.app, got)
	}
	m.Reset()
	must(t, podEvaluation.Write(&m))
	if m.GetHistogram().GetSampleCount() < 12 {
		t.Errorf("meshkeeper_pod_evaluation_duration_seconds counted %d evaluations, want at least 12 (6 pods, twice)", m.GetHistogram().GetSampleCount())
	}
	consistently(t, 2*time.Second, func() error {
		if n := h.events.Count(EventReasonAutoRestart); n != 1 {
			return fmt.Errorf("%d %s events for one workload with 6 drifted pods, want 1: %v", n, EventReasonAutoRestart, h.events.Events())
		}
		return nil
	})
}

// claim is the restart decision itself: of many concurrent claims on one workload, one wins;
// a released claim lets the next one through, and the interval counts from the winner.
func TestRestartLimiterClaim(t *testing.T) {
	l := newRestartLimiter()
	wl := drift.Workload{Kind: drift.KindDeployment, Namespace: "app", Name: "bookbuyer"}
	now := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	var wins sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for range 32 {
		wins.Add(1)
		go func() {
			defer wins.Done()
			if ok, _, _ := l.claim(wl, now, 10*time.Minute); ok {
				mu.Lock()
				won++
				mu.Unlock()
			}
		}()
	}
	wins.Wait()
	if won != 1 {
		t.Fatalf("%d of 32 concurrent claims won, want 1", won)
	}
	if ok, _, wait := l.claim(wl, now.Add(time.Minute), 10*time.Minute); ok || wait != 9*time.Minute {
		t.Errorf("claim a minute later: ok=%t wait=%s, want false and 9m", ok, wait)
	}
	l.release(wl, now, time.Time{})
	if ok, _, _ := l.claim(wl, now.Add(time.Minute), 10*time.Minute); !ok {
		t.Error("after the winner released its claim, the next claim must win")
	}
	// A release of a claim that is no longer the latest changes nothing.
	l.release(wl, now, time.Time{})
	if ok, _, _ := l.claim(wl, now.Add(2*time.Minute), 10*time.Minute); ok {
		t.Error("a stale release undid a newer claim")
	}
}
