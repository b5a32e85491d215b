package diagnose

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	"github.com/meshkeeper/meshkeeper/internal/drift"
	"github.com/meshkeeper/meshkeeper/internal/injection"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// DiagnosePod runs every check, in CheckNames order, and returns one Check per name. Pods of
// Istio (injected by it, or in a namespace that asks it for sidecars) get Istio's runbook instead
// (IstioCheckNames).
func DiagnosePod(in PodInput) []Check {
	if IsIstio(in) {
		return diagnoseIstioPod(in)
	}
	out := make([]Check, 0, len(CheckNames))
	sidecar := sidecarInjected(in)
	out = append(out, sidecar)
	noSidecar := sidecar.Status == StatusFail || !drift.HasSidecar(in.Pod)
	skipNoSidecar := func(name string) Check {
		return Check{Name: name, Status: StatusSkip, Reason: "the pod has no " + injection.SidecarName + " sidecar, so it has no redirection to judge"}
	}
	if noSidecar {
		out = append(out, skipNoSidecar(CheckSidecarReady), skipNoSidecar(CheckInitContainer))
	} else {
		out = append(out, sidecarReady(in), initContainer(in))
	}
	out = append(out, podAnnotations(in))
	if noSidecar {
		out = append(out, skipNoSidecar(CheckExclusionsInSync))
	} else {
		out = append(out, exclusionsInSync(in))
	}
	out = append(out, namespaceMonitored(in), namespaceInjection(in), meshConfig(in), crds(in))
	out = append(out, webhooks(in)...)
	out = append(out, operator(in))
	return out
}

func skipped(name string, why Unknown) Check {
	return Check{Name: name, Status: StatusSkip, Reason: string(why)}
}

// driftInput builds the drift package's input, with a stand-in MeshConfig when it is unknown
// so that the checks that do not depend on it still run.
func driftInput(in PodInput) drift.Input {
	ns := metav1.ObjectMeta{Name: in.Pod.Namespace}
	if in.Namespace != nil {
		ns = in.Namespace.ObjectMeta
	}
	mc := in.MeshConfig
	if mc == nil {
		mc = meshConfigStub(in)
	}
	din := drift.Gather(in.Pod, ns, mc, in.Selection, in.Now)
	din.Mesh.Source = in.MeshConfigSource
	return din
}

func sidecarInjected(in PodInput) Check {
	c := Check{Name: CheckSidecarInjected}
	if drift.HasSidecar(in.Pod) {
		c.Status, c.Code = StatusPass, conditions.Injected
		c.Reason = fmt.Sprintf("pod carries the %s sidecar", injection.SidecarName)
		return c
	}
	if in.Namespace == nil {
		c.Status = StatusFail
		c.Reason = fmt.Sprintf("pod has no %s sidecar; whether it should have one depends on its namespace, which was not read (%s)", injection.SidecarName, orUnknown(in.NamespaceUnknown))
		c.Hint = fmt.Sprintf("kubectl get namespace %s --show-labels", in.Pod.Namespace)
		return c
	}
	v := drift.CheckSidecarInjected(driftInput(in))
	reason, message := v.Reason, v.Message
	c.Status, c.Code, c.Reason = StatusFail, reason, message
	switch reason {
	case conditions.SidecarMissing:
		c.Reason = trimAction(message, in.Pod)
		c.Hint = drift.Action(in.Pod)
	case conditions.NotMeshed:
		c.Hint = fmt.Sprintf("kubectl label namespace %s %s=%s, then %s", in.Pod.Namespace, injection.LabelMonitoredBy, meshName(in), drift.Action(in.Pod))
	case conditions.InjectionDisabled:
		c.Hint = fmt.Sprintf("kubectl annotate namespace %s %s=enabled --overwrite (or fix the pod's annotation), then %s", in.Pod.Namespace, injection.AnnotationSidecarInjection, drift.Action(in.Pod))
	case conditions.HostNetwork:
		c.Hint = "pods on the host network are never meshed; run the workload without hostNetwork to mesh it"
	}
	return c
}

func sidecarReady(in PodInput) Check { return sidecarReadyOf(in, injection.SidecarName) }

// sidecarReadyOf judges the readiness of the proxy container named sidecar.
func sidecarReadyOf(in PodInput, sidecar string) Check {
	c := Check{Name: CheckSidecarReady}
	pod := in.Pod
	if pod.Status.Phase == "" && len(pod.Status.ContainerStatuses) == 0 {
		return skipped(c.Name, "the pod has no status (offline file without status)")
	}
	var st *corev1.ContainerStatus
	for i := range pod.Status.ContainerStatuses {
		if pod.Status.ContainerStatuses[i].Name == sidecar {
			st = &pod.Status.ContainerStatuses[i]
		}
	}
	ready, total := 0, len(pod.Spec.Containers)
	for _, s := range pod.Status.ContainerStatuses {
		if s.Ready {
			ready++
		}
	}
	logs := fmt.Sprintf("kubectl logs %s -n %s -c %s", pod.Name, pod.Namespace, sidecar)
	switch {
	case st == nil:
		c.Status = StatusWarn
		c.Reason = fmt.Sprintf("pod is %s and the %s container has no status yet", orPhase(pod.Status.Phase), sidecar)
		c.Hint = fmt.Sprintf("kubectl describe pod %s -n %s", pod.Name, pod.Namespace)
	case st.Ready:
		c.Status = StatusPass
		c.Reason = fmt.Sprintf("pod is %s, %d/%d containers ready, %s ready", orPhase(pod.Status.Phase), ready, total, sidecar)
	case st.State.Waiting != nil && st.State.Waiting.Reason != "" && st.State.Waiting.Reason != "PodInitializing" && st.State.Waiting.Reason != "ContainerCreating":
		c.Status, c.Code = StatusFail, CodeSidecarNotReady
		c.Reason = fmt.Sprintf("%s is waiting (%s) after %d restarts; pod is %s, %d/%d containers ready", sidecar, st.State.Waiting.Reason, st.RestartCount, orPhase(pod.Status.Phase), ready, total)
		c.Hint = logs + " --previous"
	case st.State.Running == nil:
		c.Status, c.Code = StatusWarn, CodeSidecarNotReady
		c.Reason = fmt.Sprintf("%s has not started yet; pod is %s", sidecar, orPhase(pod.Status.Phase))
		c.Hint = fmt.Sprintf("kubectl describe pod %s -n %s", pod.Name, pod.Namespace)
	default:
		c.Status, c.Code = StatusFail, CodeSidecarNotReady
		c.Reason = fmt.Sprintf("%s is running but not ready (%d restarts); pod is %s, %d/%d containers ready", sidecar, st.RestartCount, orPhase(pod.Status.Phase), ready, total)
		c.Hint = logs
	}
	return c
}

func initContainer(in PodInput) Check { return initContainerOf(in, driftInput(in)) }

// initContainerOf reads the redirection init container's status through din, for any mesh.
func initContainerOf(in PodInput, din drift.Input) Check {
	c := Check{Name: CheckInitContainer}
	pod := in.Pod
	if pod.Status.Phase == "" && len(pod.Status.InitContainerStatuses) == 0 && drift.RedirectionInitContainer(pod) != nil {
		return skipped(c.Name, "the pod has no status (offline file without status)")
	}
	v := drift.CheckRedirectionApplied(din)
	reason, message := v.Reason, v.Message
	c.Code, c.Reason = reason, message
	switch v.Status {
	case corev1.ConditionTrue:
		c.Status = StatusPass
	case corev1.ConditionUnknown:
		c.Status = StatusWarn
		c.Hint = fmt.Sprintf("kubectl describe pod %s -n %s", pod.Name, pod.Namespace)
	default:
		c.Status = StatusFail
		c.Reason = trimAction(message, pod)
		if reason == conditions.InitContainerMissing {
			c.Hint = drift.Action(pod)
			break
		}
		name := drift.RedirectionInitContainer(pod).Name
		switch {
		case in.InitLog != "":
			c.Reason += "; last log line: " + in.InitLog
		case in.InitLogUnknown != "":
			c.Reason += "; last log line unavailable: " + string(in.InitLogUnknown)
		}
		c.Hint = fmt.Sprintf("kubectl logs %s -n %s -c %s", pod.Name, pod.Namespace, name)
		c.Reason = strings.Replace(c.Reason, "; inspect it with: "+c.Hint, "", 1)
	}
	return c
}

func podAnnotations(in PodInput) Check {
	var set []string
	for _, k := range []string{redirect.AnnotationOutboundIPRangeExclusionList, redirect.AnnotationOutboundIPRangeInclusionList,
		redirect.AnnotationOutboundPortExclusionList, redirect.AnnotationInboundPortExclusionList} {
		if v, ok := in.Pod.Annotations[k]; ok {
			set = append(set, fmt.Sprintf("%s=%s", k, v))
		}
	}
	errs := redirect.ValidateAnnotations(in.Pod.Annotations)
	if v, ok := in.Pod.Annotations[injection.AnnotationSidecarInjection]; ok {
		if _, err := injection.ParseInjectionValue(v); err != nil {
			errs = append(errs, field.Invalid(field.NewPath("metadata", "annotations").Key(injection.AnnotationSidecarInjection), v, err.Error()))
		}
	}
	return annotationsCheck(in, set, errs, "no redirection annotations; the MeshConfig's exclusions apply unchanged")
}

// annotationsCheck reports the redirection annotations set on a pod (as key=value) and the
// errors found in them, for either mesh's annotations.
func annotationsCheck(in PodInput, set []string, errs field.ErrorList, none string) Check {
	c := Check{Name: CheckPodAnnotations}
	if len(errs) > 0 {
		c.Status, c.Code = StatusFail, conditions.InvalidSpec
		c.Reason = "invalid annotations: " + errs.ToAggregate().Error()
		c.Hint = fmt.Sprintf("fix the annotation in the workload's pod template (kubectl edit the owner of pod %s -n %s); the injector rejects or ignores it until then", in.Pod.Name, in.Pod.Namespace)
		return c
	}
	c.Status = StatusPass
	if len(set) == 0 {
		c.Reason = none
	} else {
		sort.Strings(set)
		c.Reason = "valid: " + strings.Join(set, ", ")
	}
	return c
}

func exclusionsInSync(in PodInput) Check {
	c := Check{Name: CheckExclusionsInSync}
	if in.MeshConfig == nil {
		why := in.MeshConfigUnknown
		if why == "" {
			why = Unknown(fmt.Sprintf("MeshConfig %s does not exist, so there is nothing to compare the rules with", in.MeshConfigRef))
		}
		return skipped(c.Name, why)
	}
	if in.RulesErr != nil {
		// Unreadable rules are not drift: whether the pod runs what it should is unknown, which
		// is what a warning means here, as it does for the operator's Unknown condition.
		c.Status, c.Code = StatusWarn, conditions.RulesUnreadable
		c.Reason = fmt.Sprintf("cannot read the rules in %s: %v", in.RulesSource, in.RulesErr)
		c.Hint = "pass iptables-save output taken inside the pod, or the init container spec"
		return c
	}
	din := driftInput(in)
	var v drift.Verdict
	if in.Rules != nil {
		v = drift.CheckParsedExclusionsInSync(din, in.Rules, in.RulesSource)
	} else {
		v = drift.CheckExclusionsInSync(din)
	}
	reason := v.Reason
	c.Code = reason
	c.Reason = trimAction(v.Message, in.Pod)
	switch {
	case v.Status == corev1.ConditionTrue:
		c.Status = StatusPass
		ex := din.Expected.Exclusions()
		c.Reason += fmt.Sprintf(" (outbound ranges %s; outbound ports %s; inbound ports %s)", listOrNone(ex.OutboundIPRanges), listOrNone(ex.OutboundPorts), listOrNone(ex.InboundPorts))
	case reason == conditions.InvalidSpec:
		c.Status = StatusFail
		c.Hint = fmt.Sprintf("kubectl edit meshconfig %s -n %s (or fix the pod's annotations)", in.MeshConfigRef.Name, in.MeshConfigRef.Namespace)
	case v.Failed():
		c.Status = StatusFail
		c.Hint = drift.Action(in.Pod)
	case reason == conditions.RulesUnreadable:
		c.Status = StatusWarn
		c.Hint = "pass iptables-save output taken inside the pod, or restart it to have its rules rendered again: " + drift.Action(in.Pod)
	default:
		c.Status = StatusWarn
	}
	return c
}

func namespaceMonitored(in PodInput) Check {
	c := Check{Name: CheckNamespaceMonitor}
	if in.Namespace == nil {
		return skipped(c.Name, orUnknownNS(in))
	}
	ns := in.Namespace
	mesh := meshName(in)
	label := fmt.Sprintf("kubectl label namespace %s %s=%s --overwrite", ns.Name, injection.LabelMonitoredBy, mesh)
	v := ns.Labels[injection.LabelMonitoredBy]
	switch injection.NamespaceMembership(ns, mesh) {
	case injection.SystemNamespace:
		c.Status, c.Reason = StatusFail, ns.Name+" never participates in the mesh"
		c.Hint = "run the workload in another namespace"
	case injection.IgnoredNamespace:
		c.Status = StatusFail
		c.Reason = fmt.Sprintf("namespace %s is labelled %s, which keeps it out of the mesh", ns.Name, injection.LabelIgnore)
		c.Hint = fmt.Sprintf("kubectl label namespace %s %s-", ns.Name, injection.LabelIgnore)
	case injection.Unlabelled:
		c.Status = StatusFail
		c.Reason = fmt.Sprintf("namespace %s has no %s label, so the injector does not serve it", ns.Name, injection.LabelMonitoredBy)
		c.Hint = label
	case injection.OtherMesh:
		c.Status = StatusFail
		c.Reason = fmt.Sprintf("namespace %s is labelled %s=%s, but this mesh is %q", ns.Name, injection.LabelMonitoredBy, v, mesh)
		c.Hint = label
	default:
		c.Status = StatusPass
		c.Reason = fmt.Sprintf("namespace %s is labelled %s=%s", ns.Name, injection.LabelMonitoredBy, v)
	}
	return c
}

func namespaceInjection(in PodInput) Check {
	c := Check{Name: CheckNamespaceInject}
	if in.Namespace == nil {
		return skipped(c.Name, orUnknownNS(in))
	}
	ns := in.Namespace
	hint := fmt.Sprintf("kubectl annotate namespace %s %s=enabled --overwrite, then restart the workloads: %s", ns.Name, injection.AnnotationSidecarInjection, drift.Action(in.Pod))
	nsValue, nsSet := ns.Annotations[injection.AnnotationSidecarInjection]
	podValue, podSet := in.Pod.Annotations[injection.AnnotationSidecarInjection]
	nsOn, nsErr := injection.ParseInjectionValue(nsValue)
	podOn, podErr := injection.ParseInjectionValue(podValue)
	switch {
	case nsSet && nsErr != nil:
		c.Status = StatusFail
		c.Reason = fmt.Sprintf("namespace annotation %s=%q is invalid: %v", injection.AnnotationSidecarInjection, nsValue, nsErr)
		c.Hint = hint
	case podSet && podErr == nil && podOn:
		c.Status = StatusPass
		c.Reason = fmt.Sprintf("the pod's annotation %s=%s enables injection", injection.AnnotationSidecarInjection, podValue)
	case podSet && podErr == nil && !podOn:
		c.Status = StatusFail
		c.Reason = fmt.Sprintf("the pod's annotation %s=%s turns injection off, whatever the namespace says", injection.AnnotationSidecarInjection, podValue)
		c.Hint = fmt.Sprintf("remove the annotation from the workload's pod template, then %s", drift.Action(in.Pod))
	case nsSet && nsOn:
		c.Status = StatusPass
		c.Reason = fmt.Sprintf("namespace %s is annotated %s=%s", ns.Name, injection.AnnotationSidecarInjection, nsValue)
	case nsSet:
		c.Status = StatusFail
		c.Reason = fmt.Sprintf("namespace %s is annotated %s=%s, so new pods get no sidecar", ns.Name, injection.AnnotationSidecarInjection, nsValue)
		c.Hint = hint
	default:
		c.Status = StatusFail
		c.Reason = fmt.Sprintf("namespace %s has no %s annotation and the pod none either, so new pods get no sidecar", ns.Name, injection.AnnotationSidecarInjection)
		c.Hint = hint
	}
	return c
}

func meshConfig(in PodInput) Check {
	c := Check{Name: CheckMeshConfig}
	ref := in.MeshConfigRef
	if in.MeshConfigUnknown != "" {
		return skipped(c.Name, in.MeshConfigUnknown)
	}
	if in.MeshConfig == nil {
		c.Status, c.Code = StatusFail, conditions.FindingMeshConfigNotFound
		c.Reason = fmt.Sprintf("MeshConfig %s/%s does not exist, so pods are judged against nothing and new pods are not injected as configured", ref.Namespace, ref.Name)
		c.Hint = fmt.Sprintf("kubectl get meshconfigs -A (then pass --mesh-namespace/--meshconfig-name), or create %s/%s", ref.Namespace, ref.Name)
		return c
	}
	errs := injection.ValidateMeshConfig(&in.MeshConfig.Spec)
	from := fmt.Sprintf("MeshConfig %s/%s", in.MeshConfig.Namespace, in.MeshConfig.Name)
	if in.MeshConfigSource != "" {
		from += " from " + in.MeshConfigSource
	}
	if len(errs) > 0 {
		c.Status, c.Code = StatusFail, conditions.InvalidSpec
		c.Reason = from + " has invalid traffic settings: " + errs.ToAggregate().Error()
		c.Hint = fmt.Sprintf("kubectl edit meshconfig %s -n %s", in.MeshConfig.Name, in.MeshConfig.Namespace)
		return c
	}
	t := in.MeshConfig.Spec.Traffic
	c.Status = StatusPass
	if in.MeshConfig.Generation > 0 {
		from += fmt.Sprintf(" (generation %d)", in.MeshConfig.Generation)
	}
	c.Reason = fmt.Sprintf("%s found: outboundIPRangeExclusionList %s, outboundPortExclusionList %s, inboundPortExclusionList %s",
		from, listOrNone(t.OutboundIPRangeExclusionList), listOrNone(t.OutboundPortExclusionList), listOrNone(t.InboundPortExclusionList))
	return c
}

func meshName(in PodInput) string {
	if in.Selection.MeshName == "" {
		return "osm"
	}
	return in.Selection.MeshName
}

func orUnknown(u Unknown) string {
	if u == "" {
		return "not available"
	}
	return string(u)
}

func orUnknownNS(in PodInput) Unknown {
	if in.NamespaceUnknown != "" {
		return in.NamespaceUnknown
	}
	return Unknown(fmt.Sprintf("namespace %s was not read", in.Pod.Namespace))
}

func orPhase(p corev1.PodPhase) string {
	if p == "" {
		return "in an unknown phase"
	}
	return string(p)
}

// trimAction removes the trailing "restart the pod: <action>" the drift messages carry, since
// the action is the check's hint.
func trimAction(message string, pod *corev1.Pod) string {
	action := drift.Action(pod)
	for _, suffix := range []string{"; restart the pod: " + action, "; restart it: " + action, "; restart it to have it injected: " + action,
		", restart it to have it rendered again: " + action, ", restart it to have its rules rendered again: " + action} {
		if strings.HasSuffix(message, suffix) {
			return strings.TrimSuffix(message, suffix)
		}
	}
	return message
}

func listOrNone[T any](s []T) string {
	if len(s) == 0 {
		return "[]"
	}
	parts := make([]string, len(s))
	for i, v := range s {
		parts[i] = fmt.Sprint(v)
	}
	return "[" + strings.Join(parts, ",") + "]"
}
