package podtest

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	"github.com/meshkeeper/meshkeeper/internal/injection"
	"github.com/meshkeeper/meshkeeper/internal/istio"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
	"github.com/meshkeeper/meshkeeper/internal/redirect/podspec"
)

// OSMInitImage is the image of the osm-init containers built here.
const OSMInitImage = "openservicemesh/init:v1.2.4"

// PodBuilder makes a pod step by step: NewPod("shop", "web-0").Deployment("web").Sidecar().Obj().
type PodBuilder struct{ p corev1.Pod }

// NewPod is a pod with one application container named app, running image.
func NewPod(namespace, name, image string) *PodBuilder {
	return &PodBuilder{p: corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
	}}
}

// Namespace moves the pod.
func (b *PodBuilder) Namespace(ns string) *PodBuilder { b.p.Namespace = ns; return b }

// ServiceAccount sets the pod's service account.
func (b *PodBuilder) ServiceAccount(sa string) *PodBuilder {
	b.p.Spec.ServiceAccountName = sa
	return b
}

// Owner adds a controller owner reference.
func (b *PodBuilder) Owner(apiVersion, kind, name string) *PodBuilder {
	b.p.OwnerReferences = append(b.p.OwnerReferences, metav1.OwnerReference{
		APIVersion: apiVersion, Kind: kind, Name: name, UID: "u", Controller: ptr.To(true)})
	return b
}

// Deployment makes the pod a replica of Deployment name through its ReplicaSet name-hash.
func (b *PodBuilder) Deployment(name, hash string) *PodBuilder {
	b.Label("pod-template-hash", hash)
	return b.Owner("apps/v1", "ReplicaSet", name+"-"+hash)
}

// Label sets a label.
func (b *PodBuilder) Label(k, v string) *PodBuilder {
	if b.p.Labels == nil {
		b.p.Labels = map[string]string{}
	}
	b.p.Labels[k] = v
	return b
}

// Annotate sets an annotation.
func (b *PodBuilder) Annotate(k, v string) *PodBuilder {
	if b.p.Annotations == nil {
		b.p.Annotations = map[string]string{}
	}
	b.p.Annotations[k] = v
	return b
}

// Sidecar adds the proxy container.
func (b *PodBuilder) Sidecar() *PodBuilder {
	b.p.Spec.Containers = append(b.p.Spec.Containers, corev1.Container{Name: injection.SidecarName, Image: "envoy:v1"})
	return b
}

// HostNetwork puts the pod on the node's network.
func (b *PodBuilder) HostNetwork() *PodBuilder { b.p.Spec.HostNetwork = true; return b }

// OSMInit adds an osm-init container running script through /bin/sh -c, as every OSM release did.
func (b *PodBuilder) OSMInit(script string) *PodBuilder {
	b.p.Spec.InitContainers = append(b.p.Spec.InitContainers, corev1.Container{
		Name: redirect.OSMInitContainerName, Image: OSMInitImage,
		Command: []string{"/bin/sh"}, Args: []string{"-c", script}})
	return b
}

// OurInit adds the init container the injector adds for cfg and stamps the digest and the
// MeshConfig generation the injector records.
func (b *PodBuilder) OurInit(cfg redirect.Config, generation string) *PodBuilder {
	b.p.Spec.InitContainers = append(b.p.Spec.InitContainers, podspec.InitContainer(redirect.Render(cfg), "meshkeeper/init:v1", false))
	b.Annotate(injection.AnnotationExclusionsDigest, cfg.Digest())
	return b.Annotate(injection.AnnotationMeshConfigGeneration, generation)
}

// InitState sets the state of the first init container.
func (b *PodBuilder) InitState(st corev1.ContainerState) *PodBuilder {
	return b.InitStatus(corev1.ContainerStatus{State: st})
}

// InitStatus sets the status of the first init container.
func (b *PodBuilder) InitStatus(st corev1.ContainerStatus) *PodBuilder {
	st.Name = b.p.Spec.InitContainers[0].Name
	b.p.Status.InitContainerStatuses = []corev1.ContainerStatus{st}
	return b
}

// Completed is the state of an init container that exited 0.
var Completed = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed"}}

// InitDone: the first init container exited 0.
func (b *PodBuilder) InitDone() *PodBuilder { return b.InitState(Completed) }

// Running gives the pod a running status: every init container in state init, every container
// running and ready.
func (b *PodBuilder) Running(init corev1.ContainerState) *PodBuilder {
	b.p.Status.Phase = corev1.PodRunning
	for _, c := range b.p.Spec.InitContainers {
		b.p.Status.InitContainerStatuses = append(b.p.Status.InitContainerStatuses, corev1.ContainerStatus{Name: c.Name, State: init})
	}
	for _, c := range b.p.Spec.Containers {
		b.p.Status.ContainerStatuses = append(b.p.Status.ContainerStatuses, corev1.ContainerStatus{Name: c.Name, Ready: true,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}})
	}
	return b
}

// SidecarStatus replaces the proxy container's status.
func (b *PodBuilder) SidecarStatus(st corev1.ContainerStatus) *PodBuilder {
	st.Name = injection.SidecarName
	for i := range b.p.Status.ContainerStatuses {
		if b.p.Status.ContainerStatuses[i].Name == injection.SidecarName {
			b.p.Status.ContainerStatuses[i] = st
		}
	}
	return b
}

// Condition adds a pod condition.
func (b *PodBuilder) Condition(c corev1.PodCondition) *PodBuilder {
	b.p.Status.Conditions = append(b.p.Status.Conditions, c)
	return b
}

// Obj returns a copy of the pod, so one builder can serve several cases.
func (b *PodBuilder) Obj() *corev1.Pod { return b.p.DeepCopy() }

// MeshConfig is osm-system/osm-mesh-config at generation, changed by mutate.
func MeshConfig(generation int64, mutate ...func(*configv1alpha2.MeshConfigSpec)) *configv1alpha2.MeshConfig {
	mc := &configv1alpha2.MeshConfig{ObjectMeta: metav1.ObjectMeta{Name: "osm-mesh-config", Namespace: "osm-system", Generation: generation}}
	for _, m := range mutate {
		m(&mc.Spec)
	}
	return mc
}

// IPExclusions sets traffic.outboundIPRangeExclusionList.
func IPExclusions(cidrs ...string) func(*configv1alpha2.MeshConfigSpec) {
	return func(s *configv1alpha2.MeshConfigSpec) { s.Traffic.OutboundIPRangeExclusionList = cidrs }
}

// OutPorts sets traffic.outboundPortExclusionList.
func OutPorts(ports ...int32) func(*configv1alpha2.MeshConfigSpec) {
	return func(s *configv1alpha2.MeshConfigSpec) { s.Traffic.OutboundPortExclusionList = ports }
}

// InPorts sets traffic.inboundPortExclusionList.
func InPorts(ports ...int32) func(*configv1alpha2.MeshConfigSpec) {
	return func(s *configv1alpha2.MeshConfigSpec) { s.Traffic.InboundPortExclusionList = ports }
}

// IstioInit adds what Istio's injector adds in its default (init container) mode: istio-init
// running `istio-iptables` with args, the istio-proxy container as UID 1337, and the
// sidecar.istio.io/status and istio.io/rev annotations.
func (b *PodBuilder) IstioInit(args ...string) *PodBuilder {
	b.p.Spec.InitContainers = append(b.p.Spec.InitContainers, corev1.Container{
		Name: istio.InitContainerName, Image: IstioProxyImage, Args: append([]string{"istio-iptables"}, args...)})
	return b.istioProxy()
}

// IstioCNI adds what Istio's injector adds when istio-cni writes the rules: istio-validation
// (istio-iptables --run-validation --skip-rule-apply), istio-proxy, and the traffic annotations
// the injector writes from its values (ann).
func (b *PodBuilder) IstioCNI(ann map[string]string) *PodBuilder {
	b.p.Spec.InitContainers = append(b.p.Spec.InitContainers, corev1.Container{
		Name: istio.ValidationContainerName, Image: IstioProxyImage,
		Args: []string{"istio-iptables", "-p", "15001", "-z", "15006", "-u", "1337", "--run-validation", "--skip-rule-apply"}})
	for k, v := range ann {
		b.Annotate(k, v)
	}
	return b.istioProxy()
}

func (b *PodBuilder) istioProxy() *PodBuilder {
	b.p.Spec.Containers = append(b.p.Spec.Containers, corev1.Container{Name: istio.ProxyContainerName, Image: IstioProxyImage,
		Args:            []string{"proxy", "sidecar"},
		SecurityContext: &corev1.SecurityContext{RunAsUser: ptr.To[int64](1337), RunAsGroup: ptr.To[int64](1337)}})
	b.Annotate(istio.AnnotationStatus, `{"initContainers":["istio-init"],"containers":["istio-proxy"],"volumes":["istio-envoy"],"revision":"default"}`)
	return b.Annotate(istio.LabelRevision, istio.DefaultRevision)
}

// IstioProxyImage is the image Istio's injector uses for istio-init and istio-proxy.
const IstioProxyImage = "docker.io/istio/proxyv2:1.24.0"

// IstioInjectorConfigMap is the istio-sidecar-injector ConfigMap of the default revision with
// values (the JSON under the values key).
func IstioInjectorConfigMap(values string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: "istio-system", Name: istio.InjectorConfigMapName,
			Labels: map[string]string{istio.LabelRevision: istio.DefaultRevision}},
		Data: map[string]string{istio.InjectorValuesKey: values, "config": "policy: enabled\n"},
	}
}
