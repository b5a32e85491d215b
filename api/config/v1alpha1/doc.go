// Package v1alpha1 is the first, deprecated version of OSM's MeshConfig, still served because OSM
// v0.9-v1.0 manifests and tools use it. Objects are stored as v1alpha2 with no conversion (as in
// OSM): a v1alpha1 read omits the fields only v1alpha2 has, and an update through v1alpha1 erases
// them, so everything that writes MeshConfig uses v1alpha2.
//
// +kubebuilder:object:generate=true
// +groupName=config.openservicemesh.io
package v1alpha1
