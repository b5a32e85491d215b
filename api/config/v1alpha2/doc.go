// Package v1alpha2 is the storage version of OSM's MeshConfig (config.openservicemesh.io), which
// meshkeeper serves unchanged so that existing OSM manifests and tools keep working.
//
// +kubebuilder:object:generate=true
// +groupName=config.openservicemesh.io
package v1alpha2
