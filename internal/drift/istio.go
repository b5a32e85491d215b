package drift

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	"github.com/meshkeeper/meshkeeper/internal/istio"
)

// IstioInput is what judging an Istio pod needs beyond Input: the injector's values for the
// pod's revision and, for istio-cni pods, the annotations of the workload's pod template (the
// injector overwrites the pod's own with the values it used, so only the template still says
// what the workload asked for).
type IstioInput struct {
	Desired istio.Desired
	Shape   istio.Shape
	// Template is nil when the pod has no workload whose template could be read.
	Template map[string]string
}

// InjectorRef names the injector ConfigMap of a revision in the control plane's namespace.
func InjectorRef(namespace, revision string) MeshRef {
	return MeshRef{Kind: "ConfigMap", Namespace: namespace, Name: istio.InjectorConfigMap(revision)}
}

// IstioInjector is an injector ConfigMap as judging reads it: its values parsed once and shared
// by every pod of the revision. Parsing istiod's values, kilobytes of JSON, was nearly all the
// cost of judging an Istio pod.
type IstioInjector struct {
	Ref MeshRef
	// Missing is true when the ConfigMap does not exist.
	Missing bool
	Values  istio.Values
	// Errs says why the values could not be read; Values is then unusable.
	Errs field.ErrorList
}

// ReadIstioInjector reads cm, the injector ConfigMap ref names, nil when it does not exist.
func ReadIstioInjector(ref MeshRef, cm *corev1.ConfigMap) IstioInjector {
	inj := IstioInjector{Ref: ref}
	if cm == nil {
		inj.Missing = true
		return inj
	}
	values, err := istio.ParseValues(cm.Data[istio.InjectorValuesKey])
	if err != nil {
		inj.Errs = field.ErrorList{field.Invalid(field.NewPath("data").Key(istio.InjectorValuesKey), "", err.Error())}
		return inj
	}
	inj.Values = values
	return inj
}

// GatherIstio builds the Input of an Istio pod judged against inj, the injector of its
// revision; template holds the workload's pod template annotations when known (only istio-cni
// pods need them).
func GatherIstio(pod *corev1.Pod, ns metav1.ObjectMeta, inj IstioInjector, template map[string]string, now time.Time) Input {
	_, shape := istio.RedirectionContainer(pod)
	in := Input{Pod: pod, Namespace: ns, Mesh: inj.Ref, Now: now, Istio: &IstioInput{Shape: shape, Template: template}}
	switch {
	case inj.Missing:
		in.MeshMissing = true
		return in
	case len(inj.Errs) > 0:
		in.ExpectedErrs = inj.Errs
		return in
	}
	uid := istio.ProxyUID(pod)
	if shape == istio.CNI {
		if template != nil {
			in.Istio.Desired, in.ExpectedErrs = istio.ExpectedCNI(inj.Values, template, uid)
		}
		return in
	}
	in.Istio.Desired, in.ExpectedErrs = istio.Expected(inj.Values, pod.Annotations, uid)
	return in
}

// IstioShouldInject reports whether Istio's injector would inject a new pod of this namespace,
// with the labels Istio reads: the namespace's istio-injection or istio.io/rev label, and the
// pod's sidecar.istio.io/inject label (or the older annotation) to opt out.
func IstioShouldInject(ns metav1.ObjectMeta, pod *corev1.Pod) (bool, string) {
	podSays, ok := pod.Labels["sidecar.istio.io/inject"]
	if !ok {
		podSays, ok = pod.Annotations["sidecar.istio.io/inject"]
	}
	if ok && podSays == "false" {
		return false, "the pod sets sidecar.istio.io/inject=false"
	}
	switch {
	case ns.Labels["istio-injection"] == "disabled":
		return false, fmt.Sprintf("namespace %s has istio-injection=disabled", ns.Name)
	case ns.Labels["istio-injection"] == "enabled":
		return true, fmt.Sprintf("namespace %s has istio-injection=enabled", ns.Name)
	case ns.Labels[istio.LabelRevision] != "":
		return true, fmt.Sprintf("namespace %s has %s=%s", ns.Name, istio.LabelRevision, ns.Labels[istio.LabelRevision])
	case ok && podSays == "true":
		return true, "the pod sets sidecar.istio.io/inject=true"
	}
	return false, fmt.Sprintf("namespace %s has no istio-injection or %s label", ns.Name, istio.LabelRevision)
}

func checkIstioSidecarInjected(in Input) Verdict {
	pod := in.Pod
	if istio.ProxyContainer(pod) != nil {
		return verdictTrue(conditions.Injected, fmt.Sprintf("pod carries the %s sidecar", istio.ProxyContainerName))
	}
	inject, why := IstioShouldInject(in.Namespace, pod)
	switch {
	case pod.Spec.HostNetwork:
		return verdictFalse(conditions.HostNetwork, "pod uses the host network and is never injected")
	case inject:
		return verdictFalse(conditions.SidecarMissing, fmt.Sprintf("pod has no %s sidecar although %s, so its traffic bypasses the mesh; restart it to have it injected: %s",
			istio.ProxyContainerName, why, Action(pod)))
	}
	return verdictFalse(conditions.InjectionDisabled, "pod is not meshed: "+why)
}

func checkIstioRedirectionApplied(in Input) Verdict {
	pod := in.Pod
	c, _ := istio.RedirectionContainer(pod)
	if c == nil {
		msg := fmt.Sprintf("pod has the %s sidecar but neither an %s nor an %s init container, so nothing redirects its traffic to the sidecar",
			istio.ProxyContainerName, istio.InitContainerName, istio.ValidationContainerName)
		if pod.Annotations[istio.AnnotationInterceptionMode] == "NONE" {
			msg += fmt.Sprintf(" (the pod asks for it: %s=NONE)", istio.AnnotationInterceptionMode)
			return verdictFalse(conditions.InitContainerMissing, msg)
		}
		return verdictFalse(conditions.InitContainerMissing, msg+"; restart it: "+Action(pod))
	}
	return initContainerVerdict(pod, c)
}

func checkIstioExclusionsInSync(in Input) Verdict {
	pod := in.Pod
	if in.MeshMissing {
		return verdictUnknown(conditions.InjectorConfigNotFound, fmt.Sprintf("%s does not exist, so the exclusions this pod (revision %s) should have are unknown: check the revision with istioctl tag list, or point the manager at the control plane's namespace with --istio-namespace",
			in.Mesh, istio.Revision(pod)))
	}
	if v, unknown := expectedUnknown(in); unknown {
		return v
	}
	c, shape := istio.RedirectionContainer(pod)
	uid := istio.ProxyUID(pod)
	switch shape {
	case istio.InitContainer:
		rules := in.Rules.read(c)
		if rules.err != nil {
			return verdictUnknown(conditions.RulesUnreadable, fmt.Sprintf("cannot read the istio-iptables arguments of init container %s: %v; whether the pod is in sync is unknown, restart it to have its rules rendered again: %s",
				c.Name, rules.err, Action(pod)))
		}
		return judge(in, rules, c.Name)
	case istio.CNI:
		if in.Istio.Template == nil {
			return verdictUnknown(conditions.RulesUnreadable, fmt.Sprintf("istio-cni rendered this pod's rules from annotations the injector wrote, and the pod has no workload whose template says which of them the workload set itself; restart it to have them rendered from %s: %s",
				in.Mesh, Action(pod)))
		}
		applied, err := istio.CNISettings(pod.Annotations, uid)
		if err != nil {
			return verdictUnknown(conditions.RulesUnreadable, fmt.Sprintf("cannot read the annotations istio-cni rendered this pod's rules from: %v; restart it: %s", err, Action(pod)))
		}
		return judge(in, readRules{exclusions: applied.Exclusions()}, "istio-cni")
	}
	return verdictUnknown(conditions.RulesUnreadable, fmt.Sprintf("pod has no %s or %s init container to read rules from", istio.InitContainerName, istio.ValidationContainerName))
}

// IstioTemplateNeeded reports whether judging pod needs its workload's template annotations.
func IstioTemplateNeeded(pod *corev1.Pod) bool {
	_, shape := istio.RedirectionContainer(pod)
	return shape == istio.CNI
}

// istioArgsOf reads an istio-init container for the rule cache: only its settings, which is
// all a verdict needs (rendering rules is for explain).
func istioArgsOf(c *corev1.Container) (readRules, bool) {
	s, ok, err := istio.ContainerSettings(c.Name, c.Command, c.Args)
	if !ok {
		return readRules{}, false
	}
	if err != nil {
		return readRules{err: err}, true
	}
	return readRules{exclusions: s.Exclusions()}, true
}
