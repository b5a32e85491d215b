package manager

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/meshkeeper/meshkeeper/internal/redirect"
	"github.com/meshkeeper/meshkeeper/internal/version"
)

// Mode is what the operator is allowed to do to a cluster.
type Mode string

const (
	// ModeAudit judges pods and policies and writes only conditions, status and events. It
	// mutates no pod and needs no admission webhook, so it is safe beside any mesh, in any state.
	ModeAudit Mode = "audit"
	// ModeInject also injects the sidecar into pods of its own mesh's namespaces.
	ModeInject Mode = "inject"
)

// Options are the manager's flags.
type Options struct {
	Mode               Mode
	ValidatingWebhooks bool
	MetricsAddr        string
	SecureMetrics      bool
	ProbeAddr          string
	LeaderElect        bool
	LeaderElectionID   string
	EnableHTTP2        bool
	WebhookPort        int
	// ShutdownDelay is how long a stopping manager that serves webhooks keeps answering them.
	ShutdownDelay         time.Duration
	WebhookCertDir        string
	CertManager           bool
	WebhookSecret         string
	WebhookService        string
	MutatingWebhookName   string
	ValidatingWebhookName string
	OperatorNamespace     string
	MeshName              string
	// IstioNamespace is the Istio control plane's namespace (empty: Istio pods are not judged).
	IstioNamespace         string
	MeshConfigFlag         string
	ServiceCIDRs           []string
	PodCIDRs               []string
	EnvoyImage             string
	InitImage              string
	UseMeshConfigInitImage bool
	EnvoyBootstrapSecret   string
	DriftMaxConcurrent     int
	AutoRestartMinInterval time.Duration
	// Version is reported in logs and stamped on injected pods.
	Version string

	// legacyNamespace and legacyName are the older --mesh-namespace and --meshconfig-name.
	legacyNamespace, legacyName string
	// skipNameValidation lets one process run several managers in turn (tests): controller-runtime
	// otherwise refuses a controller name it has seen before. Not a flag.
	skipNameValidation bool
}

// Bind registers every flag on fs with its default.
func (o *Options) Bind(fs *flag.FlagSet) {
	o.Mode = ModeAudit
	fs.Func("mode", "audit (default): judge pods and policies, mutate no pod; inject: also inject the sidecar into the mesh's pods.", func(v string) error {
		switch m := Mode(strings.TrimSpace(v)); m {
		case ModeAudit, ModeInject:
			o.Mode = m
			return nil
		}
		return fmt.Errorf("must be %q or %q, not %q", ModeAudit, ModeInject, v)
	})
	fs.BoolVar(&o.ValidatingWebhooks, "validating-webhooks", false, "In audit mode, also serve the validating webhooks for MeshConfig, Egress and IngressBackend (inject mode always serves them).")
	fs.StringVar(&o.MetricsAddr, "metrics-bind-address", ":8443", "Address the metrics endpoint binds to (\"0\" disables it).")
	fs.BoolVar(&o.SecureMetrics, "metrics-secure", true, "Serve metrics over HTTPS, authenticated and authorized through the API server.")
	fs.StringVar(&o.ProbeAddr, "health-probe-bind-address", ":8081", "Address the health and readiness probes bind to.")
	fs.BoolVar(&o.LeaderElect, "leader-elect", false, "Elect a leader so that only one replica runs the controllers; every replica serves webhooks.")
	fs.StringVar(&o.LeaderElectionID, "leader-election-id", "meshkeeper.meshkeeper.io", "Name of the leader election Lease.")
	fs.BoolVar(&o.EnableHTTP2, "enable-http2", false, "Allow HTTP/2 on the webhook and metrics servers (off by default: HTTP/2 rapid reset, CVE-2023-44487).")
	fs.IntVar(&o.WebhookPort, "webhook-port", webhook.DefaultPort, "Port the webhook server listens on.")
	fs.DurationVar(&o.ShutdownDelay, "shutdown-delay", 5*time.Second,
		"When asked to stop, how long a manager serving webhooks keeps answering them (not ready meanwhile), so that the API server's calls do not reach a closed port before every kube-proxy has dropped the pod from the webhook Service. Keep it below the pod's terminationGracePeriodSeconds.")
	fs.StringVar(&o.WebhookCertDir, "webhook-cert-dir", "/tmp/k8s-webhook-server/serving-certs", "Directory holding the webhook's tls.crt and tls.key.")
	fs.BoolVar(&o.CertManager, "cert-manager", false, "Certificates come from cert-manager: do not create or rotate them, do not patch CA bundles.")
	fs.StringVar(&o.WebhookSecret, "webhook-secret-name", "meshkeeper-webhook-server-cert", "Secret (in the operator namespace) holding the webhook certificate and its CA.")
	fs.StringVar(&o.WebhookService, "webhook-service-name", "meshkeeper-webhook-service", "Service that fronts the webhook server; its DNS name goes into the certificate.")
	fs.StringVar(&o.MutatingWebhookName, "mutating-webhook-configuration", "meshkeeper-mutating-webhook-configuration", "MutatingWebhookConfiguration whose CA bundle is kept current (inject mode).")
	fs.StringVar(&o.ValidatingWebhookName, "validating-webhook-configuration", "meshkeeper-validating-webhook-configuration", "ValidatingWebhookConfiguration whose CA bundle is kept current.")
	fs.StringVar(&o.OperatorNamespace, "operator-namespace", envOr("POD_NAMESPACE", "meshkeeper-system"), "Namespace the operator runs in (never injected).")
	fs.StringVar(&o.IstioNamespace, "istio-namespace", "istio-system", "Namespace of the Istio control plane whose istio-sidecar-injector ConfigMaps hold the injector's values; Istio-injected pods are judged against them (read only). Empty turns the judging of Istio pods off.")
	fs.StringVar(&o.MeshName, "mesh-name", "osm", "Mesh name: namespaces labelled openservicemesh.io/monitored-by=<mesh-name> are meshed.")
	fs.StringVar(&o.MeshConfigFlag, "meshconfig", "", "The MeshConfig to serve, as namespace/name. When empty, the one MeshConfig in the cluster (Helm installs of OSM: osm-system/osm-mesh-config; the AKS add-on: kube-system/osm-mesh-config).")
	fs.StringVar(&o.legacyNamespace, "mesh-namespace", "", "Deprecated: use --meshconfig namespace/name.")
	fs.StringVar(&o.legacyName, "meshconfig-name", "", "Deprecated: use --meshconfig namespace/name.")
	fs.Func("service-cidr", "The cluster's Service CIDR, used to warn about exclusions that cover it (repeatable).", appendTo(&o.ServiceCIDRs))
	fs.Func("pod-cidr", "The cluster's Pod CIDR, used to warn about exclusions that cover it (repeatable).", appendTo(&o.PodCIDRs))
	fs.StringVar(&o.EnvoyImage, "envoy-image", "envoyproxy/envoy:v1.31.2", "Sidecar image when MeshConfig spec.sidecar.envoyImage is empty.")
	fs.StringVar(&o.InitImage, "init-image", "ghcr.io/meshkeeper/init:"+o.imageTag(), "Image of meshkeeper's init program, injected into every meshed pod.")
	fs.BoolVar(&o.UseMeshConfigInitImage, "use-meshconfig-init-image", false, "Inject MeshConfig spec.sidecar.initContainerImage instead of --init-image (only for images that contain meshkeeper-init; OSM's own init image does not).")
	fs.IntVar(&o.DriftMaxConcurrent, "drift-max-concurrent-reconciles", 8, "Pods evaluated in parallel by the drift controller.")
	fs.DurationVar(&o.AutoRestartMinInterval, "auto-restart-min-interval", 10*time.Minute,
		"Least time between two restarts of one workload by the opt-in auto-restart (annotation meshkeeper.io/auto-restart: \"true\"; inject mode only).")
	fs.StringVar(&o.EnvoyBootstrapSecret, "envoy-bootstrap-secret", "", "Secret (in each pod's namespace) mounted as the sidecar's bootstrap instead of the passthrough bootstrap meshkeeper renders (docs/sidecar.md); it must listen where the rules redirect (outbound 15001, inbound 15003).")
}

func (o *Options) versionOrDev() string {
	if o.Version == "" {
		return "dev"
	}
	return o.Version
}

// imageTag is the tag of the images of this build: the release, or "dev" for any other build
// (a pseudo-version such as v0.0.0-20261207004419-d51be1c8f1a2+dirty is no valid tag, and the
// images of a checkout are built as :dev).
func (o *Options) imageTag() string {
	if version.IsRelease(o.Version) {
		return o.Version
	}
	return "dev"
}

// Validate checks what flag parsing alone cannot, and folds the deprecated MeshConfig flags into
// --meshconfig.
func (o *Options) Validate() error {
	var errs []error
	if _, err := o.ClusterRanges(); err != nil {
		errs = append(errs, err)
	}
	if o.legacyNamespace != "" || o.legacyName != "" {
		if o.MeshConfigFlag != "" {
			errs = append(errs, errors.New("--meshconfig and the deprecated --mesh-namespace/--meshconfig-name cannot be combined"))
		} else {
			ns, name := o.legacyNamespace, o.legacyName
			if ns == "" {
				ns = "osm-system"
			}
			if name == "" {
				name = "osm-mesh-config"
			}
			o.MeshConfigFlag = ns + "/" + name
		}
	}
	if o.MeshConfigFlag != "" {
		if _, err := ParseMeshConfigRef(o.MeshConfigFlag); err != nil {
			errs = append(errs, err)
		}
	}
	if o.MeshName == "" {
		errs = append(errs, errors.New("--mesh-name must not be empty"))
	}
	return errors.Join(errs...)
}

// ParseMeshConfigRef reads --meshconfig's namespace/name.
func ParseMeshConfigRef(s string) (types.NamespacedName, error) {
	ns, name, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return types.NamespacedName{}, fmt.Errorf("--meshconfig %q: want namespace/name, for example kube-system/osm-mesh-config", s)
	}
	return types.NamespacedName{Namespace: ns, Name: name}, nil
}

// ServesWebhooks reports whether this manager runs a webhook server at all.
func (o *Options) ServesWebhooks() bool {
	return o.Mode == ModeInject || o.ValidatingWebhooks
}

// ClusterRanges returns the configured Service and Pod CIDRs, parsed.
func (o *Options) ClusterRanges() (redirect.ClusterRanges, error) {
	return redirect.ParseClusterRanges(o.ServiceCIDRs, o.PodCIDRs)
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
