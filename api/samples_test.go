package api_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/meshkeeper/meshkeeper/internal/testenv"
)

// fieldOwner is the field manager the suite applies samples with.
const fieldOwner = "meshkeeper-crd-test"

// sample is one YAML file from config/samples or config/samples/invalid.
type sample struct {
	// path is relative to the repository root.
	path string
	// expect and field come from the "# expect:" and "# field:" header lines of invalid samples.
	expect string
	field  string
	objs   []*unstructured.Unstructured
}

// repoRoot is resolved while the spec tree is built, before any spec runs.
func repoRoot() string {
	root, err := testenv.RepoRoot()
	if err != nil {
		panic(err)
	}
	return root
}

// loadSamples reads every *.yaml in dir (relative to the repository root), except the kustomization.
func loadSamples(dir string) ([]sample, error) {
	root := repoRoot()
	entries, err := os.ReadDir(filepath.Join(root, dir))
	if err != nil {
		return nil, err
	}
	var out []sample
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".yaml") || e.Name() == "kustomization.yaml" {
			continue
		}
		rel := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			return nil, err
		}
		s, err := parseSample(rel, data)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out, nil
}

// parseSample splits a multi-document YAML file into objects and reads its header comments.
func parseSample(path string, data []byte) (sample, error) {
	s := sample{path: path}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "# expect:"); ok {
			s.expect = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "# field:"); ok {
			s.field = strings.TrimSpace(v)
		}
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for i := 0; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return s, fmt.Errorf("%s: document %d: %w", path, i, err)
		}
		var obj map[string]any
		if err := yaml.Unmarshal(doc, &obj); err != nil {
			return s, fmt.Errorf("%s: document %d: %w", path, i, err)
		}
		if len(obj) == 0 {
			continue
		}
		s.objs = append(s.objs, &unstructured.Unstructured{Object: obj})
	}
	if len(s.objs) == 0 {
		return s, fmt.Errorf("%s: no objects", path)
	}
	return s, nil
}

// apply server-side applies u as `kubectl apply --server-side` does. Server-side apply rejects
// fields the schema does not declare instead of pruning them, so a sample cannot lose a field
// silently.
func apply(u *unstructured.Unstructured) error {
	warnings.reset()
	return k8s.Apply(ctx, client.ApplyConfigurationFromUnstructured(u.DeepCopy()),
		client.FieldOwner(fieldOwner), client.ForceOwnership)
}

// contained reports where want is not contained in got: every map key of want must be in got with
// a contained value, lists must match element by element, and leaves must be equal as JSON
// (YAML numbers decode as float64, the apiserver's as int64).
func contained(want, got any, path string) error {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: want an object, got %T (%v)", path, got, got)
		}
		for k, v := range w {
			gv, ok := g[k]
			if !ok {
				return fmt.Errorf("%s.%s: missing after read-back (pruned?)", path, k)
			}
			if err := contained(v, gv, path+"."+k); err != nil {
				return err
			}
		}
		return nil
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Errorf("%s: want %v, got %v", path, w, got)
		}
		for i := range w {
			if err := contained(w[i], g[i], fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		return nil
	default:
		wj, _ := json.Marshal(want)
		gj, _ := json.Marshal(got)
		if !bytes.Equal(wj, gj) {
			return fmt.Errorf("%s: want %s, got %s", path, wj, gj)
		}
		return nil
	}
}
