package drift

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	"github.com/meshkeeper/meshkeeper/internal/istio"
	"github.com/meshkeeper/meshkeeper/internal/podtest"
)

// istioValues are the injector values the pods below were admitted with.
const istioValues = `{"global":{"proxy":{"includeIPRanges":"*","excludeIPRanges":"10.0.0.0/24","includeInboundPorts":"*","excludeInboundPorts":"","excludeOutboundPorts":"","statusPort":15020}}}`

// istioArgs are the istio-init args the injection template renders from istioValues.
var istioArgs = []string{"-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT", "-i", "*", "-x", "10.0.0.0/24",
	"-b", "*", "-d", "15090,15021,15020", "--log_output_level=default:info"}

var istioNamespace = metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"istio-injection": "enabled"}}

func istioPod() *podtest.PodBuilder {
	return podtest.NewPod("shop", "frontend-8c4c9dcb9-kpm8n", "frontend:v1").Deployment("frontend", "8c4c9dcb9")
}

func judgeIstio(pod *corev1.Pod, values string, template map[string]string) map[corev1.PodConditionType]corev1.PodCondition {
	var cm *corev1.ConfigMap
	if values != "" {
		cm = podtest.IstioInjectorConfigMap(values)
	}
	in := GatherIstio(pod, istioNamespace, ReadIstioInjector(InjectorRef("istio-system", istio.Revision(pod)), cm), template, testNow)
	out := map[corev1.PodConditionType]corev1.PodCondition{}
	for _, c := range Evaluate(in) {
		out[c.Type] = c
	}
	return out
}

func TestIstioPods(t *testing.T) {
	changed := strings.Replace(istioValues, `"excludeIPRanges":"10.0.0.0/24"`, `"excludeIPRanges":"10.0.0.0/24,10.0.1.0/24"`, 1)
	cases := []struct {
		name     string
		pod      *corev1.Pod
		values   string
		template map[string]string
		want     map[corev1.PodConditionType]string // type -> status/reason
		message  string                             // in ExclusionsInSync's message
	}{
		{
			name:   "freshly injected pod is in sync",
			pod:    istioPod().IstioInit(istioArgs...).InitDone().Obj(),
			values: istioValues,
			want: map[corev1.PodConditionType]string{conditions.PodSidecarInjected: "True/Injected",
				conditions.PodRedirectionApplied: "True/Applied", conditions.PodExclusionsInSync: "True/InSync"},
			message: "redirection rules match ConfigMap istio-system/istio-sidecar-injector and the pod's annotations",
		},
		{
			name:    "values changed after admission",
			pod:     istioPod().IstioInit(istioArgs...).InitDone().Obj(),
			values:  changed,
			want:    map[corev1.PodConditionType]string{conditions.PodExclusionsInSync: "False/Drifted"},
			message: "outbound IP range 10.0.1.0/24 from ConfigMap istio-system/istio-sidecar-injector key values, global.proxy.excludeIPRanges is not in the istio-init rules; restart the pod: kubectl rollout restart deployment/frontend -n shop",
		},
		{
			name:    "the pod's annotation replaces the value",
			pod:     istioPod().Annotate(istio.AnnotationExcludeOutboundIPRanges, "192.168.0.0/16").IstioInit(istioArgs...).InitDone().Obj(),
			values:  istioValues,
			want:    map[corev1.PodConditionType]string{conditions.PodExclusionsInSync: "False/Drifted"},
			message: "outbound IP range 192.168.0.0/16 from pod annotation traffic.sidecar.istio.io/excludeOutboundIPRanges is not in the istio-init rules; outbound IP range 10.0.0.0/24 is in the istio-init rules but neither ConfigMap istio-system/istio-sidecar-injector nor the pod's annotations ask for it",
		},
		{
			name:    "init container failed",
			pod:     istioPod().IstioInit(istioArgs...).InitState(corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Message: "iptables-restore: line 3 failed"}}).Obj(),
			values:  istioValues,
			want:    map[corev1.PodConditionType]string{conditions.PodRedirectionApplied: "False/InitContainerFailed"},
			message: "",
		},
		{
			name:    "injector ConfigMap missing",
			pod:     istioPod().IstioInit(istioArgs...).InitDone().Obj(),
			want:    map[corev1.PodConditionType]string{conditions.PodExclusionsInSync: "Unknown/InjectorConfigNotFound"},
			message: "ConfigMap istio-system/istio-sidecar-injector does not exist",
		},
		{
			name:    "unreadable values",
			pod:     istioPod().IstioInit(istioArgs...).InitDone().Obj(),
			values:  `{"global":`,
			want:    map[corev1.PodConditionType]string{conditions.PodExclusionsInSync: "Unknown/InvalidSpec"},
			message: "data[values]",
		},
		{
			name:    "unreadable istio-init arguments",
			pod:     istioPod().IstioInit("-p", "15001", "--frobnicate").InitDone().Obj(),
			values:  istioValues,
			want:    map[corev1.PodConditionType]string{conditions.PodExclusionsInSync: "Unknown/RulesUnreadable"},
			message: `argument 3 ("--frobnicate"): unknown istio-iptables option`,
		},
		{
			name:    "sidecar missing in an injected namespace",
			pod:     istioPod().Annotate(istio.AnnotationStatus, "{}").Obj(),
			values:  istioValues,
			want:    map[corev1.PodConditionType]string{conditions.PodSidecarInjected: "False/SidecarMissing"},
			message: "",
		},
		{
			name: "istio-cni pod in sync",
			pod: istioPod().IstioCNI(map[string]string{istio.AnnotationExcludeOutboundIPRanges: "10.0.0.0/24",
				istio.AnnotationIncludeOutboundIPRanges: "*", istio.AnnotationIncludeInboundPorts: "*",
				istio.AnnotationExcludeInboundPorts: "15020", istio.AnnotationInterceptionMode: "REDIRECT"}).InitDone().Obj(),
			values:   istioValues,
			template: map[string]string{},
			want:     map[corev1.PodConditionType]string{conditions.PodRedirectionApplied: "True/Applied", conditions.PodExclusionsInSync: "True/InSync"},
		},
		{
			// The injector wrote the old value into the annotation; the workload never set it.
			name: "istio-cni pod after the values changed",
			pod: istioPod().IstioCNI(map[string]string{istio.AnnotationExcludeOutboundIPRanges: "10.0.0.0/24",
				istio.AnnotationIncludeOutboundIPRanges: "*", istio.AnnotationIncludeInboundPorts: "*",
				istio.AnnotationExcludeInboundPorts: "15020", istio.AnnotationInterceptionMode: "REDIRECT"}).InitDone().Obj(),
			values:   changed,
			template: map[string]string{},
			want:     map[corev1.PodConditionType]string{conditions.PodExclusionsInSync: "False/Drifted"},
			message:  "outbound IP range 10.0.1.0/24 from ConfigMap istio-system/istio-sidecar-injector key values, global.proxy.excludeIPRanges is not in the istio-cni rules",
		},
		{
			// The workload set the annotation itself: the old-looking value is what it asked for.
			name: "istio-cni pod whose workload set the annotation",
			pod: istioPod().IstioCNI(map[string]string{istio.AnnotationExcludeOutboundIPRanges: "10.0.0.0/24",
				istio.AnnotationIncludeOutboundIPRanges: "*", istio.AnnotationIncludeInboundPorts: "*",
				istio.AnnotationExcludeInboundPorts: "15020", istio.AnnotationInterceptionMode: "REDIRECT"}).InitDone().Obj(),
			values:   changed,
			template: map[string]string{istio.AnnotationExcludeOutboundIPRanges: "10.0.0.0/24"},
			want:     map[corev1.PodConditionType]string{conditions.PodExclusionsInSync: "True/InSync"},
		},
		{
			name:    "istio-cni pod without a workload",
			pod:     istioPod().IstioCNI(nil).InitDone().Obj(),
			values:  istioValues,
			want:    map[corev1.PodConditionType]string{conditions.PodExclusionsInSync: "Unknown/RulesUnreadable"},
			message: "has no workload whose template says",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := judgeIstio(tc.pod, tc.values, tc.template)
			for typ, want := range tc.want {
				c := got[typ]
				if s := string(c.Status) + "/" + c.Reason; s != want {
					t.Errorf("%s = %s (%s), want %s", typ, s, c.Message, want)
				}
			}
			if msg := got[conditions.PodExclusionsInSync].Message; tc.message != "" && !strings.Contains(msg, tc.message) {
				t.Errorf("ExclusionsInSync message:\n%s\nwant it to contain:\n%s", msg, tc.message)
			}
			for _, c := range got {
				if !conditions.Allowed(string(c.Type), string(c.Status), c.Reason) {
					t.Errorf("%s %s %s is not in the vocabulary", c.Type, c.Status, c.Reason)
				}
			}
		})
	}
}
