package controllers

// The manager reads meshkeeper's CRDs once at start to tell OSM's from its own (internal/manager).
// +kubebuilder:rbac:groups=apiextensions.k8s.io,resources=customresourcedefinitions,verbs=get

// APIs says how the cluster serves the kinds meshkeeper reports on. The zero value is meshkeeper's
// own CRDs: every kind has a status subresource and every status field is ours. OSM's CRDs, which
// users of OSM keep (osm-bootstrap and the AKS add-on put them back when changed), differ.
type APIs struct {
	// NoMeshConfigStatus and NoEgressStatus: the CRD has no status subresource (OSM's), so the
	// verdict goes to events on transitions and to metrics instead of a status write.
	NoMeshConfigStatus bool
	NoEgressStatus     bool
	// NoIngressBackendStatus: as above, for IngressBackend (OSM's CRD has one; an older or
	// edited CRD may not).
	NoIngressBackendStatus bool
	// IngressBackendStatusOwnedByOSM: status.currentStatus and status.reason are written by
	// osm-controller; meshkeeper adds its conditions and findings and never touches those two.
	IngressBackendStatusOwnedByOSM bool
}

// Kind names as they appear in metrics and messages.
const (
	KindMeshConfig     = "MeshConfig"
	KindEgress         = "Egress"
	KindIngressBackend = "IngressBackend"
)
