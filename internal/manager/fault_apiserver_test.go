package manager

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	"github.com/meshkeeper/meshkeeper/internal/testenv"
)

// TestAPIServerRestartMidWave is case 1 of docs/reliability.md: kube-apiserver stops while the
// manager works through a drift wave (every meshed pod drifts at once) and starts again 5 s
// later, etcd keeping its data. Afterwards every pod holds the right verdict, each pod got one
// Drifted event and at most one repeated status write (a write in flight when the server went
// away), nothing more is written once the wave is done, and Run never returns.
// 300 pods; 1,000 with MESHKEEPER_FAULTS=long.
func TestAPIServerRestartMidWave(t *testing.T) {
	needFaults(t)
	c := startRestartableCluster(t, osmCRDs(t)).withFastClient()
	n := wavePods(300, 1000)
	key := types.NamespacedName{Namespace: "osm-system", Name: "osm-mesh-config"}
	tl, m := c.inSyncPods(key, n)

	// The wave: a new exclusion, every pod drifts.
	mark, before := c.startWave(tl, key, n)
	c.stopAPIServer()
	stopped := time.Now()
	time.Sleep(5 * time.Second)
	c.startAPIServer()
	t.Logf("kube-apiserver stopped with %d of %d pods written, started again after %s", before, n, time.Since(stopped).Round(time.Millisecond))
	if err := m.alive(); err != nil {
		t.Fatal(err)
	}

	c.waitVerdicts(m.alive, "shop", n, corev1.ConditionFalse, conditions.Drifted, waveRange, 5*time.Minute)
	converged := time.Since(stopped)
	// Events refused while the server was down are retried by the recorder every 10 s.
	var perPod map[string]int
	var repeated int
	c.eventually(2*time.Minute, func() error {
		perPod, repeated = c.podEvents("shop", conditions.Drifted)
		if len(perPod) < n {
			return fmt.Errorf("%d of %d pods have a Drifted event", len(perPod), n)
		}
		return nil
	})
	calls, _ := tl.since(mark)
	writes := statusWritesPerPod(calls)
	failed, total, twice := 0, 0, 0
	perSecond := map[int64]int{}
	for _, call := range calls {
		if call.resource == "pods/status" && call.write() && !call.ok() {
			failed++
			perSecond[call.at.Unix()]++
		}
	}
	busiest := 0
	for _, k := range perSecond {
		busiest = max(busiest, k)
	}
	t.Logf("failed status writes: %d over %d seconds, at most %d in one second", failed, len(perSecond), busiest)
	// Retries of failed reconciles are paced: each pod backs off on its own, and all of them
	// together are held to 10 per second after a burst of 100, so an unreachable server sees
	// each pod still to write once (its first attempt is no retry) and a bounded trickle of
	// retries, rather than every pod retrying every few milliseconds.
	if limit := (n - before) + 100 + 10 + 8; busiest > limit {
		t.Errorf("%d failed status writes in one second while the API server was away, want at most %d: a retry storm", busiest, limit)
	}
	for _, w := range writes {
		total += w
		if w > 1 {
			twice++
		}
	}
	dupEvents := 0
	for _, k := range perPod {
		dupEvents += k - 1
	}
	t.Logf("wave of %d pods across the restart: converged %s after the stop; %d status writes (%d pods twice, %d failed attempts), "+
		"%d Drifted events stored (%d duplicates, %d repeats in series), writes %s; load %s",
		n, converged.Round(time.Second), total, twice, failed, len(perPod)+dupEvents, dupEvents, repeated, fmtCounts(writesBy(calls)), testenv.LoadAverage())
	if len(writes) != n {
		t.Errorf("%d pods written in the wave, want %d", len(writes), n)
	}
	// A write in flight when the server stopped may have been applied without its answer
	// arriving, and is sent again: one per concurrent reconcile (8) at most.
	if twice > 8 {
		t.Errorf("%d pods written twice, want at most 8 (the writes in flight at the stop)", twice)
	}
	for pod, w := range writes {
		if w > 2 {
			t.Errorf("pod %s written %d times", pod, w)
		}
	}
	if dupEvents > 0 || repeated > 0 {
		t.Errorf("duplicate Drifted events: %d stored twice, %d repeats in series", dupEvents, repeated)
	}

	// Done means done: 10 s without a write.
	mark = tl.mark()
	time.Sleep(10 * time.Second)
	calls, _ = tl.since(mark)
	if w := writesBy(calls); len(w) > 0 {
		t.Errorf("writes after the wave converged: %v", w)
	}
	if err := m.alive(); err != nil {
		t.Fatal(err)
	}
}

// withFastClient makes the test's own client unthrottled, for creating many pods.
func (r *restartable) withFastClient() *restartable {
	r.c = r.fastClient()
	return r
}
