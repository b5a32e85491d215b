package analysis

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// Every finding code declared in api/conditions has a section in docs/findings.md (the one
// reference of every code, shared with meshkeeper analyze) and a row in its index.
func TestFindingCodesDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/findings.md")
	if err != nil {
		t.Fatal(err)
	}
	f, err := parser.ParseFile(token.NewFileSet(), "../../api/conditions/findings.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	ast.Inspect(f, func(node ast.Node) bool {
		vs, ok := node.(*ast.ValueSpec)
		if !ok || len(vs.Names) != 1 || !strings.HasPrefix(vs.Names[0].Name, "Finding") || len(vs.Values) != 1 {
			return true
		}
		lit, ok := vs.Values[0].(*ast.BasicLit)
		if !ok {
			return true
		}
		code, _ := strconv.Unquote(lit.Value)
		n++
		if !strings.Contains(string(doc), "\n### `"+code+"`\n") {
			t.Errorf("%s (%s) has no section in docs/findings.md", vs.Names[0].Name, code)
		}
		if !strings.Contains(string(doc), "| ["+code+"](#"+strings.ToLower(code)+") |") {
			t.Errorf("%s (%s) is not in the index of docs/findings.md", vs.Names[0].Name, code)
		}
		return true
	})
	if n < 20 {
		t.Fatalf("found only %d finding codes; the parser missed some", n)
	}
}
