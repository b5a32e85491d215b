package manager

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/open-policy-agent/cert-controller/pkg/rotator"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/meshkeeper/meshkeeper/api/scheme"
	"github.com/meshkeeper/meshkeeper/controllers"
	"github.com/meshkeeper/meshkeeper/internal/injection"
	"github.com/meshkeeper/meshkeeper/webhooks"
	"github.com/meshkeeper/meshkeeper/webhooks/pod"
)

// Scheme knows every kind the manager reads or writes.
func Scheme() *runtime.Scheme { return scheme.New() }

// Run starts the operator in o.Mode and blocks until ctx ends or the manager fails.
//
// Before the manager exists it looks at the cluster once: which MeshConfig to serve (Resolve) and
// how the API server serves meshkeeper's kinds (ProbeAPIs: OSM's CRDs have no status subresource
// for MeshConfig and Egress). Both shape what the controllers write.
func Run(ctx context.Context, cfg *rest.Config, o *Options) error {
	log := ctrl.Log.WithName("setup")
	if err := o.Validate(); err != nil {
		return err
	}
	scheme := Scheme()
	direct, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return fmt.Errorf("creating a client: %w", err)
	}
	apis, err := ProbeAPIs(ctx, cfg, direct)
	if err != nil {
		return err
	}
	for _, n := range apis.Notes {
		log.Info(n)
	}
	meshConfig, how, err := awaitMeshConfig(ctx, direct, o)
	if err != nil {
		return err
	}
	log.Info("serving MeshConfig "+meshConfig.String(), "found", how)

	mgr, err := newManager(cfg, scheme, o, meshConfig)
	if err != nil {
		return err
	}
	// With webhooks, the manager outlives the stop signal by ShutdownDelay (see drain);
	// everything registered below lives on its context.
	stop := newDrain(0)
	if o.ServesWebhooks() {
		stop = newDrain(o.ShutdownDelay)
	}
	if err := addReadyzCheck(mgr, "stopping", stop.check); err != nil {
		return err
	}
	mgrCtx, cancel := stop.context(ctx, func(d time.Duration) {
		log.Info("stop requested: serving admission for --shutdown-delay before stopping", "delay", d.String())
	})
	defer cancel()
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	// Every mode answers /readyz; the webhook and injector checks below add to it.
	if err := addReadyzCheck(mgr, "ping", healthz.Ping); err != nil {
		return err
	}
	if err := setupControllers(mgrCtx, mgr, o, meshConfig, apis.Controllers); err != nil {
		return err
	}
	if err := mgr.Add(apis.announce(direct, mgr.GetEventRecorder(controllers.EventSource))); err != nil {
		return err
	}

	var gate *pod.Gate
	if o.Mode == ModeInject {
		gate = pod.NewGate()
		if err := addReadyzCheck(mgr, "injector", gate.Check); err != nil {
			return err
		}
		if err := mgr.Add(&pod.InjectorWatch{Cache: mgr.GetCache(), Recorder: mgr.GetEventRecorder("meshkeeper-injector"), Gate: gate,
			MeshName: o.MeshName, Own: o.MutatingWebhookName, MeshConfig: meshConfig}); err != nil {
			return err
		}
	}
	setupErr := make(chan error, 1)
	if o.ServesWebhooks() {
		if err := serveWebhooks(mgrCtx, mgr, o, meshConfig, gate, setupErr); err != nil {
			return err
		}
	}

	go func() {
		select {
		case err := <-setupErr:
			log.Error(err, "registering webhooks")
			cancel()
		case <-mgrCtx.Done():
		}
	}()
	log.Info("starting manager", "version", o.Version, "mode", o.Mode, "mesh", o.MeshName, "meshconfig", meshConfig.String(),
		"webhooks", o.ServesWebhooks())
	if err := mgr.Start(mgrCtx); err != nil {
		return fmt.Errorf("running manager: %w", err)
	}
	select {
	case err := <-setupErr:
		return err
	default:
		return nil
	}
}

func newManager(cfg *rest.Config, scheme *runtime.Scheme, o *Options, meshConfig types.NamespacedName) (ctrl.Manager, error) {
	tlsOpts := []func(*tls.Config){func(c *tls.Config) { c.MinVersion = tls.VersionTLS12 }}
	if !o.EnableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	metricsOpts := metricsserver.Options{BindAddress: o.MetricsAddr, SecureServing: o.SecureMetrics, TLSOpts: tlsOpts}
	if o.SecureMetrics {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsOpts,
		HealthProbeBindAddress: o.ProbeAddr,
		LeaderElection:         o.LeaderElect,
		LeaderElectionID:       o.LeaderElectionID,
		// The Lease lives beside the operator. Left empty, controller-runtime reads the
		// namespace of the pod's service account and fails outside a pod.
		LeaderElectionNamespace:       o.OperatorNamespace,
		LeaderElectionReleaseOnCancel: true,
		WebhookServer: webhook.NewServer(webhook.Options{
			Port:    o.WebhookPort,
			CertDir: o.WebhookCertDir,
			TLSOpts: tlsOpts,
		}),
		Cache:      controllers.CacheOptions(controllers.DriftOptions{MeshConfig: meshConfig, IstioNamespace: o.IstioNamespace}),
		Controller: config.Controller{SkipNameValidation: ptr.To(o.skipNameValidation)},
	})
	if err != nil {
		return nil, fmt.Errorf("creating manager: %w", err)
	}
	return mgr, nil
}

// setupControllers registers the drift and policy controllers, the same in both modes apart from
// the opt-in restarts, which only inject mode makes.
func setupControllers(ctx context.Context, mgr ctrl.Manager, o *Options, meshConfig types.NamespacedName, apis controllers.APIs) error {
	cluster, err := o.ClusterRanges()
	if err != nil {
		return err
	}
	if err := controllers.SetupDrift(ctx, mgr, controllers.DriftOptions{
		ClusterRanges:           cluster,
		MeshConfig:              meshConfig,
		Selection:               injection.SelectOptions{MeshName: o.MeshName, OperatorNamespace: o.OperatorNamespace},
		MaxConcurrentReconciles: o.DriftMaxConcurrent,
		AutoRestartMinInterval:  o.AutoRestartMinInterval,
		AutoRestart:             o.Mode == ModeInject,
		APIs:                    apis,
		IstioNamespace:          o.IstioNamespace,
	}); err != nil {
		return err
	}
	return controllers.SetupPolicy(ctx, mgr, controllers.PolicyOptions{MeshConfig: meshConfig, MeshName: o.MeshName, APIs: apis})
}

// serveWebhooks registers the webhook server once its certificate exists: adding it earlier
// would fail the start on a fresh install. Errors after Run returns arrive on setupErr.
func serveWebhooks(ctx context.Context, mgr ctrl.Manager, o *Options, meshConfig types.NamespacedName, gate *pod.Gate, setupErr chan<- error) error {
	log := ctrl.Log.WithName("setup")
	certsReady := make(chan struct{})
	if o.CertManager {
		go awaitCertFiles(ctx, o.WebhookCertDir, time.Second, certsReady)
	} else if err := addCertRotator(mgr, o, certsReady); err != nil {
		return err
	}
	webhooksUp := make(chan struct{})
	if err := addReadyzCheck(mgr, "webhook", func(req *http.Request) error {
		select {
		case <-webhooksUp:
			return mgr.GetWebhookServer().StartedChecker()(req)
		default:
			return errors.New("webhook certificate not ready")
		}
	}); err != nil {
		return err
	}
	go func() {
		select {
		case <-certsReady:
		case <-ctx.Done():
			return
		}
		if err := setupWebhooks(ctx, mgr, o, meshConfig, gate); err != nil {
			setupErr <- err
			return
		}
		close(webhooksUp)
		log.Info("webhooks registered", "injector", o.Mode == ModeInject)
	}()
	return nil
}

// addCertRotator lets the operator own its webhook certificate: it fills the Secret, which
// certFiles copies into the cert dir, and patches the CA bundle of the webhook configurations
// this mode serves. Every replica runs it (no leader election) because every replica serves
// webhooks.
func addCertRotator(mgr ctrl.Manager, o *Options, ready chan struct{}) error {
	secret := types.NamespacedName{Namespace: o.OperatorNamespace, Name: o.WebhookSecret}
	if err := addCertFiles(mgr, secret, o.WebhookCertDir); err != nil {
		return err
	}
	dns := fmt.Sprintf("%s.%s.svc", o.WebhookService, o.OperatorNamespace)
	hooks := []rotator.WebhookInfo{{Type: rotator.Validating, Name: o.ValidatingWebhookName}}
	if o.Mode == ModeInject {
		hooks = append(hooks, rotator.WebhookInfo{Type: rotator.Mutating, Name: o.MutatingWebhookName})
	}
	return rotator.AddRotator(mgr, &rotator.CertRotator{
		SecretKey:             secret,
		CertDir:               o.WebhookCertDir,
		CAName:                "meshkeeper-ca",
		CAOrganization:        "meshkeeper",
		DNSName:               dns,
		ExtraDNSNames:         []string{dns + ".cluster.local"},
		IsReady:               ready,
		RequireLeaderElection: false,
		EnableReadinessCheck:  true,
		Webhooks:              hooks,
	})
}

func setupWebhooks(ctx context.Context, mgr ctrl.Manager, o *Options, meshConfig types.NamespacedName, gate *pod.Gate) error {
	ranges, err := o.ClusterRanges()
	if err != nil {
		return err
	}
	c := webhooks.Config{
		MeshName:          o.MeshName,
		OperatorNamespace: o.OperatorNamespace,
		MeshConfig:        meshConfig,
		Cluster:           ranges,
	}
	if o.Mode == ModeInject {
		c.Injector = &webhooks.InjectorConfig{
			Gate: gate,
			Injection: injection.Options{
				Version:                o.versionOrDev(),
				DefaultEnvoyImage:      o.EnvoyImage,
				DefaultInitImage:       o.InitImage,
				UseMeshConfigInitImage: o.UseMeshConfigInitImage,
				BootstrapSecret:        o.EnvoyBootstrapSecret,
			},
		}
	}
	return webhooks.Setup(ctx, mgr, c)
}

// meshConfigPoll is how often the manager looks again for a MeshConfig that does not exist yet.
const meshConfigPoll = 5 * time.Second

// awaitMeshConfig is ResolveMeshConfig, except that when the cluster holds no MeshConfig yet (a
// fresh install, the MeshConfig applied after the operator) it waits for one instead of exiting:
// exiting would crash-loop, and in inject mode nothing could then admit the MeshConfig that ends
// the loop. While it waits, the probe address answers /healthz and a failing /readyz with the
// reason. Several MeshConfigs and no flag is a configuration error and is returned at once.
func awaitMeshConfig(ctx context.Context, c client.Reader, o *Options) (types.NamespacedName, string, error) {
	ref, how, err := ResolveMeshConfig(ctx, c, o.MeshConfigFlag)
	if !errors.Is(err, ErrNoMeshConfig) {
		return ref, how, err
	}
	log := ctrl.Log.WithName("setup")
	log.Error(err, "waiting for a MeshConfig")
	stop := probesWhileWaiting(o.ProbeAddr, err)
	defer stop()
	ticker := time.NewTicker(meshConfigPoll)
	defer ticker.Stop()
	for waited := 0; ; waited++ {
		select {
		case <-ctx.Done():
			return types.NamespacedName{}, "", ctx.Err()
		case <-ticker.C:
		}
		ref, how, err = ResolveMeshConfig(ctx, c, o.MeshConfigFlag)
		if !errors.Is(err, ErrNoMeshConfig) {
			return ref, how, err
		}
		if waited%12 == 11 {
			log.Error(err, "still waiting for a MeshConfig")
		}
	}
}

// probesWhileWaiting serves the probes before the manager exists, so that the kubelet neither
// restarts a process that is only waiting nor routes webhook traffic to it.
func probesWhileWaiting(addr string, why error) (stop func()) {
	if addr == "" || addr == "0" {
		return func() {}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, why.Error(), http.StatusServiceUnavailable)
	})
	mux.HandleFunc("/readyz/", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, why.Error(), http.StatusServiceUnavailable)
	})
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		ctrl.Log.WithName("setup").Error(err, "serving probes while waiting for a MeshConfig")
		return func() {}
	}
	go func() { _ = srv.Serve(ln) }()
	return func() { _ = srv.Close() }
}
