package validation

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/util/yaml"
	sigsyaml "sigs.k8s.io/yaml"

	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	policyv1alpha1 "github.com/meshkeeper/meshkeeper/api/policy/v1alpha1"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// validateDoc runs the matching validator on one YAML document. MeshConfigs of either version
// are read into v1alpha2, as the API server's "None" conversion hands them to the webhook.
func validateDoc(t *testing.T, doc []byte) (kind string, r Result, ok bool) {
	t.Helper()
	var meta struct{ Kind string }
	if err := sigsyaml.Unmarshal(doc, &meta); err != nil {
		t.Fatal(err)
	}
	switch meta.Kind {
	case "":
		return "", Result{}, true // a comment-only document
	case "MeshConfig":
		mc := &configv1alpha2.MeshConfig{}
		if err := sigsyaml.Unmarshal(doc, mc); err != nil {
			return meta.Kind, Result{}, false
		}
		return meta.Kind, MeshConfig(mc, redirect.ClusterRanges{}), true
	case "Egress":
		e := &policyv1alpha1.Egress{}
		if err := sigsyaml.Unmarshal(doc, e); err != nil {
			return meta.Kind, Result{}, false
		}
		return meta.Kind, Egress(e), true
	case "IngressBackend":
		ib := &policyv1alpha1.IngressBackend{}
		if err := sigsyaml.Unmarshal(doc, ib); err != nil {
			return meta.Kind, Result{}, false
		}
		return meta.Kind, IngressBackend(ib), true
	}
	return meta.Kind, Result{}, false
}

func docs(t *testing.T, path string) [][]byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r := yaml.NewYAMLReader(bufioReader(raw))
	var out [][]byte
	for {
		d, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(bytes.TrimSpace(d)) > 0 && !bytes.Equal(bytes.TrimSpace(d), []byte("---")) {
			out = append(out, d)
		}
	}
}

// TestSamplesAreAdmitted: every shipped sample must pass the admission rules, or
// `kubectl apply -k config/samples` would fail on a cluster running the webhooks.
func TestSamplesAreAdmitted(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "config", "samples", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples found: %v", err)
	}
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		for i, d := range docs(t, f) {
			kind, r, ok := validateDoc(t, d)
			if !ok {
				t.Errorf("%s #%d: cannot read %s", f, i, kind)
				continue
			}
			if len(r.Errors) > 0 {
				t.Errorf("%s #%d (%s): %v", f, i, kind, r.Errors.ToAggregate())
			}
		}
	}
}

// TestInvalidSamplesAreDenied: the invalid examples are rejected by the CRD schema; the webhook
// rejects them too (or they cannot even be decoded), so a cluster whose CRDs predate a schema rule
// is still protected.
func TestInvalidSamplesAreDenied(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "config", "samples", "invalid", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no invalid samples found: %v", err)
	}
	// Cases that exist only at the schema level: a field the served version does not declare is
	// refused by the API server's field validation before any webhook sees the object.
	schemaOnly := map[string]bool{"meshconfig-v1alpha1-v1alpha2-field.yaml": true}
	for _, f := range files {
		if schemaOnly[filepath.Base(f)] {
			continue
		}
		for i, d := range docs(t, f) {
			kind, r, ok := validateDoc(t, d)
			if kind == "" {
				continue
			}
			if ok && len(r.Errors) == 0 {
				t.Errorf("%s #%d (%s) passes admission", filepath.Base(f), i, kind)
			}
		}
	}
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }
