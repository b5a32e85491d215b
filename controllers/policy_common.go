package controllers

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	policyv1alpha1 "github.com/meshkeeper/meshkeeper/api/policy/v1alpha1"
	"github.com/meshkeeper/meshkeeper/internal/analysis"
	"github.com/meshkeeper/meshkeeper/internal/injection"
	"github.com/meshkeeper/meshkeeper/internal/status"
)

// Field indexes of the policy controllers. Each turns "this object changed" into "these policies
// depend on it" with one cache lookup instead of a relist.
const (
	// IndexEgressServiceAccount indexes Egresses by source ServiceAccount ("namespace/name").
	IndexEgressServiceAccount = "meshkeeper.io/egress-serviceaccount"
	// IndexEgressPort indexes Egresses by destination port.
	IndexEgressPort = "meshkeeper.io/egress-port"
	// IndexServicePort indexes Services by the ports their sidecar listeners match.
	IndexServicePort = "meshkeeper.io/service-port"
	// IndexPodServiceAccount indexes pods by service account ("namespace/name").
	IndexPodServiceAccount = "meshkeeper.io/pod-serviceaccount"
	// IndexIngressBackendService indexes IngressBackends by referenced Service ("namespace/name").
	IndexIngressBackendService = "meshkeeper.io/ingressbackend-service"
	// IndexIngressBackendClaim indexes IngressBackends by claimed backend
	// ("namespace/service:port").
	IndexIngressBackendClaim = "meshkeeper.io/ingressbackend-claim"
)

// PolicyOptions configure the Egress and IngressBackend controllers.
type PolicyOptions struct {
	// MeshConfig is the MeshConfig policies are judged against.
	MeshConfig types.NamespacedName
	// MeshName is the openservicemesh.io/monitored-by value of the mesh's namespaces.
	MeshName string
	// APIs says which kinds can store a status and which status fields are OSM's.
	APIs APIs
	// Clock is injected by tests; nil means time.Now.
	Clock func() time.Time
}

func (o PolicyOptions) now() time.Time {
	if o.Clock != nil {
		return o.Clock()
	}
	return time.Now()
}

// policyKind is what reconcilePolicy needs to know of one policy kind, besides how to judge an
// object of it. Go cannot reach a field shared by two structs through a type parameter, hence
// the status accessor.
type policyKind[T client.Object] struct {
	// name is the kind, for metrics.
	name string
	// types are the positive conditions the kind carries besides Ready, in judging order.
	types []string
	// status points into the parts of the status every policy kind has.
	status func(T) policyStatus
	// summary is Ready's message when nothing is wrong.
	summary func(T) string
	// validate is the admission check again: a webhook can be down or bypassed.
	validate func(T) field.ErrorList
	// finish derives the kind's own status fields from the new conditions; nil for none.
	finish func(T, APIs)
}

type policyStatus struct {
	conditions         *[]metav1.Condition
	findings           *[]conditions.Finding
	observedGeneration *int64
}

// policyDeps are what every policy reconciler holds.
type policyDeps struct {
	Client client.Client
	// Recorder receives the events of Ready and Stalled transitions; nil records none.
	Recorder events.EventRecorder
	Options  PolicyOptions
	// memo is non-nil when the kind's CRD cannot store a status (see
	// status.Patcher.WithoutSubresource).
	memo *status.Memo
}

// reconcilePolicy is the reconcile of every policy kind: read obj from the cache, judge it
// (gather reads what it depends on from the cache, analyze is the pure analysis), and write
// status once, only on change.
// When judge fails, the findings stay as they were and observedGeneration does not move, so the
// status never claims a verdict on a generation it did not reach; the error is retried.
func reconcilePolicy[T client.Object, In any](ctx context.Context, d policyDeps, req reconcile.Request, obj T, kind policyKind[T],
	gather func(context.Context, T) (In, error), analyze func(In) []analysis.Finding) (ctrl.Result, error) {
	c, opts, memo := d.Client, d.Options, d.memo
	if err := c.Get(ctx, req.NamespacedName, obj); err != nil {
		if apierrors.IsNotFound(err) {
			forgetVerdict(kind.name, req.NamespacedName)
			if memo != nil {
				memo.Forget(req.NamespacedName)
			}
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	patcher := status.NewPatcher(obj).WithEvents(d.Recorder, func(o T) []metav1.Condition { return *kind.status(o).conditions }).
		WithoutSubresource(memo)
	st := kind.status(obj)
	outcome := status.Outcome{Generation: obj.GetGeneration(), Types: kind.types, Summary: kind.summary(obj)}
	var findings []analysis.Finding
	in, err := gather(ctx, obj)
	if err == nil {
		findings = analyze(in)
	}
	if outcome.Err = err; err == nil {
		*st.findings = analysis.ToAPI(findings)
		outcome.Problems = problems(kind.validate(obj), findings)
	}
	if status.Apply(st.conditions, outcome, opts.now()) {
		*st.observedGeneration = obj.GetGeneration()
	}
	if kind.finish != nil {
		kind.finish(obj, opts.APIs)
	}
	perr := patcher.Patch(ctx, c, obj)
	if perr == nil {
		recordVerdict(kind.name, req.NamespacedName, *st.conditions, *st.findings)
	}
	return judgeAgainIfStale(err, perr)
}

// staleRetry is how soon an object whose status write found it changed is judged again. The
// change's own watch event usually gets there first; this covers a change no watch predicate
// passes (someone else's status write).
const staleRetry = 250 * time.Millisecond

// judgeAgainIfStale is the result of a reconcile whose judging ended with err and whose status
// write ended with perr: a verdict that was stale when written (status.ErrStale) is judged again
// shortly, and is not an error to report or back off from (an error of the judging itself is,
// and its retry judges again anyway).
func judgeAgainIfStale(err, perr error) (ctrl.Result, error) {
	if err == nil && errors.Is(perr, status.ErrStale) {
		return ctrl.Result{RequeueAfter: staleRetry}, nil
	}
	return ctrl.Result{}, errors.Join(err, perr)
}

// SetupPolicy registers the field indexes and the Egress and IngressBackend controllers.
func SetupPolicy(ctx context.Context, mgr ctrl.Manager, opts PolicyOptions) error {
	if err := IndexPolicyFields(ctx, mgr); err != nil {
		return err
	}
	rec := mgr.GetEventRecorder(PolicyEventSource)
	deps := func(noStatus bool) policyDeps {
		d := policyDeps{Client: mgr.GetClient(), Recorder: rec, Options: opts}
		if noStatus {
			d.memo = status.NewMemo()
		}
		return d
	}
	if err := (&EgressReconciler{deps(opts.APIs.NoEgressStatus)}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("egress controller: %w", err)
	}
	if err := (&IngressBackendReconciler{deps(opts.APIs.NoIngressBackendStatus)}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("ingressbackend controller: %w", err)
	}
	return nil
}

// IndexPolicyFields registers every index the policy controllers query.
func IndexPolicyFields(ctx context.Context, mgr ctrl.Manager) error {
	idx := mgr.GetFieldIndexer()
	for _, i := range []struct {
		obj   client.Object
		name  string
		index client.IndexerFunc
	}{
		{&policyv1alpha1.Egress{}, IndexEgressServiceAccount, func(o client.Object) []string {
			return analysis.EgressServiceAccounts(o.(*policyv1alpha1.Egress))
		}},
		{&policyv1alpha1.Egress{}, IndexEgressPort, func(o client.Object) []string {
			return portKeys(analysis.EgressPorts(o.(*policyv1alpha1.Egress)))
		}},
		{&corev1.Service{}, IndexServicePort, func(o client.Object) []string {
			var ports []int32
			for _, l := range analysis.Listeners(o.(*corev1.Service)) {
				ports = append(ports, l.Port)
			}
			return portKeys(ports)
		}},
		{&corev1.Pod{}, IndexPodServiceAccount, func(o client.Object) []string {
			return []string{podServiceAccount(o.(*corev1.Pod)).String()}
		}},
		{&policyv1alpha1.IngressBackend{}, IndexIngressBackendService, func(o client.Object) []string {
			return analysis.ReferencedServices(o.(*policyv1alpha1.IngressBackend))
		}},
		{&policyv1alpha1.IngressBackend{}, IndexIngressBackendClaim, func(o client.Object) []string {
			return analysis.Claims(o.(*policyv1alpha1.IngressBackend))
		}},
	} {
		if err := idx.IndexField(ctx, i.obj, i.name, i.index); err != nil {
			return fmt.Errorf("indexing %T by %s: %w", i.obj, i.name, err)
		}
	}
	return nil
}

func portKeys(ports []int32) []string {
	out := make([]string, len(ports))
	for i, p := range ports {
		out[i] = strconv.Itoa(int(p))
	}
	return out
}

// podServiceAccount is the pod's service account; an empty name means "default".
func podServiceAccount(p *corev1.Pod) types.NamespacedName {
	sa := p.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	return types.NamespacedName{Namespace: p.Namespace, Name: sa}
}

// readMesh reads the served MeshConfig from the cache; a missing one is not an error.
func readMesh(ctx context.Context, c client.Reader, key types.NamespacedName) (analysis.Mesh, error) {
	mc := &configv1alpha2.MeshConfig{}
	if err := c.Get(ctx, key, mc); err != nil {
		if apierrors.IsNotFound(err) {
			return analysis.MeshOf(key, nil), nil
		}
		return analysis.Mesh{}, fmt.Errorf("reading MeshConfig %s: %w", key, err)
	}
	return analysis.MeshOf(key, mc), nil
}

// monitoredNamespaces lists the namespaces of the mesh, from the cache.
func monitoredNamespaces(ctx context.Context, c client.Reader, meshName string) (map[string]bool, error) {
	list := &corev1.NamespaceList{}
	if err := c.List(ctx, list, client.HasLabels{injection.LabelMonitoredBy}); err != nil {
		return nil, fmt.Errorf("listing monitored namespaces: %w", err)
	}
	out := make(map[string]bool, len(list.Items))
	for i := range list.Items {
		if injection.InMesh(&list.Items[i], meshName) {
			out[list.Items[i].Name] = true
		}
	}
	return out, nil
}

// problems turns findings and spec errors into condition problems. Spec errors come first: an
// object that slipped past admission (webhook down or bypassed) is InvalidSpec before anything
// else is said about it.
func problems(specErrs field.ErrorList, findings []analysis.Finding) []status.Problem {
	var out []status.Problem
	if len(specErrs) > 0 {
		out = append(out, status.Problem{Type: conditions.Accepted, Reason: conditions.InvalidSpec, Stalls: true,
			Message: "the spec was admitted but cannot be acted on: " + specErrs.ToAggregate().Error()})
	}
	for _, f := range findings {
		if f.Condition == "" {
			continue
		}
		out = append(out, status.Problem{Type: f.Condition, Reason: f.Reason, Message: f.Message,
			Stalls: f.Stalls, Benign: f.Benign, Pending: f.Reason == conditions.Pending})
	}
	return out
}

// createOrDelete passes only creations and deletions: what the policies read of these objects
// (existence, a pod's service account) does not change on update.
var createOrDelete = predicate.Funcs{
	UpdateFunc:  func(event.UpdateEvent) bool { return false },
	GenericFunc: func(event.GenericEvent) bool { return false },
}

// servedMeshConfig passes only the MeshConfig the operator serves.
func servedMeshConfig(key types.NamespacedName) predicate.Predicate {
	return predicate.NewPredicateFuncs(func(o client.Object) bool { return client.ObjectKeyFromObject(o) == key })
}

// enqueueAll maps any event to every object of a policy kind (newList makes its list type).
func enqueueAll(c client.Reader, newList func() client.ObjectList) handler.EventHandler {
	return handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, _ client.Object) []reconcile.Request {
		return listRequests(ctx, c, newList())
	})
}

// listRequests lists objects from the cache (usually through a field index) and turns each into a
// reconcile request; the map functions of every policy watch go through it.
func listRequests(ctx context.Context, c client.Reader, list client.ObjectList, opts ...client.ListOption) []reconcile.Request {
	if err := c.List(ctx, list, opts...); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing objects to re-evaluate", "list", fmt.Sprintf("%T", list))
		return nil
	}
	var reqs []reconcile.Request
	_ = meta.EachListItem(list, func(o runtime.Object) error {
		if obj, ok := o.(client.Object); ok {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(obj)})
		}
		return nil
	})
	return reqs
}
