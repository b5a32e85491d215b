// Package v1alpha1 is OSM's policy API (policy.openservicemesh.io): Egress and IngressBackend,
// served with OSM's field names so existing manifests apply, and validated where OSM was lax.
//
// +kubebuilder:object:generate=true
// +groupName=policy.openservicemesh.io
package v1alpha1
