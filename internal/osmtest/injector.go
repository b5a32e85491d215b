package osmtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Names and values osm-injector v1.2.4 uses.
const (
	DefaultMeshName          = "osm"
	DefaultNamespace         = "osm-system"
	DefaultMeshConfigName    = "osm-mesh-config"
	WebhookConfigPrefix      = "osm-webhook"
	WebhookName              = "osm-inject.k8s.io"
	WebhookPath              = "/mutate-pod-creation"
	DefaultWebhookTimeout    = int32(20)
	InitContainerName        = "osm-init"
	SidecarName              = "envoy"
	LabelProxyUUID           = "osm-proxy-uuid"
	BootstrapSecretPrefix    = "envoy-bootstrap-config-"
	BootstrapVolumeName      = "envoy-bootstrap-config-volume"
	BootstrapMountPath       = "/etc/envoy"
	BootstrapFile            = "bootstrap.yaml"
	LabelMonitoredBy         = "openservicemesh.io/monitored-by"
	LabelIgnore              = "openservicemesh.io/ignore"
	AnnotationSidecarInject  = "openservicemesh.io/sidecar-injection"
	AnnotationMetrics        = "openservicemesh.io/metrics"
	DefaultEnvoyLogLevel     = "error"
	DefaultInitImage         = "openservicemesh/init:" + Version
	DefaultEnvoyImage        = "envoyproxy/envoy-distroless:v1.22.2@sha256:541d31419b95e3c62d8cc0967db9cdb4ad2782cc08faa6f15f04c081200e324a"
	labelAppInstance         = "app.kubernetes.io/instance"
	labelAppVersion          = "app.kubernetes.io/version"
	probeAnnotation          = "osmtest.meshkeeper.io/probe"
	secretKeyTLSSDS          = "tls_certificate_sds_secret.yaml"
	secretKeyValidationSDS   = "validation_context_sds_secret.yaml"
	secretKeyXDSCACert       = "cacert.pem"
	secretKeyXDSCert         = "sds_cert.pem"
	secretKeyXDSKey          = "sds_key.pem"
	xdsPort                  = 15128
	prometheusScrapePath     = "/stats/prometheus"
	annotationPromScrape     = "prometheus.io/scrape"
	annotationPromPort       = "prometheus.io/port"
	annotationPromPath       = "prometheus.io/path"
	contentTypeJSON          = "application/json"
	maxAdmissionRequestBytes = 8 << 20
)

// MeshConfigGVR is where OSM's injector reads its MeshConfig.
var MeshConfigGVR = schema.GroupVersionResource{Group: "config.openservicemesh.io", Version: "v1alpha2", Resource: "meshconfigs"}

// Options configure a fake osm-injector. The zero value is OSM's Helm defaults.
type Options struct {
	// MeshName is OSM's mesh name (default "osm"): the configuration is osm-webhook-<MeshName>
	// and it selects namespaces labelled openservicemesh.io/monitored-by=<MeshName>.
	MeshName string
	// Namespace is OSM's control-plane namespace (default "osm-system"): never injected, and
	// where the MeshConfig lives unless MeshConfig says otherwise.
	Namespace string
	// MeshConfig is read at every admission (default <Namespace>/osm-mesh-config). The AKS
	// add-on keeps it in kube-system.
	MeshConfig types.NamespacedName
	// TimeoutSeconds is the webhook's timeout (default 20, the chart's).
	TimeoutSeconds int32
}

func (o *Options) defaults() {
	if o.MeshName == "" {
		o.MeshName = DefaultMeshName
	}
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.MeshConfig.Name == "" {
		o.MeshConfig.Name = DefaultMeshConfigName
	}
	if o.MeshConfig.Namespace == "" {
		o.MeshConfig.Namespace = o.Namespace
	}
	if o.TimeoutSeconds == 0 {
		o.TimeoutSeconds = DefaultWebhookTimeout
	}
}

// Injector is a stand-in for OSM v1.2.4's osm-injector: an HTTPS admission server on 127.0.0.1
// and the MutatingWebhookConfiguration osm-webhook-<mesh> that points the API server at it (by
// URL, with the fake's own CA as caBundle; OSM points at its Service on port 9090). It answers
// pod creation as OSM does:
//   - selection: the configuration's namespaceSelector is OSM's, and the server again skips
//     host-network pods, kube-system, kube-public and the control-plane namespace, then applies
//     the sidecar-injection annotation (pod overrides namespace; enabled|yes|true,
//     disabled|no|false; anything else is an error);
//   - the osm-proxy-uuid label, the envoy-bootstrap-config-volume Secret volume, the osm-init
//     init container (the iptables-restore here-document of InitScript, with the MeshConfig
//     read live and merged with the pod's annotations by MergeRules), the envoy container, and
//     the Prometheus annotations when the namespace enables metrics;
//   - a Secret envoy-bootstrap-config-<uuid> in the pod's namespace, created during admission
//     (not on dry runs) before anything can still fail, and owned by nothing, so a pod refused
//     later leaves it behind as OSM's does; an already-injected pod (kubectl debug copies) gets
//     a new uuid and a copy of its old Secret;
//   - errors are answered like OSM's, without the request's uid, so the API server reports a
//     failed webhook call and failurePolicy Fail refuses the pod.
//
// Left out: health probe rewriting and the osm-healthcheck container (pods with probes keep
// them unchanged), Windows pods, and a real Envoy bootstrap (the Secret has OSM's keys, a
// certificate signed by the fake's CA for OSM's xDS common name, and a minimal bootstrap naming
// that node).
type Injector struct {
	opts   Options
	client client.Client
	ca     *authority
	srv    *http.Server
	url    string
	served chan error

	mu         sync.Mutex
	admissions int
	injections int
	secrets    []types.NamespacedName
	probesSeen map[string]bool
	probeNS    string
}

// Start serves the admission endpoint and registers (creates, or updates as OSM does) the
// MutatingWebhookConfiguration. The API server starts calling it shortly after: use WaitReady
// before relying on it. Call Stop when done.
func Start(ctx context.Context, cfg *rest.Config, opts Options) (*Injector, error) {
	opts.defaults()
	c, err := client.New(cfg, client.Options{Scheme: clientgoscheme.Scheme})
	if err != nil {
		return nil, err
	}
	ca, err := newAuthority()
	if err != nil {
		return nil, err
	}
	ip := net.IPv4(127, 0, 0, 1)
	tlsCfg, err := ca.serverTLS(ip)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
	if err != nil {
		return nil, err
	}
	inj := &Injector{
		opts:       opts,
		client:     c,
		ca:         ca,
		url:        fmt.Sprintf("https://%s%s", ln.Addr().String(), WebhookPath),
		served:     make(chan error, 1),
		probesSeen: map[string]bool{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc(WebhookPath, inj.podCreationHandler)
	inj.srv = &http.Server{Handler: mux, TLSConfig: tlsCfg, ReadHeaderTimeout: 10 * time.Second}
	go func() { inj.served <- inj.srv.ServeTLS(ln, "", "") }()

	if err := inj.register(ctx); err != nil {
		return nil, errors.Join(err, inj.shutdown())
	}
	return inj, nil
}

// ConfigurationName is the MutatingWebhookConfiguration's name, osm-webhook-<mesh>.
func (i *Injector) ConfigurationName() string { return WebhookConfigPrefix + "-" + i.opts.MeshName }

// MeshName is the mesh this injector serves.
func (i *Injector) MeshName() string { return i.opts.MeshName }

// URL is where the API server calls the fake.
func (i *Injector) URL() string { return i.url }

// Admissions counts the pod admissions received (WaitReady's probes excluded), injected or not.
func (i *Injector) Admissions() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.admissions
}

// Injections counts the admissions answered with an injection patch.
func (i *Injector) Injections() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.injections
}

// Secrets lists the bootstrap Secrets created so far, in creation order.
func (i *Injector) Secrets() []types.NamespacedName {
	i.mu.Lock()
	defer i.mu.Unlock()
	return slices.Clone(i.secrets)
}

// Configuration is the MutatingWebhookConfiguration as OSM v1.2.4 registers it, pointed at url.
func Configuration(opts Options, url string, caBundle []byte) *admissionregistrationv1.MutatingWebhookConfiguration {
	opts.defaults()
	path := url
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{
			Name: WebhookConfigPrefix + "-" + opts.MeshName,
			Labels: map[string]string{
				LabelAppName:     AppNameValue,
				labelAppInstance: opts.MeshName,
				labelAppVersion:  Version,
				"app":            "osm-injector",
			},
		},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:          WebhookName,
			ClientConfig:  admissionregistrationv1.WebhookClientConfig{URL: &path, CABundle: caBundle},
			FailurePolicy: ptr.To(admissionregistrationv1.Fail),
			MatchPolicy:   ptr.To(admissionregistrationv1.Exact),
			NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{LabelMonitoredBy: opts.MeshName},
				MatchExpressions: []metav1.LabelSelectorRequirement{
					{Key: LabelIgnore, Operator: metav1.LabelSelectorOpDoesNotExist},
					{Key: "name", Operator: metav1.LabelSelectorOpNotIn, Values: []string{opts.Namespace}},
					{Key: "control-plane", Operator: metav1.LabelSelectorOpDoesNotExist},
				},
			},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule: admissionregistrationv1.Rule{
					APIGroups: []string{"*"}, APIVersions: []string{"v1"}, Resources: []string{"pods"},
				},
			}},
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNoneOnDryRun),
			TimeoutSeconds:          ptr.To(opts.TimeoutSeconds),
			AdmissionReviewVersions: []string{"v1"},
		}},
	}
}

func (i *Injector) register(ctx context.Context) error {
	want := Configuration(i.opts, i.url, i.ca.certPEM)
	err := i.client.Create(ctx, want)
	if !apierrors.IsAlreadyExists(err) {
		return err
	}
	existing := &admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := i.client.Get(ctx, client.ObjectKeyFromObject(want), existing); err != nil {
		return err
	}
	want.ObjectMeta = existing.ObjectMeta
	return i.client.Update(ctx, want)
}

// WaitReady returns once the API server calls the fake for pods in namespace, which must be
// selected by the configuration (labelled openservicemesh.io/monitored-by=<mesh>). It sends
// dry-run pods annotated openservicemesh.io/sidecar-injection=disabled, which neither count as
// admissions nor create Secrets. Stop uses the same namespace to wait until the API server has
// stopped calling.
func (i *Injector) WaitReady(ctx context.Context, namespace string) error {
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		return i.probe(ctx, namespace)
	})
	if err != nil {
		return fmt.Errorf("the API server never called %s for namespace %s: %w", i.ConfigurationName(), namespace, err)
	}
	i.mu.Lock()
	i.probeNS = namespace
	i.mu.Unlock()
	return nil
}

// probe creates one dry-run pod and reports whether the fake saw it.
func (i *Injector) probe(ctx context.Context, namespace string) (bool, error) {
	name := "osmtest-probe-" + string(uuid.NewUUID())[:8]
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Annotations: map[string]string{
			probeAnnotation: "true", AnnotationSidecarInject: "disabled",
		}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "probe", Image: "probe"}}},
	}
	if err := i.client.Create(ctx, pod, client.DryRunAll); err != nil {
		return false, fmt.Errorf("dry-run probe pod in %s: %w", namespace, err)
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	seen := i.probesSeen[name]
	delete(i.probesSeen, name)
	return seen, nil
}

// Stop deletes the MutatingWebhookConfiguration, waits (when WaitReady was used) until the API
// server no longer calls the fake, and shuts the server down. Pods created afterwards are not
// touched by it.
func (i *Injector) Stop(ctx context.Context) error {
	var errs []error
	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: i.ConfigurationName()}}
	if err := i.client.Delete(ctx, cfg); err != nil && !apierrors.IsNotFound(err) {
		errs = append(errs, err)
	}
	i.mu.Lock()
	ns := i.probeNS
	i.mu.Unlock()
	if ns != "" && len(errs) == 0 {
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			seen, err := i.probe(ctx, ns)
			if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) {
				// The namespace is gone or terminating: it cannot tell any more. Give the API
				// server's configuration watch a moment instead.
				time.Sleep(time.Second)
				return true, nil
			}
			return !seen, err
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("the API server still calls %s after its deletion: %w", i.ConfigurationName(), err))
		}
	}
	return errors.Join(append(errs, i.shutdown())...)
}

func (i *Injector) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := i.srv.Shutdown(ctx)
	if served := <-i.served; !errors.Is(served, http.ErrServerClosed) {
		err = errors.Join(err, served)
	}
	return err
}

// podCreationHandler speaks AdmissionReview v1 like OSM's: JSON only, the review's type echoed.
func (i *Injector) podCreationHandler(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != contentTypeJSON {
		http.Error(w, fmt.Sprintf("Invalid content type %s; Expected %s", ct, contentTypeJSON), http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxAdmissionRequestBytes))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var review admissionv1.AdmissionReview
	var resp *admissionv1.AdmissionResponse
	if err := json.Unmarshal(body, &review); err != nil {
		resp = admissionError(err)
	} else {
		resp = i.mutate(r.Context(), review.Request)
	}
	out := admissionv1.AdmissionReview{TypeMeta: review.TypeMeta, Response: resp}
	data, err := json.Marshal(&out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentTypeJSON)
	_, _ = w.Write(data)
}

// admissionError is OSM's error answer: a message and no uid.
func admissionError(err error) *admissionv1.AdmissionResponse {
	return &admissionv1.AdmissionResponse{Result: &metav1.Status{Message: err.Error()}}
}

func (i *Injector) mutate(ctx context.Context, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	if req == nil {
		return admissionError(errors.New("nil admission request"))
	}
	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		return admissionError(err)
	}
	resp := &admissionv1.AdmissionResponse{Allowed: true, UID: req.UID}
	if pod.Annotations[probeAnnotation] != "" {
		i.mu.Lock()
		i.probesSeen[pod.Name] = true
		i.mu.Unlock()
		return resp
	}
	i.mu.Lock()
	i.admissions++
	i.mu.Unlock()

	inject, err := i.mustInject(ctx, &pod, req.Namespace)
	if err != nil {
		return admissionError(err)
	}
	if !inject {
		return resp
	}
	patch, err := i.createPatch(ctx, &pod, req)
	if err != nil {
		return admissionError(err)
	}
	resp.Patch = patch
	resp.PatchType = ptr.To(admissionv1.PatchTypeJSONPatch)
	i.mu.Lock()
	i.injections++
	i.mu.Unlock()
	return resp
}

// mustInject is OSM's decision: never host-network pods or the system and control-plane
// namespaces, only monitored namespaces, then the pod's annotation over the namespace's.
func (i *Injector) mustInject(ctx context.Context, pod *corev1.Pod, namespace string) (bool, error) {
	if pod.Spec.HostNetwork {
		return false, nil
	}
	if namespace == metav1.NamespaceSystem || namespace == metav1.NamespacePublic || namespace == i.opts.Namespace {
		return false, nil
	}
	ns := &corev1.Namespace{}
	if err := i.client.Get(ctx, types.NamespacedName{Name: namespace}, ns); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil // not monitored as far as OSM's namespace cache knows
		}
		return false, err
	}
	if ns.Labels[LabelMonitoredBy] != i.opts.MeshName {
		return false, nil
	}
	podSet, podOn, err := injectionAnnotation(pod.Annotations)
	if err != nil {
		return false, err
	}
	nsSet, nsOn, err := injectionAnnotation(ns.Annotations)
	if err != nil {
		return false, err
	}
	switch {
	case podSet && podOn:
		return true, nil
	case nsSet && nsOn:
		return !podSet || podOn, nil
	}
	return false, nil
}

func injectionAnnotation(ann map[string]string) (set, on bool, err error) {
	v, ok := ann[AnnotationSidecarInject]
	if !ok {
		return false, false, nil
	}
	switch strings.ToLower(v) {
	case "enabled", "yes", "true":
		return true, true, nil
	case "disabled", "no", "false":
		return true, false, nil
	}
	return true, false, fmt.Errorf("Invalid annotation value for key %q: %s", AnnotationSidecarInject, v) //nolint:staticcheck // OSM's message, capitalised as OSM wrote it
}

// meshConfigSpec is the part of OSM's MeshConfig v1alpha2 the injector reads.
type meshConfigSpec struct {
	Sidecar struct {
		EnablePrivilegedInitContainer bool                        `json:"enablePrivilegedInitContainer"`
		LogLevel                      string                      `json:"logLevel"`
		EnvoyImage                    string                      `json:"envoyImage"`
		InitContainerImage            string                      `json:"initContainerImage"`
		Resources                     corev1.ResourceRequirements `json:"resources"`
		LocalProxyMode                string                      `json:"localProxyMode"`
	} `json:"sidecar"`
	Traffic struct {
		OutboundIPRangeExclusionList  []string `json:"outboundIPRangeExclusionList"`
		OutboundIPRangeInclusionList  []string `json:"outboundIPRangeInclusionList"`
		OutboundPortExclusionList     []int    `json:"outboundPortExclusionList"`
		InboundPortExclusionList      []int    `json:"inboundPortExclusionList"`
		NetworkInterfaceExclusionList []string `json:"networkInterfaceExclusionList"`
	} `json:"traffic"`
}

// meshConfig reads the MeshConfig as it is now; a missing one reads as empty, as OSM's
// configurator falls back to defaults.
func (i *Injector) meshConfig(ctx context.Context) (*meshConfigSpec, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(MeshConfigGVR.GroupVersion().WithKind("MeshConfig"))
	spec := &meshConfigSpec{}
	if err := i.client.Get(ctx, i.opts.MeshConfig, u); err != nil {
		if apierrors.IsNotFound(err) {
			return spec, nil
		}
		return nil, fmt.Errorf("reading MeshConfig %s: %w", i.opts.MeshConfig, err)
	}
	raw, err := json.Marshal(u.Object["spec"])
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, spec); err != nil {
		return nil, fmt.Errorf("decoding MeshConfig %s: %w", i.opts.MeshConfig, err)
	}
	return spec, nil
}

func (i *Injector) createPatch(ctx context.Context, pod *corev1.Pod, req *admissionv1.AdmissionRequest) ([]byte, error) {
	namespace := req.Namespace
	mc, err := i.meshConfig(ctx)
	if err != nil {
		return nil, err
	}
	proxyUUID := string(uuid.NewUUID())
	commonName := fmt.Sprintf("%s.sidecar.%s.%s.cluster.local", proxyUUID, pod.Spec.ServiceAccountName, namespace)
	secretName := BootstrapSecretPrefix + proxyUUID
	oldUUID, alreadyInjected := proxyUUIDOf(pod)
	switch {
	case req.DryRun != nil && *req.DryRun:
		// sideEffects NoneOnDryRun: no Secret.
	case alreadyInjected:
		if err := i.copyBootstrap(ctx, namespace, BootstrapSecretPrefix+oldUUID, secretName, commonName); err != nil {
			return nil, err
		}
	default:
		if err := i.createBootstrap(ctx, namespace, secretName, commonName); err != nil {
			return nil, err
		}
	}

	metrics, err := i.metricsEnabled(ctx, namespace)
	if err != nil {
		return nil, err
	}
	if metrics {
		if pod.Annotations == nil {
			pod.Annotations = map[string]string{}
		}
		pod.Annotations[annotationPromScrape] = "true"
		pod.Annotations[annotationPromPort] = strconv.Itoa(MetricsPort)
		pod.Annotations[annotationPromPath] = prometheusScrapePath
	}
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Labels[LabelProxyUUID] = proxyUUID

	if alreadyInjected {
		for k := range pod.Spec.Volumes {
			if pod.Spec.Volumes[k].Name == BootstrapVolumeName {
				pod.Spec.Volumes[k] = bootstrapVolume(secretName)
				break
			}
		}
		return patchFor(req.Object.Raw, pod)
	}
	pod.Spec.Volumes = append(pod.Spec.Volumes, bootstrapVolume(secretName))

	global := InitRules{
		LocalProxyMode:             mc.Sidecar.LocalProxyMode,
		OutboundIPRangeExclusions:  mc.Traffic.OutboundIPRangeExclusionList,
		OutboundIPRangeInclusions:  mc.Traffic.OutboundIPRangeInclusionList,
		OutboundPortExclusions:     mc.Traffic.OutboundPortExclusionList,
		InboundPortExclusions:      mc.Traffic.InboundPortExclusionList,
		NetworkInterfaceExclusions: mc.Traffic.NetworkInterfaceExclusionList,
	}
	rules, err := MergeRules(global, pod.Annotations)
	if err != nil {
		return nil, err
	}
	pod.Spec.InitContainers = append(pod.Spec.InitContainers, initContainer(mc, rules))
	pod.Spec.Containers = append(pod.Spec.Containers, sidecar(mc, pod))
	return patchFor(req.Object.Raw, pod)
}

func patchFor(original []byte, pod *corev1.Pod) ([]byte, error) {
	current, err := json.Marshal(pod)
	if err != nil {
		return nil, err
	}
	ops, err := jsonpatch.CreatePatch(original, current)
	if err != nil {
		return nil, err
	}
	return json.Marshal(ops)
}

func proxyUUIDOf(pod *corev1.Pod) (string, bool) {
	for _, v := range pod.Spec.Volumes {
		if v.Name == BootstrapVolumeName && v.Secret != nil {
			return strings.TrimPrefix(v.Secret.SecretName, BootstrapSecretPrefix), true
		}
	}
	return "", false
}

func (i *Injector) metricsEnabled(ctx context.Context, namespace string) (bool, error) {
	ns := &corev1.Namespace{}
	if err := i.client.Get(ctx, types.NamespacedName{Name: namespace}, ns); err != nil {
		return false, err
	}
	v, ok := ns.Annotations[AnnotationMetrics]
	if !ok || v == "" {
		return false, nil
	}
	switch strings.ToLower(v) {
	case "enabled", "yes", "true":
		return true, nil
	case "disabled", "no", "false":
		return false, nil
	}
	return false, fmt.Errorf("invalid value %q for annotation %s on namespace %s", v, AnnotationMetrics, namespace)
}

func bootstrapVolume(secretName string) corev1.Volume {
	return corev1.Volume{Name: BootstrapVolumeName, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: secretName}}}
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func initContainer(mc *meshConfigSpec, rules InitRules) corev1.Container {
	return corev1.Container{
		Name:            InitContainerName,
		Image:           orDefault(mc.Sidecar.InitContainerImage, DefaultInitImage),
		ImagePullPolicy: corev1.PullIfNotPresent,
		SecurityContext: &corev1.SecurityContext{
			Privileged:   ptr.To(mc.Sidecar.EnablePrivilegedInitContainer),
			Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN"}},
			RunAsNonRoot: ptr.To(false),
			RunAsUser:    ptr.To(int64(0)),
		},
		Command: []string{"/bin/sh"},
		Args:    []string{"-c", InitScript(rules)},
		Env: []corev1.EnvVar{{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "status.podIP"},
		}}},
	}
}

func sidecar(mc *meshConfigSpec, pod *corev1.Pod) corev1.Container {
	field := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
	}
	return corev1.Container{
		Name:            SidecarName,
		Image:           orDefault(mc.Sidecar.EnvoyImage, DefaultEnvoyImage),
		ImagePullPolicy: corev1.PullIfNotPresent,
		SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false), RunAsUser: ptr.To(int64(ProxyUID))},
		Ports: []corev1.ContainerPort{
			{Name: "proxy-admin", ContainerPort: AdminPort},
			{Name: "proxy-inbound", ContainerPort: InboundListenerPort},
			{Name: "proxy-metrics", ContainerPort: MetricsPort},
		},
		VolumeMounts: []corev1.VolumeMount{{Name: BootstrapVolumeName, ReadOnly: true, MountPath: BootstrapMountPath}},
		Command:      []string{"envoy"},
		Resources:    mc.Sidecar.Resources,
		Args: []string{
			"--log-level", orDefault(mc.Sidecar.LogLevel, DefaultEnvoyLogLevel),
			"--config-path", BootstrapMountPath + "/" + BootstrapFile,
			"--service-cluster", pod.Spec.ServiceAccountName + "." + pod.Namespace,
		},
		Env: []corev1.EnvVar{
			field("POD_UID", "metadata.uid"),
			field("POD_NAME", "metadata.name"),
			field("POD_NAMESPACE", "metadata.namespace"),
			field("POD_IP", "status.podIP"),
			field("SERVICE_ACCOUNT", "spec.serviceAccountName"),
		},
	}
}

func (i *Injector) createBootstrap(ctx context.Context, namespace, name, commonName string) error {
	certPEM, keyPEM, err := i.ca.issue(commonName)
	if err != nil {
		return err
	}
	data := map[string][]byte{
		BootstrapFile:          []byte(bootstrapYAML(commonName, i.opts.Namespace)),
		secretKeyTLSSDS:        []byte(sdsYAML("tls_certificate", "service-cert")),
		secretKeyValidationSDS: []byte(sdsYAML("validation_context", "root-cert")),
		secretKeyXDSCACert:     i.ca.certPEM,
		secretKeyXDSCert:       certPEM,
		secretKeyXDSKey:        keyPEM,
	}
	return i.saveBootstrap(ctx, namespace, name, data)
}

func (i *Injector) copyBootstrap(ctx context.Context, namespace, from, name, commonName string) error {
	old := &corev1.Secret{}
	if err := i.client.Get(ctx, types.NamespacedName{Namespace: namespace, Name: from}, old); err != nil {
		return err
	}
	certPEM, keyPEM, err := i.ca.issue(commonName)
	if err != nil {
		return err
	}
	data := map[string][]byte{}
	for k, v := range old.Data {
		data[k] = v
	}
	data[BootstrapFile] = []byte(bootstrapYAML(commonName, i.opts.Namespace))
	data[secretKeyXDSCert], data[secretKeyXDSKey] = certPEM, keyPEM
	return i.saveBootstrap(ctx, namespace, name, data)
}

func (i *Injector) saveBootstrap(ctx context.Context, namespace, name string, data map[string][]byte) error {
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: map[string]string{
			LabelAppName: AppNameValue, labelAppInstance: i.opts.MeshName, labelAppVersion: Version,
		}},
		Data: data,
	}
	if err := i.client.Create(ctx, s); err != nil {
		return err
	}
	i.mu.Lock()
	i.secrets = append(i.secrets, client.ObjectKeyFromObject(s))
	i.mu.Unlock()
	return nil
}

// bootstrapYAML is a minimal stand-in for OSM's Envoy bootstrap: the node named by the xDS
// certificate and an ADS cluster at osm-controller. It is not OSM's full bootstrap and was
// never run by an Envoy.
func bootstrapYAML(nodeID, controlPlaneNamespace string) string {
	return fmt.Sprintf(`admin:
  access_log_path: /dev/stdout
  address:
    socket_address:
      address: 127.0.0.1
      port_value: %d
node:
  id: %s
dynamic_resources:
  ads_config:
    api_type: GRPC
    transport_api_version: V3
    grpc_services:
    - envoy_grpc:
        cluster_name: osm-controller
  cds_config:
    ads: {}
    resource_api_version: V3
  lds_config:
    ads: {}
    resource_api_version: V3
static_resources:
  clusters:
  - name: osm-controller
    connect_timeout: 0.25s
    type: LOGICAL_DNS
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config:
          http2_protocol_options: {}
    load_assignment:
      cluster_name: osm-controller
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address:
                address: osm-controller.%s.svc.cluster.local
                port_value: %d
`, AdminPort, nodeID, controlPlaneNamespace, xdsPort)
}

func sdsYAML(kind, name string) string {
	return fmt.Sprintf("resources:\n- \"@type\": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret\n  name: %s\n  %s: {}\n", name, kind)
}
