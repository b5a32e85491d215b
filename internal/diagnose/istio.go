package diagnose

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	"github.com/meshkeeper/meshkeeper/internal/drift"
	"github.com/meshkeeper/meshkeeper/internal/istio"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// Checks only Istio pods get.
const (
	// CheckIstioPorts: the ports Istio's proxy needs kept out of capture are, and the rules let
	// the proxy's own UID through.
	CheckIstioPorts = "istio-ports"
	// CheckInjectorConfig: the injector ConfigMap of the pod's revision exists and is readable.
	CheckInjectorConfig = "injector-config"
)

// IstioCheckNames lists the checks of an Istio pod in report order: Istio's runbook (injected,
// proxy ready, istio-init's exit code, annotations, rules versus the injector's values, the
// proxy's ports), then the namespace and the injector's configuration.
var IstioCheckNames = []string{
	CheckSidecarInjected, CheckSidecarReady, CheckInitContainer, CheckPodAnnotations, CheckExclusionsInSync,
	CheckIstioPorts, CheckNamespaceInject, CheckInjectorConfig,
}

// IsIstio reports whether the pod is judged as Istio's: Istio injected it, or its namespace asks
// Istio's injector for sidecars.
func IsIstio(in PodInput) bool {
	if in.Pod == nil {
		return false
	}
	if istio.Injected(in.Pod) {
		return true
	}
	inject, _ := drift.IstioShouldInject(namespaceMeta(in), in.Pod)
	return inject
}

func namespaceMeta(in PodInput) metav1.ObjectMeta {
	if in.Namespace != nil {
		return in.Namespace.ObjectMeta
	}
	return metav1.ObjectMeta{Name: in.Pod.Namespace}
}

func istioDriftInput(in PodInput) drift.Input {
	ref := drift.InjectorRef(in.IstioNamespace, istio.Revision(in.Pod))
	return drift.GatherIstio(in.Pod, namespaceMeta(in), drift.ReadIstioInjector(ref, in.IstioInjector), in.IstioTemplate, in.Now)
}

func diagnoseIstioPod(in PodInput) []Check {
	din := istioDriftInput(in)
	out := make([]Check, 0, len(IstioCheckNames))
	sidecar := istioSidecarInjected(in, din)
	out = append(out, sidecar)
	if sidecar.Status == StatusFail {
		skip := func(name string) Check {
			return Check{Name: name, Status: StatusSkip, Reason: "the pod has no " + istio.ProxyContainerName + " sidecar, so it has no redirection to judge"}
		}
		out = append(out, skip(CheckSidecarReady), skip(CheckInitContainer), istioAnnotations(in), skip(CheckExclusionsInSync), skip(CheckIstioPorts))
	} else {
		out = append(out, sidecarReadyOf(in, istio.ProxyContainerName), initContainerOf(in, din), istioAnnotations(in),
			istioExclusions(in, din), istioPorts(in))
	}
	return append(out, istioNamespaceInjection(in), injectorConfig(in))
}

func istioSidecarInjected(in PodInput, din drift.Input) Check {
	c := Check{Name: CheckSidecarInjected}
	v := drift.CheckSidecarInjected(din)
	c.Code, c.Reason = v.Reason, trimAction(v.Message, in.Pod)
	switch {
	case v.Status == corev1.ConditionTrue:
		c.Status = StatusPass
	case v.Reason == conditions.SidecarMissing:
		c.Status, c.Hint = StatusFail, drift.Action(in.Pod)
	case v.Reason == conditions.HostNetwork:
		c.Status, c.Hint = StatusFail, "pods on the host network are never injected"
	default:
		c.Status = StatusFail
		c.Hint = fmt.Sprintf("kubectl label namespace %s istio-injection=enabled (or istio.io/rev=<revision>), then %s", in.Pod.Namespace, drift.Action(in.Pod))
	}
	return c
}

// istioAnnotationKeys are the pod annotations Istio's injection reads for redirection.
var istioAnnotationKeys = []string{
	istio.AnnotationIncludeOutboundIPRanges, istio.AnnotationExcludeOutboundIPRanges, istio.AnnotationIncludeInboundPorts,
	istio.AnnotationExcludeInboundPorts, istio.AnnotationIncludeOutboundPorts, istio.AnnotationExcludeOutboundPorts,
	istio.AnnotationKubevirtInterfaces, istio.AnnotationRerouteInterfaces, istio.AnnotationExcludeInterfaces,
	istio.AnnotationStatusPort, istio.AnnotationInterceptionMode,
}

// istioAnnotations validates the pod's redirection annotations the way the injector reads them.
// For istio-cni pods the injector wrote them itself; they are still what the plugin read.
func istioAnnotations(in PodInput) Check {
	var set []string
	for _, k := range istioAnnotationKeys {
		if v, ok := in.Pod.Annotations[k]; ok {
			set = append(set, fmt.Sprintf("%s=%s", k, v))
		}
	}
	_, errs := istio.Expected(istio.DefaultValues(), in.Pod.Annotations, istio.ProxyUID(in.Pod))
	return annotationsCheck(in, set, errs, "no traffic.sidecar.istio.io annotations; the injector's values apply unchanged")
}

func istioExclusions(in PodInput, din drift.Input) Check {
	c := Check{Name: CheckExclusionsInSync}
	if in.IstioInjectorUnknown != "" {
		return skipped(c.Name, in.IstioInjectorUnknown)
	}
	var v drift.Verdict
	switch {
	case in.RulesErr != nil:
		c.Status, c.Code = StatusWarn, conditions.RulesUnreadable
		c.Reason = fmt.Sprintf("cannot read the rules in %s: %v", in.RulesSource, in.RulesErr)
		return c
	case in.Rules != nil && din.Istio != nil && len(din.ExpectedErrs) == 0 && !din.MeshMissing && din.Istio.Shape != istio.CNI:
		v = drift.CheckParsedExclusionsInSync(din, in.Rules, in.RulesSource)
	default:
		v = drift.CheckExclusionsInSync(din)
	}
	c.Code, c.Reason = v.Reason, trimAction(v.Message, in.Pod)
	switch {
	case v.Status == corev1.ConditionTrue:
		c.Status = StatusPass
	case v.Failed():
		c.Status, c.Hint = StatusFail, drift.Action(in.Pod)
	case v.Reason == conditions.InvalidSpec:
		c.Status = StatusFail
		c.Hint = fmt.Sprintf("kubectl get configmap %s -n %s -o yaml (or fix the pod's annotations)", istio.InjectorConfigMap(istio.Revision(in.Pod)), in.IstioNamespace)
	default:
		c.Status = StatusWarn
	}
	return c
}

// istioPorts checks what Istio's proxy needs from the rules the pod runs: its metrics (15090),
// health (15021) and status (15020, or the pod's status.sidecar.istio.io/port) ports kept out
// of inbound capture, so probes and scraping reach it; and its own UID let through outbound, so
// its upstream connections do not loop back into it.
func istioPorts(in PodInput) Check {
	c := Check{Name: CheckIstioPorts}
	parsed, source, err := istio.PodRules(in.Pod)
	if in.Rules != nil {
		parsed, source, err = in.Rules, in.RulesSource, nil
	}
	switch {
	case err != nil:
		c.Status, c.Code, c.Reason = StatusWarn, conditions.RulesUnreadable, err.Error()
		return c
	case parsed == nil:
		return skipped(c.Name, "the pod has no istio-init or istio-validation init container")
	}
	ex := parsed.Exclusions()
	var problems []string
	want := []uint16{istio.MetricsPort, istio.HealthPort}
	status := istio.DefaultStatusPort
	if v, ok := in.Pod.Annotations[istio.AnnotationStatusPort]; ok {
		if p, err := parsePortText(v); err == nil {
			status = p
		}
	}
	if status != 0 {
		want = append(want, status)
	}
	if ex.InboundCapture == redirect.CaptureOn && len(ex.InboundPortInclusions) == 0 {
		for _, p := range want {
			if !slices.Contains(ex.InboundPorts, p) {
				problems = append(problems, fmt.Sprintf("inbound port %d is captured, so the proxy's own listener on it is reached through the proxy (probes and scraping fail)", p))
			}
		}
	}
	uid := istio.ProxyUID(in.Pod)
	if ex.ProxyUID != uid {
		problems = append(problems, fmt.Sprintf("the rules let UID %s bypass capture but %s runs as UID %d, so its own connections loop back into it",
			redirect.UIDText(ex.ProxyUID), istio.ProxyContainerName, uid))
	}
	if len(problems) > 0 {
		c.Status, c.Code = StatusFail, conditions.Drifted
		c.Reason = strings.Join(problems, "; ") + " (rules from " + source + ")"
		c.Hint = drift.Action(in.Pod)
		return c
	}
	c.Status = StatusPass
	c.Reason = fmt.Sprintf("the proxy's ports %s stay out of inbound capture and its UID %d bypasses outbound capture (rules from %s)", listOrNone(want), uid, source)
	return c
}

func parsePortText(v string) (uint16, error) {
	var p uint16
	_, err := fmt.Sscanf(strings.TrimSpace(v), "%d", &p)
	return p, err
}

func istioNamespaceInjection(in PodInput) Check {
	c := Check{Name: CheckNamespaceInject}
	if in.Namespace == nil {
		return skipped(c.Name, orUnknownNS(in))
	}
	inject, why := drift.IstioShouldInject(in.Namespace.ObjectMeta, in.Pod)
	c.Reason = why
	if inject {
		c.Status = StatusPass
		return c
	}
	c.Status = StatusWarn
	c.Hint = fmt.Sprintf("kubectl label namespace %s istio-injection=enabled (or istio.io/rev=<revision>), then %s", in.Pod.Namespace, drift.Action(in.Pod))
	return c
}

func injectorConfig(in PodInput) Check {
	c := Check{Name: CheckInjectorConfig}
	rev := istio.Revision(in.Pod)
	name := istio.InjectorConfigMap(rev)
	switch {
	case in.IstioInjectorUnknown != "":
		return skipped(c.Name, in.IstioInjectorUnknown)
	case in.IstioInjector == nil:
		c.Status, c.Code = StatusFail, conditions.InjectorConfigNotFound
		c.Reason = fmt.Sprintf("ConfigMap %s/%s (revision %s) does not exist, so the exclusions the pod should have are unknown", in.IstioNamespace, name, rev)
		c.Hint = fmt.Sprintf("kubectl get configmaps -n %s -l istio.io/rev (or pass --istio-namespace)", in.IstioNamespace)
		return c
	}
	v, err := istio.ParseValues(in.IstioInjector.Data[istio.InjectorValuesKey])
	if err != nil {
		c.Status, c.Code = StatusFail, conditions.InvalidSpec
		c.Reason = fmt.Sprintf("ConfigMap %s/%s: %v", in.IstioNamespace, name, err)
		c.Hint = fmt.Sprintf("kubectl get configmap %s -n %s -o jsonpath='{.data.values}'", name, in.IstioNamespace)
		return c
	}
	c.Status = StatusPass
	mode := "istio-init"
	if v.CNI {
		mode = "istio-cni"
	}
	c.Reason = fmt.Sprintf("ConfigMap %s/%s (revision %s, %s): includeIPRanges %q, excludeIPRanges %q, includeInboundPorts %q, excludeInboundPorts %q, excludeOutboundPorts %q",
		in.IstioNamespace, name, rev, mode, v.IncludeIPRanges, v.ExcludeIPRanges, v.IncludeInboundPorts, v.ExcludeInboundPorts, v.ExcludeOutboundPorts)
	return c
}
