package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
)

// Limits on list sizes. OSM had none; bounded lists keep CEL validation within the apiserver's
// cost budget and keep rendered rule sets small enough to reason about.
const (
	// MaxIPRanges bounds outboundIPRangeExclusionList.
	MaxIPRanges = 64
	// MaxPorts bounds outboundPortExclusionList and inboundPortExclusionList.
	MaxPorts = 64
	// MaxDriftedPods bounds status.driftedPods.
	MaxDriftedPods = 20
)

// Sidecar log levels accepted by sidecar.logLevel (Envoy's levels, as OSM accepted them).
const (
	LogLevelTrace    = "trace"
	LogLevelDebug    = "debug"
	LogLevelInfo     = "info"
	LogLevelWarning  = "warning"
	LogLevelWarn     = "warn"
	LogLevelError    = "error"
	LogLevelCritical = "critical"
	LogLevelOff      = "off"
)

// The parts of the schema that v1alpha2 did not change are the v1alpha2 types themselves: both
// versions are served from one stored object with conversion None, so these parts must stay
// identical, and sharing them makes that structural rather than a matter of keeping copies in step.
type (
	ExternalAuthzSpec      = v1alpha2.ExternalAuthzSpec
	ObservabilitySpec      = v1alpha2.ObservabilitySpec
	TracingSpec            = v1alpha2.TracingSpec
	CertificateSpec        = v1alpha2.CertificateSpec
	IngressGatewayCertSpec = v1alpha2.IngressGatewayCertSpec
	FeatureFlags           = v1alpha2.FeatureFlags
	PodSummary             = v1alpha2.PodSummary
	MeshConfigStatus       = v1alpha2.MeshConfigStatus
)

// MeshConfigSpec is OSM's mesh-wide configuration. Every field is optional because OSM manifests
// set only some of them; an absent field means OSM's documented default.
type MeshConfigSpec struct {
	// sidecar configures the proxy sidecar and the init container injected into meshed pods.
	// +optional
	Sidecar SidecarSpec `json:"sidecar,omitempty"`

	// traffic configures interception and policy mode.
	// +optional
	Traffic TrafficSpec `json:"traffic,omitempty"`

	// observability configures logging, the debug server and tracing.
	// +optional
	Observability ObservabilitySpec `json:"observability,omitempty"`

	// certificate configures certificates issued to proxies.
	// +optional
	Certificate CertificateSpec `json:"certificate,omitempty"`

	// featureFlags switches optional behaviour.
	// +optional
	FeatureFlags FeatureFlags `json:"featureFlags,omitempty"`
}

// SidecarSpec configures what is injected into meshed pods. Changes reach only pods created after
// them, which is why meshkeeper reports drift.
type SidecarSpec struct {
	// enablePrivilegedInitContainer runs the init container privileged; when false it only gets
	// NET_ADMIN (and NET_RAW).
	// +optional
	EnablePrivilegedInitContainer bool `json:"enablePrivilegedInitContainer,omitempty"`

	// logLevel is the proxy's log level: trace, debug, info, warning, warn, error, critical or off.
	// Absent means error.
	// +optional
	// +kubebuilder:validation:Enum=trace;debug;info;warning;warn;error;critical;off
	LogLevel string `json:"logLevel,omitempty"`

	// envoyImage is the proxy image for Linux nodes.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	EnvoyImage string `json:"envoyImage,omitempty"`

	// envoyWindowsImage is the proxy image for Windows nodes.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	EnvoyWindowsImage string `json:"envoyWindowsImage,omitempty"`

	// initContainerImage is the image of the init container that installs the redirection rules.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	InitContainerImage string `json:"initContainerImage,omitempty"`

	// maxDataPlaneConnections caps proxy connections to the control plane; 0 means no limit.
	// +optional
	// +kubebuilder:validation:Minimum=0
	MaxDataPlaneConnections int32 `json:"maxDataPlaneConnections,omitempty"`

	// configResyncInterval is how often proxy configuration is pushed again, as a Go duration
	// ("0s" disables periodic pushes).
	// +optional
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^(0|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$`
	ConfigResyncInterval string `json:"configResyncInterval,omitempty"`

	// resources are the sidecar's compute resources.
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`
}

// TrafficSpec configures which traffic the sidecar intercepts. The exclusion lists are merged with
// pod annotations at admission and rendered into the init container's rules.
type TrafficSpec struct {
	// enableEgress lets meshed pods reach any destination outside the mesh. When false, only what
	// Egress policies allow leaves the mesh.
	// +optional
	EnableEgress bool `json:"enableEgress,omitempty"`

	// outboundIPRangeExclusionList lists destination CIDRs (IPv4 or IPv6) that bypass the proxy.
	// Each entry is parsed, not pattern-matched: OSM's unanchored pattern let shell text through.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=43
	// +kubebuilder:validation:items:XValidation:rule="isCIDR(self)",message="must be a CIDR such as 10.0.0.0/8 or fd00::/8"
	OutboundIPRangeExclusionList []string `json:"outboundIPRangeExclusionList,omitempty"`

	// outboundPortExclusionList lists destination ports (1-65535) that bypass the proxy.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:Minimum=1
	// +kubebuilder:validation:items:Maximum=65535
	OutboundPortExclusionList []int32 `json:"outboundPortExclusionList,omitempty"`

	// inboundPortExclusionList lists local ports (1-65535) whose incoming traffic bypasses the proxy.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:Minimum=1
	// +kubebuilder:validation:items:Maximum=65535
	InboundPortExclusionList []int32 `json:"inboundPortExclusionList,omitempty"`

	// enablePermissiveTrafficPolicyMode lets meshed services talk without SMI access policies.
	// +optional
	EnablePermissiveTrafficPolicyMode bool `json:"enablePermissiveTrafficPolicyMode,omitempty"`

	// inboundExternalAuthorization sends inbound requests to an external authorization service.
	// +optional
	InboundExternalAuthorization ExternalAuthzSpec `json:"inboundExternalAuthorization,omitempty"`

	// useHTTPSIngress is deprecated: OSM v0.9 manifests carry it, IngressBackend replaced it. It is
	// kept so those manifests apply unchanged and is otherwise ignored.
	// +optional
	UseHTTPSIngress bool `json:"useHTTPSIngress,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:deprecatedversion:warning="config.openservicemesh.io/v1alpha1 MeshConfig is deprecated; use config.openservicemesh.io/v1alpha2 MeshConfig"
// +kubebuilder:resource:shortName=meshconfig
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="In-Sync",type=string,JSONPath=`.status.conditions[?(@.type=="PodsInSync")].status`,description="PodsInSync: whether every meshed pod runs the exclusions this MeshConfig asks for"
// +kubebuilder:printcolumn:name="Meshed",type=integer,JSONPath=`.status.pods.meshed`
// +kubebuilder:printcolumn:name="Drifted",type=integer,JSONPath=`.status.pods.drifted`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// MeshConfig is the deprecated first version of the mesh-wide configuration. Its schema is
// v1alpha2's without the fields v1alpha2 added, so both versions share storage with no conversion.
// It is normally the single object osm-mesh-config in the mesh namespace.
type MeshConfig struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Spec MeshConfigSpec `json:"spec,omitempty"`

	// +optional
	// +kubebuilder:default={}
	Status MeshConfigStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// MeshConfigList is a list of MeshConfig.
type MeshConfigList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MeshConfig `json:"items"`
}
