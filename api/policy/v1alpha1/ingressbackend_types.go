package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshkeeper/meshkeeper/api/conditions"
)

// IngressBackendSpec allows traffic from ingress sources into meshed backends.
type IngressBackendSpec struct {
	// backends are the Services receiving ingress traffic.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	Backends []BackendSpec `json:"backends"`

	// sources are who may send that traffic.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	Sources []IngressSourceSpec `json:"sources"`

	// matches is accepted for compatibility; OSM never implemented it and neither does meshkeeper.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	Matches []corev1.TypedLocalObjectReference `json:"matches,omitempty"`
}

// BackendSpec is one backend Service and the port it receives ingress traffic on.
type BackendSpec struct {
	// name of the Service, in the IngressBackend's namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`

	// port is matched against the Service's targetPort, not its port (OSM semantics): a number
	// equal only to the Service port makes the backend inert.
	// +required
	Port BackendPortSpec `json:"port"`

	// tls configures TLS between the ingress and the backend (https only).
	// +optional
	TLS TLSSpec `json:"tls,omitempty"`
}

// BackendPortSpec is a backend's target port and protocol.
type BackendPortSpec struct {
	// number is the Service's targetPort, 1-65535.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Number int32 `json:"number"`

	// protocol is http or https (any case, as in OSM).
	// +required
	// +kubebuilder:validation:MaxLength=16
	// +kubebuilder:validation:XValidation:rule="self.lowerAscii() in ['http', 'https']",message="must be http or https (any case)"
	Protocol string `json:"protocol"`
}

// TLSSpec configures TLS from the ingress to a backend.
type TLSSpec struct {
	// skipClientCertValidation accepts clients without checking their certificate. When false, the
	// sources should include an AuthenticatedPrincipal naming the ingress's identity.
	// +required
	SkipClientCertValidation bool `json:"skipClientCertValidation"`

	// sniHosts are the SNI names the backend accepts.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=253
	SNIHosts []string `json:"sniHosts,omitempty"`
}

// IngressSourceSpec is a source of ingress traffic: a Service (its endpoints), an IPRange (a CIDR
// in name) or an AuthenticatedPrincipal (a certificate identity in name).
//
// +kubebuilder:validation:XValidation:rule="self.kind != 'IPRange' || isCIDR(self.name)",messageExpression="'must be a CIDR such as 10.0.0.0/8 when kind is IPRange, got: ' + self.name",fieldPath=".name"
// +kubebuilder:validation:XValidation:rule="self.kind != 'Service' || (has(self.__namespace__) && size(self.__namespace__) > 0)",message="namespace is required when kind is Service",fieldPath=".namespace"
type IngressSourceSpec struct {
	// kind is Service, IPRange or AuthenticatedPrincipal.
	// +required
	// +kubebuilder:validation:Enum=Service;IPRange;AuthenticatedPrincipal
	Kind string `json:"kind"`

	// name is the Service name, the CIDR, or the principal.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// namespace of the Service (kind Service only).
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace,omitempty"`
}

// Values of IngressBackendStatus.CurrentStatus, as OSM wrote them.
const (
	CurrentStatusCommitted = "committed"
	CurrentStatusError     = "error"
)

// IngressBackendStatus keeps OSM's two status fields and adds meshkeeper's conditions.
type IngressBackendStatus struct {
	// currentStatus is OSM's summary: committed or error.
	// +optional
	// +kubebuilder:validation:Enum=committed;error
	CurrentStatus string `json:"currentStatus,omitempty"`

	// reason is OSM's explanation of currentStatus.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Reason string `json:"reason,omitempty"`

	// observedGeneration is the generation last reconciled successfully; -1 until then.
	// +optional
	// +kubebuilder:default=-1
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions use the vocabulary of the conditions package.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// findings are problems the schema cannot catch (a port that is no targetPort of the Service,
	// https with client validation but no AuthenticatedPrincipal source).
	// +optional
	// +kubebuilder:validation:MaxItems=32
	Findings []conditions.Finding `json:"findings,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ingressbackend
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.currentStatus`,description="OSM's status: committed or error"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// IngressBackend allows ingress traffic into meshed backends.
type IngressBackend struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec IngressBackendSpec `json:"spec"`

	// +optional
	// +kubebuilder:default={}
	Status IngressBackendStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// IngressBackendList is a list of IngressBackend.
type IngressBackendList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []IngressBackend `json:"items"`
}
