package manager

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/meshkeeper/meshkeeper/internal/testenv"
)

// Every meshkeeper_ metric declared in the code has a row in docs/metrics.md and every row
// names a declared metric; whatever the manager's registry gathers (controllers and webhooks are
// both linked into this package) is among the declared ones. Vectors without a series yet are
// not gathered, hence the declarations are read from the source.
func TestMetricsAreDocumented(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	declaredRE := regexp.MustCompile(`Name:\s+"(meshkeeper_[a-z_]+)"`)
	var declared []string
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "bin" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range declaredRE.FindAllStringSubmatch(string(src), -1) {
			declared = append(declared, m[1])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(declared) == 0 {
		t.Fatal("no meshkeeper_ metric declared: the pattern no longer matches the code")
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, m := range regexp.MustCompile("(?m)^\\| `(meshkeeper_[a-z_]+)` \\|").FindAllStringSubmatch(string(doc), -1) {
		documented = append(documented, m[1])
	}
	for _, name := range declared {
		if !slices.Contains(documented, name) {
			t.Errorf("%s is declared but docs/metrics.md has no row for it", name)
		}
	}
	for _, name := range documented {
		if !slices.Contains(declared, name) {
			t.Errorf("docs/metrics.md documents %s, which nothing declares", name)
		}
	}
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if name := f.GetName(); strings.HasPrefix(name, "meshkeeper_") && !slices.Contains(declared, name) {
			t.Errorf("the registry gathers %s, which the source scan did not find", name)
		}
	}
}
