package conditions

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// conditionsPath is how the rest of the module imports this package.
const conditionsPath = `"github.com/meshkeeper/meshkeeper/api/conditions"`

// referencedConstants returns the names of this package's identifiers used (conditions.X) by
// the module's production code: every non-test Go file outside api/ and test/.
func referencedConstants(t *testing.T) map[string]bool {
	t.Helper()
	root := filepath.Join("..", "..")
	used := map[string]bool{}
	files := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			switch {
			case rel == ".":
			case rel == "api", rel == "test", rel == "bin", strings.HasPrefix(d.Name(), "."), d.Name() == "testdata":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		name := ""
		for _, imp := range f.Imports {
			if imp.Path.Value == conditionsPath {
				name = "conditions"
				if imp.Name != nil {
					name = imp.Name.Name
				}
			}
		}
		if name == "" {
			return nil
		}
		files++
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == name {
					used[sel.Sel.Name] = true
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 5 {
		t.Fatalf("only %d production files import this package; the walk is looking at the wrong tree", files)
	}
	return used
}

// TestEveryListedReasonIsWritten: the vocabulary is what controllers and tools rely on, so it
// lists only reasons some production code uses. A reason nobody writes would promise alerts a
// state they can never see.
func TestEveryListedReasonIsWritten(t *testing.T) {
	consts := stringConsts(t)
	used := referencedConstants(t)
	written := map[string]bool{} // reason values some production code refers to
	for name, value := range consts {
		if used[name] {
			written[value] = true
		}
	}
	for _, ti := range Vocabulary {
		for _, list := range [][]string{ti.True, ti.False, ti.Unknown} {
			for _, reason := range list {
				if !written[reason] {
					t.Errorf("%s lists reason %s, which no production code writes", ti.Type, reason)
				}
			}
		}
	}
}
