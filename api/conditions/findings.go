package conditions

// Finding codes (Finding.Code). They are stable: alerts, dashboards and tests match on them, so a
// code is never renamed or reused for a different meaning. Each code's doc says which object it is
// reported on and what the person reading it should do.
const (
	// FindingMeshConfigNotFound (Egress, IngressBackend): the MeshConfig the policy is judged
	// against does not exist, so nothing about the policy can be decided yet.
	FindingMeshConfigNotFound = "MeshConfigNotFound"
	// FindingEgressPolicyDisabled (Egress): featureFlags.enableEgressPolicy is false, so the
	// policy is not programmed; traffic it allows is denied while traffic.enableEgress is false.
	FindingEgressPolicyDisabled = "EgressPolicyDisabled"
	// FindingEgressMoot (Egress): traffic.enableEgress is true, so every external destination is
	// already reachable and the policy restricts nothing.
	FindingEgressMoot = "EgressMoot"
	// FindingDestinationShadowed (Egress): a destination of the policy is excluded from
	// interception (an outbound IP range or port exclusion), so its traffic never reaches the
	// sidecar and the policy never applies to it.
	FindingDestinationShadowed = "DestinationShadowed"
	// FindingPortOpenToAnyDestination (Egress): a tcp port without ipAddresses, or an http port,
	// matches every destination outside the mesh on that port.
	FindingPortOpenToAnyDestination = "PortOpenToAnyDestination"
	// FindingSourceServiceAccountNotFound (Egress): a source ServiceAccount does not exist.
	FindingSourceServiceAccountNotFound = "SourceServiceAccountNotFound"
	// FindingPortCollision (Egress; Service under Istio): a mesh Service exposes a port the
	// policy allows to an external destination (under Istio: an HTTP or auto-detected port on
	// which a ServiceEntry or Egress declares an external destination); the sidecar's listener
	// for that Service takes the connection and the external destination is never reached.
	FindingPortCollision = "PortCollision"
	// FindingWellKnownPortCollision (Service, Istio): an HTTP or auto-detected Service port is
	// the default port of a common non-HTTP server (Redis, MySQL, Kafka...), so every Istio
	// sidecar serves connections to such a server outside the mesh on that port as HTTP.
	FindingWellKnownPortCollision = "WellKnownPortCollision"

	// FindingIngressBackendPolicyDisabled (IngressBackend): featureFlags.enableIngressBackendPolicy
	// is false, so the policy is not programmed.
	FindingIngressBackendPolicyDisabled = "IngressBackendPolicyDisabled"
	// FindingBackendServiceNotFound (IngressBackend): a backend Service does not exist.
	FindingBackendServiceNotFound = "BackendServiceNotFound"
	// FindingBackendTargetPortMismatch (IngressBackend): a backend port equals no targetPort of
	// its Service, so the backend never matches (OSM matches targetPort, not port).
	FindingBackendTargetPortMismatch = "BackendTargetPortMismatch"
	// FindingBackendPortNotIntercepted (IngressBackend): a backend port is in
	// inboundPortExclusionList, so ingress traffic bypasses the sidecar and the policy is not
	// enforced.
	FindingBackendPortNotIntercepted = "BackendPortNotIntercepted"
	// FindingSourceServiceNotFound (IngressBackend): a source of kind Service does not exist.
	FindingSourceServiceNotFound = "SourceServiceNotFound"
	// FindingBackendClaimedTwice (IngressBackend): another IngressBackend claims the same backend
	// Service and port; which one applies is undefined.
	FindingBackendClaimedTwice = "BackendClaimedTwice"

	// MeshConfig findings. The first five are the redirection engine's warning codes
	// (internal/redirect Warn*), reported under the same names.

	// FindingCaptureDisabled (MeshConfig): an outbound IP range exclusion is 0.0.0.0/0 or ::/0,
	// which turns outbound interception off for that family.
	FindingCaptureDisabled = "CaptureDisabled"
	// FindingExclusionOverlapsServiceCIDR (MeshConfig): an outbound IP range exclusion overlaps the
	// Service CIDR, so traffic to mesh Services in it bypasses the sidecar.
	FindingExclusionOverlapsServiceCIDR = "ExclusionOverlapsServiceCIDR"
	// FindingExclusionOverlapsPodCIDR (MeshConfig): an outbound IP range exclusion overlaps the Pod
	// CIDR, so traffic to meshed pods bypasses the sidecar.
	FindingExclusionOverlapsPodCIDR = "ExclusionOverlapsPodCIDR"
	// FindingInclusionListBypass (MeshConfig): an inclusion list is set, so every destination
	// outside it bypasses the sidecar.
	FindingInclusionListBypass = "InclusionListBypass"
	// FindingInclusionMissesServiceCIDR (MeshConfig): the inclusion list leaves (part of) the
	// Service CIDR out.
	FindingInclusionMissesServiceCIDR = "InclusionMissesServiceCIDR"
	// FindingInclusionMissesServices (MeshConfig): the inclusion list leaves the ClusterIPs of
	// these mesh Services out, so traffic to them bypasses the sidecar.
	FindingInclusionMissesServices = "InclusionMissesServices"
	// FindingExclusionCoversServices (MeshConfig): an outbound IP range exclusion contains the
	// ClusterIPs of these mesh Services (found even when the Service CIDR is unknown).
	FindingExclusionCoversServices = "ExclusionCoversServices"
	// FindingExcludedPortIsServicePort (MeshConfig): an excluded outbound port is also the port
	// of mesh Services, so traffic to them on that port bypasses the sidecar.
	FindingExcludedPortIsServicePort = "ExcludedPortIsServicePort"
	// FindingClusterRangesUnknown (MeshConfig): the Service and Pod CIDRs could not be
	// determined, so exclusions were checked against Service ClusterIPs only.
	FindingClusterRangesUnknown = "ClusterRangesUnknown"
)
