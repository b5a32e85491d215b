package manager

import (
	"fmt"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	"github.com/meshkeeper/meshkeeper/internal/testenv"
)

// TestLeaderKilledMidWave is case 2 of docs/reliability.md: two replicas with leader election;
// the leader is killed in the middle of a drift wave. "Killed" is SIGKILL as the API server sees
// it: from that instant no request of the process leaves it, so the Lease is neither renewed nor
// released. The other replica takes the Lease once it expires, finishes the wave, and rewrites
// nothing the killed leader already wrote: every pod gets exactly one status write across both.
// 200 pods; 1,000 with MESHKEEPER_FAULTS=long.
func TestLeaderKilledMidWave(t *testing.T) {
	needFaults(t)
	c := startCluster(t, osmCRDs(t))
	c.c = c.fastClient()
	n := wavePods(200, 1000)
	key := types.NamespacedName{Namespace: "osm-system", Name: "osm-mesh-config"}
	c.namespace("osm-system", nil, nil)
	c.namespace("meshkeeper-system", nil, nil)
	c.createMeshConfig(key)
	c.meshedPods("shop", n)

	args := []string{"--meshconfig=" + key.String(), "--leader-elect", "--operator-namespace=meshkeeper-system"}
	tallies := []*tally{newTally(), newTally()}
	replicas := []*running{c.runCounted(tallies[0], args...), c.runCounted(tallies[1], args...)}
	alive := func() error {
		for _, r := range replicas {
			if r == nil {
				continue
			}
			if err := r.alive(); err != nil {
				return err
			}
		}
		return nil
	}
	c.waitVerdicts(alive, "shop", n, corev1.ConditionTrue, conditions.InSync, "", 5*time.Minute)
	c.must(alive())

	// Only the leader writes.
	leader := -1
	for i, tl := range tallies {
		calls, _ := tl.since(0)
		if len(statusWritesPerPod(calls)) > 0 {
			if leader >= 0 {
				t.Fatal("both replicas wrote pod conditions: no leader election")
			}
			leader = i
		}
	}
	if leader < 0 {
		t.Fatal("no replica wrote pod conditions")
	}
	other := 1 - leader
	lease := &coordinationv1.Lease{}
	leaseKey := types.NamespacedName{Namespace: "meshkeeper-system", Name: "meshkeeper.meshkeeper.io"}
	c.must(c.c.Get(c.ctx, leaseKey, lease))
	holder, transitions := deref(lease.Spec.HolderIdentity), deref(lease.Spec.LeaseTransitions)
	t.Logf("replica %d leads (Lease held by %s, %d transitions, duration %ds)", leader, holder, transitions, deref(lease.Spec.LeaseDurationSeconds))

	marks := []int{tallies[0].mark(), tallies[1].mark()}
	c.addRange(key, waveRange)
	c.eventually(2*time.Minute, func() error {
		calls, _ := tallies[leader].since(marks[leader])
		if got := len(statusWritesPerPod(calls)); got < n/4 {
			return fmt.Errorf("%d of %d pods written so far", got, n)
		}
		return nil
	})
	tallies[leader].killed.Store(true)
	killed := time.Now()
	// The process is gone: its goroutines are stopped too, with nothing reaching the API server.
	replicas[leader].cancel()
	if err := replicas[leader].wait(60 * time.Second); err != nil && !strings.Contains(err.Error(), "context canceled") {
		t.Logf("the killed replica's Run returned %v", err)
	}
	replicas[leader] = nil

	var took time.Duration
	c.eventually(2*time.Minute, func() error {
		if err := alive(); err != nil {
			return err
		}
		l := &coordinationv1.Lease{}
		if err := c.c.Get(c.ctx, leaseKey, l); err != nil {
			return err
		}
		if h := deref(l.Spec.HolderIdentity); h == holder || h == "" {
			return fmt.Errorf("the Lease is still held by %q", h)
		}
		took = time.Since(killed)
		if got := deref(l.Spec.LeaseTransitions); got != transitions+1 {
			t.Errorf("Lease transitions %d -> %d, want one", transitions, got)
		}
		return nil
	})
	c.waitVerdicts(alive, "shop", n, corev1.ConditionFalse, conditions.Drifted, waveRange, 5*time.Minute)

	before, _ := tallies[leader].since(marks[leader])
	after, _ := tallies[other].since(marks[other])
	wa, wb := statusWritesPerPod(before), statusWritesPerPod(after)
	// Writes the killed leader sent whose answer never came (cut off by the kill): the API
	// server may have applied them.
	cut := map[string]bool{}
	for _, call := range before {
		if call.resource == "pods/status" && call.write() && call.code == 0 && wa[call.name] == 0 {
			cut[call.name] = true
		}
	}
	twice, cutRewritten := 0, 0
	for pod := range wb {
		if wa[pod] > 0 {
			twice++
		}
		if cut[pod] {
			cutRewritten++
		}
	}
	perPod, repeated := c.podEvents("shop", conditions.Drifted)
	dup := 0
	for _, k := range perPod {
		dup += k - 1
	}
	t.Logf("Lease taken over %s after the kill; the killed leader wrote %d pods and had %d writes cut off by the kill, the new one wrote %d "+
		"(%d written by both, %d of the cut-off ones); %d pods have a Drifted event (%d lost with the killed process, %d duplicates, %d repeats); load %s",
		took.Round(time.Millisecond), len(wa), len(cut), len(wb), twice, cutRewritten, len(perPod), n-len(perPod), dup, repeated, testenv.LoadAverage())
	if twice > 0 {
		t.Errorf("%d pods already written by the killed leader were written again", twice)
	}
	// Every pod was written once: by the killed leader (answered, or applied while its answer
	// was cut off) or by the new one.
	if len(wa)+len(wb)+len(cut)-cutRewritten != n {
		t.Errorf("%d + %d + %d cut off (%d of them rewritten) pods written, want %d", len(wa), len(wb), len(cut), cutRewritten, n)
	}
	for pod, w := range wb {
		if w > 1 {
			t.Errorf("pod %s written %d times by the new leader", pod, w)
		}
	}
	if dup > 0 || repeated > 0 {
		t.Errorf("duplicate Drifted events: %d stored twice, %d repeats in series", dup, repeated)
	}
	c.must(alive())
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
