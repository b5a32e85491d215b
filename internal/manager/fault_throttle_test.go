package manager

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	"github.com/meshkeeper/meshkeeper/internal/testenv"
)

// TestThrottledAPIServerBackoff is case 5 of docs/reliability.md: for 15 s in the middle of a
// drift wave every request of the manager is answered 429 Too Many Requests with Retry-After: 1,
// as API priority and fairness answers when the manager's flow is out of seats (the answer comes
// from the tally on the manager's transport, below client-go's retry logic, which honours
// Retry-After exactly as it would from a proxy or the server). Watches already open keep
// streaming, as they do under APF. The manager waits as told, which bounds its requests per
// second in the window; once the window closes the wave converges with one write per pod.
func TestThrottledAPIServerBackoff(t *testing.T) {
	needFaults(t)
	c := startCluster(t, osmCRDs(t))
	c.c = c.fastClient()
	n := wavePods(200, 1000)
	key := types.NamespacedName{Namespace: "osm-system", Name: "osm-mesh-config"}
	tl, m := c.inSyncPods(key, n)

	const window = 15 * time.Second
	mark, before := c.startWave(tl, key, n)
	inWindow := tl.mark()
	tl.throttle.Store(true)
	time.Sleep(window)
	tl.throttle.Store(false)
	during, _ := tl.since(inWindow)
	c.must(m.alive())

	c.waitVerdicts(m.alive, "shop", n, corev1.ConditionFalse, conditions.Drifted, waveRange, 5*time.Minute)
	all, _ := tl.since(mark)
	writes := statusWritesPerPod(all)
	total := 0
	for _, w := range writes {
		total += w
	}
	perSecond := map[int64]int{}
	throttled := 0
	for _, call := range during {
		perSecond[call.at.Unix()]++
		if call.throttled {
			throttled++
		}
	}
	busiest := 0
	for _, k := range perSecond {
		busiest = max(busiest, k)
	}
	rate := float64(len(during)) / window.Seconds()
	t.Logf("throttled for %s with %d of %d pods written: %d requests (%d answered 429), %.1f per second, at most %d in one second; "+
		"after: %d status writes to %d pods; load %s", window, before, n, len(during), throttled, rate, busiest, total, len(writes), testenv.LoadAverage())
	// Under Retry-After: 1, each client waits a second between attempts: the drift controller's
	// 8 workers, the event recorder, and the informers' relists together stay far below a hot
	// loop. 30 per second is three times what they can send when obeying.
	if rate > 30 {
		t.Errorf("%.1f requests per second while throttled: Retry-After is not obeyed", rate)
	}
	if len(writes) != n || total != n {
		t.Errorf("%d status writes to %d pods, want one to each of %d", total, len(writes), n)
	}
	_ = m.alive()
}
