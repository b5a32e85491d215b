package controllers

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	policyv1alpha1 "github.com/meshkeeper/meshkeeper/api/policy/v1alpha1"
	"github.com/meshkeeper/meshkeeper/internal/analysis"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
	"github.com/meshkeeper/meshkeeper/internal/validation"
)

// +kubebuilder:rbac:groups=policy.openservicemesh.io,resources=ingressbackends,verbs=get;list;watch
// +kubebuilder:rbac:groups=policy.openservicemesh.io,resources=ingressbackends/status,verbs=patch
// +kubebuilder:rbac:groups=config.openservicemesh.io,resources=meshconfigs,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=services;pods,verbs=get;list;watch

// IngressBackendReconciler reports on every IngressBackend whether its Services exist, whether
// its ports are ones OSM semantics ever match (targetPort) and intercept, and whether another
// IngressBackend claims the same backend. It keeps OSM's status.currentStatus and status.reason
// so that tooling written for OSM keeps working.
type IngressBackendReconciler struct {
	policyDeps
}

// ingressBackendKind: an IngressBackend carries Accepted and ResolvedRefs besides Ready, and OSM's
// currentStatus and reason derived from Ready.
var ingressBackendKind = policyKind[*policyv1alpha1.IngressBackend]{
	name:  KindIngressBackend,
	types: []string{conditions.Accepted, conditions.ResolvedRefs},
	status: func(ib *policyv1alpha1.IngressBackend) policyStatus {
		return policyStatus{&ib.Status.Conditions, &ib.Status.Findings, &ib.Status.ObservedGeneration}
	},
	summary: func(ib *policyv1alpha1.IngressBackend) string {
		return fmt.Sprintf("%d backend(s) admit traffic from %d source(s)", len(ib.Spec.Backends), len(ib.Spec.Sources))
	},
	validate: func(ib *policyv1alpha1.IngressBackend) field.ErrorList { return validation.IngressBackend(ib).Errors },
	finish: func(ib *policyv1alpha1.IngressBackend, apis APIs) {
		if !apis.IngressBackendStatusOwnedByOSM {
			setOSMStatus(&ib.Status)
		}
	},
}

// Reconcile judges one IngressBackend against what it depends on (see reconcilePolicy).
func (r *IngressBackendReconciler) Reconcile(ctx context.Context, req reconcile.Request) (ctrl.Result, error) {
	return reconcilePolicy(ctx, r.policyDeps, req, &policyv1alpha1.IngressBackend{}, ingressBackendKind, r.gather, analysis.AnalyzeIngressBackend)
}

// setOSMStatus derives OSM's two fields from Ready: "committed" once the policy is in effect,
// "error" otherwise, with Ready's message as the reason.
func setOSMStatus(st *policyv1alpha1.IngressBackendStatus) {
	ready := meta.FindStatusCondition(st.Conditions, conditions.Ready)
	if ready == nil {
		return
	}
	st.CurrentStatus, st.Reason = policyv1alpha1.CurrentStatusError, truncate(ready.Message, 1024)
	if ready.Status == "True" {
		st.CurrentStatus = policyv1alpha1.CurrentStatusCommitted
	}
}

// gather reads the MeshConfig, the referenced Services, the pods the backend Services select and
// the IngressBackends claiming the same backends, all from the cache and by key, label selector
// or index.
func (r *IngressBackendReconciler) gather(ctx context.Context, ib *policyv1alpha1.IngressBackend) (analysis.IngressBackendInput, error) {
	in := analysis.IngressBackendInput{IngressBackend: ib}
	var err error
	if in.Mesh, err = readMesh(ctx, r.Client, r.Options.MeshConfig); err != nil || !in.Mesh.Found {
		return in, err
	}
	for _, ref := range analysis.ReferencedServices(ib) {
		ns, name, _ := strings.Cut(ref, "/")
		svc := &corev1.Service{}
		switch err := r.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, svc); {
		case err == nil:
			in.Services = append(in.Services, *svc)
		case !apierrors.IsNotFound(err):
			return in, fmt.Errorf("reading Service %s: %w", ref, err)
		}
	}
	if in.Pods, err = r.backendPods(ctx, ib, in.Services); err != nil {
		return in, err
	}
	for _, claim := range analysis.Claims(ib) {
		list := &policyv1alpha1.IngressBackendList{}
		if err := r.Client.List(ctx, list, client.InNamespace(ib.Namespace), client.MatchingFields{IndexIngressBackendClaim: claim}); err != nil {
			return in, fmt.Errorf("listing IngressBackends claiming %s: %w", claim, err)
		}
		for _, o := range list.Items {
			if o.Name != ib.Name && !slices.ContainsFunc(in.Others, func(x policyv1alpha1.IngressBackend) bool { return x.Name == o.Name }) {
				in.Others = append(in.Others, o)
			}
		}
	}
	return in, nil
}

// backendPods lists, from the cache, the pods that the selectors of the existing backend Services
// pick, each once: their own inbound exclusions can take a backend port away from the sidecar.
func (r *IngressBackendReconciler) backendPods(ctx context.Context, ib *policyv1alpha1.IngressBackend, services []corev1.Service) ([]corev1.Pod, error) {
	var out []corev1.Pod
	seen := map[string]bool{}
	for i := range services {
		svc := &services[i]
		if svc.Namespace != ib.Namespace || len(svc.Spec.Selector) == 0 || !isBackend(ib, svc.Name) {
			continue
		}
		pods := &corev1.PodList{}
		if err := r.Client.List(ctx, pods, client.InNamespace(ib.Namespace), client.MatchingLabels(svc.Spec.Selector)); err != nil {
			return nil, fmt.Errorf("listing pods of Service %s/%s: %w", svc.Namespace, svc.Name, err)
		}
		for _, p := range pods.Items {
			if !seen[p.Name] {
				seen[p.Name] = true
				out = append(out, p)
			}
		}
	}
	return out, nil
}

// isBackend reports whether ib names the Service of its own namespace as a backend.
func isBackend(ib *policyv1alpha1.IngressBackend, service string) bool {
	return slices.ContainsFunc(ib.Spec.Backends, func(b policyv1alpha1.BackendSpec) bool { return b.Name == service })
}

// SetupWithManager registers the controller. Services map to the IngressBackends naming them,
// pods to the IngressBackends whose backend Services select them (found through the
// namespace's IngressBackends and a cache read of their backend Services), and an IngressBackend's
// creation, change or deletion re-evaluates the others claiming one of its backends (old and new
// claims both, since updates map both objects; for a pod whose labels changed, that is the
// Services that selected it and those that select it now).
func (r *IngressBackendReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("ingressbackend").
		For(&policyv1alpha1.IngressBackend{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&policyv1alpha1.IngressBackend{}, handler.EnqueueRequestsFromMapFunc(r.sharingClaims),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&configv1alpha2.MeshConfig{}, enqueueAll(r.Client, func() client.ObjectList { return &policyv1alpha1.IngressBackendList{} }),
			builder.WithPredicates(servedMeshConfig(r.Options.MeshConfig), predicate.GenerationChangedPredicate{})).
		Watches(&corev1.Service{}, handler.EnqueueRequestsFromMapFunc(r.byService)).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(r.byBackendPod), builder.WithPredicates(backendPodChanged)).
		Complete(r)
}

func (r *IngressBackendReconciler) list(ctx context.Context, opts ...client.ListOption) []reconcile.Request {
	return listRequests(ctx, r.Client, &policyv1alpha1.IngressBackendList{}, opts...)
}

func (r *IngressBackendReconciler) byService(ctx context.Context, o client.Object) []reconcile.Request {
	return r.list(ctx, client.MatchingFields{IndexIngressBackendService: client.ObjectKeyFromObject(o).String()})
}

// byBackendPod maps a pod to the IngressBackends naming, as a backend, a Service of the pod's
// namespace whose selector picks it. It starts from the namespace's IngressBackends, which are
// few and usually none, rather than from its Services, so that pod churn in a namespace without
// policies costs one empty cache lookup.
func (r *IngressBackendReconciler) byBackendPod(ctx context.Context, o client.Object) []reconcile.Request {
	pod, ok := o.(*corev1.Pod)
	if !ok {
		return nil
	}
	list := &policyv1alpha1.IngressBackendList{}
	if err := r.Client.List(ctx, list, client.InNamespace(pod.Namespace)); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing IngressBackends", "namespace", pod.Namespace)
		return nil
	}
	selects := map[string]bool{} // by Service name, read once per event
	var reqs []reconcile.Request
	for i := range list.Items {
		for _, b := range list.Items[i].Spec.Backends {
			sel, known := selects[b.Name]
			if !known {
				svc := &corev1.Service{}
				if err := r.Client.Get(ctx, types.NamespacedName{Namespace: pod.Namespace, Name: b.Name}, svc); err != nil {
					if !apierrors.IsNotFound(err) {
						ctrl.LoggerFrom(ctx).Error(err, "reading Service", "service", pod.Namespace+"/"+b.Name)
					}
				} else {
					sel = len(svc.Spec.Selector) > 0 && labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(pod.Labels))
				}
				selects[b.Name] = sel
			}
			if sel {
				reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
				break
			}
		}
	}
	return reqs
}

// backendPodChanged passes what can change a backend pod's part in an IngressBackend's status:
// the pod appearing or going (creation, deletion, the start of its termination), its labels
// (which Services select it) and its inbound-port-exclusion-list annotation. Status updates and
// every other annotation, the bulk of pod traffic, are dropped.
var backendPodChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		if e.ObjectOld == nil || e.ObjectNew == nil {
			return false
		}
		const ann = redirect.AnnotationInboundPortExclusionList
		oldAnn, oldHas := e.ObjectOld.GetAnnotations()[ann]
		newAnn, newHas := e.ObjectNew.GetAnnotations()[ann]
		return oldAnn != newAnn || oldHas != newHas ||
			!maps.Equal(e.ObjectOld.GetLabels(), e.ObjectNew.GetLabels()) ||
			(e.ObjectOld.GetDeletionTimestamp() == nil) != (e.ObjectNew.GetDeletionTimestamp() == nil)
	},
	GenericFunc: func(event.GenericEvent) bool { return false },
}

func (r *IngressBackendReconciler) sharingClaims(ctx context.Context, o client.Object) []reconcile.Request {
	ib, ok := o.(*policyv1alpha1.IngressBackend)
	if !ok {
		return nil
	}
	var reqs []reconcile.Request
	for _, claim := range analysis.Claims(ib) {
		for _, req := range r.list(ctx, client.InNamespace(ib.Namespace), client.MatchingFields{IndexIngressBackendClaim: claim}) {
			if req.Name != ib.Name && !slices.Contains(reqs, req) {
				reqs = append(reqs, req)
			}
		}
	}
	return reqs
}
