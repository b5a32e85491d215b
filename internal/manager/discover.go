package manager

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	"github.com/meshkeeper/meshkeeper/controllers"
)

// ResolveMeshConfig returns the MeshConfig to serve and how it was chosen: the flag when given
// (a MeshConfig that does not exist yet is not an error: pods then say MeshConfigNotFound until
// it is created), otherwise the only MeshConfig in the cluster. None or several without the flag
// is an error naming what was found.
func ResolveMeshConfig(ctx context.Context, c client.Reader, flag string) (types.NamespacedName, string, error) {
	if flag != "" {
		ref, err := ParseMeshConfigRef(flag)
		return ref, "--meshconfig", err
	}
	list := &configv1alpha2.MeshConfigList{}
	if err := c.List(ctx, list); err != nil {
		return types.NamespacedName{}, "", fmt.Errorf("looking for the MeshConfig to serve (no --meshconfig given): %w", err)
	}
	found := make([]types.NamespacedName, len(list.Items))
	for i := range list.Items {
		found[i] = client.ObjectKeyFromObject(&list.Items[i])
	}
	ref, err := PickMeshConfig(found)
	return ref, "the only MeshConfig in the cluster", err
}

// ErrNoMeshConfig: the cluster holds no MeshConfig and --meshconfig is not set. The manager waits
// for one (see Run).
var ErrNoMeshConfig = errors.New("no MeshConfig exists in the cluster and --meshconfig is not set: " +
	"create one (OSM installs osm-system/osm-mesh-config with Helm, kube-system/osm-mesh-config as the AKS add-on), " +
	"or start the manager with --meshconfig namespace/name")

// PickMeshConfig chooses among the MeshConfigs found when no flag names one.
func PickMeshConfig(found []types.NamespacedName) (types.NamespacedName, error) {
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return types.NamespacedName{}, ErrNoMeshConfig
	}
	names := make([]string, len(found))
	for i, f := range found {
		names[i] = f.String()
	}
	slices.Sort(names)
	return types.NamespacedName{}, fmt.Errorf("%d MeshConfigs exist (%s) and --meshconfig is not set: start the manager with --meshconfig naming the one to serve",
		len(found), strings.Join(names, ", "))
}

// served are the kinds meshkeeper reads, at the versions it reads them.
var served = []struct {
	kind     string
	gvr      schema.GroupVersionResource
	crd      string
	noStatus func(*controllers.APIs)
}{
	{controllers.KindMeshConfig, configv1alpha2.GroupVersion.WithResource("meshconfigs"), "meshconfigs.config.openservicemesh.io",
		func(a *controllers.APIs) { a.NoMeshConfigStatus = true }},
	{controllers.KindEgress, schema.GroupVersionResource{Group: "policy.openservicemesh.io", Version: "v1alpha1", Resource: "egresses"}, "egresses.policy.openservicemesh.io",
		func(a *controllers.APIs) { a.NoEgressStatus = true }},
	{controllers.KindIngressBackend, schema.GroupVersionResource{Group: "policy.openservicemesh.io", Version: "v1alpha1", Resource: "ingressbackends"}, "ingressbackends.policy.openservicemesh.io",
		func(a *controllers.APIs) { a.NoIngressBackendStatus = true }},
}

// LabelOSMCRD is the label OSM puts on the CRDs it installs (osm-bootstrap re-applies CRDs that
// carry it).
const LabelOSMCRD = "app.kubernetes.io/name"

// APIReport is what ProbeAPIs found.
type APIReport struct {
	Controllers controllers.APIs
	// Notes are said once at start, in the log; NoStatus also goes to an event on each CRD.
	Notes []string
	// NoStatus lists the CRDs without a status subresource, with what is lost.
	NoStatus map[string]string
}

// resourceLister is the part of the discovery client ProbeAPIs uses.
type resourceLister interface {
	ServerResourcesForGroupVersion(groupVersion string) (*metav1.APIResourceList, error)
}

// ProbeAPIs asks the API server how it serves meshkeeper's kinds. A kind not served at the version
// meshkeeper reads (an OSM release newer than v1.2 that dropped it, or no CRDs at all) is an
// error naming the CRD and what to do: the controllers could only fail on it.
func ProbeAPIs(ctx context.Context, cfg *rest.Config, c client.Reader) (APIReport, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return APIReport{}, err
	}
	labels := func(name string) map[string]string {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := c.Get(ctx, types.NamespacedName{Name: name}, crd); err != nil {
			return nil
		}
		return crd.Labels
	}
	return judgeAPIs(dc, labels)
}

// judgeAPIs is ProbeAPIs over its two inputs, so that it can be tested without a server.
func judgeAPIs(dc resourceLister, crdLabels func(crd string) map[string]string) (APIReport, error) {
	r := APIReport{NoStatus: map[string]string{}}
	var missing []string
	for _, k := range served {
		list, err := dc.ServerResourcesForGroupVersion(k.gvr.GroupVersion().String())
		if err != nil && !apierrors.IsNotFound(err) {
			return r, fmt.Errorf("asking the API server for %s: %w", k.gvr.GroupVersion(), err)
		}
		var main, status bool
		if list != nil {
			for _, res := range list.APIResources {
				main = main || res.Name == k.gvr.Resource
				status = status || res.Name == k.gvr.Resource+"/status"
			}
		}
		if !main {
			missing = append(missing, fmt.Sprintf("%s (%s)", k.crd, k.gvr.GroupVersion()))
			continue
		}
		owner := crdLabels(k.crd)
		osm := owner[LabelOSMCRD] == "openservicemesh.io"
		if !status {
			k.noStatus(&r.Controllers)
			lost := fmt.Sprintf("CRD %s has no status subresource, so meshkeeper cannot store %s status (conditions, findings, observedGeneration): "+
				"verdicts are told by events on each %s when they change, by the metrics meshkeeper_object_ready and meshkeeper_object_findings, "+
				"and by kubectl meshkeeper analyze", k.crd, k.kind, k.kind)
			if osm {
				lost += "; this is OSM's CRD, keep it while OSM runs (docs/migrating-from-osm.md)"
			}
			r.NoStatus[k.crd] = lost
			r.Notes = append(r.Notes, lost)
		}
		if k.kind == controllers.KindIngressBackend && osm {
			r.Controllers.IngressBackendStatusOwnedByOSM = true
			r.Notes = append(r.Notes, "IngressBackend CRD "+k.crd+" is OSM's: status.currentStatus and status.reason are left to osm-controller; meshkeeper writes only its conditions and findings")
		}
	}
	if len(missing) > 0 {
		return r, fmt.Errorf("the API server does not serve %s: install the CRDs (make install, or OSM v1.x's), "+
			"or, if a newer OSM replaced these versions, run a meshkeeper release that reads them", strings.Join(missing, ", "))
	}
	return r, nil
}

// announce records, once per start, an event on each CRD that cannot store a status. It runs
// as a manager runnable: the event recorder delivers only once the manager has started.
func (r APIReport) announce(c client.Client, rec events.EventRecorder) manager.RunnableFunc {
	return func(ctx context.Context) error {
		r.announceNow(ctx, c, rec)
		return nil
	}
}

func (r APIReport) announceNow(ctx context.Context, c client.Client, rec events.EventRecorder) {
	for crd, msg := range r.NoStatus {
		obj := &apiextensionsv1.CustomResourceDefinition{}
		if err := c.Get(ctx, types.NamespacedName{Name: crd}, obj); err != nil {
			continue
		}
		rec.Eventf(obj, nil, corev1.EventTypeWarning, "StatusSubresourceMissing", "Start", "%s", msg)
	}
}
