package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshkeeper/meshkeeper/api/conditions"
)

// EgressSpec allows meshed workloads to reach destinations outside the mesh. It matters only while
// MeshConfig traffic.enableEgress is false. What a port matches depends on its protocol: http
// matches the port on any address (routed by Host header), tcp and tcp-server-first match port and
// ipAddresses, https matches port, ipAddresses and SNI hosts. A tcp port with no ipAddresses opens
// every destination outside the mesh on that port.
type EgressSpec struct {
	// sources are the service accounts this policy applies to.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	Sources []EgressSourceSpec `json:"sources"`

	// hosts are the external host names allowed (http Host header, https SNI).
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:Pattern=`^(\*\.)?[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*$`
	Hosts []string `json:"hosts,omitempty"`

	// ipAddresses are the external destination CIDRs (IPv4 or IPv6) allowed.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=43
	// +kubebuilder:validation:items:XValidation:rule="isCIDR(self)",message="must be a CIDR such as 203.0.113.0/24 or 2001:db8::/32"
	IPAddresses []string `json:"ipAddresses,omitempty"`

	// ports are the destination ports allowed, each with the protocol spoken on it.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	Ports []PortSpec `json:"ports"`

	// matches narrow the policy to HTTP routes (HTTPRouteGroup, apiGroup
	// specs.smi-spec.io/v1alpha4) or attach upstream settings (UpstreamTrafficSetting, apiGroup
	// policy.openservicemesh.io/v1alpha1).
	// +optional
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:XValidation:rule="self.all(m, has(m.apiGroup) && ((m.kind == 'HTTPRouteGroup' && m.apiGroup == 'specs.smi-spec.io/v1alpha4') || (m.kind == 'UpstreamTrafficSetting' && m.apiGroup == 'policy.openservicemesh.io/v1alpha1')))",message="each match must be kind HTTPRouteGroup with apiGroup specs.smi-spec.io/v1alpha4 or kind UpstreamTrafficSetting with apiGroup policy.openservicemesh.io/v1alpha1"
	Matches []corev1.TypedLocalObjectReference `json:"matches,omitempty"`
}

// EgressSourceSpec names a service account whose pods the policy applies to.
type EgressSourceSpec struct {
	// kind must be ServiceAccount.
	// +required
	// +kubebuilder:validation:Enum=ServiceAccount
	Kind string `json:"kind"`

	// name of the service account.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// namespace of the service account.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace"`
}

// PortSpec is an Egress destination port and its protocol.
type PortSpec struct {
	// number is the destination port, 1-65535.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Number int32 `json:"number"`

	// protocol is http, https, tcp or tcp-server-first (any case). OSM silently ignored ports with
	// any other protocol; meshkeeper rejects them.
	// +required
	// +kubebuilder:validation:MaxLength=16
	// +kubebuilder:validation:XValidation:rule="self.lowerAscii() in ['http', 'https', 'tcp', 'tcp-server-first']",message="must be one of http, https, tcp, tcp-server-first (any case)"
	Protocol string `json:"protocol"`
}

// EgressStatus is meshkeeper's addition: OSM gave Egress no status.
type EgressStatus struct {
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

	// findings are problems the schema cannot catch (a tcp port without ipAddresses, a port shadowed
	// by a mesh Service).
	// +optional
	// +kubebuilder:validation:MaxItems=32
	Findings []conditions.Finding `json:"findings,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=egress
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// Egress allows traffic from meshed service accounts to destinations outside the mesh.
type Egress struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec EgressSpec `json:"spec"`

	// +optional
	// +kubebuilder:default={}
	Status EgressStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// EgressList is a list of Egress.
type EgressList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Egress `json:"items"`
}
