package v1alpha2

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshkeeper/meshkeeper/api/conditions"
)

// Limits on list sizes. OSM had none; bounded lists keep CEL validation within the apiserver's
// cost budget and keep rendered rule sets small enough to reason about.
const (
	// MaxIPRanges bounds outboundIPRangeExclusionList and outboundIPRangeInclusionList.
	MaxIPRanges = 64
	// MaxPorts bounds outboundPortExclusionList and inboundPortExclusionList.
	MaxPorts = 64
	// MaxInterfaces bounds networkInterfaceExclusionList.
	MaxInterfaces = 16
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

// LocalProxyMode says which address the proxy uses to reach the application in its own pod.
// +kubebuilder:validation:Enum=Localhost;PodIP
type LocalProxyMode string

const (
	// LocalProxyModeLocalhost: the proxy connects to 127.0.0.1 (OSM's default).
	LocalProxyModeLocalhost LocalProxyMode = "Localhost"
	// LocalProxyModePodIP: the proxy connects to the pod IP, for applications that bind only to it.
	LocalProxyModePodIP LocalProxyMode = "PodIP"
)

// TLSProtocolVersion names a TLS version the way Envoy does.
// +kubebuilder:validation:Enum=TLS_AUTO;TLSv1_0;TLSv1_1;TLSv1_2;TLSv1_3
type TLSProtocolVersion string

// TLS versions; 1.0 and 1.1 are accepted for compatibility but are obsolete.
const (
	TLSVersionAuto TLSProtocolVersion = "TLS_AUTO"
	TLSVersion10   TLSProtocolVersion = "TLSv1_0"
	TLSVersion11   TLSProtocolVersion = "TLSv1_1"
	TLSVersion12   TLSProtocolVersion = "TLSv1_2"
	TLSVersion13   TLSProtocolVersion = "TLSv1_3"
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

	// tlsMinProtocolVersion is the lowest TLS version the proxy accepts.
	// +optional
	// +kubebuilder:default=TLSv1_2
	TLSMinProtocolVersion TLSProtocolVersion `json:"tlsMinProtocolVersion,omitempty"`

	// tlsMaxProtocolVersion is the highest TLS version the proxy accepts.
	// +optional
	// +kubebuilder:default=TLSv1_3
	TLSMaxProtocolVersion TLSProtocolVersion `json:"tlsMaxProtocolVersion,omitempty"`

	// cipherSuites lists the ciphers offered for TLS 1.0-1.2, by OpenSSL name.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=64
	// +kubebuilder:validation:items:Pattern=`^[A-Za-z0-9_+=\[\]|-]+$`
	CipherSuites []string `json:"cipherSuites,omitempty"`

	// ecdhCurves lists the ECDH curves offered, for example X25519 or P-256.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=32
	// +kubebuilder:validation:items:Pattern=`^[A-Za-z0-9_-]+$`
	ECDHCurves []string `json:"ecdhCurves,omitempty"`

	// localProxyMode is the address the proxy uses to reach the application: Localhost or PodIP.
	// +optional
	// +kubebuilder:default=Localhost
	LocalProxyMode LocalProxyMode `json:"localProxyMode,omitempty"`
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

	// outboundIPRangeInclusionList, when set, limits interception to these destination CIDRs;
	// everything else bypasses the proxy.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=43
	// +kubebuilder:validation:items:XValidation:rule="isCIDR(self)",message="must be a CIDR such as 10.0.0.0/8 or fd00::/8"
	OutboundIPRangeInclusionList []string `json:"outboundIPRangeInclusionList,omitempty"`

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

	// networkInterfaceExclusionList lists network interfaces whose traffic bypasses the proxy.
	// Names follow Linux rules (at most 15 characters); OSM did not check them at all.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:Pattern=`^[a-zA-Z0-9_.-]{1,15}$`
	NetworkInterfaceExclusionList []string `json:"networkInterfaceExclusionList,omitempty"`

	// useHTTPSIngress is deprecated: OSM v0.9 manifests carry it, IngressBackend replaced it. It is
	// kept so those manifests apply unchanged and is otherwise ignored.
	// +optional
	UseHTTPSIngress bool `json:"useHTTPSIngress,omitempty"`
}

// ExternalAuthzSpec configures inbound external authorization.
type ExternalAuthzSpec struct {
	// enable turns external authorization on.
	// +optional
	Enable bool `json:"enable,omitempty"`

	// address is the host name or IP of the authorization service.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Address string `json:"address,omitempty"`

	// port is the authorization service's port.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port,omitempty"`

	// statPrefix prefixes the authorization metrics.
	// +optional
	// +kubebuilder:default=inboundExtAuthz
	// +kubebuilder:validation:MaxLength=128
	StatPrefix string `json:"statPrefix,omitempty"`

	// timeout is how long to wait for the authorization service, as a Go duration.
	// +optional
	// +kubebuilder:default="1s"
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^(0|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$`
	Timeout string `json:"timeout,omitempty"`

	// failureModeAllow lets requests through when the authorization service does not answer.
	// +optional
	FailureModeAllow bool `json:"failureModeAllow,omitempty"`
}

// ObservabilitySpec configures the control plane's logging, debug server and tracing.
type ObservabilitySpec struct {
	// osmLogLevel is the control plane's log level (trace, debug, info, warn, error, fatal, panic,
	// disabled).
	// +optional
	// +kubebuilder:validation:Enum=trace;debug;info;warn;error;fatal;panic;disabled
	OSMLogLevel string `json:"osmLogLevel,omitempty"`

	// enableDebugServer exposes the control plane's debug endpoint.
	// +optional
	EnableDebugServer bool `json:"enableDebugServer,omitempty"`

	// prometheusScraping is deprecated: early OSM v1alpha1 manifests carry it. Kept so they apply
	// unchanged; otherwise ignored.
	// +optional
	PrometheusScraping bool `json:"prometheusScraping,omitempty"`

	// tracing configures distributed tracing.
	// +optional
	Tracing TracingSpec `json:"tracing,omitempty"`
}

// TracingSpec configures where proxies send trace spans.
type TracingSpec struct {
	// enable turns tracing on.
	// +optional
	Enable bool `json:"enable,omitempty"`

	// port is the collector's port (OSM's default 9411).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port,omitempty"`

	// address is the collector's host name.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Address string `json:"address,omitempty"`

	// endpoint is the collector's HTTP path (OSM's default /api/v2/spans).
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Endpoint string `json:"endpoint,omitempty"`
}

// CertificateSpec configures certificates issued to proxies and the ingress gateway.
type CertificateSpec struct {
	// serviceCertValidityDuration is the lifetime of proxy certificates, as a Go duration (OSM's
	// default 24h).
	// +optional
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^(0|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$`
	ServiceCertValidityDuration string `json:"serviceCertValidityDuration,omitempty"`

	// certKeyBitSize is the RSA key size of proxy certificates (OSM's default 2048).
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=8192
	CertKeyBitSize int32 `json:"certKeyBitSize,omitempty"`

	// ingressGateway requests a certificate for an ingress gateway.
	// +optional
	IngressGateway *IngressGatewayCertSpec `json:"ingressGateway,omitempty"`
}

// IngressGatewayCertSpec describes the certificate issued to an ingress gateway.
type IngressGatewayCertSpec struct {
	// subjectAltNames are the names the certificate is valid for.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=253
	SubjectAltNames []string `json:"subjectAltNames"`

	// validityDuration is the certificate's lifetime, as a Go duration.
	// +required
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^(0|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$`
	ValidityDuration string `json:"validityDuration"`

	// secret is where the certificate is stored.
	// +required
	Secret corev1.SecretReference `json:"secret"`
}

// FeatureFlags switches optional OSM behaviour.
type FeatureFlags struct {
	// +optional
	EnableWASMStats bool `json:"enableWASMStats,omitempty"`
	// enableEgressPolicy makes Egress resources take effect.
	// +optional
	EnableEgressPolicy bool `json:"enableEgressPolicy,omitempty"`
	// enableMulticlusterMode is deprecated and ignored; kept so OSM manifests apply unchanged.
	// +optional
	EnableMulticlusterMode bool `json:"enableMulticlusterMode,omitempty"`
	// +optional
	EnableSnapshotCacheMode bool `json:"enableSnapshotCacheMode,omitempty"`
	// +optional
	EnableAsyncProxyServiceMapping bool `json:"enableAsyncProxyServiceMapping,omitempty"`
	// enableIngressBackendPolicy makes IngressBackend resources take effect.
	// +optional
	EnableIngressBackendPolicy bool `json:"enableIngressBackendPolicy,omitempty"`
	// +optional
	EnableEnvoyActiveHealthChecks bool `json:"enableEnvoyActiveHealthChecks,omitempty"`
	// +optional
	EnableRetryPolicy bool `json:"enableRetryPolicy,omitempty"`
}

// PodSummary counts the meshed pods the MeshConfig governs, by drift state. Zero counts are
// written out so that the printer columns show 0 rather than nothing once reconciled.
type PodSummary struct {
	// meshed counts pods that carry the sidecar or should.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Meshed int32 `json:"meshed"`
	// inSync counts meshed pods whose rendered exclusions match the desired ones.
	// +optional
	// +kubebuilder:validation:Minimum=0
	InSync int32 `json:"inSync"`
	// drifted counts meshed pods that need a restart to pick up the current exclusions.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Drifted int32 `json:"drifted"`
	// failed counts meshed pods whose traffic bypasses the sidecar: the sidecar is missing, or the
	// init container that redirects traffic to it failed or is missing. Pods whose rules cannot
	// be read are not counted here: whether they drifted is unknown.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Failed int32 `json:"failed"`
}

// MeshConfigStatus is meshkeeper's addition: OSM gave MeshConfig no status.
type MeshConfigStatus struct {
	// observedGeneration is the generation last reconciled successfully; -1 until then, so a fresh
	// object reads as in progress.
	// +optional
	// +kubebuilder:default=-1
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions use the vocabulary of the conditions package (Ready, Reconciling, Stalled, ...).
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// pods summarises the meshed pods.
	// +optional
	Pods PodSummary `json:"pods,omitempty"`

	// driftedPods names up to 20 drifted pods as "namespace/name"; pods.drifted has the full count.
	// +optional
	// +kubebuilder:validation:MaxItems=20
	// +kubebuilder:validation:items:MaxLength=317
	DriftedPods []string `json:"driftedPods,omitempty"`

	// findings are problems with the configuration that the schema cannot catch.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	Findings []conditions.Finding `json:"findings,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:storageversion
// +kubebuilder:resource:shortName=meshconfig
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="In-Sync",type=string,JSONPath=`.status.conditions[?(@.type=="PodsInSync")].status`,description="PodsInSync: whether every meshed pod runs the exclusions this MeshConfig asks for"
// +kubebuilder:printcolumn:name="Meshed",type=integer,JSONPath=`.status.pods.meshed`
// +kubebuilder:printcolumn:name="Drifted",type=integer,JSONPath=`.status.pods.drifted`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// MeshConfig is the mesh-wide configuration, normally the single object osm-mesh-config in the
// mesh namespace.
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
