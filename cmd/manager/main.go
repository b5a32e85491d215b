package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/open-policy-agent/cert-controller/pkg/rotator"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	configv1alpha1 "github.com/meshkeeper/meshkeeper/api/config/v1alpha1"
	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	policyv1alpha1 "github.com/meshkeeper/meshkeeper/api/policy/v1alpha1"
	"github.com/meshkeeper/meshkeeper/controllers"
	"github.com/meshkeeper/meshkeeper/internal/injection"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
	"github.com/meshkeeper/meshkeeper/webhooks"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// setupFunc registers one part of the operator with the manager. Webhooks are registered only
// once the serving certificate exists; everything else is registered before the manager starts.
type setupFunc func(ctx context.Context, mgr ctrl.Manager, o *Options) error

// setupFuncs run in order before the manager starts. Controllers add themselves from their own
// file in this package with an init function appending to this list.
var setupFuncs []setupFunc

// webhookSetupFuncs run once the webhook serving certificate is in place.
var webhookSetupFuncs = []setupFunc{setupWebhooks}

var scheme = runtime.NewScheme()

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(configv1alpha1.AddToScheme(scheme))
	utilruntime.Must(configv1alpha2.AddToScheme(scheme))
	utilruntime.Must(policyv1alpha1.AddToScheme(scheme))
}

// Options are the manager's flags, shared with every setupFunc.
type Options struct {
	MetricsAddr            string
	SecureMetrics          bool
	ProbeAddr              string
	LeaderElect            bool
	LeaderElectionID       string
	EnableHTTP2            bool
	WebhookPort            int
	WebhookCertDir         string
	CertManager            bool
	WebhookSecret          string
	WebhookService         string
	MutatingWebhookName    string
	ValidatingWebhookName  string
	OperatorNamespace      string
	MeshName               string
	MeshConfig             types.NamespacedName
	ServiceCIDRs           []string
	PodCIDRs               []string
	EnvoyImage             string
	InitImage              string
	UseMeshConfigInitImage bool
	EnvoyBootstrapSecret   string
	DriftMaxConcurrent     int
	AutoRestartMinInterval time.Duration
}

// ClusterRanges returns the configured Service and Pod CIDRs, parsed.
func (o *Options) ClusterRanges() (redirect.ClusterRanges, error) {
	var r redirect.ClusterRanges
	var errs []error
	for _, s := range o.ServiceCIDRs {
		p, err := redirect.ParsePrefix(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("--service-cidr %q: %w", s, err))
			continue
		}
		r.ServiceCIDRs = append(r.ServiceCIDRs, p)
	}
	for _, s := range o.PodCIDRs {
		p, err := redirect.ParsePrefix(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("--pod-cidr %q: %w", s, err))
			continue
		}
		r.PodCIDRs = append(r.PodCIDRs, p)
	}
	return r, errors.Join(errs...)
}

func (o *Options) bind(fs *flag.FlagSet) {
	fs.StringVar(&o.MetricsAddr, "metrics-bind-address", ":8443", "Address the metrics endpoint binds to (\"0\" disables it).")
	fs.BoolVar(&o.SecureMetrics, "metrics-secure", true, "Serve metrics over HTTPS, authenticated and authorized through the API server.")
	fs.StringVar(&o.ProbeAddr, "health-probe-bind-address", ":8081", "Address the health and readiness probes bind to.")
	fs.BoolVar(&o.LeaderElect, "leader-elect", false, "Elect a leader so that only one replica runs the controllers; every replica serves webhooks.")
	fs.StringVar(&o.LeaderElectionID, "leader-election-id", "meshkeeper.meshkeeper.io", "Name of the leader election Lease.")
	fs.BoolVar(&o.EnableHTTP2, "enable-http2", false, "Allow HTTP/2 on the webhook and metrics servers (off by default: HTTP/2 rapid reset, CVE-2023-44487).")
	fs.IntVar(&o.WebhookPort, "webhook-port", webhook.DefaultPort, "Port the webhook server listens on.")
	fs.StringVar(&o.WebhookCertDir, "webhook-cert-dir", "/tmp/k8s-webhook-server/serving-certs", "Directory holding the webhook's tls.crt and tls.key.")
	fs.BoolVar(&o.CertManager, "cert-manager", false, "Certificates come from cert-manager: do not create or rotate them, do not patch CA bundles.")
	fs.StringVar(&o.WebhookSecret, "webhook-secret-name", "meshkeeper-webhook-server-cert", "Secret (in the operator namespace) holding the webhook certificate and its CA.")
	fs.StringVar(&o.WebhookService, "webhook-service-name", "meshkeeper-webhook-service", "Service that fronts the webhook server; its DNS name goes into the certificate.")
	fs.StringVar(&o.MutatingWebhookName, "mutating-webhook-configuration", "meshkeeper-mutating-webhook-configuration", "MutatingWebhookConfiguration whose CA bundle is kept current.")
	fs.StringVar(&o.ValidatingWebhookName, "validating-webhook-configuration", "meshkeeper-validating-webhook-configuration", "ValidatingWebhookConfiguration whose CA bundle is kept current.")
	fs.StringVar(&o.OperatorNamespace, "operator-namespace", envOr("POD_NAMESPACE", "meshkeeper-system"), "Namespace the operator runs in (never injected).")
	fs.StringVar(&o.MeshName, "mesh-name", "osm", "Mesh name: namespaces labelled openservicemesh.io/monitored-by=<mesh-name> are meshed.")
	fs.StringVar(&o.MeshConfig.Namespace, "mesh-namespace", "osm-system", "Namespace of the MeshConfig.")
	fs.StringVar(&o.MeshConfig.Name, "meshconfig-name", "osm-mesh-config", "Name of the MeshConfig.")
	fs.Func("service-cidr", "The cluster's Service CIDR, used to warn about exclusions that cover it (repeatable).", appendTo(&o.ServiceCIDRs))
	fs.Func("pod-cidr", "The cluster's Pod CIDR, used to warn about exclusions that cover it (repeatable).", appendTo(&o.PodCIDRs))
	fs.StringVar(&o.EnvoyImage, "envoy-image", "envoyproxy/envoy:v1.31.2", "Sidecar image when MeshConfig spec.sidecar.envoyImage is empty.")
	fs.StringVar(&o.InitImage, "init-image", "ghcr.io/meshkeeper/init:"+version, "Image of meshkeeper's init program, injected into every meshed pod.")
	fs.BoolVar(&o.UseMeshConfigInitImage, "use-meshconfig-init-image", false, "Inject MeshConfig spec.sidecar.initContainerImage instead of --init-image (only for images that contain meshkeeper-init; OSM's own init image does not).")
	fs.IntVar(&o.DriftMaxConcurrent, "drift-max-concurrent-reconciles", 8, "Pods evaluated in parallel by the drift controller.")
	fs.DurationVar(&o.AutoRestartMinInterval, "auto-restart-min-interval", 10*time.Minute,
		"Least time between two restarts of one workload by the opt-in auto-restart (annotation meshkeeper.io/auto-restart: \"true\").")
	fs.StringVar(&o.EnvoyBootstrapSecret, "envoy-bootstrap-secret", "", "Secret (in each pod's namespace) mounted as the sidecar's bootstrap; empty starts Envoy with a built-in passthrough bootstrap (docs/sidecar.md).")
}

func appendTo(list *[]string) func(string) error {
	return func(v string) error {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				*list = append(*list, s)
			}
		}
		return nil
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func main() {
	var o Options
	o.bind(flag.CommandLine)
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	log := ctrl.Log.WithName("setup")

	if err := run(ctrl.SetupSignalHandler(), ctrl.GetConfigOrDie(), &o); err != nil {
		log.Error(err, "manager stopped")
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg *rest.Config, o *Options) error {
	log := ctrl.Log.WithName("setup")
	if _, err := o.ClusterRanges(); err != nil {
		return err
	}
	tlsOpts := []func(*tls.Config){func(c *tls.Config) { c.MinVersion = tls.VersionTLS12 }}
	if !o.EnableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}

	metricsOpts := metricsserver.Options{BindAddress: o.MetricsAddr, SecureServing: o.SecureMetrics, TLSOpts: tlsOpts}
	if o.SecureMetrics {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        scheme,
		Metrics:                       metricsOpts,
		HealthProbeBindAddress:        o.ProbeAddr,
		LeaderElection:                o.LeaderElect,
		LeaderElectionID:              o.LeaderElectionID,
		LeaderElectionReleaseOnCancel: true,
		WebhookServer: webhook.NewServer(webhook.Options{
			Port:    o.WebhookPort,
			CertDir: o.WebhookCertDir,
			TLSOpts: tlsOpts,
		}),
		Cache: cacheOptions(o),
	})
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}

	certsReady := make(chan struct{})
	if o.CertManager {
		close(certsReady)
	} else if err := addCertRotator(mgr, o, certsReady); err != nil {
		return err
	}

	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	webhooksUp := make(chan struct{})
	if err := mgr.AddReadyzCheck("webhook", func(req *http.Request) error {
		select {
		case <-webhooksUp:
			return mgr.GetWebhookServer().StartedChecker()(req)
		default:
			return errors.New("webhook certificate not ready")
		}
	}); err != nil {
		return err
	}

	for _, setup := range setupFuncs {
		if err := setup(ctx, mgr, o); err != nil {
			return err
		}
	}

	// The webhook server is added to the manager the first time it is asked for; doing that only
	// once the certificate files exist keeps it from failing at start on a fresh install.
	setupErr := make(chan error, 1)
	go func() {
		select {
		case <-certsReady:
		case <-ctx.Done():
			return
		}
		for _, setup := range webhookSetupFuncs {
			if err := setup(ctx, mgr, o); err != nil {
				setupErr <- err
				return
			}
		}
		close(webhooksUp)
		log.Info("webhooks registered")
	}()

	mgrCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case err := <-setupErr:
			log.Error(err, "registering webhooks")
			cancel()
		case <-mgrCtx.Done():
		}
	}()
	log.Info("starting manager", "version", version, "mesh", o.MeshName, "meshconfig", o.MeshConfig.String())
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

// cacheOptions keep the informers small: managed fields are dropped from every cached object,
// Pods (the largest population) keep only what the controllers read (controllers.TrimPod), and
// MeshConfig is watched only for the one object the operator serves.
func cacheOptions(o *Options) cache.Options {
	return cache.Options{
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Pod{}: {Transform: controllers.TrimPod},
			&configv1alpha2.MeshConfig{}: {
				Namespaces: map[string]cache.Config{o.MeshConfig.Namespace: {}},
				Field:      fields.OneTermEqualSelector("metadata.name", o.MeshConfig.Name),
			},
		},
	}
}

// addCertRotator lets the operator own its webhook certificate: it fills the Secret, which the
// Deployment mounts into the cert dir, and patches the CA bundle of both webhook configurations.
// Every replica runs it (no leader election) because every replica serves webhooks.
func addCertRotator(mgr ctrl.Manager, o *Options, ready chan struct{}) error {
	dns := fmt.Sprintf("%s.%s.svc", o.WebhookService, o.OperatorNamespace)
	return rotator.AddRotator(mgr, &rotator.CertRotator{
		SecretKey:             types.NamespacedName{Namespace: o.OperatorNamespace, Name: o.WebhookSecret},
		CertDir:               o.WebhookCertDir,
		CAName:                "meshkeeper-ca",
		CAOrganization:        "meshkeeper",
		DNSName:               dns,
		ExtraDNSNames:         []string{dns + ".cluster.local"},
		IsReady:               ready,
		RequireLeaderElection: false,
		EnableReadinessCheck:  true,
		Webhooks: []rotator.WebhookInfo{
			{Type: rotator.Mutating, Name: o.MutatingWebhookName},
			{Type: rotator.Validating, Name: o.ValidatingWebhookName},
		},
	})
}

func setupWebhooks(ctx context.Context, mgr ctrl.Manager, o *Options) error {
	ranges, err := o.ClusterRanges()
	if err != nil {
		return err
	}
	return webhooks.Setup(ctx, mgr, webhooks.Config{
		MeshName:          o.MeshName,
		OperatorNamespace: o.OperatorNamespace,
		MeshConfig:        o.MeshConfig,
		Cluster:           ranges,
		Injection: injection.Options{
			Version:                version,
			DefaultEnvoyImage:      o.EnvoyImage,
			DefaultInitImage:       o.InitImage,
			UseMeshConfigInitImage: o.UseMeshConfigInitImage,
			BootstrapSecret:        o.EnvoyBootstrapSecret,
		},
	})
}
