package manager

import (
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/meshkeeper/meshkeeper/controllers"
)

func TestPickMeshConfig(t *testing.T) {
	helm := types.NamespacedName{Namespace: "osm-system", Name: "osm-mesh-config"}
	aks := types.NamespacedName{Namespace: "kube-system", Name: "osm-mesh-config"}
	if got, err := PickMeshConfig([]types.NamespacedName{aks}); err != nil || got != aks {
		t.Errorf("one MeshConfig: %v, %v", got, err)
	}
	_, err := PickMeshConfig(nil)
	if err == nil || !strings.Contains(err.Error(), "--meshconfig") || !strings.Contains(err.Error(), "kube-system/osm-mesh-config") {
		t.Errorf("none: %v", err)
	}
	_, err = PickMeshConfig([]types.NamespacedName{helm, aks})
	if err == nil || !strings.Contains(err.Error(), "kube-system/osm-mesh-config, osm-system/osm-mesh-config") {
		t.Errorf("two: %v", err)
	}
}

func TestParseMeshConfigRef(t *testing.T) {
	for _, bad := range []string{"osm-mesh-config", "/x", "x/", "a/b/c", ""} {
		if _, err := ParseMeshConfigRef(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if got, err := ParseMeshConfigRef(" kube-system/osm-mesh-config "); err != nil || got.String() != "kube-system/osm-mesh-config" {
		t.Errorf("got %v, %v", got, err)
	}
}

// discoveryOf answers like an API server serving the given resources per group version.
type discoveryOf map[string][]string

func (d discoveryOf) ServerResourcesForGroupVersion(gv string) (*metav1.APIResourceList, error) {
	names, ok := d[gv]
	if !ok {
		return nil, apierrors.NewNotFound(schema.GroupResource{}, gv)
	}
	l := &metav1.APIResourceList{GroupVersion: gv}
	for _, n := range names {
		l.APIResources = append(l.APIResources, metav1.APIResource{Name: n})
	}
	return l, nil
}

func TestJudgeAPIs(t *testing.T) {
	ours := discoveryOf{
		"config.openservicemesh.io/v1alpha2": {"meshconfigs", "meshconfigs/status"},
		"policy.openservicemesh.io/v1alpha1": {"egresses", "egresses/status", "ingressbackends", "ingressbackends/status"},
	}
	osm := discoveryOf{ // OSM v1.2.4's CRDs
		"config.openservicemesh.io/v1alpha2": {"meshconfigs"},
		"policy.openservicemesh.io/v1alpha1": {"egresses", "ingressbackends", "ingressbackends/status", "retries", "upstreamtrafficsettings"},
	}
	osmLabels := func(string) map[string]string { return map[string]string{LabelOSMCRD: "openservicemesh.io"} }
	ourLabels := func(string) map[string]string { return map[string]string{"app.kubernetes.io/part-of": "meshkeeper"} }

	r, err := judgeAPIs(ours, ourLabels)
	if err != nil || r.Controllers != (controllers.APIs{}) || len(r.NoStatus) != 0 {
		t.Errorf("meshkeeper's CRDs: %+v, %v", r, err)
	}
	r, err = judgeAPIs(osm, osmLabels)
	want := controllers.APIs{NoMeshConfigStatus: true, NoEgressStatus: true, IngressBackendStatusOwnedByOSM: true}
	if err != nil || r.Controllers != want {
		t.Errorf("OSM's CRDs: %+v, %v; want %+v", r.Controllers, err, want)
	}
	if msg := r.NoStatus["egresses.policy.openservicemesh.io"]; !strings.Contains(msg, "meshkeeper_object_ready") || !strings.Contains(msg, "OSM's CRD") {
		t.Errorf("what is lost is not said: %q", msg)
	}
	newer := discoveryOf{ // a newer OSM that moved MeshConfig on
		"config.openservicemesh.io/v1alpha3": {"meshconfigs"},
		"policy.openservicemesh.io/v1alpha1": {"egresses", "ingressbackends"},
	}
	_, err = judgeAPIs(newer, osmLabels)
	if err == nil || !strings.Contains(err.Error(), "meshconfigs.config.openservicemesh.io (config.openservicemesh.io/v1alpha2)") {
		t.Errorf("unknown version: %v", err)
	}
}
