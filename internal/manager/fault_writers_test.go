package manager

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	"github.com/meshkeeper/meshkeeper/internal/testenv"
)

// probeCondition is a condition type another controller owns on the same pods.
const probeCondition = "example.io/Probe"

// otherWriter plays the kubelet and another controller on the pods of ns: every second it
// patches each pod's Ready condition and its own condition (strategic merge, as the kubelet
// does) and a label (merge patch), each carrying the tick number.
type otherWriter struct {
	c       *cluster
	ns      string
	pods    int
	mu      sync.Mutex
	tick    int
	writes  int
	errs    []error
	stopped chan struct{}
	quit    chan struct{}
}

func (c *cluster) startOtherWriter(ns string, pods int) *otherWriter {
	ctx := c.ctx
	quit := make(chan struct{})
	w := &otherWriter{c: c, ns: ns, pods: pods, stopped: make(chan struct{}), quit: quit}
	cl := c.fastClient()
	go func() {
		defer close(w.stopped)
		ticker := time.NewTicker(time.Second)
		defer ticker.Stop()
		for tick := 1; ; tick++ {
			var wg sync.WaitGroup
			sem := make(chan struct{}, 8)
			for i := 0; i < pods; i++ {
				wg.Add(1)
				sem <- struct{}{}
				go func(name string) {
					defer wg.Done()
					defer func() { <-sem }()
					w.write(ctx, cl, name, tick)
				}(fmt.Sprintf("web-%04d", i))
			}
			wg.Wait()
			w.mu.Lock()
			w.tick = tick
			w.mu.Unlock()
			// Stopping waits for the end of a round: every pod got the last tick.
			select {
			case <-quit:
				return
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
		}
	}()
	return w
}

func (w *otherWriter) write(ctx context.Context, cl client.Client, name string, tick int) {
	pod := &corev1.Pod{}
	pod.Namespace, pod.Name = w.ns, name
	now := time.Now().UTC().Format(time.RFC3339)
	status, _ := json.Marshal(map[string]any{"status": map[string]any{"conditions": []map[string]any{
		{"type": "Ready", "status": "True", "lastProbeTime": now, "message": "tick " + strconv.Itoa(tick)},
		{"type": probeCondition, "status": "True", "reason": "Tick", "message": "tick " + strconv.Itoa(tick), "lastProbeTime": now},
	}}})
	label, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]string{"example.io/tick": strconv.Itoa(tick)}}})
	errs := []error{
		cl.Status().Patch(ctx, pod, client.RawPatch(types.StrategicMergePatchType, status)),
		cl.Patch(ctx, pod, client.RawPatch(types.MergePatchType, label)),
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, err := range errs {
		if err == nil {
			w.writes++
		} else if ctx.Err() == nil {
			w.errs = append(w.errs, err)
		}
	}
}

// stop ends the writer after its current round and returns the last tick every pod got.
func (w *otherWriter) stop() int {
	close(w.quit)
	<-w.stopped
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.tick
}

// TestConcurrentWritersKeepTheirFields is case 4 of docs/reliability.md: while the manager
// works through a drift wave, another writer patches the same pods' status conditions and
// labels every second. meshkeeper's conditions end right, the other writer's conditions and
// labels are never removed or rolled back, and meshkeeper's writes stay one per pod: its
// strategic-merge patch of its own conditions carries no resourceVersion, so it never conflicts
// and never retries.
func TestConcurrentWritersKeepTheirFields(t *testing.T) {
	c := startCluster(t, osmCRDs(t))
	c.c = c.fastClient()
	n := wavePods(60, 300)
	key := types.NamespacedName{Namespace: "osm-system", Name: "osm-mesh-config"}
	tl, m := c.inSyncPods(key, n)

	w := c.startOtherWriter("shop", n)
	time.Sleep(3 * time.Second)
	rec0, mark := reconciles(t, "drift-pod"), tl.mark()
	c.addRange(key, waveRange)
	c.waitVerdicts(m.alive, "shop", n, corev1.ConditionFalse, conditions.Drifted, waveRange, 5*time.Minute)
	// The writer keeps going for 10 s after the wave: none of it may cause a write of ours.
	waveCalls, mark2 := tl.since(mark)
	time.Sleep(10 * time.Second)
	last := w.stop()
	quietCalls, _ := tl.since(mark2)
	recs := reconciles(t, "drift-pod") - rec0

	writes := statusWritesPerPod(waveCalls)
	total, failed := 0, 0
	for _, v := range writes {
		total += v
	}
	for _, call := range append(waveCalls, quietCalls...) {
		if call.resource == "pods/status" && call.write() && !call.ok() {
			failed++
		}
	}
	w.mu.Lock()
	otherWrites, otherErrs := w.writes, w.errs
	w.mu.Unlock()
	t.Logf("%d pods, the other writer at 2 patches per pod per second (%d ticks, %d writes, %d errors); meshkeeper: %d reconciles, "+
		"%d status writes in the wave (%d failed), writes after it %v; load %s",
		n, last, otherWrites, len(otherErrs), int(recs), total, failed, writesBy(quietCalls), testenv.LoadAverage())
	if len(otherErrs) > 0 {
		t.Errorf("the other writer's patches failed: %v", otherErrs[0])
	}
	if len(writes) != n || total != n {
		t.Errorf("%d status writes to %d pods in the wave, want one to each of %d; pods written more than once:\n%s",
			total, len(writes), n, strings.Join(explainRewrites(waveCalls), "\n"))
	}
	if failed > 0 {
		t.Errorf("%d status writes refused (conflicts or otherwise), want none", failed)
	}
	// Events are posted asynchronously by the recorder and the MeshConfig's own (PodsInSync)
	// follow its coalesced recount, so they may land in the quiet period without the other
	// writer having caused them; their count per pod is checked below. Any other write would be
	// a reaction to the other writer.
	quiet := writesBy(quietCalls)
	delete(quiet, "events")
	if len(quiet) > 0 {
		t.Errorf("the other writer's changes made meshkeeper write: %v", quiet)
	}
	perPod, repeated := c.podEvents("shop", conditions.Drifted)
	for pod, k := range perPod {
		if k > 1 {
			t.Errorf("pod %s: %d Drifted events", pod, k)
		}
	}
	if len(perPod) != n || repeated > 0 {
		t.Errorf("%d pods with a Drifted event (%d repeats in series), want each of %d once", len(perPod), repeated, n)
	}

	// Everything the other writer wrote last is still there, and ours is right.
	want := "tick " + strconv.Itoa(last)
	list := &corev1.PodList{}
	c.must(c.c.List(c.ctx, list, client.InNamespace("shop")))
	for _, p := range list.Items {
		find := func(t corev1.PodConditionType) *corev1.PodCondition {
			if i := slices.IndexFunc(p.Status.Conditions, func(pc corev1.PodCondition) bool { return pc.Type == t }); i >= 0 {
				return &p.Status.Conditions[i]
			}
			return nil
		}
		for _, ty := range []corev1.PodConditionType{corev1.PodReady, probeCondition} {
			if pc := find(ty); pc == nil || pc.Message != want {
				t.Errorf("pod %s: the other writer's %s condition is %+v, want its last write (%s)", p.Name, ty, pc, want)
			}
		}
		if got := p.Labels["example.io/tick"]; got != strconv.Itoa(last) {
			t.Errorf("pod %s: label example.io/tick=%q, want %d", p.Name, got, last)
		}
		if pc := find(conditions.PodExclusionsInSync); pc == nil || pc.Reason != conditions.Drifted {
			t.Errorf("pod %s: PodExclusionsInSync %+v, want Drifted", p.Name, pc)
		}
	}
	_ = m.alive()
}
