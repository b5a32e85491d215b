package controllers

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
)

// settle waits until the counted writes have not moved for quiet.
func (h *harness) settle(t *testing.T, quiet time.Duration) { h.settleTB(t, quiet) }

func (h *harness) settleTB(t testing.TB, quiet time.Duration) {
	t.Helper()
	_, last := h.client.Writes()
	stable := time.Now()
	eventually(t, 30*time.Second, func() error {
		_, n := h.client.Writes()
		if n != last {
			last, stable = n, time.Now()
		}
		if time.Since(stable) < quiet {
			return fmt.Errorf("writes still moving (%d)", n)
		}
		return nil
	})
}

// TestResyncOfInSyncPodsWritesNothing re-evaluates every in-sync pod twice, once through a
// MeshConfig change that does not touch redirection and once through a namespace change, and
// counts what reaches the API server: no pod write and no event either time.
func TestResyncOfInSyncPodsWritesNothing(t *testing.T) {
	const n = 20
	w := newWorld(t, "resync", func(s *configv1alpha2.MeshConfigSpec) {
		s.Traffic.OutboundIPRangeExclusionList = []string{"10.0.0.0/8"}
		s.Traffic.OutboundPortExclusionList = []int32{6379, 7070}
		s.Traffic.InboundPortExclusionList = []int32{9090}
	})
	var names []string
	for i := range n {
		var pod *corev1.Pod
		if i%4 == 0 { // some OSM pods, which take the parse path every time
			pod = w.osmPod("legacy", fmt.Sprint(i), fixture(t, "osm-v12-heredoc.sh"))
		} else {
			pod = w.injected(w.appPod("web", fmt.Sprint(i)))
		}
		names = append(names, w.create(pod, initExited(0, "Completed")).Name)
	}
	h := startManager(t, w.mesh)
	for _, name := range names {
		w.condition(name, conditions.PodExclusionsInSync, condTrue, conditions.InSync)
	}
	eventually(t, 20*time.Second, func() error {
		if st := w.meshConfig().Status; st.Pods.InSync != n {
			return fmt.Errorf("pods %+v", st.Pods)
		}
		return nil
	})
	h.settle(t, 2*time.Second)
	if writes, _ := h.client.Writes(); writes["*v1.Pod/status"] != n {
		t.Errorf("first evaluation: %d pod status writes for %d pods, want exactly one each (%v)", writes["*v1.Pod/status"], n, writes)
	}
	eventsBefore := len(h.events.Events())

	t.Run("MeshConfig change outside redirection", func(t *testing.T) {
		h.client.Reset()
		mc := w.updateMeshConfig(func(s *configv1alpha2.MeshConfigSpec) { s.Sidecar.LogLevel = "debug" })
		h.waitReevaluated(t, n)
		eventually(t, 20*time.Second, func() error {
			if og := w.meshConfig().Status.ObservedGeneration; og != mc.Generation {
				return fmt.Errorf("observedGeneration %d, want %d", og, mc.Generation)
			}
			return nil
		})
		h.settle(t, 2*time.Second)
		writes, total := h.client.Writes()
		if writes["*v1.Pod/status"] != 0 || total != writes["*v1alpha2.MeshConfig/status"] {
			t.Errorf("writes after re-evaluating %d in-sync pods: %v", n, writes)
		}
		if writes["*v1alpha2.MeshConfig/status"] != 1 {
			t.Errorf("want exactly one MeshConfig status write (observedGeneration), got %v", writes)
		}
	})
	t.Run("namespace change", func(t *testing.T) {
		h.client.Reset()
		ns := &corev1.Namespace{}
		must(t, env.Client.Get(ctx, client.ObjectKey{Name: w.app}, ns))
		before := ns.DeepCopy()
		ns.Annotations["example.com/owner"] = "team-a"
		must(t, env.Client.Patch(ctx, ns, client.MergeFrom(before)))
		h.waitReevaluated(t, n)
		h.settle(t, 2*time.Second)
		if writes, total := h.client.Writes(); total != 0 {
			t.Errorf("writes after re-evaluating %d in-sync pods: %v", n, writes)
		}
	})
	if got := len(h.events.Events()); got != eventsBefore {
		t.Errorf("re-evaluations emitted events: %v", h.events.Events()[eventsBefore:])
	}
}

// waitReevaluated waits until at least n pods were read by reconciles since the last Reset.
func (h *harness) waitReevaluated(t *testing.T, n int) { h.waitReevaluatedTB(t, n) }

func (h *harness) waitReevaluatedTB(t testing.TB, n int) {
	t.Helper()
	eventually(t, 20*time.Second, func() error {
		if got := h.client.podGets.Load(); got < int64(n) {
			return fmt.Errorf("%d pod reconciles, want %d", got, n)
		}
		return nil
	})
}
