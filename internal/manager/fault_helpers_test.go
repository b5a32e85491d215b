package manager

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	"github.com/meshkeeper/meshkeeper/internal/osmtest"
	"github.com/meshkeeper/meshkeeper/internal/testenv"
)

// The fault tests (fault_*_test.go, figures in docs/reliability.md) run the manager through Run
// as the other tests here do, with every request it sends counted by a tally on its transport,
// and, where a case needs it, a control plane whose kube-apiserver can be stopped and started
// again while etcd keeps its data.

// apiCall is one request the manager sent, as its transport saw it.
type apiCall struct {
	at       time.Time
	method   string
	resource string // "pods", "pods/status", "events", "leases", ...
	ns, name string
	code     int // 0: no response (refused, connection error)
	// throttled is set when the tally answered 429 itself instead of forwarding the request.
	throttled bool
	// regarding and reason are read from an event's body.
	regarding, reason string
	// For pod status writes: the conditions sent (type=status/reason) and the resourceVersion
	// the API server answered with, so that a pod written twice can be explained.
	sent, answeredRV string
}

func (a apiCall) write() bool {
	switch a.method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

func (a apiCall) ok() bool { return a.code >= 200 && a.code < 300 }

// tally counts the manager's requests and can play two faults at the transport: a killed
// process (every request fails before it leaves, so nothing more reaches the API server, the
// Lease is never released) and a throttling API server (429 with Retry-After, not forwarded).
type tally struct {
	mu    sync.Mutex
	calls []apiCall
	// killed: every request fails at once, as for a process that no longer exists.
	killed atomic.Bool
	// throttle: every request but watches already open is answered 429 with Retry-After.
	throttle   atomic.Bool
	retryAfter int
}

func newTally() *tally { return &tally{retryAfter: 1} }

type tallyTransport struct {
	t    *tally
	next http.RoundTripper
}

var errKilled = errors.New("the process was killed")

// codeRefused marks a request a killed process never sent.
const codeRefused = -1

func (tt *tallyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	call := apiCall{at: time.Now(), method: req.Method}
	call.resource, call.ns, call.name = parseAPIPath(req.URL.Path)
	if call.resource == "events" && req.Body != nil && req.Method == http.MethodPost {
		body, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		var ev struct {
			Regarding corev1.ObjectReference `json:"regarding"`
			Reason    string                 `json:"reason"`
		}
		if json.Unmarshal(body, &ev) == nil {
			call.regarding = ev.Regarding.Kind + " " + ev.Regarding.Namespace + "/" + ev.Regarding.Name
			call.reason = ev.Reason
		}
	}
	if tt.t.killed.Load() {
		call.code = codeRefused
		tt.t.add(call)
		return nil, errKilled
	}
	if tt.t.throttle.Load() {
		call.code, call.throttled = http.StatusTooManyRequests, true
		tt.t.add(call)
		if req.Body != nil {
			_ = req.Body.Close()
		}
		h := http.Header{}
		h.Set("Retry-After", strconv.Itoa(tt.t.retryAfter))
		h.Set("Content-Type", "application/json")
		body := `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"too many requests, please try again later","reason":"TooManyRequests","code":429}`
		return &http.Response{StatusCode: http.StatusTooManyRequests, Status: "429 Too Many Requests", Header: h, Request: req,
			Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}, nil
	}
	statusWrite := call.resource == "pods/status" && call.write() && req.Body != nil
	if statusWrite {
		body, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		call.sent = conditionsSent(body)
	}
	resp, err := tt.next.RoundTrip(req)
	if err == nil {
		call.code = resp.StatusCode
		if statusWrite {
			body, rerr := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			resp.Body = io.NopCloser(bytes.NewReader(body))
			if rerr != nil {
				return resp, rerr
			}
			// The answer is protobuf or JSON, as the client asked.
			if obj, _, err := clientgoscheme.Codecs.UniversalDeserializer().Decode(body, nil, nil); err == nil {
				if pod, ok := obj.(*corev1.Pod); ok {
					call.answeredRV = pod.ResourceVersion
				}
			}
		}
	}
	tt.t.add(call)
	return resp, err
}

// conditionsSent summarises a pod status patch's conditions as type=status/reason.
func conditionsSent(body []byte) string {
	var patch struct {
		Status struct {
			Conditions []corev1.PodCondition `json:"conditions"`
		} `json:"status"`
	}
	if json.Unmarshal(body, &patch) != nil {
		return "(not a conditions patch)"
	}
	parts := make([]string, len(patch.Status.Conditions))
	for i, c := range patch.Status.Conditions {
		parts[i] = fmt.Sprintf("%s=%s/%s", c.Type, c.Status, c.Reason)
	}
	return strings.Join(parts, " ")
}

// explainRewrites describes every status write to the pods written more than once among calls,
// in order: when, what was sent and the version it produced.
func explainRewrites(calls []apiCall) []string {
	writes := statusWritesPerPod(calls)
	var out []string
	for _, c := range calls {
		if c.resource == "pods/status" && c.write() && writes[c.name] > 1 {
			out = append(out, fmt.Sprintf("%s %s/%s at %s: code %d, sent %s, answered resourceVersion %s",
				c.method, c.ns, c.name, c.at.Format("15:04:05.000000"), c.code, c.sent, c.answeredRV))
		}
	}
	return out
}

func (t *tally) add(c apiCall) {
	t.mu.Lock()
	t.calls = append(t.calls, c)
	t.mu.Unlock()
}

// since returns the calls from index i on, and the index to pass next time.
func (t *tally) since(i int) ([]apiCall, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]apiCall(nil), t.calls[i:]...), len(t.calls)
}

func (t *tally) mark() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.calls)
}

// parseAPIPath reads /api/v1/namespaces/ns/pods/name/status and its kin.
func parseAPIPath(p string) (resource, ns, name string) {
	parts := strings.Split(strings.Trim(p, "/"), "/")
	switch {
	case len(parts) >= 2 && parts[0] == "api":
		parts = parts[2:]
	case len(parts) >= 3 && parts[0] == "apis":
		parts = parts[3:]
	default:
		return p, "", ""
	}
	if len(parts) >= 2 && parts[0] == "namespaces" && len(parts) > 2 {
		ns, parts = parts[1], parts[2:]
	}
	if len(parts) == 0 {
		return "", ns, ""
	}
	resource = parts[0]
	if len(parts) >= 2 {
		name = parts[1]
	}
	if len(parts) >= 3 {
		resource += "/" + parts[2]
	}
	return resource, ns, name
}

// runCounted is run with the manager's requests going through tl, and without client-side rate
// limits, as the binary's ctrl.GetConfig sets them (QPS -1: API priority and fairness only).
func (c *cluster) runCounted(tl *tally, args ...string) *running {
	c.t.Helper()
	orig := c.cfg
	cfg := rest.CopyConfig(orig)
	cfg.QPS, cfg.Burst = -1, 0
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return &tallyTransport{t: tl, next: rt} })
	c.cfg = cfg
	defer func() { c.cfg = orig }()
	return c.run(args...)
}

// fastClient is the test's own client without client-side rate limits, for creating many
// objects quickly.
func (c *cluster) fastClient() client.Client {
	c.t.Helper()
	cfg := rest.CopyConfig(c.cfg)
	cfg.UserAgent = testAgent
	cfg.QPS, cfg.Burst = -1, 0
	cl, err := client.New(cfg, client.Options{Scheme: testenv.NewScheme()})
	c.must(err)
	return cl
}

// restartable is a control plane whose kube-apiserver can be stopped and started again on the
// same port, with the same certificates, while etcd keeps running with its data.
type restartable struct {
	*cluster
	te *envtest.Environment
}

// startRestartableCluster is startCluster with the API server's certificate directory owned by
// the test: envtest otherwise deletes it on Stop, and a restarted server would present a new CA
// that no client trusts.
func startRestartableCluster(t *testing.T, crds []*apiextensionsv1.CustomResourceDefinition) *restartable {
	t.Helper()
	if testing.Short() {
		t.Skip("envtest")
	}
	quietLogs()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	assets, err := testenv.Assets(root)
	if err != nil {
		t.Fatal(err)
	}
	certDir, err := os.MkdirTemp("", "meshkeeper-apiserver-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(certDir) })
	te := &envtest.Environment{CRDs: crds, BinaryAssetsDirectory: assets, Scheme: testenv.NewScheme()}
	te.ControlPlane.APIServer = &envtest.APIServer{CertDir: certDir, StopTimeout: apiServerGrace}
	cfg, err := te.Start()
	if err != nil {
		t.Fatalf("starting envtest: %v", err)
	}
	t.Cleanup(func() {
		if err := te.Stop(); err != nil {
			t.Errorf("stopping envtest: %v", err)
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c := &cluster{t: t, ctx: ctx, cfg: cfg, assets: assets, warnings: &warningLog{}}
	own := rest.CopyConfig(cfg)
	own.UserAgent = testAgent
	own.WarningHandlerWithContext = c.warnings
	if c.c, err = client.New(own, client.Options{Scheme: testenv.NewScheme()}); err != nil {
		t.Fatal(err)
	}
	return &restartable{cluster: c, te: te}
}

// stopAPIServer stops kube-apiserver only, etcd and every client keep running: SIGTERM, and
// SIGKILL when it has not exited after apiServerGrace (a server with thousands of open watches
// on a loaded machine often has not), as the kubelet stops a static pod.
func (r *restartable) stopAPIServer() {
	r.t.Helper()
	if err := r.te.ControlPlane.APIServer.Stop(); err != nil {
		if !strings.Contains(err.Error(), "timeout waiting for process") {
			r.t.Fatalf("stopping kube-apiserver: %v", err)
		}
		r.t.Logf("kube-apiserver did not stop within %s of SIGTERM: killed", apiServerGrace)
	}
	addr := net.JoinHostPort(r.te.ControlPlane.APIServer.Address, r.te.ControlPlane.APIServer.Port)
	r.eventually(30*time.Second, func() error {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return nil
		}
		_ = conn.Close()
		return fmt.Errorf("%s still accepts connections", addr)
	})
}

// apiServerGrace is how long a stopping kube-apiserver gets before SIGKILL.
const apiServerGrace = 5 * time.Second

// startAPIServer starts kube-apiserver again on the same port with the same certificates and
// returns once it answers /healthz.
func (r *restartable) startAPIServer() {
	r.t.Helper()
	if err := r.te.ControlPlane.APIServer.Start(); err != nil {
		r.t.Fatalf("starting kube-apiserver again: %v", err)
	}
	if got := filepath.Clean(r.te.ControlPlane.APIServer.CertDir); got == "" {
		r.t.Fatal("kube-apiserver lost its certificate directory")
	}
}

// metricSum adds up every series of a counter family whose labels include labels.
func metricSum(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	sum := 0.0
	for _, v := range metricValues(t, name, labels) {
		sum += v
	}
	return sum
}

// reconciles is controller-runtime's count of reconciles of one controller, across every
// manager of this process.
func reconciles(t *testing.T, controller string) float64 {
	t.Helper()
	return metricSum(t, "controller_runtime_reconcile_total", map[string]string{"controller": controller})
}

// writesBy counts the calls that are writes, by resource.
func writesBy(calls []apiCall) map[string]int {
	out := map[string]int{}
	for _, c := range calls {
		if c.write() {
			out[c.resource]++
		}
	}
	return out
}

func fmtCounts(m map[string]int) string {
	var b strings.Builder
	for k, v := range m {
		fmt.Fprintf(&b, "%s=%d ", k, v)
	}
	return strings.TrimSpace(b.String())
}

// needFaults skips the fault tests that take a minute or more unless MESHKEEPER_FAULTS is set
// (make test-faults, which CI runs after make test).
func needFaults(t *testing.T) {
	t.Helper()
	if os.Getenv("MESHKEEPER_FAULTS") == "" {
		t.Skip("a minute or more: set MESHKEEPER_FAULTS=1 (make test-faults), or MESHKEEPER_FAULTS=long for 1,000-pod waves")
	}
}

// longFaults reports whether the long variants of the fault tests run (MESHKEEPER_FAULTS=long):
// 1,000-pod waves instead of the few hundred `make test` runs.
func longFaults() bool { return os.Getenv("MESHKEEPER_FAULTS") == "long" }

// wavePods is how many pods a fault test's drift wave has: short by default, long with
// MESHKEEPER_FAULTS=long.
func wavePods(short, long int) int {
	if longFaults() {
		return long
	}
	return short
}

// meshedPods creates n pods in namespace ns of mesh "osm", each injected exactly as OSM's
// injector injects (one pod goes through the fake osm-injector; the others are copies of it,
// created without a webhook so that thousands take seconds), and plays their kubelet.
func (c *cluster) meshedPods(ns string, n int) []*corev1.Pod {
	c.t.Helper()
	c.meshedNamespace(ns, "osm")
	osm := c.startOSM(osmtest.Options{}, ns)
	tmpl := c.createPod(appPod(ns, "template"))
	c.must(osm.Stop(c.ctx))
	c.must(c.c.Delete(c.ctx, tmpl))
	pods := make([]*corev1.Pod, n)
	c.parallel(n, func(i int) error {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("web-%04d", i),
			Labels: map[string]string{"app": "web"}, Annotations: tmpl.Annotations}, Spec: *tmpl.Spec.DeepCopy()}
		if err := c.c.Create(c.ctx, p); err != nil {
			return err
		}
		pods[i] = p
		return c.playKubelet(p)
	})
	return pods
}

// parallel runs f(0..n-1) on 8 workers, failing the test on the first error.
func (c *cluster) parallel(n int, f func(i int) error) {
	c.t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	next := atomic.Int64{}
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		c.t.Fatal(err)
	}
}

// playKubelet is what kubelet does, returning its error instead of failing the test, for use
// from several goroutines.
func (c *cluster) playKubelet(pod *corev1.Pod) error {
	at := metav1.NewTime(time.Now().Truncate(time.Second))
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := c.c.Get(c.ctx, client.ObjectKeyFromObject(pod), pod); err != nil {
			return err
		}
		pod.Status.Phase = corev1.PodRunning
		for _, t := range []corev1.PodConditionType{corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady, corev1.PodScheduled} {
			cond := corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: at}
			if i := slices.IndexFunc(pod.Status.Conditions, func(c corev1.PodCondition) bool { return c.Type == t }); i >= 0 {
				pod.Status.Conditions[i] = cond
			} else {
				pod.Status.Conditions = append(pod.Status.Conditions, cond)
			}
		}
		pod.Status.InitContainerStatuses = nil
		for _, ic := range pod.Spec.InitContainers {
			pod.Status.InitContainerStatuses = append(pod.Status.InitContainerStatuses, corev1.ContainerStatus{Name: ic.Name, Image: ic.Image,
				State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", StartedAt: at, FinishedAt: at}}})
		}
		pod.Status.ContainerStatuses = nil
		for _, ct := range pod.Spec.Containers {
			pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, corev1.ContainerStatus{Name: ct.Name, Image: ct.Image,
				Ready: true, Started: ptr.To(true), State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: at}}})
		}
		return c.c.Status().Update(c.ctx, pod)
	})
}

// podVerdicts counts the pods of ns whose PodExclusionsInSync condition has status and reason
// and whose message contains mention; the rest are returned by name with what they hold.
func (c *cluster) podVerdicts(ns string, status corev1.ConditionStatus, reason, mention string) (int, map[string]string) {
	c.t.Helper()
	list := &corev1.PodList{}
	c.must(c.c.List(c.ctx, list, client.InNamespace(ns)))
	ok, other := 0, map[string]string{}
	for _, p := range list.Items {
		i := slices.IndexFunc(p.Status.Conditions, func(pc corev1.PodCondition) bool { return pc.Type == conditions.PodExclusionsInSync })
		if i >= 0 {
			pc := p.Status.Conditions[i]
			if pc.Status == status && pc.Reason == reason && strings.Contains(pc.Message, mention) {
				ok++
				continue
			}
			other[p.Name] = string(pc.Status) + " " + pc.Reason
			continue
		}
		other[p.Name] = "no condition"
	}
	return ok, other
}

// waitVerdicts waits until all n pods of ns hold the verdict.
func (c *cluster) waitVerdicts(alive func() error, ns string, n int, status corev1.ConditionStatus, reason, mention string, timeout time.Duration) {
	c.t.Helper()
	c.eventually(timeout, func() error {
		if err := alive(); err != nil {
			return err
		}
		got, other := c.podVerdicts(ns, status, reason, mention)
		if got != n {
			some := map[string]string{}
			for k, v := range other {
				if len(some) == 3 {
					break
				}
				some[k] = v
			}
			return fmt.Errorf("%d of %d pods hold PodExclusionsInSync=%s %s naming %q; others, for example: %v", got, n, status, reason, mention, some)
		}
		return nil
	})
}

// podEvents counts the events stored about each pod of ns, by reason, and the series counts
// (an event repeated by the recorder is stored once with series.count > 1).
func (c *cluster) podEvents(ns, reason string) (perPod map[string]int, repeated int) {
	c.t.Helper()
	list := &eventsv1.EventList{}
	c.must(c.c.List(c.ctx, list, client.InNamespace(ns)))
	perPod = map[string]int{}
	for _, e := range list.Items {
		if e.Regarding.Kind != "Pod" || e.Reason != reason {
			continue
		}
		perPod[e.Regarding.Name]++
		if e.Series != nil && e.Series.Count > 1 {
			repeated += int(e.Series.Count) - 1
		}
	}
	return perPod, repeated
}

// statusWritesPerPod counts successful pods/status writes per pod among calls.
func statusWritesPerPod(calls []apiCall) map[string]int {
	out := map[string]int{}
	for _, c := range calls {
		if c.resource == "pods/status" && c.write() && c.ok() {
			out[c.name]++
		}
	}
	return out
}

// addRange adds an outbound IP range exclusion to the served MeshConfig: every pod drifts.
func (c *cluster) addRange(key types.NamespacedName, ranges ...string) {
	c.t.Helper()
	all := append([]string{"169.254.169.254/32"}, ranges...)
	data, err := json.Marshal(map[string]any{"spec": map[string]any{"traffic": map[string]any{"outboundIPRangeExclusionList": all}}})
	c.must(err)
	c.must(c.c.Patch(c.ctx, meshConfigObject(key), client.RawPatch(types.MergePatchType, data)))
}

// waveRange is the outbound IP range exclusion a drift wave adds: every meshed pod drifts from it.
const waveRange = "10.20.0.0/16"

// inSyncPods readies a drift wave: the served MeshConfig key, n meshed pods in "shop", and the
// manager running behind a tally, until every pod reads InSync.
func (c *cluster) inSyncPods(key types.NamespacedName, n int) (*tally, *running) {
	c.namespace(key.Namespace, nil, nil)
	c.createMeshConfig(key)
	start := time.Now()
	c.meshedPods("shop", n)
	c.t.Logf("%d meshed pods created in %s", n, time.Since(start).Round(time.Second))
	tl := newTally()
	m := c.runCounted(tl, "--meshconfig="+key.String())
	c.waitVerdicts(m.alive, "shop", n, corev1.ConditionTrue, conditions.InSync, "", 5*time.Minute)
	return tl, m
}

// startWave adds waveRange and returns once a quarter of the n pods have been written: the
// moment a fault strikes mid-wave. mark is the tally's mark from before the change, written the
// number of pods written by then.
func (c *cluster) startWave(tl *tally, key types.NamespacedName, n int) (mark, written int) {
	mark = tl.mark()
	c.addRange(key, waveRange)
	c.eventually(2*time.Minute, func() error {
		calls, _ := tl.since(mark)
		if got := len(statusWritesPerPod(calls)); got < n/4 {
			return fmt.Errorf("%d of %d pods written so far", got, n)
		}
		return nil
	})
	calls, _ := tl.since(mark)
	return mark, len(statusWritesPerPod(calls))
}
