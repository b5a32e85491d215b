package diagnose

import (
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	policyv1alpha1 "github.com/meshkeeper/meshkeeper/api/policy/v1alpha1"
	"github.com/meshkeeper/meshkeeper/internal/analysis"
	"github.com/meshkeeper/meshkeeper/internal/drift"
	"github.com/meshkeeper/meshkeeper/internal/injection"
	"github.com/meshkeeper/meshkeeper/internal/istio"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// Codes of the findings Analyze adds to the policy findings of internal/analysis. Like those,
// they are stable: never renamed, never reused. docs/findings.md documents every code.
const (
	// CodeMeshConfigInvalid: the MeshConfig's traffic settings cannot be rendered.
	CodeMeshConfigInvalid = "MeshConfigInvalid"
	// CodeSidecarMissing: a pod in an injected namespace has no sidecar.
	CodeSidecarMissing = "SidecarMissing"
	// CodeSidecarNotReady: a running pod's sidecar is not ready.
	CodeSidecarNotReady = "SidecarNotReady"
	// CodeInitContainerFailed: the redirection init container did not exit 0.
	CodeInitContainerFailed = "InitContainerFailed"
	// CodeInitContainerMissing: a pod has a sidecar but no redirection init container.
	CodeInitContainerMissing = "InitContainerMissing"
	// CodeExclusionsDrifted: the rules in a pod differ from what the MeshConfig and its
	// annotations ask for.
	CodeExclusionsDrifted = "ExclusionsDrifted"
	// CodeRulesUnreadable: the rules of a pod's init container cannot be parsed.
	CodeRulesUnreadable = "RulesUnreadable"
	// CodeInvalidRedirectionAnnotations: a pod's exclusion annotations are invalid.
	CodeInvalidRedirectionAnnotations = "InvalidRedirectionAnnotations"
	// CodeIstioMeshConfigInvalid: Istio's mesh configuration (the mesh key of the istio
	// ConfigMap) cannot be read for outboundTrafficPolicy.
	CodeIstioMeshConfigInvalid = "IstioMeshConfigInvalid"
)

// Codes lists every code Analyze can report, with its severity when it is always the same
// (empty when it depends on the case).
var Codes = []struct {
	Code     string
	Severity conditions.Severity
}{
	{conditions.FindingMeshConfigNotFound, ""},
	{CodeMeshConfigInvalid, conditions.SeverityError},
	{CodeSidecarMissing, conditions.SeverityError},
	{CodeSidecarNotReady, conditions.SeverityWarning},
	{CodeInitContainerFailed, conditions.SeverityError},
	{CodeInitContainerMissing, conditions.SeverityError},
	{CodeExclusionsDrifted, conditions.SeverityError},
	{CodeRulesUnreadable, conditions.SeverityError},
	{CodeInvalidRedirectionAnnotations, conditions.SeverityError},
	{conditions.FindingCaptureDisabled, conditions.SeverityError},
	{conditions.FindingExclusionOverlapsServiceCIDR, conditions.SeverityError},
	{conditions.FindingExclusionOverlapsPodCIDR, conditions.SeverityError},
	{conditions.FindingInclusionListBypass, conditions.SeverityInfo},
	{conditions.FindingInclusionMissesServiceCIDR, conditions.SeverityError},
	{conditions.FindingInclusionMissesServices, conditions.SeverityError},
	{conditions.FindingExclusionCoversServices, conditions.SeverityError},
	{conditions.FindingExcludedPortIsServicePort, conditions.SeverityWarning},
	{conditions.FindingClusterRangesUnknown, conditions.SeverityInfo},
	{conditions.FindingEgressPolicyDisabled, conditions.SeverityError},
	{conditions.FindingEgressMoot, conditions.SeverityWarning},
	{conditions.FindingDestinationShadowed, conditions.SeverityWarning},
	{conditions.FindingPortOpenToAnyDestination, conditions.SeverityWarning},
	{conditions.FindingSourceServiceAccountNotFound, conditions.SeverityWarning},
	{conditions.FindingPortCollision, conditions.SeverityError},
	{conditions.FindingWellKnownPortCollision, conditions.SeverityWarning},
	{CodeIstioMeshConfigInvalid, conditions.SeverityWarning},
	{conditions.FindingIngressBackendPolicyDisabled, conditions.SeverityError},
	{conditions.FindingBackendServiceNotFound, conditions.SeverityWarning},
	{conditions.FindingBackendTargetPortMismatch, conditions.SeverityError},
	{conditions.FindingBackendPortNotIntercepted, conditions.SeverityError},
	{conditions.FindingSourceServiceNotFound, conditions.SeverityWarning},
	{conditions.FindingBackendClaimedTwice, ""},
}

// ClusterInput is what Analyze looks at. Pods, Egresses and IngressBackends are those in the
// scope being analysed; Namespaces and Services are the whole mesh, since a Service in any
// monitored namespace gives every sidecar a listener.
type ClusterInput struct {
	MeshConfigRef types.NamespacedName
	// MeshConfig is nil when it does not exist. MeshConfigSource names the file it was read
	// from, if it was.
	MeshConfig       *configv1alpha2.MeshConfig
	MeshConfigSource string

	Namespaces      []corev1.Namespace
	Services        []corev1.Service
	ServiceAccounts []types.NamespacedName
	Pods            []corev1.Pod
	Egresses        []policyv1alpha1.Egress
	IngressBackends []policyv1alpha1.IngressBackend
	// Cluster holds the Service and Pod CIDRs, when they could be read.
	Cluster redirect.ClusterRanges

	// IstioMeshConfig is Istio's mesh configuration ConfigMap (nil when absent or unread) and
	// ServiceEntries every ServiceEntry. With either, or with an Istio pod in scope, the Istio
	// port collisions are analysed too.
	IstioMeshConfig *corev1.ConfigMap
	// IstioNamespace is the control plane's namespace and IstioInjectors its injector
	// ConfigMaps (one per revision); Istio pods are judged against them. IstioInjectorsUnknown
	// says why they were not read (their drift is then not judged).
	IstioNamespace        string
	IstioInjectors        []corev1.ConfigMap
	IstioInjectorsUnknown Unknown
	ServiceEntries        []analysis.ServiceEntry

	Selection injection.SelectOptions
	Now       time.Time
}

// istioOnly reports whether the input is Istio's alone: Istio's objects or pods, and nothing
// of OSM's (no namespace in its mesh, no Egress or IngressBackend, no pod Istio does not own).
// A missing MeshConfig is then not a finding: nothing would be judged against it.
func istioOnly(in ClusterInput) bool {
	if len(in.Egresses) > 0 || len(in.IngressBackends) > 0 {
		return false
	}
	for i := range in.Namespaces {
		if injection.InMesh(&in.Namespaces[i], in.Selection.MeshName) {
			return false
		}
	}
	seen := in.IstioMeshConfig != nil || len(in.IstioInjectors) > 0 || len(in.ServiceEntries) > 0
	for i := range in.Pods {
		if !istio.Injected(&in.Pods[i]) {
			return false
		}
		seen = true
	}
	return seen
}

// Analyze reports every finding in the cluster, most severe first: the MeshConfig's own
// problems and dangerous exclusions, each pod's drift verdicts (the ones the operator writes
// into pod conditions), and each Egress and IngressBackend's findings.
func Analyze(in ClusterInput) []analysis.Finding {
	var out []analysis.Finding
	mcObj := analysis.Object("MeshConfig", in.MeshConfigRef.Namespace, in.MeshConfigRef.Name)
	mesh := analysis.MeshOf(in.MeshConfigRef, in.MeshConfig)
	meshUsable := false
	switch {
	case in.MeshConfig == nil && istioOnly(in):
	case in.MeshConfig == nil:
		out = append(out, analysis.Finding{Code: conditions.FindingMeshConfigNotFound, Severity: conditions.SeverityError,
			Message: fmt.Sprintf("MeshConfig %s does not exist: pods cannot be judged against it and policies are not acted on; create it, or pass --mesh-namespace/--meshconfig-name", in.MeshConfigRef),
			Objects: []string{mcObj}})
	default:
		errs := injection.ValidateMeshConfig(&in.MeshConfig.Spec)
		if len(errs) > 0 {
			out = append(out, analysis.Finding{Code: CodeMeshConfigInvalid, Severity: conditions.SeverityError,
				Message: fmt.Sprintf("MeshConfig %s cannot be rendered into rules, so new pods fail to start: %v; fix it with kubectl edit meshconfig %s -n %s",
					in.MeshConfigRef, errs.ToAggregate(), in.MeshConfigRef.Name, in.MeshConfigRef.Namespace),
				Objects: []string{mcObj}})
		} else {
			meshUsable = true
		}
	}

	nsByName := map[string]*corev1.Namespace{}
	monitored := map[string]bool{}
	for i := range in.Namespaces {
		ns := &in.Namespaces[i]
		nsByName[ns.Name] = ns
		monitored[ns.Name] = injection.InMesh(ns, in.Selection.MeshName)
	}
	if in.MeshConfig != nil {
		out = append(out, analysis.AnalyzeMeshConfig(analysis.MeshConfigInput{MeshConfig: in.MeshConfig, Cluster: in.Cluster,
			Services: in.Services, Monitored: monitored})...)
	}

	injectors := istioInjectors(in)
	for i := range in.Pods {
		out = append(out, podFindings(in, &in.Pods[i], nsByName, injectors, meshUsable)...)
	}
	for i := range in.Egresses {
		out = append(out, analysis.AnalyzeEgress(analysis.EgressInput{Egress: &in.Egresses[i], Mesh: mesh, Monitored: monitored,
			ServiceAccounts: in.ServiceAccounts, Services: in.Services, Pods: in.Pods})...)
	}
	for i := range in.IngressBackends {
		ib := &in.IngressBackends[i]
		var others []policyv1alpha1.IngressBackend
		for j := range in.IngressBackends {
			if j != i && in.IngressBackends[j].Namespace == ib.Namespace {
				others = append(others, in.IngressBackends[j])
			}
		}
		out = append(out, analysis.AnalyzeIngressBackend(analysis.IngressBackendInput{IngressBackend: ib, Mesh: mesh,
			Services: in.Services, Others: others, Pods: in.Pods})...)
	}
	out = append(out, istioFindings(in)...)
	analysis.Sort(out)
	return dedupe(out)
}

// istioFindings runs the Istio analyses when the cluster has Istio in it: its mesh
// configuration, a ServiceEntry, or an Istio pod in scope.
func istioFindings(in ClusterInput) []analysis.Finding {
	if in.IstioMeshConfig == nil && len(in.ServiceEntries) == 0 && !slices.ContainsFunc(in.Pods, func(p corev1.Pod) bool { return istio.ProxyContainer(&p) != nil }) {
		return nil
	}
	mesh, err := analysis.IstioMeshOf(in.IstioMeshConfig)
	var out []analysis.Finding
	if err != nil {
		out = append(out, analysis.Finding{Code: CodeIstioMeshConfigInvalid, Severity: conditions.SeverityWarning,
			Message: fmt.Sprintf("%v; Istio rejects this mesh configuration, and meshkeeper assumes outboundTrafficPolicy ALLOW_ANY", err),
			Objects: []string{analysis.Object("ConfigMap", in.IstioMeshConfig.Namespace, in.IstioMeshConfig.Name)}})
	}
	return append(out, analysis.AnalyzeIstio(analysis.IstioAnalysisInput{Mesh: mesh, Services: in.Services,
		ServiceEntries: in.ServiceEntries, Egresses: in.Egresses, Pods: in.Pods})...)
}

// dedupe drops findings reported twice with the same code and message (a MeshConfig problem
// seen through two policies, for example).
func dedupe(fs []analysis.Finding) []analysis.Finding {
	out := fs[:0:0]
	for _, f := range fs {
		if !slices.ContainsFunc(out, func(g analysis.Finding) bool { return g.Code == f.Code && g.Message == f.Message }) {
			out = append(out, f)
		}
	}
	return out
}

// podConditionCodes maps the failing drift verdicts to finding codes.
var podConditionCodes = map[string]struct {
	code string
	sev  conditions.Severity
}{
	conditions.SidecarMissing:       {CodeSidecarMissing, conditions.SeverityError},
	conditions.InitContainerFailed:  {CodeInitContainerFailed, conditions.SeverityError},
	conditions.InitContainerMissing: {CodeInitContainerMissing, conditions.SeverityError},
	conditions.Drifted:              {CodeExclusionsDrifted, conditions.SeverityError},
	conditions.RulesUnreadable:      {CodeRulesUnreadable, conditions.SeverityError},
}

func podFindings(in ClusterInput, pod *corev1.Pod, nsByName map[string]*corev1.Namespace, injectors map[string]drift.IstioInjector, meshUsable bool) []analysis.Finding {
	if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return nil
	}
	obj := analysis.Object("Pod", pod.Namespace, pod.Name)
	ns := metav1.ObjectMeta{Name: pod.Namespace}
	if n := nsByName[pod.Namespace]; n != nil {
		ns = n.ObjectMeta
	}
	mc := in.MeshConfig
	if mc == nil {
		mc = &configv1alpha2.MeshConfig{ObjectMeta: metav1.ObjectMeta{Namespace: in.MeshConfigRef.Namespace, Name: in.MeshConfigRef.Name}}
	}
	isIstio := istio.Injected(pod)
	if !isIstio {
		isIstio, _ = drift.IstioShouldInject(ns, pod)
	}
	var din drift.Input
	if isIstio {
		din = istioInput(in, pod, ns, injectors)
	} else {
		din = drift.Gather(pod, ns, mc, in.Selection, in.Now)
		din.Mesh.Source = in.MeshConfigSource
	}
	conds := drift.Evaluate(din)
	if !drift.Relevant(din, conds) {
		return nil
	}
	var out []analysis.Finding
	if errs := redirect.ValidateAnnotations(pod.Annotations); !isIstio && len(errs) > 0 {
		out = append(out, analysis.Finding{Code: CodeInvalidRedirectionAnnotations, Severity: conditions.SeverityError,
			Message: fmt.Sprintf("pod %s/%s has invalid redirection annotations: %v; fix them in the workload's pod template", pod.Namespace, pod.Name, errs.ToAggregate()),
			Objects: []string{obj}})
	}
	for _, c := range conds {
		// Unreadable rules are Unknown on the pod (drift cannot be judged), but the pod still
		// needs a person: its redirection is whatever the unparsable command did.
		if c.Status != corev1.ConditionFalse && c.Reason != conditions.RulesUnreadable {
			continue
		}
		if c.Type == conditions.PodExclusionsInSync && (!isIstio && !meshUsable || drift.RedirectionInitContainer(pod) == nil) {
			// Judged against a MeshConfig that is missing or invalid (reported once above), or
			// the init container is missing (InitContainerMissing says so already).
			continue
		}
		if c.Type == conditions.PodExclusionsInSync && isIstio && (in.IstioInjectorsUnknown != "" || drift.IstioTemplateNeeded(pod)) {
			// The injector's values were not read, or the pod is istio-cni's and analyze does
			// not read workload templates: the operator judges those pods.
			continue
		}
		m, ok := podConditionCodes[c.Reason]
		if !ok {
			continue
		}
		out = append(out, analysis.Finding{Code: m.code, Severity: m.sev,
			Message: fmt.Sprintf("pod %s/%s: %s", pod.Namespace, pod.Name, c.Message), Objects: []string{obj}})
	}
	sidecar := injection.SidecarName
	if isIstio {
		sidecar = istio.ProxyContainerName
	}
	if pod.Status.Phase == corev1.PodRunning {
		for _, st := range pod.Status.ContainerStatuses {
			if st.Name == sidecar && !st.Ready {
				out = append(out, analysis.Finding{Code: CodeSidecarNotReady, Severity: conditions.SeverityWarning,
					Message: fmt.Sprintf("pod %s/%s: the %s sidecar is not ready (%d restarts), so its traffic is not proxied; inspect it with kubectl logs %s -n %s -c %s",
						pod.Namespace, pod.Name, sidecar, st.RestartCount, pod.Name, pod.Namespace, sidecar),
					Objects: []string{obj}})
			}
		}
	}
	return out
}

// istioInjectors reads each injector ConfigMap of the input once, by name.
func istioInjectors(in ClusterInput) map[string]drift.IstioInjector {
	out := make(map[string]drift.IstioInjector, len(in.IstioInjectors))
	for i := range in.IstioInjectors {
		cm := &in.IstioInjectors[i]
		if rev, ok := istio.RevisionOfConfigMap(cm.Name); ok {
			out[cm.Name] = drift.ReadIstioInjector(drift.InjectorRef(in.IstioNamespace, rev), cm)
		}
	}
	return out
}

// istioInput judges an Istio pod against the injector ConfigMap of its revision.
func istioInput(in ClusterInput, pod *corev1.Pod, ns metav1.ObjectMeta, injectors map[string]drift.IstioInjector) drift.Input {
	ref := drift.InjectorRef(in.IstioNamespace, istio.Revision(pod))
	inj, ok := injectors[ref.Name]
	if !ok {
		inj = drift.ReadIstioInjector(ref, nil)
	}
	return drift.GatherIstio(pod, ns, inj, nil, in.Now)
}

// SeverityAtLeast reports whether s is as severe as min.
func SeverityAtLeast(s, min conditions.Severity) bool {
	rank := map[conditions.Severity]int{conditions.SeverityInfo: 0, conditions.SeverityWarning: 1, conditions.SeverityError: 2}
	return rank[s] >= rank[min]
}
