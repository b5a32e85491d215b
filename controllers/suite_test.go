package controllers

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	"github.com/meshkeeper/meshkeeper/internal/injection"
	"github.com/meshkeeper/meshkeeper/internal/testenv"
)

// env is one control plane shared by the package's tests; each test works in its own
// namespaces, mesh name and MeshConfig so tests cannot see each other's objects.
var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	ctrl.SetLogger(logr.Discard())
	if os.Getenv("MESHKEEPER_TEST_LOG") != "" {
		ctrl.SetLogger(zap.New(zap.UseDevMode(true)))
	}
	crds, err := crdsWithoutCEL()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(crds)
	env, err = testenv.Start(crds)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping envtest:", err)
		}
	}()
	return m.Run()
}

// crdsWithoutCEL copies the MeshConfig CRD without its CEL rules. It plays OSM's original CRD,
// which validated nothing: that is how an invalid MeshConfig reaches a cluster in practice, and
// the controller must catch it on its own.
func crdsWithoutCEL() (string, error) {
	root, err := testenv.RepoRoot()
	if err != nil {
		return "", err
	}
	data, err := os.ReadFile(filepath.Join(root, "config", "crd", "bases", "config.openservicemesh.io_meshconfigs.yaml"))
	if err != nil {
		return "", err
	}
	var crd map[string]any
	if err := yaml.Unmarshal(data, &crd); err != nil {
		return "", err
	}
	stripKey(crd, "x-kubernetes-validations")
	out, err := yaml.Marshal(crd)
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "meshkeeper-crds-")
	if err != nil {
		return "", err
	}
	return dir, os.WriteFile(filepath.Join(dir, "meshconfigs.yaml"), out, 0o600)
}

func stripKey(v any, key string) {
	switch t := v.(type) {
	case map[string]any:
		delete(t, key)
		for _, c := range t {
			stripKey(c, key)
		}
	case []any:
		for _, c := range t {
			stripKey(c, key)
		}
	}
}

// counter wraps the manager's client and counts what reaches the API server: writes by kind of
// object and subresource, and reads of pods (reconciles start with one).
type counter struct {
	client.Client
	mu      sync.Mutex
	writes  map[string]int
	podGets atomic.Int64
}

func newCounter(c client.Client) *counter { return &counter{Client: c, writes: map[string]int{}} }

func (c *counter) record(obj runtime.Object, what string) {
	kind := fmt.Sprintf("%T", obj)
	c.mu.Lock()
	c.writes[kind+what]++
	c.mu.Unlock()
}

// Writes returns a copy of the write counts and the total.
func (c *counter) Writes() (map[string]int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out, n := make(map[string]int, len(c.writes)), 0
	for k, v := range c.writes {
		out[k], n = v, n+v
	}
	return out, n
}

func (c *counter) Reset() {
	c.mu.Lock()
	c.writes = map[string]int{}
	c.mu.Unlock()
	c.podGets.Store(0)
}

func (c *counter) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if _, ok := obj.(*corev1.Pod); ok {
		c.podGets.Add(1)
	}
	return c.Client.Get(ctx, key, obj, opts...)
}

func (c *counter) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	c.record(obj, "")
	return c.Client.Create(ctx, obj, opts...)
}

func (c *counter) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	c.record(obj, "")
	return c.Client.Update(ctx, obj, opts...)
}

func (c *counter) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	c.record(obj, "")
	return c.Client.Patch(ctx, obj, patch, opts...)
}

func (c *counter) Delete(ctx context.Context, obj client.Object, opts ...client.DeleteOption) error {
	c.record(obj, "")
	return c.Client.Delete(ctx, obj, opts...)
}

func (c *counter) Status() client.SubResourceWriter {
	return &countingStatus{SubResourceWriter: c.Client.Status(), c: c}
}

type countingStatus struct {
	client.SubResourceWriter
	c *counter
}

func (s *countingStatus) Update(ctx context.Context, obj client.Object, opts ...client.SubResourceUpdateOption) error {
	s.c.record(obj, "/status")
	return s.SubResourceWriter.Update(ctx, obj, opts...)
}

func (s *countingStatus) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	s.c.record(obj, "/status")
	return s.SubResourceWriter.Patch(ctx, obj, patch, opts...)
}

// recorder keeps the events the controllers emit (and forwards them to the API server).
type recorder struct {
	events.EventRecorder
	mu   sync.Mutex
	seen []string
}

func (r *recorder) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	obj, _ := regarding.(client.Object)
	r.mu.Lock()
	r.seen = append(r.seen, fmt.Sprintf("%s %s/%s %s: %s", eventtype, obj.GetNamespace(), obj.GetName(), reason, fmt.Sprintf(note, args...)))
	r.mu.Unlock()
	r.EventRecorder.Eventf(regarding, related, eventtype, reason, action, note, args...)
}

func (r *recorder) Events() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.seen...)
}

// About lists the events recorded about the object namespace/name, as "Type Reason".
func (r *recorder) About(namespace, name string) []string {
	var out []string
	for _, e := range r.Events() {
		typ, rest, _ := strings.Cut(e, " ")
		if obj, rest, ok := strings.Cut(rest, " "); ok && obj == namespace+"/"+name {
			reason, _, _ := strings.Cut(rest, ":")
			out = append(out, typ+" "+reason)
		}
	}
	return out
}

func (r *recorder) Count(reason string) int {
	n := 0
	for _, e := range r.Events() {
		if strings.Contains(e, " "+reason+": ") {
			n++
		}
	}
	return n
}

// harness is one running manager with both drift controllers.
type harness struct {
	opts   DriftOptions
	client *counter
	events *recorder
	cancel context.CancelFunc
	done   chan error
}

// startManager runs the drift controllers for the mesh named mesh, served by MeshConfig
// mesh-system/<mesh>-config, with writes counted.
func startManager(t testing.TB, mesh string, tune ...func(*DriftOptions)) *harness {
	t.Helper()
	opts := DriftOptions{
		MeshConfig: types.NamespacedName{Namespace: mesh + "-system", Name: mesh + "-config"},
		Selection:  injection.SelectOptions{MeshName: mesh},
		// The suites exercise inject mode's remediation; audit mode's is tested on its own.
		AutoRestart: true,
	}
	for _, f := range tune {
		f(&opts)
	}
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:                 env.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  CacheOptions(opts),
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{opts: opts, client: newCounter(mgr.GetClient()),
		events: &recorder{EventRecorder: mgr.GetEventRecorder(EventSource)}, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	pods := &PodReconciler{Client: h.client, APIReader: mgr.GetAPIReader(), Recorder: h.events, Options: opts}
	if err := pods.SetupWithManager(ctx, mgr); err != nil {
		t.Fatal(err)
	}
	if err := (&MeshConfigReconciler{Client: h.client, Recorder: h.events, Options: opts}).SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	if opts.IstioNamespace != "" {
		if err := (&IstioPodCounter{Client: h.client, Options: opts}).SetupWithManager(mgr); err != nil {
			t.Fatal(err)
		}
	}
	go func() { h.done <- mgr.Start(ctx) }()
	t.Cleanup(h.stop)
	return h
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	if err := <-h.done; err != nil {
		fmt.Fprintln(os.Stderr, "manager stopped with:", err)
	}
}

// eventually polls cond until it returns nil or the deadline passes.
func eventually(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("condition not met within %s: %v", timeout, err)
}

// consistently fails if cond returns an error at any poll during d.
func consistently(t testing.TB, d time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if err := cond(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
