package manager

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/yaml"

	"github.com/meshkeeper/meshkeeper/internal/osmtest"
	"github.com/meshkeeper/meshkeeper/internal/testenv"
)

// The OSM proof tests (osm_test.go) run the manager as deployed, through Run and its flags,
// against a real API server holding OSM v1.2.4's CRDs, with the fake osm-injector of
// internal/osmtest where OSM injects. These helpers are theirs.

const (
	// testAgent is the user agent, hence the field manager, of every write the tests make
	// themselves, so managedFields tell them from the manager's ("meshkeeper").
	testAgent    = "osmproof-test"
	managerAgent = "meshkeeper"
	osmAgent     = "osm-injector"
)

var setLoggerOnce sync.Once

// quietLogs gives controller-runtime a logger: silent unless MESHKEEPER_TEST_VERBOSE is set.
func quietLogs() {
	setLoggerOnce.Do(func() {
		sink := io.Discard
		if os.Getenv("MESHKEEPER_TEST_VERBOSE") != "" {
			sink = os.Stderr
		}
		ctrl.SetLogger(zap.New(zap.WriteTo(sink), zap.UseDevMode(true)))
	})
}

// cluster is one envtest control plane for one test.
type cluster struct {
	t      *testing.T
	ctx    context.Context
	cfg    *rest.Config
	c      client.Client
	assets string
	// webhook is set when the control plane was started with webhook manifests installed.
	webhook  *envtest.WebhookInstallOptions
	warnings *warningLog
}

// osmCRDs are OSM v1.2.4's CRDs as osm-bootstrap installs them (read from its Go module).
func osmCRDs(t *testing.T) []*apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	crds, err := osmtest.CRDs()
	if err != nil {
		t.Fatal(err)
	}
	return crds
}

// startCluster boots envtest with exactly crds and, when given, the webhook manifests installed
// by envtest (pointed at its local serving port and certificate).
func startCluster(t *testing.T, crds []*apiextensionsv1.CustomResourceDefinition, webhookManifests ...string) *cluster {
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
	te := &envtest.Environment{
		CRDs:                  crds,
		BinaryAssetsDirectory: assets,
		Scheme:                testenv.NewScheme(),
	}
	for _, m := range webhookManifests {
		te.WebhookInstallOptions.Paths = append(te.WebhookInstallOptions.Paths, filepath.Join(root, m))
	}
	start := time.Now()
	cfg, err := te.Start()
	if err != nil {
		t.Fatalf("starting envtest: %v", err)
	}
	t.Cleanup(func() {
		if err := te.Stop(); err != nil {
			t.Errorf("stopping envtest: %v", err)
		}
	})
	t.Logf("envtest up in %s", time.Since(start).Round(time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c := &cluster{t: t, ctx: ctx, cfg: cfg, assets: assets, warnings: &warningLog{}}
	own := rest.CopyConfig(cfg)
	own.UserAgent = testAgent
	own.WarningHandlerWithContext = c.warnings
	if c.c, err = client.New(own, client.Options{Scheme: testenv.NewScheme()}); err != nil {
		t.Fatal(err)
	}
	if len(webhookManifests) > 0 {
		c.webhook = &te.WebhookInstallOptions
	}
	return c
}

func (c *cluster) must(err error) {
	c.t.Helper()
	if err != nil {
		c.t.Fatal(err)
	}
}

// namespace creates a namespace, or labels and annotates the existing one (kube-system).
func (c *cluster) namespace(name string, labels, annotations map[string]string) {
	c.t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, Annotations: annotations}}
	err := c.c.Create(c.ctx, ns)
	if !apierrors.IsAlreadyExists(err) {
		c.must(err)
		return
	}
	c.must(retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := c.c.Get(c.ctx, types.NamespacedName{Name: name}, ns); err != nil {
			return err
		}
		for k, v := range labels {
			metav1.SetMetaDataLabel(&ns.ObjectMeta, k, v)
		}
		for k, v := range annotations {
			metav1.SetMetaDataAnnotation(&ns.ObjectMeta, k, v)
		}
		return c.c.Update(c.ctx, ns)
	}))
}

// meshedNamespace is a namespace of mesh, with injection enabled as OSM's CLI sets it.
func (c *cluster) meshedNamespace(name, mesh string) {
	c.namespace(name, map[string]string{osmtest.LabelMonitoredBy: mesh}, map[string]string{osmtest.AnnotationSidecarInject: "enabled"})
}

// osmMeshConfig is a MeshConfig as OSM's Helm chart renders it (v1alpha2), with one outbound
// IP range excluded.
const osmMeshConfig = `apiVersion: config.openservicemesh.io/v1alpha2
kind: MeshConfig
metadata:
  name: %s
  namespace: %s
spec:
  sidecar:
    enablePrivilegedInitContainer: false
    logLevel: error
    localProxyMode: Localhost
  traffic:
    enableEgress: false
    enablePermissiveTrafficPolicyMode: true
    outboundIPRangeExclusionList:
    - 169.254.169.254/32
    outboundPortExclusionList: []
    inboundPortExclusionList: []
  featureFlags:
    enableEgressPolicy: true
    enableIngressBackendPolicy: true
`

func (c *cluster) createMeshConfig(key types.NamespacedName) *unstructured.Unstructured {
	c.t.Helper()
	mc := &unstructured.Unstructured{}
	c.must(yaml.Unmarshal(fmt.Appendf(nil, osmMeshConfig, key.Name, key.Namespace), &mc.Object))
	c.must(c.c.Create(c.ctx, mc))
	return mc
}

func meshConfigObject(key types.NamespacedName) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(osmtest.MeshConfigGVR.GroupVersion().String())
	u.SetKind("MeshConfig")
	u.SetNamespace(key.Namespace)
	u.SetName(key.Name)
	return u
}

// fakeOSM is the fake osm-injector, stopped at the end of the test unless the test stopped it.
type fakeOSM struct {
	*osmtest.Injector
	stopped bool
}

// Stop removes OSM's webhook configuration and stops the server (once: a second Stop of an
// osmtest.Injector would wait forever).
func (f *fakeOSM) Stop(ctx context.Context) error {
	if f.stopped {
		return nil
	}
	f.stopped = true
	return f.Injector.Stop(ctx)
}

// startOSM runs the fake osm-injector and waits until the API server calls it for namespace.
func (c *cluster) startOSM(opts osmtest.Options, namespace string) *fakeOSM {
	c.t.Helper()
	cfg := rest.CopyConfig(c.cfg)
	cfg.UserAgent = osmAgent
	inj, err := osmtest.Start(c.ctx, cfg, opts)
	c.must(err)
	f := &fakeOSM{Injector: inj}
	c.t.Cleanup(func() {
		if err := f.Stop(context.Background()); err != nil {
			c.t.Errorf("stopping the fake osm-injector: %v", err)
		}
	})
	c.must(inj.WaitReady(c.ctx, namespace))
	return f
}

// appPod is a plain application pod, as a Deployment would create it.
func appPod(namespace, name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: map[string]string{"app": name}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example/app:1"}}},
	}
}

// createPod creates pod (through every admission webhook) and returns it as stored.
func (c *cluster) createPod(pod *corev1.Pod) *corev1.Pod {
	c.t.Helper()
	c.must(c.c.Create(c.ctx, pod))
	return pod
}

// kubelet plays the kubelet for a started pod: Running, init containers exited 0, containers
// running and ready, the kubelet's conditions. Conditions of other types (meshkeeper's) are kept.
func (c *cluster) kubelet(pod *corev1.Pod) {
	c.t.Helper()
	c.must(c.playKubelet(pod))
}

// podCondition waits until the pod's condition t has status and reason, and returns it.
func (c *cluster) podCondition(pod *corev1.Pod, t string, status corev1.ConditionStatus, reason string, also ...func() error) corev1.PodCondition {
	c.t.Helper()
	var got corev1.PodCondition
	c.eventually(60*time.Second, func() error {
		p := &corev1.Pod{}
		if err := c.c.Get(c.ctx, client.ObjectKeyFromObject(pod), p); err != nil {
			return err
		}
		i := slices.IndexFunc(p.Status.Conditions, func(pc corev1.PodCondition) bool { return string(pc.Type) == t })
		if i < 0 {
			return fmt.Errorf("pod %s has no %s condition (conditions %v)", pod.Name, t, p.Status.Conditions)
		}
		got = p.Status.Conditions[i]
		if got.Status != status || got.Reason != reason {
			return fmt.Errorf("pod %s: %s=%s %s (%s), want %s %s", pod.Name, t, got.Status, got.Reason, got.Message, status, reason)
		}
		for _, f := range also {
			if err := f(); err != nil {
				return err
			}
		}
		return nil
	})
	return got
}

// eventually polls cond until it returns nil, failing the test with its last error at timeout.
func (c *cluster) eventually(timeout time.Duration, cond func() error) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("not within %s: %v", timeout, err)
		}
		select {
		case <-c.ctx.Done():
			c.t.Fatal(c.ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// events lists the events (events.k8s.io/v1, as the manager records them) about one object.
func (c *cluster) events(kind, namespace, name string) []eventsv1.Event {
	c.t.Helper()
	list := &eventsv1.EventList{}
	c.must(c.c.List(c.ctx, list))
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.Kind == kind && e.Regarding.Namespace == namespace && e.Regarding.Name == name {
			out = append(out, e)
		}
	}
	return out
}

// waitEvent waits for an event of type and reason about the object and returns it.
func (c *cluster) waitEvent(kind, namespace, name, typ, reason string) eventsv1.Event {
	c.t.Helper()
	var got eventsv1.Event
	c.eventually(60*time.Second, func() error {
		var seen []string
		for _, e := range c.events(kind, namespace, name) {
			if e.Type == typ && e.Reason == reason {
				got = e
				return nil
			}
			seen = append(seen, e.Type+" "+e.Reason)
		}
		return fmt.Errorf("no %s %s event on %s %s/%s (events: %v)", typ, reason, kind, namespace, name, seen)
	})
	return got
}

// writers are the field managers that wrote obj, as managedFields record them.
func writers(obj client.Object) []string {
	var out []string
	for _, m := range obj.GetManagedFields() {
		w := m.Manager
		if m.Subresource != "" {
			w += "/" + m.Subresource
		}
		if !slices.Contains(out, w) {
			out = append(out, w)
		}
	}
	slices.Sort(out)
	return out
}

// metricValue reads a gauge or counter from controller-runtime's registry, where the manager's
// and meshkeeper's metrics live: the first series whose labels include labels.
func metricValue(t *testing.T, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	values := metricValues(t, name, labels)
	if len(values) == 0 {
		return 0, false
	}
	return values[0], true
}

// metricValues are the values of every gauge or counter series of a family whose labels
// include labels.
func metricValues(t *testing.T, name string, labels map[string]string) []float64 {
	t.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metric:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue metric
				}
			}
			if g := m.GetGauge(); g != nil {
				out = append(out, g.GetValue())
			} else {
				out = append(out, m.GetCounter().GetValue())
			}
		}
	}
	return out
}

// reconcileErrors is controller-runtime's error count of a controller, across every manager
// this process ran.
func reconcileErrors(t *testing.T, controller string) float64 {
	t.Helper()
	v, _ := metricValue(t, "controller_runtime_reconcile_errors_total", map[string]string{"controller": controller})
	return v
}

// running is one manager started through Run, as the binary starts it.
type running struct {
	t      *testing.T
	done   chan error
	cancel context.CancelFunc
	probe  string
	ended  bool
	err    error
}

// run parses args as the binary would (plus no metrics listener, a free probe port and no
// shutdown delay) and starts Run. The manager is stopped at the end of the test.
func (c *cluster) run(args ...string) *running {
	c.t.Helper()
	var o Options
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	o.Bind(fs)
	probe := freeAddr(c.t)
	// No shutdown delay: these tests stop managers often and none of them is about draining
	// (TestManagerManagesItsOwnCertificate is).
	c.must(fs.Parse(append([]string{"--metrics-bind-address=0", "--health-probe-bind-address=" + probe, "--shutdown-delay=0"}, args...)))
	o.skipNameValidation = true
	cfg := rest.CopyConfig(c.cfg)
	cfg.UserAgent = managerAgent
	ctx, cancel := context.WithCancel(c.ctx)
	r := &running{t: c.t, done: make(chan error, 1), cancel: cancel, probe: probe}
	go func() { r.done <- Run(ctx, cfg, &o) }()
	c.t.Cleanup(r.stop)
	return r
}

// exited reports whether Run has returned, and with what.
func (r *running) exited() (bool, error) {
	if !r.ended {
		select {
		case r.err = <-r.done:
			r.ended = true
		default:
		}
	}
	return r.ended, r.err
}

// alive fails when Run has returned: for use inside polls.
func (r *running) alive() error {
	if ended, err := r.exited(); ended {
		r.t.Fatalf("the manager stopped: Run returned %v", err)
	}
	return nil
}

// wait returns Run's result, failing the test if it has not returned within timeout.
func (r *running) wait(timeout time.Duration) error {
	r.t.Helper()
	if !r.ended {
		select {
		case r.err = <-r.done:
			r.ended = true
		case <-time.After(timeout):
			r.t.Fatalf("Run did not return within %s", timeout)
		}
	}
	return r.err
}

func (r *running) stop() {
	r.cancel()
	if r.ended {
		return
	}
	select {
	case r.err = <-r.done:
		r.ended = true
		if r.err != nil && !errors.Is(r.err, context.Canceled) {
			r.t.Errorf("manager: %v", r.err)
		}
	case <-time.After(30 * time.Second):
		r.t.Error("the manager did not stop within 30s")
	}
}

// probeGet returns the status code and body of a probe path ("/readyz", "/readyz/injector").
func (r *running) probeGet(path string) (int, string) {
	resp, err := http.Get("http://" + r.probe + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// warningLog keeps the admission warnings the API server returned to the test's client.
type warningLog struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warningLog) HandleWarningHeaderWithContext(_ context.Context, _ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, text)
}

// take returns the warnings received since the last take.
func (w *warningLog) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.msgs
	w.msgs = nil
	return out
}

func containerNames(cs []corev1.Container) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Name
	}
	return out
}

func count(names []string, name string) int {
	n := 0
	for _, s := range names {
		if s == name {
			n++
		}
	}
	return n
}

// render runs kubectl kustomize (the envtest assets' kubectl, else the one on PATH) on a
// directory of the repository.
func (c *cluster) render(dir string) []byte {
	c.t.Helper()
	kubectl := filepath.Join(c.assets, "kubectl")
	if _, err := os.Stat(kubectl); err != nil {
		if kubectl, err = exec.LookPath("kubectl"); err != nil {
			c.t.Fatalf("no kubectl in %s or on PATH: run make envtest", c.assets)
		}
	}
	root, err := testenv.RepoRoot()
	c.must(err)
	var out, stderr bytes.Buffer
	cmd := exec.CommandContext(c.ctx, kubectl, "kustomize", filepath.Join(root, dir))
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		c.t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, strings.TrimSpace(stderr.String()))
	}
	return out.Bytes()
}
