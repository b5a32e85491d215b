package controllers

import (
	"unique"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/fields"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	"github.com/meshkeeper/meshkeeper/internal/drift"
	"github.com/meshkeeper/meshkeeper/internal/istio"
)

// IndexPodMeshed indexes pods that carry the sidecar or a redirection init container under the
// value "true", so a MeshConfig change finds every pod it may have made stale without walking
// the whole pod cache.
const IndexPodMeshed = "meshkeeper.io/meshed"

// annotationLastApplied is kubectl's copy of the whole manifest, often the largest part of a pod.
const annotationLastApplied = "kubectl.kubernetes.io/last-applied-configuration"

func indexPodMeshed(o client.Object) []string {
	pod, ok := o.(*corev1.Pod)
	if !ok || (!drift.HasSidecar(pod) && drift.RedirectionInitContainer(pod) == nil) {
		return nil
	}
	return []string{"true"}
}

// CacheOptions are the manager's cache settings for these controllers, the same in production
// and in tests. The pod informer is the operator's only large cache and it cannot be narrowed
// with a label selector: pods that should have been injected but were not carry no meshkeeper
// label, and those are exactly the ones to report. So instead of caching fewer pods, each pod is
// cached with only the fields the drift checks read (see TrimPod). MeshConfig is watched only for
// the one object served, and ConfigMaps only in Istio's control-plane namespace (the injector's
// values live there). Managed fields are dropped from every cached object.
func CacheOptions(o DriftOptions) cache.Options {
	byObject := map[client.Object]cache.ByObject{
		&corev1.Pod{}: {Transform: TrimPod},
		&configv1alpha2.MeshConfig{}: {
			Namespaces: map[string]cache.Config{o.MeshConfig.Namespace: {}},
			Field:      fields.OneTermEqualSelector("metadata.name", o.MeshConfig.Name),
		},
	}
	if o.IstioNamespace != "" {
		byObject[&corev1.ConfigMap{}] = cache.ByObject{Namespaces: map[string]cache.Config{o.IstioNamespace: {}}}
	}
	return cache.Options{ByObject: byObject, DefaultTransform: cache.TransformStripManagedFields()}
}

var _ toolscache.TransformFunc = TrimPod

// TrimPod keeps what the controllers read: identity, labels, annotations (without kubectl's
// last-applied copy), owner references, the service account, init containers' names, images,
// commands and arguments, containers' names and images, host networking, and the status of the
// redirection init container and the conditions of our own types. Strings that repeat across the replicas of a workload (the
// rendered rules, images, label and annotation keys) are interned so that 5,000 replicas share
// one copy, and so are whole conditions lists that are equal to the second, timestamps included
// (pods judged in the same second after a MeshConfig change). Anything that is not a pod passes through untouched.
func TrimPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	out := &corev1.Pod{}
	out.Name = pod.Name
	out.Namespace = intern(pod.Namespace)
	out.UID = pod.UID
	out.ResourceVersion = pod.ResourceVersion
	out.Generation = pod.Generation
	out.CreationTimestamp = pod.CreationTimestamp
	out.DeletionTimestamp = pod.DeletionTimestamp
	out.Labels = shareMap(internMap(pod.Labels, ""))
	out.Annotations = shareMap(internMap(pod.Annotations, annotationLastApplied))
	out.OwnerReferences = shareOwners(pod.OwnerReferences)

	out.Spec.NodeName = pod.Spec.NodeName
	out.Spec.ServiceAccountName = intern(pod.Spec.ServiceAccountName) // the Egress controller indexes pods by it
	out.Spec.HostNetwork = pod.Spec.HostNetwork
	if n := len(pod.Spec.InitContainers); n > 0 {
		cs := make([]corev1.Container, n)
		for i, c := range pod.Spec.InitContainers {
			cs[i] = corev1.Container{Name: intern(c.Name), Image: intern(c.Image),
				Command: internSlice(c.Command), Args: internSlice(c.Args), SecurityContext: proxyUser(&c)}
		}
		out.Spec.InitContainers = shareContainers(cs)
	}
	if n := len(pod.Spec.Containers); n > 0 {
		cs := make([]corev1.Container, n)
		for i, c := range pod.Spec.Containers {
			cs[i] = corev1.Container{Name: intern(c.Name), Image: intern(c.Image), SecurityContext: proxyUser(&c)}
		}
		out.Spec.Containers = shareContainers(cs)
	}

	out.Status.Phase = pod.Status.Phase
	if owned := drift.OwnedConditions(pod.Status.Conditions); len(owned) > 0 {
		// A fresh slice of exactly the right length: the one OwnedConditions grew by appending
		// has spare capacity, and a shared copy must not alias the decoded pod.
		conds := make([]corev1.PodCondition, len(owned))
		for i, c := range owned {
			c.Type, c.Reason, c.Message = corev1.PodConditionType(intern(string(c.Type))), intern(c.Reason), intern(c.Message)
			conds[i] = c
		}
		out.Status.Conditions = shareConditions(conds)
	}
	if ic := drift.RedirectionInitContainer(pod); ic != nil {
		for _, st := range pod.Status.InitContainerStatuses {
			if st.Name == ic.Name {
				out.Status.InitContainerStatuses = shareStatuses([]corev1.ContainerStatus{{
					Name: intern(st.Name), State: trimState(st.State), LastTerminationState: trimState(st.LastTerminationState),
					RestartCount: st.RestartCount,
				}})
				break
			}
		}
	}
	return out, nil
}

// sameButConditions reports whether two versions of a cached pod differ in nothing but their
// resourceVersion and conditions. With the pods trimmed by TrimPod, that is an update no drift
// check reads: a kubelet's readiness flip, or our own conditions coming back.
func sameButConditions(a, b *corev1.Pod) bool {
	x, y := *a, *b
	x.ResourceVersion, y.ResourceVersion = "", ""
	x.Status.Conditions, y.Status.Conditions = nil, nil
	return equality.Semantic.DeepEqual(&x, &y)
}

// proxyUser keeps the UID of Istio's proxy container: Istio renders it into the rules as the
// UID whose traffic bypasses capture, so the drift check compares the two.
func proxyUser(c *corev1.Container) *corev1.SecurityContext {
	if c.Name != istio.ProxyContainerName || c.SecurityContext == nil || c.SecurityContext.RunAsUser == nil {
		return nil
	}
	return &corev1.SecurityContext{RunAsUser: c.SecurityContext.RunAsUser}
}

// intern returns a canonical copy of s: equal strings share one backing array for as long as any
// pod refers to them.
func intern(s string) string {
	if s == "" {
		return ""
	}
	return unique.Make(s).Value()
}

func internSlice(in []string) []string {
	if in == nil {
		return nil
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = intern(s)
	}
	return out
}

func internMap(in map[string]string, drop string) map[string]string {
	if len(in) == 0 {
		return nil
	}
	out := make(map[string]string, len(in))
	for k, v := range in {
		if k != drop {
			out[intern(k)] = intern(v)
		}
	}
	return out
}
