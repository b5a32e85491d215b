package injection

import (
	"reflect"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

func TestForeignInjection(t *testing.T) {
	app := corev1.Container{Name: "app", Image: "app"}
	ours := corev1.Pod{Spec: corev1.PodSpec{
		InitContainers: []corev1.Container{{Name: redirect.InitContainerName}},
		Containers:     []corev1.Container{app, {Name: SidecarName}},
	}}
	for _, tc := range []struct {
		name     string
		pod      corev1.Pod
		evidence string
	}{
		{"plain pod", corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{app}}}, ""},
		{"injected by us", ours, ""},
		{"OSM's init and envoy", corev1.Pod{Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: redirect.OSMInitContainerName}},
			Containers:     []corev1.Container{app, {Name: SidecarName}}}}, `init container "osm-init"`},
		{"only an envoy", corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{app, {Name: SidecarName}}}}, `container "envoy"`},
		{"only our init name", corev1.Pod{Spec: corev1.PodSpec{InitContainers: []corev1.Container{{Name: redirect.InitContainerName}},
			Containers: []corev1.Container{app}}}, `init container "meshkeeper-init"`},
		{"OSM's label", corev1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{LabelOSMProxyUUID: "x"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{app}}}, "label osm-proxy-uuid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ForeignInjection(&tc.pod)
			if got != tc.evidence || ok != (tc.evidence != "") {
				t.Errorf("ForeignInjection = %q, %v; want %q", got, ok, tc.evidence)
			}
		})
	}
}

func TestOtherInjectors(t *testing.T) {
	podCreate := []admissionregistrationv1.RuleWithOperations{{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
		Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
	}}
	wildcard := []admissionregistrationv1.RuleWithOperations{{
		Operations: []admissionregistrationv1.OperationType{"*"},
		Rule:       admissionregistrationv1.Rule{APIGroups: []string{"*"}, APIVersions: []string{"*"}, Resources: []string{"*"}},
	}}
	serviceCreate := []admissionregistrationv1.RuleWithOperations{{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
		Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"services"}},
	}}
	meshIs := func(v string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{LabelMonitoredBy: v}}
	}
	meshIn := func(v ...string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: LabelMonitoredBy, Operator: metav1.LabelSelectorOpIn, Values: v}}}
	}
	cfg := func(name string, rules []admissionregistrationv1.RuleWithOperations, sel *metav1.LabelSelector) admissionregistrationv1.MutatingWebhookConfiguration {
		return admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: name},
			Webhooks: []admissionregistrationv1.MutatingWebhook{{Name: name + ".example", Rules: rules, NamespaceSelector: sel}}}
	}
	configs := []admissionregistrationv1.MutatingWebhookConfiguration{
		cfg("meshkeeper-mutating-webhook-configuration", podCreate, meshIn("osm")),
		{ObjectMeta: metav1.ObjectMeta{Name: "renamed-by-an-overlay"}, // ours under another name
			Webhooks: []admissionregistrationv1.MutatingWebhook{{Name: WebhookName, Rules: podCreate, NamespaceSelector: meshIn("osm")}}},
		cfg("osm-webhook-osm", podCreate, meshIs("osm")),            // OSM's own, by name and selector
		cfg("osm-webhook-other", podCreate, meshIs("other")),        // another mesh name
		cfg("custom-injector", wildcard, meshIn("osm", "edge")),     // a home-grown injector for our mesh
		cfg("kyverno-resource-mutating-webhook-cfg", wildcard, nil), // every pod, no mesh label: a policy engine
		cfg("istio-sidecar-injector", podCreate, &metav1.LabelSelector{MatchLabels: map[string]string{"istio-injection": "enabled"}}),
		cfg("service-defaulter", serviceCreate, meshIs("osm")), // not about pods
		cfg("not-our-mesh", podCreate, &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: LabelMonitoredBy, Operator: metav1.LabelSelectorOpNotIn, Values: []string{"osm"}}}}),
	}
	got := OtherInjectors(configs, "osm", "meshkeeper-mutating-webhook-configuration")
	want := []string{"custom-injector", "osm-webhook-osm"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("OtherInjectors = %q, want %q", got, want)
	}
	if got := OtherInjectors(configs, "other", "meshkeeper-mutating-webhook-configuration"); !reflect.DeepEqual(got, []string{"not-our-mesh", "osm-webhook-other"}) {
		t.Errorf("mesh other: %q", got)
	}
}
