package controllers

import (
	"context"
	"fmt"
	"maps"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/meshkeeper/meshkeeper/internal/drift"
	"github.com/meshkeeper/meshkeeper/internal/injection"
	"github.com/meshkeeper/meshkeeper/internal/istio"
)

// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;list;watch
// +kubebuilder:rbac:groups=apps,resources=replicasets;statefulsets;daemonsets,verbs=get
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get

// IndexPodIstioRevision indexes Istio-injected pods by the control-plane revision that injected
// them, so a change to one revision's injector ConfigMap re-evaluates exactly its pods.
const IndexPodIstioRevision = "meshkeeper.io/istio-revision"

func indexPodIstioRevision(o client.Object) []string {
	pod, ok := o.(*corev1.Pod)
	if !ok || !istio.Injected(pod) {
		return nil
	}
	return []string{istio.Revision(pod)}
}

// istioPod decides whether the pod is Istio's: Istio injected it, or its namespace asks Istio's
// injector for sidecars (so a missing sidecar is reported). Such a pod is never judged as an
// OSM pod, whether or not Istio judging is on.
func istioPod(ns *corev1.Namespace, pod *corev1.Pod) bool {
	if istio.Injected(pod) {
		return true
	}
	inject, _ := drift.IstioShouldInject(ns.ObjectMeta, pod)
	return inject
}

// istioPodOutsideMesh decides whether the pod is judged as Istio's: it is Istio's and its
// namespace is not in the OSM mesh served, whose pods are all judged as OSM's.
func istioPodOutsideMesh(ns *corev1.Namespace, pod *corev1.Pod, meshName string) bool {
	return injection.NamespaceMembership(ns, meshName) != injection.Member && istioPod(ns, pod)
}

// gatherIstio reads the injector ConfigMap of the pod's revision from the cache and, for
// istio-cni pods only, the workload's pod template annotations.
func (r *PodReconciler) gatherIstio(ctx context.Context, ns *corev1.Namespace, pod *corev1.Pod) (drift.Input, error) {
	ref := drift.InjectorRef(r.Options.IstioNamespace, istio.Revision(pod))
	cm := &corev1.ConfigMap{}
	switch err := r.Client.Get(ctx, types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name}, cm); {
	case apierrors.IsNotFound(err):
		cm = nil
	case err != nil:
		return drift.Input{}, err
	}
	var template map[string]string
	if drift.IstioTemplateNeeded(pod) {
		var err error
		if template, err = r.templates.annotations(ctx, r.APIReader, pod); err != nil {
			return drift.Input{}, err
		}
	}
	in := drift.GatherIstio(pod, ns.ObjectMeta, r.injectors.read(ref, cm), template, r.Options.now())
	in.Rules = r.rules
	return in, nil
}

// istioPodsOfRevision re-evaluates the pods a revision injected when its ConfigMap changes.
func (r *PodReconciler) istioPodsOfRevision(ctx context.Context, o client.Object) []reconcile.Request {
	rev, ok := istio.RevisionOfConfigMap(o.GetName())
	if !ok || o.GetNamespace() != r.Options.IstioNamespace {
		return nil
	}
	pods := &corev1.PodList{}
	if err := r.Client.List(ctx, pods, client.MatchingFields{IndexPodIstioRevision: rev}, client.UnsafeDisableDeepCopy); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing Istio pods", "revision", rev)
		return nil
	}
	return requestsFor(pods.Items)
}

// injectorConfigChanged passes creations, deletions and data changes of injector ConfigMaps;
// ConfigMaps have no generation, and a label or annotation edit changes no pod's desired state.
var injectorConfigChanged = predicate.Funcs{
	CreateFunc: func(e event.CreateEvent) bool { return isInjectorConfigMap(e.Object) },
	DeleteFunc: func(e event.DeleteEvent) bool { return isInjectorConfigMap(e.Object) },
	UpdateFunc: func(e event.UpdateEvent) bool {
		oldCM, ok1 := e.ObjectOld.(*corev1.ConfigMap)
		newCM, ok2 := e.ObjectNew.(*corev1.ConfigMap)
		return ok1 && ok2 && isInjectorConfigMap(newCM) && !maps.Equal(oldCM.Data, newCM.Data)
	},
	GenericFunc: func(event.GenericEvent) bool { return false },
}

func isInjectorConfigMap(o client.Object) bool {
	_, ok := istio.RevisionOfConfigMap(o.GetName())
	return ok
}

// injectorMemo keeps each revision's injector as read (drift.ReadIstioInjector), by ConfigMap
// name, for as long as the ConfigMap's UID and resourceVersion stand: the pods of a revision are
// judged against one parse of its values until the ConfigMap changes. One entry per revision
// name ever seen, a handful.
type injectorMemo struct {
	mu sync.Mutex
	m  map[string]memoInjector
}

type memoInjector struct {
	uid types.UID
	rv  string
	inj drift.IstioInjector
}

// read returns cm read for ref, parsing it only when this version was not read before. A
// ConfigMap without resourceVersion (not from the API server) is read every time.
func (c *injectorMemo) read(ref drift.MeshRef, cm *corev1.ConfigMap) drift.IstioInjector {
	if cm == nil || cm.ResourceVersion == "" {
		return drift.ReadIstioInjector(ref, cm)
	}
	c.mu.Lock()
	e, ok := c.m[ref.Name]
	c.mu.Unlock()
	if ok && e.uid == cm.UID && e.rv == cm.ResourceVersion && e.inj.Ref == ref {
		return e.inj
	}
	inj := drift.ReadIstioInjector(ref, cm)
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]memoInjector{}
	}
	c.m[ref.Name] = memoInjector{uid: cm.UID, rv: cm.ResourceVersion, inj: inj}
	c.mu.Unlock()
	return inj
}

// templateCacheSize bounds the workload templates remembered for istio-cni pods.
const templateCacheSize = 4096

// templateCache remembers the pod template annotations of the workloads istio-cni pods belong
// to. A ReplicaSet's, StatefulSet revision's or DaemonSet revision's template does not change
// under a given pod-template-hash or controller-revision-hash, so the entry is keyed by owner
// UID and that hash: one live read per workload revision, not one per pod.
type templateCache struct {
	mu sync.Mutex
	m  map[string]map[string]string
}

func (c *templateCache) annotations(ctx context.Context, reader client.Reader, pod *corev1.Pod) (map[string]string, error) {
	ref := metav1.GetControllerOfNoCopy(pod)
	if ref == nil {
		return nil, nil
	}
	key := string(ref.UID) + "/" + pod.Labels["pod-template-hash"] + pod.Labels["controller-revision-hash"]
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]map[string]string{}
	}
	ann, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return ann, nil
	}
	var owner client.Object
	var template func() *corev1.PodTemplateSpec
	switch ref.Kind {
	case "ReplicaSet":
		rs := &appsv1.ReplicaSet{}
		owner, template = rs, func() *corev1.PodTemplateSpec { return &rs.Spec.Template }
	case "StatefulSet":
		ss := &appsv1.StatefulSet{}
		owner, template = ss, func() *corev1.PodTemplateSpec { return &ss.Spec.Template }
	case "DaemonSet":
		ds := &appsv1.DaemonSet{}
		owner, template = ds, func() *corev1.PodTemplateSpec { return &ds.Spec.Template }
	case "Job":
		job := &batchv1.Job{}
		owner, template = job, func() *corev1.PodTemplateSpec { return &job.Spec.Template }
	default:
		return nil, nil
	}
	err := reader.Get(ctx, types.NamespacedName{Namespace: pod.Namespace, Name: ref.Name}, owner)
	switch {
	case apierrors.IsNotFound(err) || apierrors.IsForbidden(err):
		// Gone, or not ours to read: the verdict says the template is unknown.
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading %s %s/%s for the template of pod %s: %w", ref.Kind, pod.Namespace, ref.Name, pod.Name, err)
	}
	ann = maps.Clone(template().Annotations)
	if ann == nil {
		ann = map[string]string{}
	}
	c.mu.Lock()
	if len(c.m) >= templateCacheSize {
		clear(c.m)
	}
	c.m[key] = ann
	c.mu.Unlock()
	return ann, nil
}
