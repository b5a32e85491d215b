package diagnose

import (
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	"github.com/meshkeeper/meshkeeper/internal/injection"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// Unknown says why a fact could not be gathered ("offline mode", "forbidden: ..."). The zero
// value means the fact was gathered; a nil object next to it then means it does not exist.
type Unknown string

// PodInput is everything DiagnosePod looks at. The gatherer fills what it could read and says
// why for the rest; no check ever turns a missing fact into a failure.
type PodInput struct {
	Pod *corev1.Pod

	Namespace        *corev1.Namespace
	NamespaceUnknown Unknown

	// MeshConfigRef names the MeshConfig that was looked for; MeshConfig is nil when it does
	// not exist. MeshConfigSource is where it came from (a file name in offline mode).
	MeshConfigRef     types.NamespacedName
	MeshConfig        *configv1alpha2.MeshConfig
	MeshConfigUnknown Unknown
	MeshConfigSource  string

	// Rules, when set, replace the init container spec as the rules the pod runs (for example
	// iptables-save output captured inside the pod). RulesSource names them in messages and
	// RulesErr is the parse error when they could not be read.
	Rules       *redirect.Parsed
	RulesSource string
	RulesErr    error

	// InitLog is the last line the redirection init container logged, read only when it failed.
	InitLog        string
	InitLogUnknown Unknown

	// CRDs maps the names of the CustomResourceDefinitions found to whether they are
	// Established.
	CRDs        map[string]bool
	CRDsUnknown Unknown

	// Mutating and Validating are the webhook configurations found. Each kind is listed on its
	// own, so a refusal for one leaves the other's check running; WebhooksUnknown says why
	// neither could be read (offline mode).
	Mutating          []admissionregistrationv1.MutatingWebhookConfiguration
	Validating        []admissionregistrationv1.ValidatingWebhookConfiguration
	MutatingUnknown   Unknown
	ValidatingUnknown Unknown
	WebhooksUnknown   Unknown
	// Services are the webhook Services that exist, keyed namespace/name; nil means unknown.
	Services map[types.NamespacedName]bool

	// OperatorNamespace is where the operator's Deployment was looked for; Deployments are the
	// Deployments found there that belong to meshkeeper.
	OperatorNamespace string
	Deployments       []appsv1.Deployment
	OperatorUnknown   Unknown

	Selection injection.SelectOptions
	Now       time.Time

	// For Istio pods: the injector ConfigMap of the pod's revision in IstioNamespace (nil when it
	// does not exist, IstioInjectorUnknown says why it was not read), and, for istio-cni pods,
	// the annotations of the workload's pod template (nil when unknown).
	IstioNamespace       string
	IstioInjector        *corev1.ConfigMap
	IstioInjectorUnknown Unknown
	IstioTemplate        map[string]string
}

// RequiredCRDs are the kinds meshkeeper serves; without them nothing can be configured.
var RequiredCRDs = []string{
	"meshconfigs.config.openservicemesh.io",
	"egresses.policy.openservicemesh.io",
	"ingressbackends.policy.openservicemesh.io",
}

// WebhookSuffix ends the name of every admission webhook meshkeeper registers; configurations
// are recognised by it so that a kustomize name prefix does not matter.
const WebhookSuffix = ".meshkeeper.io"

// OperatorLabel selects the operator's Deployment.
const (
	OperatorLabelKey   = "app.kubernetes.io/name"
	OperatorLabelValue = "meshkeeper"
)
