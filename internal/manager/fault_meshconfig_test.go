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
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/util/retry"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/meshkeeper/meshkeeper/controllers"
	"github.com/meshkeeper/meshkeeper/internal/testenv"
)

// slippedMeshConfig is an invalid MeshConfig sample with the field and message its header
// names.
type slippedMeshConfig struct {
	file, field, expect string
	obj                 *unstructured.Unstructured
}

func invalidMeshConfigs(t *testing.T) []slippedMeshConfig {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(root, "config", "samples", "invalid", "meshconfig-*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var out []slippedMeshConfig
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		s := slippedMeshConfig{file: filepath.Base(f)}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "# field: "); ok {
				s.field = strings.TrimSpace(v)
			}
			if v, ok := strings.CutPrefix(sc.Text(), "# expect: "); ok {
				s.expect = quotedValue(strings.TrimSpace(v))
			}
		}
		s.obj = &unstructured.Unstructured{}
		if err := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096).Decode(&s.obj.Object); err != nil {
			t.Fatalf("%s: %v", s.file, err)
		}
		out = append(out, s)
	}
	if len(out) < 10 {
		t.Fatalf("only %d invalid MeshConfig samples", len(out))
	}
	return out
}

// quotedValue keeps an expectation's `Invalid value: "x"` part: the explanation after it is the
// webhook's wording, which the controller's may phrase differently.
func quotedValue(expect string) string {
	i := strings.Index(expect, `: "`)
	if i < 0 {
		return expect
	}
	j := strings.Index(expect[i+3:], `"`)
	if j < 0 {
		return expect
	}
	return expect[:i+3+j+1]
}

// setServedSpec replaces the served MeshConfig's spec with spec, written in apiVersion (the
// sample's), as kubectl edit would with no webhook in the way.
func (c *cluster) setServedSpec(key types.NamespacedName, apiVersion string, spec any) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		mc := meshConfigObject(key)
		mc.SetAPIVersion(apiVersion)
		if err := c.c.Get(c.ctx, key, mc); err != nil {
			return err
		}
		mc.Object["spec"] = spec
		return c.c.Update(c.ctx, mc)
	})
}

// validMeshSpec is osmMeshConfig's spec.
func validMeshSpec(t *testing.T) any {
	t.Helper()
	var mc map[string]any
	if err := sigsyaml.Unmarshal(fmt.Appendf(nil, osmMeshConfig, "x", "y"), &mc); err != nil {
		t.Fatal(err)
	}
	return mc["spec"]
}

// TestSlippedMeshConfigsStall is case 7 of docs/reliability.md for MeshConfig: every invalid
// MeshConfig sample, stored on the served MeshConfig while no validating webhook runs (audit
// mode), is reported as not Ready with the field its sample names, never crashes the manager,
// and is not retried in a loop: an invalid spec is a verdict, not an error. Putting a valid spec
// back makes it Ready again. On OSM's CRDs (no status subresource) the verdict is a Warning
// event and meshkeeper_object_ready 0; on meshkeeper's CRDs without their CEL rules (OSM's
// original schema validated nothing) it is the Stalled condition as well.
func TestSlippedMeshConfigsStall(t *testing.T) {
	for _, tc := range []struct {
		name string
		crds func(*testing.T) []*apiextensionsv1.CustomResourceDefinition
	}{
		{"OSMCRDs", osmCRDs},
		{"MeshkeeperCRDsWithoutCEL", meshkeeperCRDsWithoutCEL},
	} {
		// The 10 s hold is the same code path on both CRDs: once is enough.
		quiet := tc.name == "OSMCRDs"
		t.Run(tc.name, func(t *testing.T) { slippedMeshConfigs(t, tc.crds(t), quiet) })
	}
}

func slippedMeshConfigs(t *testing.T, crds []*apiextensionsv1.CustomResourceDefinition, quiet bool) {
	c := startCluster(t, crds)
	key := types.NamespacedName{Namespace: "osm-system", Name: "osm-mesh-config"}
	c.namespace("osm-system", nil, nil)
	c.createMeshConfig(key)
	tl := newTally()
	m := c.runCounted(tl, "--meshconfig="+key.String())
	ready := func(want float64) func() error {
		return func() error {
			if err := m.alive(); err != nil {
				return err
			}
			v, ok := metricValue(t, "meshkeeper_object_ready", map[string]string{"kind": controllers.KindMeshConfig, "namespace": key.Namespace, "name": key.Name})
			if !ok || v != want {
				return fmt.Errorf("meshkeeper_object_ready{MeshConfig %s} = %v (present %t), want %v", key, v, ok, want)
			}
			return nil
		}
	}
	c.eventually(60*time.Second, ready(1))
	withStatus := c.meshConfigHasStatus(key)

	valid := validMeshSpec(t)
	stored, refused := 0, 0
	var held []slippedMeshConfig
	rec0 := reconciles(t, "drift-meshconfig")
	mark := tl.mark()
	for _, s := range invalidMeshConfigs(t) {
		c.warnings.take()
		if err := c.setServedSpec(key, s.obj.GetAPIVersion(), s.obj.Object["spec"]); err != nil {
			refused++
			t.Logf("%s: the CRD's schema refuses it: %v", s.file, strings.SplitN(err.Error(), "\n", 2)[0])
			continue
		}
		if w := c.warnings.take(); len(w) > 0 && strings.Contains(strings.Join(w, " "), "unknown field") {
			// A field the served version does not declare is pruned on write: what is stored is
			// valid, and the API server said so to the writer.
			refused++
			t.Logf("%s: the API server pruned it: %v", s.file, w)
			c.must(c.setServedSpec(key, "config.openservicemesh.io/v1alpha2", valid))
			continue
		}
		stored++
		held = append(held, s)
		c.eventually(60*time.Second, func() error {
			if err := ready(0)(); err != nil {
				return fmt.Errorf("%s: %w", s.file, err)
			}
			return c.stalledNaming(key, s, withStatus)
		})
		c.must(c.setServedSpec(key, "config.openservicemesh.io/v1alpha2", valid))
		c.eventually(60*time.Second, ready(1))
	}
	changes := 2 * stored
	calls, _ := tl.since(mark)
	wrote := writesBy(calls)
	recs := reconciles(t, "drift-meshconfig") - rec0
	t.Logf("%d samples stored, %d refused by the schema; %d spec changes: %.0f MeshConfig reconciles, writes %s; load %s",
		stored, refused, changes, recs, fmtCounts(wrote), testenv.LoadAverage())
	if stored == 0 {
		t.Fatal("the schema refused every sample: nothing slipped past admission")
	}
	// Each change is one watch event, hence one reconcile; the recount handler adds one more at
	// most (the manager's own event writes do not trigger it). An invalid spec requeued as an
	// error would show here as backoff retries, several per change.
	if recs > float64(2*changes) {
		t.Errorf("%.0f MeshConfig reconciles for %d spec changes: invalid specs are retried", recs, changes)
	}
	// One Warning event per invalid spec, one Normal per recovery; with a status subresource,
	// at most one status write per reconcile.
	if n := wrote["events"]; n > changes {
		t.Errorf("%d event writes for %d spec changes", n, changes)
	}
	if n := wrote["meshconfigs/status"]; float64(n) > recs {
		t.Errorf("%d MeshConfig status writes for %.0f reconciles", n, recs)
	}
	if !quiet {
		c.must(c.setServedSpec(key, "config.openservicemesh.io/v1alpha2", valid))
		_ = m.alive()
		return
	}

	// Held invalid for 10 s: nothing is retried and nothing written.
	last := held[0]
	c.must(c.setServedSpec(key, last.obj.GetAPIVersion(), last.obj.Object["spec"]))
	c.eventually(60*time.Second, func() error {
		if err := ready(0)(); err != nil {
			return err
		}
		return c.stalledNaming(key, last, withStatus)
	})
	time.Sleep(time.Second) // the deferred recount of the change itself
	rec0, mark = reconciles(t, "drift-meshconfig"), tl.mark()
	time.Sleep(10 * time.Second)
	calls, _ = tl.since(mark)
	recs = reconciles(t, "drift-meshconfig") - rec0
	wrote = writesBy(calls)
	t.Logf("invalid for 10 s (%s): %.0f reconciles, %d requests, writes %s", last.file, recs, len(calls), fmtCounts(wrote))
	if recs > 0 || len(wrote) > 0 {
		t.Errorf("an invalid MeshConfig left alone for 10 s: %.0f reconciles and writes %v, want none", recs, wrote)
	}
	c.must(c.setServedSpec(key, "config.openservicemesh.io/v1alpha2", valid))
	c.eventually(60*time.Second, ready(1))
	if withStatus {
		c.eventually(30*time.Second, func() error {
			conds := c.meshConfigConditions(key)
			if conds["Ready"] != "True" || conds["Stalled"] != "" && conds["Stalled"] != "False" {
				return fmt.Errorf("after the fix: conditions %v, want Ready True and no Stalled", conds)
			}
			return nil
		})
	}
	_ = m.alive()
}

// meshConfigHasStatus reports whether the MeshConfig CRD stores a status (meshkeeper's does,
// OSM's does not), once the manager wrote the first verdict.
func (c *cluster) meshConfigHasStatus(key types.NamespacedName) bool {
	c.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		if len(c.meshConfigConditions(key)) > 0 {
			return true
		}
	}
	return false
}

func (c *cluster) meshConfigConditions(key types.NamespacedName) map[string]string {
	c.t.Helper()
	mc := meshConfigObject(key)
	c.must(c.c.Get(c.ctx, key, mc))
	conds, _, _ := unstructured.NestedSlice(mc.Object, "status", "conditions")
	out := map[string]string{}
	for _, x := range conds {
		m, _ := x.(map[string]any)
		ty, _ := m["type"].(string)
		st, _ := m["status"].(string)
		msg, _ := m["message"].(string)
		out[ty] = st
		out[ty+".message"] = msg
	}
	return out
}

// stalledNaming checks that the verdict on the served MeshConfig names the sample's field and
// message: a Warning event always, Stalled=True when the CRD stores a status.
func (c *cluster) stalledNaming(key types.NamespacedName, s slippedMeshConfig, withStatus bool) error {
	found := false
	var seen []string
	for _, e := range c.events(controllers.KindMeshConfig, key.Namespace, key.Name) {
		if e.Type == corev1.EventTypeWarning && strings.Contains(e.Note, s.field) && strings.Contains(e.Note, s.expect) {
			found = true
		}
		seen = append(seen, e.Type+" "+e.Reason+": "+e.Note)
	}
	if !found {
		return fmt.Errorf("%s: no Warning event on MeshConfig %s naming %s and %q; events: %q", s.file, key, s.field, s.expect, seen)
	}
	if !withStatus {
		return nil
	}
	conds := c.meshConfigConditions(key)
	if conds["Stalled"] != "True" || !strings.Contains(conds["Stalled.message"], s.field) {
		return fmt.Errorf("%s: Stalled=%s %q, want True naming %s", s.file, conds["Stalled"], conds["Stalled.message"], s.field)
	}
	return nil
}

// meshkeeperCRDsWithoutCEL are meshkeeper's CRDs with their CEL rules taken out: OSM's original
// MeshConfig schema validated nothing, and this is how an invalid object reaches a cluster whose
// CRDs meshkeeper did not install.
func meshkeeperCRDsWithoutCEL(t *testing.T) []*apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(root, "config", "crd", "bases", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no CRDs in config/crd/bases: %v", err)
	}
	var out []*apiextensionsv1.CustomResourceDefinition
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var raw map[string]any
		if err := sigsyaml.Unmarshal(data, &raw); err != nil {
			t.Fatal(err)
		}
		dropKey(raw, "x-kubernetes-validations")
		clean, err := sigsyaml.Marshal(raw)
		if err != nil {
			t.Fatal(err)
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := sigsyaml.Unmarshal(clean, crd); err != nil {
			t.Fatal(err)
		}
		out = append(out, crd)
	}
	return out
}

func dropKey(v any, key string) {
	switch t := v.(type) {
	case map[string]any:
		delete(t, key)
		for _, c := range t {
			dropKey(c, key)
		}
	case []any:
		for _, c := range t {
			dropKey(c, key)
		}
	}
}
