package controllers

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	policyv1alpha1 "github.com/meshkeeper/meshkeeper/api/policy/v1alpha1"
	"github.com/meshkeeper/meshkeeper/internal/analysis"
	"github.com/meshkeeper/meshkeeper/internal/validation"
)

// +kubebuilder:rbac:groups=policy.openservicemesh.io,resources=egresses,verbs=get;list;watch
// +kubebuilder:rbac:groups=policy.openservicemesh.io,resources=egresses/status,verbs=patch
// +kubebuilder:rbac:groups=config.openservicemesh.io,resources=meshconfigs,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=services;serviceaccounts;namespaces;pods,verbs=get;list;watch

// EgressReconciler reports on every Egress whether it is acted on, whether its source
// ServiceAccounts exist, and what silently defeats it: egress-open mode, exclusions that route
// its destinations around the sidecar, and mesh Services whose ports swallow its destinations.
type EgressReconciler struct {
	policyDeps
}

// egressKind: an Egress carries Accepted and ResolvedRefs besides Ready.
var egressKind = policyKind[*policyv1alpha1.Egress]{
	name:  KindEgress,
	types: []string{conditions.Accepted, conditions.ResolvedRefs},
	status: func(e *policyv1alpha1.Egress) policyStatus {
		return policyStatus{&e.Status.Conditions, &e.Status.Findings, &e.Status.ObservedGeneration}
	},
	summary: func(e *policyv1alpha1.Egress) string {
		return fmt.Sprintf("allows %d port(s) for %d service account(s)", len(e.Spec.Ports), len(e.Spec.Sources))
	},
	validate: func(e *policyv1alpha1.Egress) field.ErrorList { return validation.Egress(e).Errors },
}

// Reconcile judges one Egress against what it depends on (see reconcilePolicy).
func (r *EgressReconciler) Reconcile(ctx context.Context, req reconcile.Request) (ctrl.Result, error) {
	return reconcilePolicy(ctx, r.policyDeps, req, &policyv1alpha1.Egress{}, egressKind, r.gather, analysis.AnalyzeEgress)
}

// gather reads, from the cache only, everything AnalyzeEgress needs: the MeshConfig, the mesh's
// namespaces, the source ServiceAccounts and their pods, and the Services listening on the
// policy's ports (through IndexServicePort, not a list of every Service).
func (r *EgressReconciler) gather(ctx context.Context, e *policyv1alpha1.Egress) (analysis.EgressInput, error) {
	in := analysis.EgressInput{Egress: e}
	var err error
	if in.Mesh, err = readMesh(ctx, r.Client, r.Options.MeshConfig); err != nil || !in.Mesh.Found {
		return in, err
	}
	if in.Monitored, err = monitoredNamespaces(ctx, r.Client, r.Options.MeshName); err != nil {
		return in, err
	}
	for _, s := range e.Spec.Sources {
		key := types.NamespacedName{Namespace: s.Namespace, Name: s.Name}
		sa := &metav1.PartialObjectMetadata{}
		sa.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("ServiceAccount"))
		switch err := r.Client.Get(ctx, key, sa); {
		case err == nil:
			in.ServiceAccounts = append(in.ServiceAccounts, key)
		case !apierrors.IsNotFound(err):
			return in, fmt.Errorf("reading ServiceAccount %s: %w", key, err)
		}
		pods := &corev1.PodList{}
		if err := r.Client.List(ctx, pods, client.InNamespace(s.Namespace),
			client.MatchingFields{IndexPodServiceAccount: key.String()}); err != nil {
			return in, fmt.Errorf("listing pods of ServiceAccount %s: %w", key, err)
		}
		in.Pods = append(in.Pods, pods.Items...)
	}
	seen := map[types.NamespacedName]bool{}
	for _, port := range analysis.EgressPorts(e) {
		svcs := &corev1.ServiceList{}
		if err := r.Client.List(ctx, svcs, client.MatchingFields{IndexServicePort: strconv.Itoa(int(port))}); err != nil {
			return in, fmt.Errorf("listing Services on port %d: %w", port, err)
		}
		for _, s := range svcs.Items {
			if k := client.ObjectKeyFromObject(&s); !seen[k] && in.Monitored[s.Namespace] {
				seen[k] = true
				in.Services = append(in.Services, s)
			}
		}
	}
	return in, nil
}

// SetupWithManager registers the controller. Each dependency maps to the Egresses that read it
// through a field index; only the MeshConfig and namespace membership, which every Egress reads,
// fan out to all of them.
func (r *EgressReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("egress").
		For(&policyv1alpha1.Egress{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&configv1alpha2.MeshConfig{}, enqueueAll(r.Client, func() client.ObjectList { return &policyv1alpha1.EgressList{} }),
			builder.WithPredicates(servedMeshConfig(r.Options.MeshConfig), predicate.GenerationChangedPredicate{})).
		Watches(&corev1.Namespace{}, enqueueAll(r.Client, func() client.ObjectList { return &policyv1alpha1.EgressList{} }),
			builder.WithPredicates(predicate.LabelChangedPredicate{})).
		Watches(&corev1.Service{}, handler.EnqueueRequestsFromMapFunc(r.byServicePorts)).
		WatchesMetadata(&corev1.ServiceAccount{}, handler.EnqueueRequestsFromMapFunc(r.byServiceAccount),
			builder.WithPredicates(createOrDelete)).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(r.byPod),
			builder.WithPredicates(predicate.Or[client.Object](createOrDelete, predicate.AnnotationChangedPredicate{}))).
		Complete(r)
}

func (r *EgressReconciler) list(ctx context.Context, opts ...client.ListOption) []reconcile.Request {
	return listRequests(ctx, r.Client, &policyv1alpha1.EgressList{}, opts...)
}

// byServicePorts maps a Service to the Egresses on its listener ports. On update both the old
// and the new object are mapped, so a port that was removed still reaches its Egresses.
func (r *EgressReconciler) byServicePorts(ctx context.Context, o client.Object) []reconcile.Request {
	svc, ok := o.(*corev1.Service)
	if !ok {
		return nil
	}
	var reqs []reconcile.Request
	for _, l := range analysis.Listeners(svc) {
		for _, req := range r.list(ctx, client.MatchingFields{IndexEgressPort: strconv.Itoa(int(l.Port))}) {
			if !slices.Contains(reqs, req) {
				reqs = append(reqs, req)
			}
		}
	}
	return reqs
}

func (r *EgressReconciler) byServiceAccount(ctx context.Context, o client.Object) []reconcile.Request {
	return r.list(ctx, client.MatchingFields{IndexEgressServiceAccount: client.ObjectKeyFromObject(o).String()})
}

func (r *EgressReconciler) byPod(ctx context.Context, o client.Object) []reconcile.Request {
	pod, ok := o.(*corev1.Pod)
	if !ok {
		return nil
	}
	return r.list(ctx, client.MatchingFields{IndexEgressServiceAccount: podServiceAccount(pod).String()})
}
