package injection

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// LabelOSMProxyUUID is the label OSM's injector puts on every pod it injects.
const LabelOSMProxyUUID = "osm-proxy-uuid"

// ForeignInjection says whether pod already went through another injector (OSM's, or anything
// that added a container under one of our names) without being a complete injection of ours.
// Such a pod is let through untouched: injecting again would duplicate container names, and
// refusing it would break a pod meshkeeper does not own. The string names the evidence.
func ForeignInjection(pod *corev1.Pod) (string, bool) {
	if Injected(pod) {
		return "", false
	}
	for _, name := range []string{redirect.OSMInitContainerName, redirect.InitContainerName, SidecarName} {
		if hasContainer(pod.Spec.InitContainers, name) {
			return fmt.Sprintf("init container %q", name), true
		}
		if hasContainer(pod.Spec.Containers, name) {
			return fmt.Sprintf("container %q", name), true
		}
	}
	if _, ok := pod.Labels[LabelOSMProxyUUID]; ok {
		return fmt.Sprintf("label %s", LabelOSMProxyUUID), true
	}
	return "", false
}

// OSMWebhookName is the MutatingWebhookConfiguration OSM's injector registers for a mesh.
func OSMWebhookName(meshName string) string { return "osm-webhook-" + meshName }

// WebhookName is the name of meshkeeper's pod webhook inside its configuration. A configuration
// holding it is meshkeeper's own, whatever prefix an overlay gave the configuration.
const WebhookName = "inject.meshkeeper.io"

// OtherInjectors lists the mutating webhook configurations, other than own, that inject pods of
// the mesh named meshName: OSM's osm-webhook-<mesh>, or any configuration with a webhook that is
// called for pod creation and whose namespace selector explicitly selects namespaces labelled
// openservicemesh.io/monitored-by=<mesh>. A webhook that merely matches every pod (a policy
// engine) is not counted: only a selector that names the mesh label is evidence of an injector
// for this mesh. The result is sorted.
func OtherInjectors(configs []admissionregistrationv1.MutatingWebhookConfiguration, meshName, own string) []string {
	var out []string
	for i := range configs {
		c := &configs[i]
		if c.Name == own || slices.ContainsFunc(c.Webhooks, func(w admissionregistrationv1.MutatingWebhook) bool { return w.Name == WebhookName }) {
			continue
		}
		if c.Name == OSMWebhookName(meshName) || slices.ContainsFunc(c.Webhooks, func(w admissionregistrationv1.MutatingWebhook) bool {
			return createsPods(w.Rules) && selectsMesh(w.NamespaceSelector, meshName)
		}) {
			out = append(out, c.Name)
		}
	}
	sort.Strings(out)
	return out
}

func createsPods(rules []admissionregistrationv1.RuleWithOperations) bool {
	for _, r := range rules {
		if anyOf(r.APIGroups, "") && anyOf(r.Resources, "pods") && anyOf(r.Operations, admissionregistrationv1.Create) {
			return true
		}
	}
	return false
}

func anyOf[T ~string](have []T, want T) bool {
	return slices.Contains(have, want) || slices.Contains(have, "*")
}

// selectsMesh: the selector mentions the mesh label and a namespace of the mesh satisfies it.
func selectsMesh(sel *metav1.LabelSelector, meshName string) bool {
	if sel == nil {
		return false
	}
	_, named := sel.MatchLabels[LabelMonitoredBy]
	for _, e := range sel.MatchExpressions {
		named = named || (e.Key == LabelMonitoredBy && e.Operator != metav1.LabelSelectorOpDoesNotExist)
	}
	if !named {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false
	}
	return s.Matches(labels.Set{LabelMonitoredBy: meshName, AnnotationSidecarInjection: "enabled"})
}

// InjectorConflictMessage says that injection is paused because of others, and what to do. The
// webhook's warnings, its readiness probe, its events and the CLI's diagnosis all say it this way.
func InjectorConflictMessage(mesh string, others []string) string {
	return fmt.Sprintf("another injector serves mesh %s (MutatingWebhookConfiguration %s), so meshkeeper does not inject: "+
		"pods are let through untouched and judged as they are. Either keep that injector and run meshkeeper with --mode=audit "+
		"(config/default), or remove it to let meshkeeper inject (docs/migrating-from-osm.md)", mesh, strings.Join(others, ", "))
}
