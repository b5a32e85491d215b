package controllers

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	"github.com/meshkeeper/meshkeeper/internal/drift"
	"github.com/meshkeeper/meshkeeper/internal/injection"
	"github.com/meshkeeper/meshkeeper/internal/status"
	"github.com/meshkeeper/meshkeeper/internal/validation"
)

// +kubebuilder:rbac:groups=config.openservicemesh.io,resources=meshconfigs,verbs=get;list;watch
// +kubebuilder:rbac:groups=config.openservicemesh.io,resources=meshconfigs/status,verbs=get;patch
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch

// summaryDelay coalesces the burst of pod events a MeshConfig change causes into one recount.
// Each recount walks every pod (and judges those that changed since the last one, recountMemo),
// so with many pods the wait grows to ten times the last recount's duration (at most
// maxSummaryDelay): recounts then take a tenth of one core at most while the pod controller
// writes, instead of competing with it once a second.
const (
	summaryDelay    = time.Second
	maxSummaryDelay = 30 * time.Second
)

// MeshConfigReconciler validates every MeshConfig with the redirection engine and reports, on the
// one the operator serves, how many meshed pods are in sync with it.
type MeshConfigReconciler struct {
	Client client.Client
	// Recorder receives the events of Ready and Stalled transitions; nil records none.
	Recorder events.EventRecorder
	Options  DriftOptions
	rules    *drift.RuleCache
	// memo holds verdicts when the CRD cannot store them (Options.APIs.NoMeshConfigStatus).
	memo *status.Memo
	// lastSummary is how long the last recount took, in nanoseconds.
	lastSummary atomic.Int64
	// recount is the last successful recount's verdicts (recountMemo).
	recount *recountMemo
	// lastJudged is how many pods the last recount judged afresh, for tests.
	lastJudged int
	// cachedPods reads a namespace's pods from the informer without copying them; nil (tests
	// with a direct client) lists through Client.
	cachedPods func(namespace string) ([]*corev1.Pod, error)
}

// recountDelay is how long pod, namespace and Service events are coalesced before a recount.
func (r *MeshConfigReconciler) recountDelay() time.Duration {
	return recountDelay(time.Duration(r.lastSummary.Load()))
}

// recountDelay is ten times the last recount's duration, within summaryDelay and
// maxSummaryDelay.
func recountDelay(last time.Duration) time.Duration {
	return min(max(summaryDelay, 10*last), maxSummaryDelay)
}

// forget drops what is remembered of a deleted MeshConfig. When it is the served one, every pod
// is told through its own conditions (MeshConfigNotFound); here it is logged, once.
func (r *MeshConfigReconciler) forget(key types.NamespacedName) {
	forgetVerdict(KindMeshConfig, key)
	if r.memo != nil {
		r.memo.Forget(key)
	}
	if key == r.Options.MeshConfig {
		meshPods.DeletePartialMatch(prometheus.Labels{"namespace": key.Namespace, "name": key.Name})
	}
}

// Reconcile validates, counts, and writes status once, in the deferred patch, only on change.
// Only the served MeshConfig is judged: the production cache holds no other, and another
// MeshConfig may be served by another meshkeeper, whose status this one must not overwrite.
func (r *MeshConfigReconciler) Reconcile(ctx context.Context, req reconcile.Request) (result ctrl.Result, err error) {
	if req.NamespacedName != r.Options.MeshConfig {
		return ctrl.Result{}, nil
	}
	mc := &configv1alpha2.MeshConfig{}
	if err := r.Client.Get(ctx, req.NamespacedName, mc); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	patcher := status.NewPatcher(mc).WithEvents(r.Recorder, meshConfigConditions).WithoutSubresource(r.memo)
	var v MeshConfigVerdict
	defer func() {
		v.Err = err
		SetMeshConfigStatus(mc, v, r.Options.now())
		perr := patcher.Patch(ctx, r.Client, mc)
		if result, err = judgeAgainIfStale(err, perr); perr != nil {
			return
		}
		// The metrics follow the stored verdict, never one that did not land.
		recordVerdict(KindMeshConfig, req.NamespacedName, mc.Status.Conditions, mc.Status.Findings)
		if len(v.SpecErrs) == 0 && v.Err == nil {
			recordMeshConfigPods(req.NamespacedName, v.Summary.Counts)
			recordPodVerdicts(r.Options.Selection.MeshName, v.Summary)
		}
	}()
	if v.SpecErrs = ValidateMeshConfig(mc); len(v.SpecErrs) > 0 {
		return ctrl.Result{}, nil
	}
	// Everything else the validating webhook checks: a MeshConfig stored while it was not
	// running (audit mode, webhook down, OSM's CRDs) must not read Ready.
	v.Invalid = validation.MeshConfig(mc, r.Options.ClusterRanges).Errors
	t0 := time.Now()
	v.Summary, err = r.summarize(ctx, mc)
	r.lastSummary.Store(int64(time.Since(t0)))
	if err == nil {
		mc.Status.Findings, err = MeshConfigFindings(ctx, r.Client, mc, r.Options.Selection.MeshName, r.Options.ClusterRanges)
	}
	return ctrl.Result{}, err
}

// ValidateMeshConfig judges the redirection inputs with the same engine the injector uses, so
// a MeshConfig that slipped past admission (webhook down, an older CRD without schema rules)
// is reported before the next pod fails to start because of it.
func ValidateMeshConfig(mc *configv1alpha2.MeshConfig) field.ErrorList {
	return injection.ValidateMeshConfig(&mc.Spec)
}

// summarize counts the verdicts of every pod of the monitored namespaces against mc, from the
// cache, judging only the pods the last recount did not see in their current version
// (recountMemo).
func (r *MeshConfigReconciler) summarize(ctx context.Context, mc *configv1alpha2.MeshConfig) (drift.Summary, error) {
	var s drift.Summary
	namespaces := &corev1.NamespaceList{}
	if err := r.Client.List(ctx, namespaces, client.HasLabels{injection.LabelMonitoredBy}); err != nil {
		return s, err
	}
	now := r.Options.now()
	pass := newRecountPass(r.recount, mc)
	for i := range namespaces.Items {
		ns := &namespaces.Items[i]
		if !injection.InMesh(ns, r.Options.Selection.MeshName) {
			continue
		}
		pods, err := r.podsIn(ctx, ns.Name)
		if err != nil {
			return s, err
		}
		for _, pod := range pods {
			if pod.DeletionTimestamp != nil {
				continue
			}
			v, meshed := pass.verdict(ns, pod, func() []corev1.PodCondition {
				in := drift.Gather(pod, ns.ObjectMeta, mc, r.Options.Selection, now)
				in.Rules = r.rules
				return drift.Evaluate(in)
			})
			s.AddVerdict(pod, v, meshed)
		}
	}
	s.Cap(configv1alpha2.MaxDriftedPods)
	r.recount, r.lastJudged = pass.next, pass.judged
	return s, nil
}

// podsIn returns the pods of namespace as the cache holds them, to be read only.
func (r *MeshConfigReconciler) podsIn(ctx context.Context, namespace string) ([]*corev1.Pod, error) {
	if r.cachedPods != nil {
		return r.cachedPods(namespace)
	}
	list := &corev1.PodList{}
	if err := r.Client.List(ctx, list, client.InNamespace(namespace), client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	pods := make([]*corev1.Pod, len(list.Items))
	for i := range list.Items {
		pods[i] = &list.Items[i]
	}
	return pods, nil
}

// indexedPods reads pods straight from the informer's namespace index. A cache List, even without
// deep copies, copies every pod into the list's items (about 1.2 KB each): at 20,000 pods that was
// most of a recount once its verdicts were memoised, and recounts come every second during a
// rollout. nil when the cache's informer does not expose its index.
func indexedPods(ctx context.Context, c cache.Cache) (func(namespace string) ([]*corev1.Pod, error), error) {
	inf, err := c.GetInformer(ctx, &corev1.Pod{}, cache.BlockUntilSynced(false))
	if err != nil {
		return nil, err
	}
	indexed, ok := inf.(interface{ GetIndexer() toolscache.Indexer })
	if !ok {
		return nil, nil
	}
	index := indexed.GetIndexer()
	return func(namespace string) ([]*corev1.Pod, error) {
		objs, err := index.ByIndex(toolscache.NamespaceIndex, namespace)
		if err != nil {
			return nil, err
		}
		pods := make([]*corev1.Pod, 0, len(objs))
		for _, o := range objs {
			if pod, ok := o.(*corev1.Pod); ok {
				pods = append(pods, pod)
			}
		}
		return pods, nil
	}, nil
}

// SetupWithManager registers the controller. Pod, namespace and Service events (Services feed
// the findings) are coalesced: a rollout of thousands of pods leads to a recount per
// recountDelay, not one per pod.
func (r *MeshConfigReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.rules == nil {
		r.rules = drift.NewRuleCache(ruleCacheSize)
	}
	if r.Options.APIs.NoMeshConfigStatus && r.memo == nil {
		r.memo = status.NewMemo()
	}
	if r.cachedPods == nil {
		pods, err := indexedPods(context.Background(), mgr.GetCache())
		if err != nil {
			return err
		}
		r.cachedPods = pods
	}
	b := ctrl.NewControllerManagedBy(mgr).
		Named("drift-meshconfig").
		For(&configv1alpha2.MeshConfig{}, builder.WithPredicates(predicate.GenerationChangedPredicate{}, servedMeshConfig(r.Options.MeshConfig)))
	recount := r.recountHandler()
	for _, obj := range recountOn() {
		b = b.Watches(obj, recount)
	}
	return b.Complete(r)
}

// recountOn lists the kinds whose events recount the served MeshConfig's pods, once each: a kind
// listed twice would register a second handler on its informer and recount twice per event.
// Services are here because the findings compare exclusions with mesh Services.
func recountOn() []client.Object {
	return []client.Object{&corev1.Pod{}, &corev1.Namespace{}, &corev1.Service{}}
}

func (r *MeshConfigReconciler) recountHandler() handler.EventHandler {
	return coalescedRecount(r.Options.MeshConfig, r.recountDelay)
}

// coalescedRecount queues key after delay() on any event: the work queue keeps one request per
// key, so a burst of events leads to one recount.
func coalescedRecount(key types.NamespacedName, delay func() time.Duration) handler.EventHandler {
	enqueue := func(q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		q.AddAfter(reconcile.Request{NamespacedName: key}, delay())
	}
	return handler.Funcs{
		CreateFunc: func(_ context.Context, _ event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(q)
		},
		UpdateFunc: func(_ context.Context, _ event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(q)
		},
		DeleteFunc: func(_ context.Context, _ event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(q)
		},
	}
}
