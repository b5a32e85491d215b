package controllers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	"github.com/meshkeeper/meshkeeper/internal/drift"
	"github.com/meshkeeper/meshkeeper/internal/injection"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=pods/status,verbs=patch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups=config.openservicemesh.io,resources=meshconfigs,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// The opt-in restarts (inject mode only) need apps get/patch: their RBAC is injector-role's, see
// webhooks/pod/rbac.go.

// ruleCacheSize bounds the distinct init container rule sets remembered: one per workload
// revision in practice.
const ruleCacheSize = 4096

// PodReconciler keeps the meshkeeper.io pod conditions of meshed pods truthful and, where a
// namespace or workload opted in, restarts workloads whose pods drifted.
type PodReconciler struct {
	// Client reads from the manager's cache and writes pods/status.
	Client client.Client
	// APIReader reads workloads live; they are only needed when a drifted pod opted into
	// restarts, which does not justify caching every Deployment in the cluster.
	APIReader client.Reader
	Recorder  events.EventRecorder
	Options   DriftOptions
	restarts  *restartLimiter
	rules     *drift.RuleCache
	written   *writeMemo
	templates templateCache
	injectors injectorMemo
}

// Reconcile is gather, evaluate, remediate, then one status patch when something changed.
func (r *PodReconciler) Reconcile(ctx context.Context, req reconcile.Request) (result ctrl.Result, err error) {
	pod := &corev1.Pod{}
	if err := r.Client.Get(ctx, req.NamespacedName, pod); err != nil || pod.DeletionTimestamp != nil {
		r.written.forget(req.NamespacedName)
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	t0 := time.Now()
	in, ok, err := r.gather(ctx, pod)
	if err != nil || !ok {
		return ctrl.Result{}, err
	}
	computed := drift.Evaluate(in)
	podEvaluation.Observe(time.Since(t0).Seconds())
	if !drift.Relevant(in, computed) {
		return ctrl.Result{}, nil
	}
	before, basedOn := pod.Status.Conditions, pod.ResourceVersion
	updated, changed := drift.SetPodConditions(before, computed...)
	changed = changed && !r.written.alreadyWritten(req.NamespacedName, basedOn, updated)
	defer func() {
		if !changed {
			return
		}
		// Remembered before the write: its watch event can reach the cache before the patch's
		// answer reaches us, and podChanged must know it for ours.
		r.written.record(req.NamespacedName, basedOn, "", updated)
		if perr := r.patchConditions(ctx, pod, updated); perr != nil {
			r.written.forget(req.NamespacedName)
			err = errors.Join(err, perr)
			return
		}
		// The patch answered with the pod as written: its resourceVersion is our write's.
		r.written.record(req.NamespacedName, basedOn, pod.ResourceVersion, updated)
		for _, ev := range drift.Transitions(before, updated) {
			r.Recorder.Eventf(pod, nil, ev.Type, ev.Reason, "Evaluate", "%s", ev.Message)
		}
	}()
	if !r.Options.AutoRestart {
		return ctrl.Result{}, nil
	}
	return r.remediate(ctx, in, updated)
}

// gather reads the pod's namespace and the MeshConfig; ok is false when there is nothing to judge.
func (r *PodReconciler) gather(ctx context.Context, pod *corev1.Pod) (drift.Input, bool, error) {
	ns := &corev1.Namespace{}
	if err := r.Client.Get(ctx, types.NamespacedName{Name: pod.Namespace}, ns); err != nil {
		return drift.Input{}, false, client.IgnoreNotFound(err)
	}
	if istioPodOutsideMesh(ns, pod, r.Options.Selection.MeshName) {
		if r.Options.IstioNamespace == "" {
			// Istio's pod, with Istio judging turned off: never judge it as an OSM pod.
			return drift.Input{}, false, nil
		}
		in, err := r.gatherIstio(ctx, ns, pod)
		return in, err == nil, err
	}
	if !r.ours(ns, pod) {
		return drift.Input{}, false, nil
	}
	mc := &configv1alpha2.MeshConfig{}
	var in drift.Input
	switch err := r.Client.Get(ctx, r.Options.MeshConfig, mc); {
	case apierrors.IsNotFound(err):
		// No desired state: say so on the pod rather than leave a stale verdict; the
		// MeshConfig's creation re-queues every pod.
		ref := drift.MeshRef{Namespace: r.Options.MeshConfig.Namespace, Name: r.Options.MeshConfig.Name}
		in = drift.GatherWithoutMeshConfig(pod, ns.ObjectMeta, ref, r.Options.Selection, r.Options.now())
	case err != nil:
		return drift.Input{}, false, err
	default:
		in = drift.Gather(pod, ns.ObjectMeta, mc, r.Options.Selection, r.Options.now())
	}
	in.Rules = r.rules
	return in, true, nil
}

// patchConditions sends a strategic-merge patch holding only our conditions. Pod conditions are
// merged by type on the server, so the kubelet's conditions, which the cache does not even hold,
// cannot be dropped or rolled back by this write.
func (r *PodReconciler) patchConditions(ctx context.Context, pod *corev1.Pod, conds []corev1.PodCondition) error {
	data, err := conditionsPatch(conds)
	if err != nil {
		return err
	}
	err = r.Client.Status().Patch(ctx, pod, client.RawPatch(types.StrategicMergePatchType, data))
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("patching conditions of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}

// conditionsPatch is the body of patchConditions: our conditions among conds, nothing else.
func conditionsPatch(conds []corev1.PodCondition) ([]byte, error) {
	return json.Marshal(map[string]any{"status": map[string]any{"conditions": drift.OwnedConditions(conds)}})
}

// ours decides whether this operator judges the pod: every pod of a namespace in our mesh, and,
// so that they do not keep stale verdicts, pods carrying our conditions in a namespace that left
// the mesh (unlabelled, ignored or a system namespace). Pods of another mesh, or injected against
// another MeshConfig, belong to the operator serving that mesh.
func (r *PodReconciler) ours(ns *corev1.Namespace, pod *corev1.Pod) bool {
	switch injection.NamespaceMembership(ns, r.Options.Selection.MeshName) {
	case injection.Member:
		return true
	case injection.OtherMesh:
		return false
	}
	if !drift.HasOwnedCondition(pod.Status.Conditions) {
		return false
	}
	stamp, ok := pod.Annotations[injection.AnnotationMeshConfig]
	return !ok || stamp == r.Options.MeshConfig.String()
}

// SetupWithManager registers the controller, its index and its watches.
func (r *PodReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(ctx, &corev1.Pod{}, IndexPodMeshed, indexPodMeshed); err != nil {
		return fmt.Errorf("indexing pods: %w", err)
	}
	if r.Options.IstioNamespace != "" {
		if err := mgr.GetFieldIndexer().IndexField(ctx, &corev1.Pod{}, IndexPodIstioRevision, indexPodIstioRevision); err != nil {
			return fmt.Errorf("indexing Istio pods: %w", err)
		}
	}
	if r.restarts == nil {
		r.restarts = newRestartLimiter()
	}
	if r.rules == nil {
		r.rules = drift.NewRuleCache(ruleCacheSize)
	}
	r.written = newWriteMemo()
	b := ctrl.NewControllerManagedBy(mgr).
		Named("drift-pod").
		For(&corev1.Pod{}, builder.WithPredicates(predicate.Funcs{UpdateFunc: r.podChanged})).
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(r.podsOfNamespace),
			builder.WithPredicates(predicate.Or(predicate.LabelChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Watches(&configv1alpha2.MeshConfig{}, handler.EnqueueRequestsFromMapFunc(r.meshedPods),
			builder.WithPredicates(predicate.GenerationChangedPredicate{}))
	if r.Options.IstioNamespace != "" {
		b = b.Watches(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(r.istioPodsOfRevision),
			builder.WithPredicates(injectorConfigChanged))
	}
	return b.WithOptions(controller.Options{MaxConcurrentReconciles: r.Options.maxConcurrent(), RateLimiter: retryLimiter()}).
		Complete(r)
}

// podChanged drops the pod updates that cannot change a verdict: the trimmed pod (what the
// checks read) is the same apart from its conditions, and the conditions are unchanged (a
// kubelet status update the trim hides) or are the ones this controller just wrote (the echo
// of its own patch, which would be judged again for nothing: a third of the work of a drift
// wave). Anyone else's edit of our conditions is judged, so it is corrected. A resync (the same
// resourceVersion twice) always passes: it is the safety net for anything missed.
func (r *PodReconciler) podChanged(e event.UpdateEvent) bool {
	before, ok1 := e.ObjectOld.(*corev1.Pod)
	after, ok2 := e.ObjectNew.(*corev1.Pod)
	if !ok1 || !ok2 || before.ResourceVersion == after.ResourceVersion || !sameButConditions(before, after) {
		return true
	}
	if slices.EqualFunc(before.Status.Conditions, after.Status.Conditions, sameVerdict) {
		return false
	}
	return !r.written.echo(client.ObjectKeyFromObject(after), after.Status.Conditions)
}

// retryLimiter paces the retries of failed pod reconciles: each pod backs off exponentially
// from 5 ms, and all pods together retry at most 10 times a second after a burst of 100.
// controller-runtime's default for its priority queue keeps only the per-pod backoff, so when
// the API server went away every pod of a wave retried every few milliseconds (1,400 failed
// writes in one second for 225 pods, docs/reliability.md, case 1).
func retryLimiter() workqueue.TypedRateLimiter[reconcile.Request] {
	return workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]()
}

// podsOfNamespace re-evaluates a namespace's pods when it joins or leaves the mesh or changes
// its injection annotation. The cache lists by namespace through its built-in index.
func (r *PodReconciler) podsOfNamespace(ctx context.Context, o client.Object) []reconcile.Request {
	pods := &corev1.PodList{}
	if err := r.Client.List(ctx, pods, client.InNamespace(o.GetName()), client.UnsafeDisableDeepCopy); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing pods of namespace", "namespace", o.GetName())
		return nil
	}
	return requestsFor(pods.Items)
}

// meshedPods re-evaluates every meshed pod of a monitored namespace when the MeshConfig changes,
// through IndexPodMeshed rather than a live list.
func (r *PodReconciler) meshedPods(ctx context.Context, o client.Object) []reconcile.Request {
	if client.ObjectKeyFromObject(o) != r.Options.MeshConfig {
		return nil
	}
	namespaces := &corev1.NamespaceList{}
	if err := r.Client.List(ctx, namespaces, client.HasLabels{injection.LabelMonitoredBy}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing monitored namespaces")
		return nil
	}
	inMesh := make(map[string]bool, len(namespaces.Items))
	for i := range namespaces.Items {
		inMesh[namespaces.Items[i].Name] = injection.InMesh(&namespaces.Items[i], r.Options.Selection.MeshName)
	}
	pods := &corev1.PodList{}
	if err := r.Client.List(ctx, pods, client.MatchingFields{IndexPodMeshed: "true"}, client.UnsafeDisableDeepCopy); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing meshed pods")
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(pods.Items))
	for i := range pods.Items {
		if inMesh[pods.Items[i].Namespace] {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&pods.Items[i])})
		}
	}
	return reqs
}

func requestsFor(pods []corev1.Pod) []reconcile.Request {
	reqs := make([]reconcile.Request, len(pods))
	for i := range pods {
		reqs[i] = reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&pods[i])}
	}
	return reqs
}

// DriftOptions configure both drift controllers.
type DriftOptions struct {
	// MeshConfig is the MeshConfig pods are judged against.
	MeshConfig types.NamespacedName
	// Selection identifies our mesh (the monitored-by label value).
	Selection injection.SelectOptions
	// MaxConcurrentReconciles bounds parallel pod evaluations (default 8). Each one is mostly a
	// wait for the API server, so a few more than the cores keeps the server busy.
	MaxConcurrentReconciles int
	// AutoRestartMinInterval is the least time between two restarts of one workload (default 10m).
	AutoRestartMinInterval time.Duration
	// Clock is injected by tests; nil means time.Now.
	Clock func() time.Time
	// ClusterRanges are the Service and Pod CIDRs the MeshConfig's findings are checked against;
	// empty when unknown.
	ClusterRanges redirect.ClusterRanges
	// APIs says whether the MeshConfig CRD can store a status.
	APIs APIs
	// AutoRestart allows restarting opted-in workloads whose pods drifted. Off in audit mode,
	// which changes no workload.
	AutoRestart bool
	// IstioNamespace is the Istio control plane's namespace, where the injector ConfigMaps are;
	// empty turns the judging of Istio pods off.
	IstioNamespace string
}

func (o DriftOptions) now() time.Time {
	if o.Clock != nil {
		return o.Clock()
	}
	return time.Now()
}

func (o DriftOptions) maxConcurrent() int {
	if o.MaxConcurrentReconciles > 0 {
		return o.MaxConcurrentReconciles
	}
	return 8
}

func (o DriftOptions) minInterval() time.Duration {
	if o.AutoRestartMinInterval > 0 {
		return o.AutoRestartMinInterval
	}
	return 10 * time.Minute
}
