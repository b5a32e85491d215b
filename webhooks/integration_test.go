package webhooks_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	configv1alpha1 "github.com/meshkeeper/meshkeeper/api/config/v1alpha1"
	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	policyv1alpha1 "github.com/meshkeeper/meshkeeper/api/policy/v1alpha1"
	"github.com/meshkeeper/meshkeeper/internal/injection"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
	"github.com/meshkeeper/meshkeeper/internal/testenv"
	"github.com/meshkeeper/meshkeeper/webhooks"
)

// The suite runs the real webhook server, registered exactly as the manager registers it, behind
// a real kube-apiserver that calls it through the generated webhook configurations.
var (
	k8s      client.Client
	restCfg  *rest.Config
	warnings = &warningRecorder{}
)

var meshConfigKey = types.NamespacedName{Namespace: "osm-system", Name: "osm-mesh-config"}

// warningRecorder collects the admission warnings the API server relays to the client.
type warningRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warningRecorder) HandleWarningHeaderWithContext(_ context.Context, _ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, text)
}

func (w *warningRecorder) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.msgs
	w.msgs = nil
	return out
}

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if testing.Short() {
		fmt.Println("skipping envtest suite in -short mode")
		return 0
	}
	logf.SetLogger(zap.New(zap.WriteTo(logSink()), zap.UseDevMode(true)))
	root, err := testenv.RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	assets, err := testenv.Assets(root)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	scheme := testenv.NewScheme()
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
		Scheme:                scheme,
		WebhookInstallOptions: envtest.WebhookInstallOptions{
			Paths: []string{filepath.Join(root, "config", "webhook", "manifests.yaml")},
		},
	}
	cfg, err := env.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting envtest:", err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping envtest:", err)
		}
	}()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wio := &env.WebhookInstallOptions
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:  scheme,
		Metrics: metricsserver.Options{BindAddress: "0"},
		WebhookServer: webhook.NewServer(webhook.Options{
			Host: wio.LocalServingHost, Port: wio.LocalServingPort, CertDir: wio.LocalServingCertDir,
		}),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "creating manager:", err)
		return 1
	}
	if err := webhooks.Setup(ctx, mgr, webhooks.Config{
		MeshName:          "osm",
		OperatorNamespace: "meshkeeper-system",
		MeshConfig:        meshConfigKey,
		Cluster: redirect.ClusterRanges{
			ServiceCIDRs: []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12")},
			PodCIDRs:     []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")},
		},
		Injector: &webhooks.InjectorConfig{Injection: injection.Options{Version: "integration",
			DefaultEnvoyImage: "envoyproxy/envoy:v1.31.2", DefaultInitImage: "ghcr.io/meshkeeper/init:test"}},
	}); err != nil {
		fmt.Fprintln(os.Stderr, "registering webhooks:", err)
		return 1
	}
	mgrDone := make(chan error, 1)
	go func() { mgrDone <- mgr.Start(ctx) }()
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		fmt.Fprintln(os.Stderr, "cache did not sync")
		return 1
	}

	restCfg = rest.CopyConfig(cfg)
	restCfg.WarningHandlerWithContext = warnings
	if k8s, err = client.New(restCfg, client.Options{Scheme: scheme}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := seed(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "seeding:", err)
		return 1
	}
	code := m.Run()
	cancel()
	if err := <-mgrDone; err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "manager:", err)
	}
	return code
}

// logSink keeps the manager quiet unless MESHKEEPER_TEST_VERBOSE is set.
func logSink() io.Writer {
	if os.Getenv("MESHKEEPER_TEST_VERBOSE") != "" {
		return os.Stderr
	}
	return io.Discard
}

// seed creates the mesh namespace, the MeshConfig and the application namespaces.
func seed(ctx context.Context) error {
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "osm-system"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "meshed",
			Labels:      map[string]string{injection.LabelMonitoredBy: "osm"},
			Annotations: map[string]string{injection.AnnotationSidecarInjection: "enabled"}}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "plain"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "other-mesh",
			Labels:      map[string]string{injection.LabelMonitoredBy: "another"},
			Annotations: map[string]string{injection.AnnotationSidecarInjection: "enabled"}}},
		&configv1alpha2.MeshConfig{
			ObjectMeta: metav1.ObjectMeta{Name: meshConfigKey.Name, Namespace: meshConfigKey.Namespace},
			Spec: configv1alpha2.MeshConfigSpec{
				Sidecar: configv1alpha2.SidecarSpec{LogLevel: "error", EnvoyImage: "envoyproxy/envoy:v1.31.2", InitContainerImage: "ghcr.io/meshkeeper/init:test"},
				Traffic: configv1alpha2.TrafficSpec{OutboundIPRangeExclusionList: []string{"169.254.169.254/32"}, OutboundPortExclusionList: []int32{5432}},
			},
		},
	}
	for _, o := range objs {
		if err := k8s.Create(ctx, o); err != nil {
			return fmt.Errorf("creating %T %s: %w", o, o.GetName(), err)
		}
	}
	// The injector reads through the manager's cache; wait until it has seen the seed.
	return waitFor(ctx, func() bool {
		mc := &configv1alpha2.MeshConfig{}
		return k8s.Get(ctx, meshConfigKey, mc) == nil
	})
}

func waitFor(ctx context.Context, cond func() bool) error {
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

var podSeq int

func newPod(ns string, mutate ...func(*corev1.Pod)) *corev1.Pod {
	podSeq++
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("app-%d", podSeq), Namespace: ns},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1"}},
		},
	}
	for _, m := range mutate {
		m(p)
	}
	return p
}

func containerNames(cs []corev1.Container) []string {
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

// createPod creates the pod; the API server returns it as stored, after admission.
func createPod(t *testing.T, p *corev1.Pod) error {
	t.Helper()
	return k8s.Create(context.Background(), p)
}

func TestPodInMonitoredNamespaceIsInjected(t *testing.T) {
	ctx := context.Background()
	p := newPod("meshed")
	if err := createPod(t, p); err != nil {
		t.Fatal(err)
	}
	if got := containerNames(p.Spec.InitContainers); !slices.Equal(got, []string{redirect.InitContainerName}) {
		t.Errorf("init containers = %v", got)
	}
	if got := containerNames(p.Spec.Containers); !slices.Equal(got, []string{"app", injection.SidecarName}) {
		t.Errorf("containers = %v", got)
	}
	mc := &configv1alpha2.MeshConfig{}
	if err := k8s.Get(ctx, meshConfigKey, mc); err != nil {
		t.Fatal(err)
	}
	cfg, errs := redirect.Effective(injection.MeshSettings(&mc.Spec), nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	want := map[string]string{
		injection.AnnotationExclusionsDigest:     cfg.Digest(),
		injection.AnnotationMeshConfigGeneration: fmt.Sprint(mc.Generation),
		injection.AnnotationMeshConfig:           meshConfigKey.String(),
		injection.AnnotationInjectedBy:           "integration",
	}
	for k, v := range want {
		if p.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, p.Annotations[k], v)
		}
	}
	init := p.Spec.InitContainers[0]
	if !slices.Contains(init.Args, "--ipv4-rules") || !strings.Contains(strings.Join(init.Args, " "), "169.254.169.254/32 -j RETURN") {
		t.Errorf("init args do not carry the MeshConfig exclusions: %q", init.Args)
	}
}

// A pod that already has init containers, volumes and annotations gets the injection appended
// behind them: the API server must accept appends and per-key annotation adds, with "/" escaped
// in the keys, and keep everything the pod brought. (Annotation keys cannot hold "~"; its escape
// is covered by the unit tests.)
func TestInjectionAppendsToWhatThePodHas(t *testing.T) {
	p := newPod("meshed", func(p *corev1.Pod) {
		p.Annotations = map[string]string{"example.com/owner": "books", "team": "store"}
		p.Spec.InitContainers = []corev1.Container{{Name: "migrate", Image: "registry.example/migrate:1"}}
		p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	})
	if err := createPod(t, p); err != nil {
		t.Fatal(err)
	}
	if got := containerNames(p.Spec.InitContainers); !slices.Equal(got, []string{"migrate", redirect.InitContainerName}) {
		t.Errorf("init containers = %v", got)
	}
	if got := containerNames(p.Spec.Containers); !slices.Equal(got, []string{"app", injection.SidecarName}) {
		t.Errorf("containers = %v", got)
	}
	if len(p.Spec.Volumes) == 0 || p.Spec.Volumes[0].Name != "data" {
		t.Errorf("volumes = %v", p.Spec.Volumes)
	}
	for k, v := range map[string]string{"example.com/owner": "books", "team": "store", injection.AnnotationInjectedBy: "integration"} {
		if p.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q (all: %v)", k, p.Annotations[k], v, p.Annotations)
		}
	}
	if p.Annotations[injection.AnnotationExclusionsDigest] == "" {
		t.Errorf("no %s annotation: %v", injection.AnnotationExclusionsDigest, p.Annotations)
	}
}

func TestPodOutsideTheMeshIsNotInjected(t *testing.T) {
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
	}{
		{"unlabelled namespace", newPod("plain")},
		{"namespace of another mesh", newPod("other-mesh")},
		{"host network", newPod("meshed", func(p *corev1.Pod) { p.Spec.HostNetwork = true })},
		{"pod opts out", newPod("meshed", func(p *corev1.Pod) {
			p.Annotations = map[string]string{injection.AnnotationSidecarInjection: "disabled"}
		})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := createPod(t, tc.pod); err != nil {
				t.Fatal(err)
			}
			if len(tc.pod.Spec.InitContainers) != 0 || !slices.Equal(containerNames(tc.pod.Spec.Containers), []string{"app"}) {
				t.Errorf("pod was changed: init=%v containers=%v", containerNames(tc.pod.Spec.InitContainers), containerNames(tc.pod.Spec.Containers))
			}
			if _, ok := tc.pod.Annotations[injection.AnnotationExclusionsDigest]; ok {
				t.Error("pod carries the injection annotations")
			}
		})
	}
}

func TestInvalidAnnotationIsDenied(t *testing.T) {
	// bad is the offending part of value that the message must quote.
	for _, tc := range []struct{ key, value, bad string }{
		{redirect.AnnotationOutboundPortExclusionList, "8080,70000", "70000"},
		{redirect.AnnotationOutboundIPRangeExclusionList, "10.0.0.0/8;reboot", "10.0.0.0/8;reboot"},
		{injection.AnnotationSidecarInjection, "sometimes", "sometimes"},
	} {
		t.Run(tc.key, func(t *testing.T) {
			p := newPod("meshed", func(p *corev1.Pod) { p.Annotations = map[string]string{tc.key: tc.value} })
			err := createPod(t, p)
			if err == nil {
				t.Fatal("pod with an invalid annotation was admitted")
			}
			for _, want := range []string{tc.key, tc.bad} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %q", err, want)
				}
			}
			if getErr := k8s.Get(context.Background(), client.ObjectKeyFromObject(p), &corev1.Pod{}); !apierrors.IsNotFound(getErr) {
				t.Errorf("denied pod exists: %v", getErr)
			}
		})
	}
}

func TestSecondPassIsNoOp(t *testing.T) {
	first := newPod("meshed")
	if err := createPod(t, first); err != nil {
		t.Fatal(err)
	}
	// A pod submitted with the injected spec (as a copied manifest or a reinvocation would be)
	// must come back exactly as sent: no second init container, no second sidecar.
	second := newPod("meshed")
	second.Annotations = first.Annotations
	second.Spec = *first.Spec.DeepCopy()
	before := second.Spec.DeepCopy()
	if err := createPod(t, second); err != nil {
		t.Fatal(err)
	}
	if got := containerNames(second.Spec.InitContainers); !slices.Equal(got, containerNames(before.InitContainers)) {
		t.Errorf("init containers = %v, want %v", got, containerNames(before.InitContainers))
	}
	if got := containerNames(second.Spec.Containers); !slices.Equal(got, containerNames(before.Containers)) {
		t.Errorf("containers = %v, want %v", got, containerNames(before.Containers))
	}
}

func TestInvalidMeshConfigIsDenied(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		spec configv1alpha2.MeshConfigSpec
		want []string
	}{
		{"TLS range inverted", configv1alpha2.MeshConfigSpec{Sidecar: configv1alpha2.SidecarSpec{
			TLSMinProtocolVersion: configv1alpha2.TLSVersion13, TLSMaxProtocolVersion: configv1alpha2.TLSVersion12}},
			[]string{"spec.sidecar.tlsMinProtocolVersion", "no TLS version would be acceptable"}},
		{"external authorization without address", configv1alpha2.MeshConfigSpec{Traffic: configv1alpha2.TrafficSpec{
			InboundExternalAuthorization: configv1alpha2.ExternalAuthzSpec{Enable: true, Port: 9191}}},
			[]string{"spec.traffic.inboundExternalAuthorization.address"}},
		{"out-of-range octet", configv1alpha2.MeshConfigSpec{Traffic: configv1alpha2.TrafficSpec{
			OutboundIPRangeExclusionList: []string{"999.1.1.1/32"}}},
			[]string{"outboundIPRangeExclusionList", "999.1.1.1/32"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mc := &configv1alpha2.MeshConfig{ObjectMeta: metav1.ObjectMeta{Name: "invalid", Namespace: "osm-system"}, Spec: tc.spec}
			err := k8s.Create(ctx, mc)
			if err == nil {
				t.Fatal("invalid MeshConfig was admitted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// v1alpha1 requests reach the same validator: the webhook is registered for v1alpha2 with
// matchPolicy Equivalent, so the API server converts them first.
func TestInvalidV1alpha1MeshConfigIsDenied(t *testing.T) {
	mc := &configv1alpha1.MeshConfig{
		ObjectMeta: metav1.ObjectMeta{Name: "old-style", Namespace: "osm-system"},
		Spec: configv1alpha1.MeshConfigSpec{Traffic: configv1alpha1.TrafficSpec{
			InboundExternalAuthorization: configv1alpha1.ExternalAuthzSpec{Enable: true, Port: 9191},
		}},
	}
	err := k8s.Create(context.Background(), mc)
	if err == nil || !strings.Contains(err.Error(), "spec.traffic.inboundExternalAuthorization.address") {
		t.Fatalf("err = %v, want a denial naming spec.traffic.inboundExternalAuthorization.address", err)
	}
}

func TestDangerousMeshConfigWarns(t *testing.T) {
	ctx := context.Background()
	mc := &configv1alpha2.MeshConfig{
		ObjectMeta: metav1.ObjectMeta{Name: meshConfigKey.Name, Namespace: "warned"},
		Spec: configv1alpha2.MeshConfigSpec{Traffic: configv1alpha2.TrafficSpec{
			OutboundIPRangeExclusionList: []string{"10.0.0.0/8", "0.0.0.0/0"},
			OutboundIPRangeInclusionList: []string{"192.168.0.0/16"},
		}},
	}
	if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "warned"}}); err != nil {
		t.Fatal(err)
	}
	warnings.take()
	if err := k8s.Create(ctx, mc); err != nil {
		t.Fatalf("a legal MeshConfig was denied: %v", err)
	}
	got := strings.Join(warnings.take(), "\n")
	for _, w := range []string{
		redirect.WarnCaptureDisabled, redirect.WarnExclusionOverlapsServiceCIDR, redirect.WarnExclusionOverlapsPodCIDR,
		redirect.WarnInclusionListBypass, "has no effect",
	} {
		if !strings.Contains(got, w) {
			t.Errorf("warnings %q do not mention %q", got, w)
		}
	}
}

func TestInvalidEgressIsDenied(t *testing.T) {
	ctx := context.Background()
	src := []policyv1alpha1.EgressSourceSpec{{Kind: policyv1alpha1.KindServiceAccount, Name: "client", Namespace: "meshed"}}
	ok := &policyv1alpha1.Egress{ObjectMeta: metav1.ObjectMeta{Name: "httpbin", Namespace: "meshed"}, Spec: policyv1alpha1.EgressSpec{
		Sources: src, Hosts: []string{"httpbin.org"}, Ports: []policyv1alpha1.PortSpec{{Number: 80, Protocol: "http"}}}}
	if err := k8s.Create(ctx, ok); err != nil {
		t.Fatalf("valid Egress denied: %v", err)
	}
	bad := &policyv1alpha1.Egress{ObjectMeta: metav1.ObjectMeta{Name: "no-hosts", Namespace: "meshed"}, Spec: policyv1alpha1.EgressSpec{
		Sources: src, Ports: []policyv1alpha1.PortSpec{{Number: 80, Protocol: "http"}}}}
	err := k8s.Create(ctx, bad)
	if err == nil || !strings.Contains(err.Error(), "spec.hosts") || !strings.Contains(err.Error(), "port 80 is http") {
		t.Fatalf("http Egress without hosts: err = %v", err)
	}
	warnings.take()
	open := &policyv1alpha1.Egress{ObjectMeta: metav1.ObjectMeta{Name: "open-tcp", Namespace: "meshed"}, Spec: policyv1alpha1.EgressSpec{
		Sources: src, Ports: []policyv1alpha1.PortSpec{{Number: 5432, Protocol: "tcp"}}}}
	if err := k8s.Create(ctx, open); err != nil {
		t.Fatalf("legal tcp Egress denied: %v", err)
	}
	if got := strings.Join(warnings.take(), "\n"); !strings.Contains(got, "tcp port 5432 has no ipAddresses") {
		t.Errorf("warnings = %q", got)
	}
}

func TestInvalidIngressBackendIsDenied(t *testing.T) {
	ctx := context.Background()
	ib := func(name, proto string, skip bool) *policyv1alpha1.IngressBackend {
		return &policyv1alpha1.IngressBackend{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "meshed"}, Spec: policyv1alpha1.IngressBackendSpec{
			Backends: []policyv1alpha1.BackendSpec{{Name: "bookstore", Port: policyv1alpha1.BackendPortSpec{Number: 14001, Protocol: proto},
				TLS: policyv1alpha1.TLSSpec{SkipClientCertValidation: skip}}},
			Sources: []policyv1alpha1.IngressSourceSpec{
				{Kind: policyv1alpha1.KindService, Name: "ingress", Namespace: "ingress"},
				{Kind: policyv1alpha1.KindAuthenticatedPrincipal, Name: "ingress.ingress.cluster.local"},
			},
		}}
	}
	if err := k8s.Create(ctx, ib("verified", "https", false)); err != nil {
		t.Fatalf("https with client validation and a principal was denied: %v", err)
	}
	for _, tc := range []struct {
		obj  *policyv1alpha1.IngressBackend
		want string
	}{
		{ib("plain-http", "http", false), "must use https"},
		{ib("unverified", "https", true), "set skipClientCertValidation to false"},
	} {
		err := k8s.Create(ctx, tc.obj)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to mention %q", tc.obj.Name, err, tc.want)
		}
	}
}
