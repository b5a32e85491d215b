package conditions

// Condition types written on MeshConfig, Egress and IngressBackend (metav1.Condition.Type).
//
// Ready, Reconciling and Stalled carry the meaning kstatus gives them, so that kubectl wait,
// Flux health checks and Argo CD health assessment work without meshkeeper-specific rules.
const (
	// Ready summarises the object. Polarity: normal (True is healthy).
	//   True:    Succeeded.
	//   False:   InvalidSpec, RefNotFound, ReconcileFailed, FeatureDisabled, Conflict,
	//            TargetPortMismatch, Bypassed.
	//   Unknown: Progressing (the controller has not finished looking at this generation).
	//   Drifted pods never make a MeshConfig un-Ready: that is PodsInSync's business.
	Ready = "Ready"

	// Reconciling says the controller is still working towards the desired state.
	// Polarity: abnormal (True means not settled yet; absent or False when done).
	//   True:    Progressing, ProgressingWithRetry.
	//   False:   Succeeded.
	Reconciling = "Reconciling"

	// Stalled says progress is impossible without a change by a person (a bad spec, a conflict).
	// Polarity: abnormal (True is unhealthy; absent or False when fine).
	//   True:    InvalidSpec, Conflict, ReconcileFailed, FeatureDisabled, TargetPortMismatch,
	//            Bypassed (each needs an edit by a person; kstatus calls only Stalled objects Failed).
	//   False:   Succeeded.
	Stalled = "Stalled"

	// Accepted says the spec was understood and will be acted on. Polarity: normal.
	//   True:    Accepted.
	//   False:   InvalidSpec, Conflict, FeatureDisabled, Ignored.
	//   Unknown: Pending.
	Accepted = "Accepted"

	// ResolvedRefs says every object the spec refers to (service accounts, services, matches)
	// exists and fits. Polarity: normal.
	//   True:    ResolvedRefs.
	//   False:   RefNotFound, TargetPortMismatch.
	//   Unknown: Pending.
	ResolvedRefs = "ResolvedRefs"
	// PodsInSync is the MeshConfig's verdict on the meshed pods it governs. It is separate from
	// Ready because pods pick up a MeshConfig change only when they restart: a valid, served
	// MeshConfig is Ready at once, and the pods still running older rules are reported here, so
	// a GitOps pipeline that waits for Ready (kstatus ignores this type) is never held hostage
	// by pods nobody has restarted yet. Polarity: normal.
	//   True:    InSync (no meshed pod is known to be drifted or failed).
	//   False:   Drifted (the message names pods and the restart commands, or the
	//            meshkeeper.io/auto-restart annotation), PodsFailed (pods lack their sidecar
	//            or their redirection failed).
	//   Unknown: Pending (not counted yet), InvalidSpec (the desired exclusions are unknown).
	//   Only the served MeshConfig carries it; others are left to whoever serves them.
	PodsInSync = "PodsInSync"
)

// Condition types meshkeeper writes on pods (corev1.PodCondition.Type). They are prefixed with the
// meshkeeper.io domain because pod conditions share a namespace with the kubelet and other tools.
const (
	// PodSidecarInjected says the pod carries the proxy sidecar and its init container.
	// Polarity: normal.
	//   True:    Injected.
	//   False:   NotMeshed, InjectionDisabled, HostNetwork, SidecarMissing.
	PodSidecarInjected = "meshkeeper.io/SidecarInjected"

	// PodRedirectionApplied says the init container installed the redirection rules.
	// Polarity: normal.
	//   True:    Applied.
	//   False:   InitContainerFailed, InitContainerMissing.
	//   Unknown: InitContainerPending.
	PodRedirectionApplied = "meshkeeper.io/RedirectionApplied"

	// PodExclusionsInSync says the exclusions rendered into the pod at admission still match the
	// ones the current MeshConfig and pod annotations ask for. Rules are only rendered at pod start,
	// so a False here is fixed by restarting the pod. Polarity: normal.
	//   True:    InSync.
	//   False:   Drifted.
	//   Unknown: InitContainerPending (inherited from RedirectionApplied before the init
	//            container's first run; while it runs again after a successful run, as in a
	//            sandbox recreated by a node restart, the rules are judged), InvalidSpec (the
	//            MeshConfig or the pod's annotations are invalid, so the desired exclusions are
	//            unknown), MeshConfigNotFound or InjectorConfigNotFound (there is no desired state),
	//            RulesUnreadable (the rendered rules cannot be parsed, so what the pod runs is
	//            unknown; the message carries the parse error and its position).
	PodExclusionsInSync = "meshkeeper.io/ExclusionsInSync"
)

// Reasons (metav1.Condition.Reason, corev1.PodCondition.Reason). PascalCase and stable: tools and
// alerts match on them. A reason may serve several condition types; Vocabulary says which.
const (
	// Succeeded: the last reconcile of the observed generation completed.
	Succeeded = "Succeeded"
	// Progressing: work on the current generation has started and not finished.
	Progressing = "Progressing"
	// ProgressingWithRetry: the last attempt failed in a way that may heal; the controller retries.
	ProgressingWithRetry = "ProgressingWithRetry"
	// InvalidSpec: the spec passed schema validation but cannot be acted on as written.
	InvalidSpec = "InvalidSpec"
	// ReconcileFailed: an error outside the spec (API errors, timeouts) stopped the reconcile.
	ReconcileFailed = "ReconcileFailed"
	// Conflict: another object claims the same thing (a second MeshConfig, overlapping backends).
	Conflict = "Conflict"
	// FeatureDisabled: the kind is ignored because its MeshConfig feature flag is off.
	FeatureDisabled = "FeatureDisabled"
	// Ignored: the object is valid but has no effect (for example an Egress while egress is open).
	Ignored = "Ignored"
	// Pending: nothing has been decided yet.
	Pending = "Pending"
	// Drifted: at least one meshed pod runs with exclusions that differ from the desired ones.
	Drifted = "Drifted"
	// PodsFailed: meshed pods lack their sidecar or their redirection init container failed.
	PodsFailed = "PodsFailed"
	// AcceptedReason: the spec was accepted.
	AcceptedReason = "Accepted"
	// ResolvedRefsReason: every reference resolved.
	ResolvedRefsReason = "ResolvedRefs"
	// RefNotFound: a referenced object does not exist.
	RefNotFound = "RefNotFound"
	// Bypassed: traffic the object governs bypasses the sidecar, so the object is not enforced.
	Bypassed = "Bypassed"
	// TargetPortMismatch: an IngressBackend port matches no targetPort of its Service, so OSM
	// semantics make the backend inert.
	TargetPortMismatch = "TargetPortMismatch"

	// Injected: the sidecar and init container are in the pod spec.
	Injected = "Injected"
	// NotMeshed: the pod's namespace is not part of the mesh.
	NotMeshed = "NotMeshed"
	// InjectionDisabled: an annotation on the pod or namespace turned injection off.
	InjectionDisabled = "InjectionDisabled"
	// HostNetwork: pods on the host network are never injected.
	HostNetwork = "HostNetwork"
	// SidecarMissing: the pod should carry a sidecar but does not (created before the namespace
	// joined the mesh, or admitted while the injector was down).
	SidecarMissing = "SidecarMissing"
	// Applied: the init container exited successfully.
	Applied = "Applied"
	// InitContainerFailed: the init container exited with an error; the pod has no redirection.
	InitContainerFailed = "InitContainerFailed"
	// InitContainerMissing: the pod has a sidecar but no redirection init container.
	InitContainerMissing = "InitContainerMissing"
	// InitContainerPending: the init container has not run yet; on RedirectionApplied, also
	// while it runs again after it succeeded (the kubelet starts a pod over in a new sandbox
	// after a node restart).
	InitContainerPending = "InitContainerPending"
	// InSync: rendered and desired exclusions have the same meaning.
	InSync = "InSync"
	// RulesUnreadable: the rendered rules could not be parsed, so drift cannot be judged; the
	// verdict is Unknown, not False, since the pod may well run what it should.
	RulesUnreadable = "RulesUnreadable"
	// MeshConfigNotFound: the MeshConfig the operator serves does not exist (deleted, or never
	// created), so there is no desired state to compare the pod's exclusions with.
	MeshConfigNotFound = "MeshConfigNotFound"
	// InjectorConfigNotFound: the Istio injector ConfigMap of the pod's revision does not exist,
	// so there is no desired state for an Istio pod.
	InjectorConfigNotFound = "InjectorConfigNotFound"
)

// Polarity says which status of a condition type is the healthy one.
type Polarity string

const (
	// PositivePolarity: True is healthy (Ready, Accepted, ...).
	PositivePolarity Polarity = "Positive"
	// NegativePolarity: True is unhealthy (Reconciling, Stalled); the condition is usually removed
	// or set to False once healthy.
	NegativePolarity Polarity = "Negative"
)

// TypeInfo documents one condition type: its polarity and the reasons allowed for each status.
type TypeInfo struct {
	Type     string
	Polarity Polarity
	// Pod is true for pod condition types.
	Pod     bool
	True    []string
	False   []string
	Unknown []string
}

// Vocabulary is the machine-readable form of the documentation above. Tests of every controller
// can assert that they only ever write (type, status, reason) triples listed here, and docs can be
// generated from it. To add a reason: declare the constant above and append it here; the package
// tests check the spelling and that no constant is left out.
var Vocabulary = []TypeInfo{
	{Type: Ready, Polarity: PositivePolarity,
		True:    []string{Succeeded},
		False:   []string{InvalidSpec, RefNotFound, ReconcileFailed, FeatureDisabled, Conflict, TargetPortMismatch, Bypassed},
		Unknown: []string{Progressing}},
	{Type: Reconciling, Polarity: NegativePolarity,
		True:  []string{Progressing, ProgressingWithRetry},
		False: []string{Succeeded}},
	{Type: Stalled, Polarity: NegativePolarity,
		True:  []string{InvalidSpec, Conflict, ReconcileFailed, FeatureDisabled, TargetPortMismatch, Bypassed},
		False: []string{Succeeded}},
	{Type: Accepted, Polarity: PositivePolarity,
		True:    []string{AcceptedReason},
		False:   []string{InvalidSpec, Conflict, FeatureDisabled, Ignored},
		Unknown: []string{Pending}},
	{Type: ResolvedRefs, Polarity: PositivePolarity,
		True:    []string{ResolvedRefsReason},
		False:   []string{RefNotFound, TargetPortMismatch},
		Unknown: []string{Pending}},
	{Type: PodsInSync, Polarity: PositivePolarity,
		True:    []string{InSync},
		False:   []string{Drifted, PodsFailed},
		Unknown: []string{Pending, InvalidSpec}},
	{Type: PodSidecarInjected, Polarity: PositivePolarity, Pod: true,
		True:  []string{Injected},
		False: []string{NotMeshed, InjectionDisabled, HostNetwork, SidecarMissing}},
	{Type: PodRedirectionApplied, Polarity: PositivePolarity, Pod: true,
		True:    []string{Applied},
		False:   []string{InitContainerFailed, InitContainerMissing},
		Unknown: []string{InitContainerPending}},
	{Type: PodExclusionsInSync, Polarity: PositivePolarity, Pod: true,
		True:    []string{InSync},
		False:   []string{Drifted},
		Unknown: []string{InitContainerPending, InvalidSpec, RulesUnreadable, MeshConfigNotFound, InjectorConfigNotFound}},
}

// Lookup returns the documentation of a condition type.
func Lookup(conditionType string) (TypeInfo, bool) {
	for _, t := range Vocabulary {
		if t.Type == conditionType {
			return t, true
		}
	}
	return TypeInfo{}, false
}

// Allowed reports whether reason is documented for conditionType with the given status
// ("True", "False" or "Unknown"). Controllers' tests use it to keep the vocabulary closed.
func Allowed(conditionType, status, reason string) bool {
	t, ok := Lookup(conditionType)
	if !ok {
		return false
	}
	var reasons []string
	switch status {
	case "True":
		reasons = t.True
	case "False":
		reasons = t.False
	case "Unknown":
		reasons = t.Unknown
	default:
		return false
	}
	for _, r := range reasons {
		if r == reason {
			return true
		}
	}
	return false
}

// IsHealthy interprets a condition's status through its type's polarity: for Ready it is
// status == True, for Stalled it is status != True. Unknown types are treated as positive.
func IsHealthy(conditionType, status string) bool {
	t, ok := Lookup(conditionType)
	if ok && t.Polarity == NegativePolarity {
		return status != "True"
	}
	return status == "True"
}

// ObservedGenerationUnset is what status.observedGeneration reads before any reconcile: the schema
// defaults it so that a fresh object never looks up to date (kstatus treats it as in progress).
const ObservedGenerationUnset int64 = -1
