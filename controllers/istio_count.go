package controllers

import (
	"context"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/meshkeeper/meshkeeper/internal/drift"
)

// MeshIstio is the mesh label of Istio's pods in the metrics; OSM's pods carry the mesh name
// served.
const MeshIstio = "istio"

// istioCountKey is the one request the Istio pod counter works on: a count covers every
// namespace.
var istioCountKey = types.NamespacedName{Name: "istio-pods"}

// IstioPodCounter counts Istio's pods by verdict for the metrics. The MeshConfig's recount
// cannot: it covers the namespaces of the OSM mesh, and its status must not count pods the
// MeshConfig does not govern. Istio pods are counted from the conditions the pod controller
// wrote on them, so the verdict has one author; a pod appears once it has been judged.
type IstioPodCounter struct {
	Client  client.Client
	Options DriftOptions
	// lastCount is how long the last count took, in nanoseconds.
	lastCount atomic.Int64
}

// Reconcile counts and exports.
func (r *IstioPodCounter) Reconcile(ctx context.Context, _ reconcile.Request) (ctrl.Result, error) {
	t0 := time.Now()
	s, err := r.count(ctx)
	r.lastCount.Store(int64(time.Since(t0)))
	if err != nil {
		return ctrl.Result{}, err
	}
	recordPodVerdicts(MeshIstio, s)
	return ctrl.Result{}, nil
}

// count reads every pod the pod controller judges as Istio's, from the cache.
func (r *IstioPodCounter) count(ctx context.Context) (drift.Summary, error) {
	var s drift.Summary
	namespaces := &corev1.NamespaceList{}
	if err := r.Client.List(ctx, namespaces); err != nil {
		return s, err
	}
	for i := range namespaces.Items {
		ns := &namespaces.Items[i]
		pods := &corev1.PodList{}
		if err := r.Client.List(ctx, pods, client.InNamespace(ns.Name), client.UnsafeDisableDeepCopy); err != nil {
			return s, err
		}
		for j := range pods.Items {
			pod := &pods.Items[j]
			if pod.DeletionTimestamp == nil && istioPodOutsideMesh(ns, pod, r.Options.Selection.MeshName) {
				s.Add(pod, pod.Status.Conditions)
			}
		}
	}
	return s, nil
}

// SetupWithManager registers the counter: pod and namespace events are coalesced into one
// count, delayed as the MeshConfig's recount is.
func (r *IstioPodCounter) SetupWithManager(mgr ctrl.Manager) error {
	recount := coalescedRecount(istioCountKey, func() time.Duration { return recountDelay(time.Duration(r.lastCount.Load())) })
	return ctrl.NewControllerManagedBy(mgr).
		Named("istio-pod-count").
		Watches(&corev1.Pod{}, recount).
		Watches(&corev1.Namespace{}, recount).
		Complete(r)
}
