package manager

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/yaml"

	"github.com/meshkeeper/meshkeeper/controllers"
	"github.com/meshkeeper/meshkeeper/internal/testenv"
)

// slipped is an invalid Egress or IngressBackend from config/samples/invalid, with the field
// its header says is wrong.
type slipped struct {
	file, field string
	obj         *unstructured.Unstructured
}

func invalidPolicies(t *testing.T, root string) []slipped {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "config", "samples", "invalid", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var out []slipped
	for _, f := range files {
		base := filepath.Base(f)
		if !strings.HasPrefix(base, "egress-") && !strings.HasPrefix(base, "ingressbackend-") {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		s := slipped{file: base}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "# field: "); ok {
				s.field = strings.TrimSpace(v)
			}
		}
		obj := &unstructured.Unstructured{}
		if err := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096).Decode(&obj.Object); err != nil {
			t.Fatalf("%s: %v", base, err)
		}
		s.obj = obj
		out = append(out, s)
	}
	return out
}

// Objects that slipped past admission: OSM's CRDs check little, and with no validating webhook
// (audit mode, the default) every invalid Egress and IngressBackend of config/samples/invalid
// that OSM's schema lets in is stored. The manager, running through all of them, stays up, and
// each gets a Warning event naming the field its sample says is wrong and
// meshkeeper_object_ready 0 (OSM's Egress CRD has no status to write). Fixing one (a valid spec,
// the ServiceAccount it names) makes it Ready.
func TestObjectsThatSlippedPastAdmission(t *testing.T) {
	c := startCluster(t, osmCRDs(t))
	mcKey := types.NamespacedName{Namespace: "osm-system", Name: "osm-mesh-config"}
	c.namespace("osm-system", nil, nil)
	c.createMeshConfig(mcKey)
	m := c.run("--meshconfig=" + mcKey.String())

	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	samples := invalidPolicies(t, root)
	if len(samples) < 8 {
		t.Fatalf("only %d invalid Egress and IngressBackend samples", len(samples))
	}
	var stored []slipped
	for _, s := range samples {
		ns := s.obj.GetNamespace()
		c.namespace(ns, nil, nil)
		if err := c.c.Create(c.ctx, s.obj); err != nil {
			t.Logf("%s: OSM's schema refuses it too: %v", s.file, strings.SplitN(err.Error(), "\n", 2)[0])
			continue
		}
		stored = append(stored, s)
	}
	t.Logf("%d of %d invalid policies were stored by OSM's CRDs", len(stored), len(samples))
	if len(stored) == 0 {
		t.Fatal("OSM's CRDs refused every sample: nothing slipped past admission to test")
	}
	for _, s := range stored {
		kind, ns, name := s.obj.GetKind(), s.obj.GetNamespace(), s.obj.GetName()
		c.eventually(60*time.Second, func() error {
			if err := m.alive(); err != nil {
				return err
			}
			for _, e := range c.events(kind, ns, name) {
				if e.Type == corev1.EventTypeWarning && strings.Contains(e.Note, s.field) {
					return nil
				}
			}
			return fmt.Errorf("%s: no Warning event on %s %s/%s naming %s", s.file, kind, ns, name, s.field)
		})
		if v, ok := metricValue(t, "meshkeeper_object_ready", map[string]string{"kind": kind, "namespace": ns, "name": name}); !ok || v != 0 {
			t.Errorf("%s: meshkeeper_object_ready = %v (present %t), want 0", s.file, v, ok)
		}
	}

	// Fixing one: a stored Egress gets a valid spec (an https port and its SNI host), and turns
	// Ready.
	validSpec := map[string]any{
		"sources": []any{map[string]any{"kind": "ServiceAccount", "name": "curl", "namespace": "curl"}},
		"hosts":   []any{"httpbin.org"},
		"ports":   []any{map[string]any{"number": int64(443), "protocol": "https"}},
	}
	c.must(c.c.Create(c.ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "curl", Name: "curl"}}))
	fixed := false
	for _, s := range stored {
		if s.obj.GetKind() != controllers.KindEgress || fixed {
			continue
		}
		fixed = true
		obj := &unstructured.Unstructured{}
		obj.SetGroupVersionKind(s.obj.GroupVersionKind())
		key := types.NamespacedName{Namespace: s.obj.GetNamespace(), Name: s.obj.GetName()}
		c.must(c.c.Get(c.ctx, key, obj))
		c.must(unstructured.SetNestedField(obj.Object, validSpec, "spec"))
		c.must(c.c.Update(c.ctx, obj))
		c.eventually(60*time.Second, func() error {
			v, ok := metricValue(t, "meshkeeper_object_ready", map[string]string{"kind": controllers.KindEgress, "namespace": key.Namespace, "name": key.Name})
			if !ok || v != 1 {
				var notes []string
				for _, e := range c.events(controllers.KindEgress, key.Namespace, key.Name) {
					notes = append(notes, e.Type+" "+e.Reason+": "+e.Note)
				}
				return fmt.Errorf("%s: meshkeeper_object_ready = %v (present %t) after the fix, want 1; events %v", s.file, v, ok, notes)
			}
			return nil
		})
		t.Logf("%s fixed with a valid spec (and its ServiceAccount): Ready", s.file)
	}
	if !fixed {
		t.Error("no stored Egress to fix")
	}
	if err := m.alive(); err != nil {
		t.Fatal(err)
	}
}
