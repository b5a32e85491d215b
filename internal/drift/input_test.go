package drift

import "testing"

func TestMeshRefWithGeneration(t *testing.T) {
	for _, tc := range []struct {
		ref  MeshRef
		want string
	}{
		{MeshRef{Namespace: "osm-system", Name: "osm-mesh-config", Generation: 7}, "MeshConfig osm-system/osm-mesh-config (generation 7)"},
		{MeshRef{Namespace: "osm-system", Name: "osm-mesh-config"}, "MeshConfig osm-system/osm-mesh-config"},
		{MeshRef{Namespace: "osm-system", Name: "osm-mesh-config", Source: "mc.yaml"}, "MeshConfig osm-system/osm-mesh-config (from file mc.yaml)"},
		{MeshRef{Namespace: "osm-system", Name: "osm-mesh-config", Generation: 3, Source: "mc.yaml"}, "MeshConfig osm-system/osm-mesh-config (generation 3, from file mc.yaml)"},
	} {
		if got := tc.ref.WithGeneration(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.ref, got, tc.want)
		}
	}
}
