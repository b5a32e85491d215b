package pod

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	"github.com/meshkeeper/meshkeeper/internal/injection"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
	"github.com/meshkeeper/meshkeeper/internal/validation"
)

// Path is where the API server sends pod admission reviews.
const Path = "/mutate-v1-pod"

// The webhook configuration narrows calls before they reach us, so most pods in a cluster never
// cost a round trip: only namespaces labelled for our mesh (the label's value, not its mere
// presence: another mesh's namespaces never depend on meshkeeper being up) and not ignored
// (namespaceSelector; config/injector sets the value to the manager's --mesh-name), never
// the operator's own pods (objectSelector), never host-network pods or kube-system
// (matchConditions). The handler re-checks all of it, because selectors can be edited and the
// mesh name is compared only here. reinvocationPolicy IfNeeded lets a later webhook's changes be
// seen again; a second pass over an injected pod is a no-op. failurePolicy is Ignore: with the
// manager down a pod starts without a sidecar, and the drift controller reports it
// (SidecarInjected=False, SidecarMissing, with the restart that fixes it) instead of the pod
// never starting.
//
// +kubebuilder:webhook:path=/mutate-v1-pod,mutating=true,failurePolicy=ignore,sideEffects=None,groups="",resources=pods,verbs=create,versions=v1,name=inject.meshkeeper.io,admissionReviewVersions=v1,reinvocationPolicy=IfNeeded,timeoutSeconds=5,patch=`{"namespaceSelector":{"matchExpressions":[{"key":"openservicemesh.io/monitored-by","operator":"In","values":["osm"]},{"key":"openservicemesh.io/ignore","operator":"DoesNotExist"},{"key":"kubernetes.io/metadata.name","operator":"NotIn","values":["kube-system"]}]},"objectSelector":{"matchExpressions":[{"key":"app.kubernetes.io/part-of","operator":"NotIn","values":["meshkeeper"]}]},"matchConditions":[{"name":"not-host-network","expression":"!has(object.spec.hostNetwork) || !object.spec.hostNetwork"},{"name":"not-kube-system","expression":"request.namespace != 'kube-system'"}]}`

// Injector answers pod admission reviews.
type Injector struct {
	// Reader must be cache-backed: admission never waits on a live API call.
	Reader client.Reader
	// MeshConfig is the MeshConfig every pod is injected from.
	MeshConfig types.NamespacedName
	// Select identifies the mesh and the operator's namespace.
	Select injection.SelectOptions
	// Options are passed to injection.Compute; MeshConfig and its generation are filled per request.
	Options injection.Options
	// Cluster holds the Service and Pod CIDRs, used to warn about pod annotations that exclude them.
	Cluster redirect.ClusterRanges
	// Gate, when set, can pause injection (another injector serves the mesh); paused, pods are
	// let through untouched with a warning. Nil never pauses.
	Gate *Gate

	patches patchMemo
}

var _ admission.Handler = (*Injector)(nil)

// SetupWithManager registers the handler and starts the informers it reads from together with the
// manager, so the first admission does not pay for a cache sync.
func (i *Injector) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if i.Reader == nil {
		i.Reader = mgr.GetCache()
	}
	for _, obj := range []client.Object{&corev1.Namespace{}, &configv1alpha2.MeshConfig{}} {
		if _, err := mgr.GetCache().GetInformer(ctx, obj); err != nil {
			return fmt.Errorf("pod webhook: informer for %T: %w", obj, err)
		}
	}
	mgr.GetWebhookServer().Register(Path, &webhook.Admission{Handler: i})
	return nil
}

// Handle injects the sidecar into a pod being created, or lets it through unchanged, and counts
// the decision (meshkeeper_admission_decisions_total).
func (i *Injector) Handle(ctx context.Context, req admission.Request) admission.Response {
	resp, outcome := i.handle(ctx, req)
	admissionDecisions.WithLabelValues(string(outcome)).Inc()
	return resp
}

func (i *Injector) handle(ctx context.Context, req admission.Request) (admission.Response, Outcome) {
	if err := ctx.Err(); err != nil {
		return admission.Errored(http.StatusServiceUnavailable, err), OutcomeError
	}
	log := logf.FromContext(ctx)

	pod := &corev1.Pod{}
	if err := decode(req, pod); err != nil {
		return admission.Errored(http.StatusBadRequest, err), OutcomeError
	}
	if injection.Injected(pod) {
		return admission.Allowed("already injected"), OutcomeSkipped
	}
	if evidence, ok := injection.ForeignInjection(pod); ok {
		return admission.Allowed("injected by another injector").WithWarnings(
			fmt.Sprintf("meshkeeper left this pod untouched: another injector already injected it (%s)", evidence)), OutcomeOtherInjector
	}

	ns, err := i.namespace(ctx, req.Namespace)
	if err != nil {
		// Refusing would make pod creation depend on meshkeeper's cache; the drift controller
		// reports the missing sidecar on the pod instead.
		return notInjected(fmt.Sprintf("reading namespace %s: %v", req.Namespace, err)), OutcomeNotInjected
	}
	decision, err := injection.Select(ns, pod, i.Select)
	if err != nil {
		return admission.Denied(err.Error()), OutcomeDenied
	}
	if !decision.Inject {
		return admission.Allowed(decision.Reason), OutcomeSkipped
	}
	if i.Gate != nil {
		if reason, paused := i.Gate.Paused(); paused {
			return notInjected(reason), OutcomePaused
		}
	}

	mc := &configv1alpha2.MeshConfig{}
	if err := i.Reader.Get(ctx, i.MeshConfig, mc); err != nil {
		if apierrors.IsNotFound(err) {
			return notInjected(fmt.Sprintf("MeshConfig %s not found, so there are no exclusions to render", i.MeshConfig)), OutcomeNotInjected
		}
		return notInjected(fmt.Sprintf("reading MeshConfig %s: %v", i.MeshConfig, err)), OutcomeNotInjected
	}
	patch, err := i.patch(pod, mc)
	if errors.Is(err, errEncoding) {
		return admission.Errored(http.StatusInternalServerError, err), OutcomeError
	}
	if err != nil {
		// A MeshConfig that slipped past validation (webhook down, written before meshkeeper) is
		// not the pod's fault: refusing would refuse every pod of the mesh. Let it through and say
		// why; the MeshConfig reports Stalled with the field, the pod SidecarMissing. Only the
		// pod's own annotations are grounds to refuse it. Checked only on failure, so a healthy
		// admission validates once, inside Compute.
		if errs := injection.ValidateMeshConfig(&mc.Spec); len(errs) > 0 {
			return notInjected(fmt.Sprintf("MeshConfig %s is invalid: %v", i.MeshConfig, errs.ToAggregate())), OutcomeNotInjected
		}
		return admission.Denied(err.Error()), OutcomeDenied
	}
	if err := ctx.Err(); err != nil {
		return admission.Errored(http.StatusServiceUnavailable, err), OutcomeError
	}
	log.V(1).Info("injecting sidecar", "namespace", req.Namespace, "pod", podName(req, pod), "reason", decision.Reason)
	resp := admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{Allowed: true}}
	if patch != nil {
		pt := admissionv1.PatchTypeJSONPatch
		resp.Patch, resp.PatchType = patch, &pt
	}
	return resp.WithWarnings(i.warnings(pod)...), OutcomeInjected
}

// patch computes the pod's injection and encodes it, or returns the patch of an earlier pod with
// the same injection.PatchKey and the same MeshConfig version.
func (i *Injector) patch(pod *corev1.Pod, mc *configv1alpha2.MeshConfig) ([]byte, error) {
	if err := injection.Conflict(pod); err != nil {
		return nil, err
	}
	opts := i.Options
	opts.MeshConfig = i.MeshConfig
	opts.MeshConfigGeneration = mc.Generation
	version := memoVersion{uid: mc.UID, resourceVersion: mc.ResourceVersion, options: opts}
	key := injection.PatchKey(pod)
	if patch, ok := i.patches.get(version, key); ok {
		return patch, nil
	}
	add, err := injection.Compute(pod, &mc.Spec, opts)
	if err != nil {
		return nil, err
	}
	patch, err := encodePatch(add.JSONPatch(pod))
	if err != nil {
		return nil, err
	}
	i.patches.put(version, key, patch)
	return patch, nil
}

// notInjected lets a pod through without the sidecar when meshkeeper itself cannot decide
// (its cache, a missing MeshConfig): the pod starts, the warning says why, and the drift
// controller marks it SidecarInjected=False (SidecarMissing) with the restart that fixes it.
// Only the pod's own invalid annotations are refused, naming the annotation and value.
func notInjected(why string) admission.Response {
	return admission.Allowed("not injected").WithWarnings("meshkeeper did not inject the sidecar: " + why)
}

// errEncoding marks a patch that could not be encoded: meshkeeper's failure, not the pod's.
var errEncoding = errors.New("encoding the patch")

// encodePatch encodes the operations, which name only what injection adds: diffing the submitted
// pod against a re-encoded injected copy cost about half of each admission and could also restate,
// or drop, whatever the re-encoding changes. The response carries the encoded patch rather than
// admission.Response.Patches, whose operation type would be encoded in two passes (see
// injection.Operation).
func encodePatch(ops []injection.Operation) ([]byte, error) {
	if len(ops) == 0 {
		return nil, nil
	}
	raw, err := json.Marshal(ops)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errEncoding, err)
	}
	return raw, nil
}

// namespaceCacheWait bounds how long a pod waits for its namespace to reach the cache.
const namespaceCacheWait = 2 * time.Second

// namespace reads the pod's namespace from the cache. A namespace created a moment before its
// first pod may not have reached the informer yet; rather than fail the pod, wait briefly for it
// (still without calling the API server).
func (i *Injector) namespace(ctx context.Context, name string) (*corev1.Namespace, error) {
	ns := &corev1.Namespace{}
	key := types.NamespacedName{Name: name}
	err := i.Reader.Get(ctx, key, ns)
	if !apierrors.IsNotFound(err) {
		return ns, err
	}
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, namespaceCacheWait, false, func(ctx context.Context) (bool, error) {
		err := i.Reader.Get(ctx, key, ns)
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})
	return ns, err
}

// decode reads the pod with a plain JSON unmarshal: the webhook is registered for core/v1 pods
// only, which the API server always sends as JSON, so the scheme's generic decoder would add cost
// on the hottest path without adding a check.
func decode(req admission.Request, pod *corev1.Pod) error {
	// JSON null decodes into an empty pod without an error, but there is no document to patch.
	if raw := bytes.TrimSpace(req.Object.Raw); len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return fmt.Errorf("the admission request carries no pod")
	}
	if err := json.Unmarshal(req.Object.Raw, pod); err != nil {
		return fmt.Errorf("decoding pod: %w", err)
	}
	return nil
}

// warnings flags pod annotations that take cluster-internal traffic out of the mesh. Only the
// pod's own annotations are considered: warnings about MeshConfig belong to its own webhook.
func (i *Injector) warnings(pod *corev1.Pod) []string {
	var own map[string]string
	for _, k := range []string{redirect.AnnotationOutboundIPRangeExclusionList, redirect.AnnotationOutboundIPRangeInclusionList} {
		if v, ok := pod.Annotations[k]; ok {
			if own == nil {
				own = map[string]string{}
			}
			own[k] = v
		}
	}
	if own == nil {
		return nil
	}
	cfg, errs := redirect.Effective(redirect.MeshSettings{}, own)
	if len(errs) > 0 {
		return nil
	}
	var out []string
	for _, w := range redirect.Warnings(cfg, i.Cluster) {
		where := "metadata.annotations[" + redirect.AnnotationOutboundIPRangeExclusionList + "]"
		if w.Field == "outboundIPRangeInclusionList" {
			where = "metadata.annotations[" + redirect.AnnotationOutboundIPRangeInclusionList + "]"
		}
		out = append(out, validation.FormatWarning(where, w))
	}
	return out
}

func podName(req admission.Request, pod *corev1.Pod) string {
	if pod.Name != "" {
		return pod.Name
	}
	if req.Name != "" {
		return req.Name
	}
	return pod.GenerateName + "*"
}
