// Package v1alpha1 is the first, deprecated version of OSM's MeshConfig, still served because OSM
// v0.9-v1.0 manifests and tools use it. Objects are stored as v1alpha2; the schemas are compatible.
//
// +kubebuilder:object:generate=true
// +groupName=config.openservicemesh.io
package v1alpha1
