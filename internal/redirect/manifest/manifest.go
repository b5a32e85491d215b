package manifest

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/meshkeeper/meshkeeper/internal/istio"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// Parse reads redirection rules from any input redirect.Parse reads, from YAML manifests, and
// from Istio's inputs: a pod, workload or `istioctl kube-inject` output whose pod carries
// istio-init (or istio-validation and istio-cni's annotations), or istio-iptables arguments
// pasted as one command line.
func Parse(data []byte) (*redirect.Parsed, error) {
	if p, ok, err := istio.ReadCommandLine(string(data)); ok {
		return p, err
	}
	if p, ok, err := istioManifest(data); ok {
		return p, err
	}
	return redirect.ParseWith(data, yamlUnmarshal)
}

// yamlUnmarshal adapts sigs.k8s.io/yaml, whose options argument redirect.Unmarshal does not have.
func yamlUnmarshal(data []byte, v any) error { return yaml.Unmarshal(data, v) }

// podLike is a pod or a workload: its own metadata and spec, or its pod template's.
type podLike struct {
	Metadata metav1.ObjectMeta `json:"metadata"`
	Spec     struct {
		corev1.PodSpec
		Template *corev1.PodTemplateSpec `json:"template"`
	} `json:"spec"`
	Items []podLike `json:"items"`
}

// istioManifest finds the first pod (or pod template) Istio injected among the documents;
// ok is false when there is none, so the other readers get the input.
func istioManifest(data []byte) (*redirect.Parsed, bool, error) {
	for _, doc := range strings.Split("\n"+string(data), "\n---") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var obj podLike
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			return nil, false, nil
		}
		if pod := istioPod(&obj); pod != nil {
			p, _, err := istio.PodRules(pod)
			return p, true, err
		}
	}
	return nil, false, nil
}

func istioPod(obj *podLike) *corev1.Pod {
	candidates := []*corev1.Pod{{ObjectMeta: obj.Metadata, Spec: obj.Spec.PodSpec}}
	if t := obj.Spec.Template; t != nil {
		candidates = append(candidates, &corev1.Pod{ObjectMeta: t.ObjectMeta, Spec: t.Spec})
	}
	for _, pod := range candidates {
		if _, shape := istio.RedirectionContainer(pod); shape == istio.InitContainer || shape == istio.CNI {
			return pod
		}
	}
	for i := range obj.Items {
		if pod := istioPod(&obj.Items[i]); pod != nil {
			return pod
		}
	}
	return nil
}
