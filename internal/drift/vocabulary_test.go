package drift

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strings"
	"testing"

	"github.com/meshkeeper/meshkeeper/api/conditions"
)

// returnedReasons finds, in this package's source, every verdictTrue/False/Unknown call and the
// conditions constant it passes, by status.
func returnedReasons(t *testing.T) map[string]map[string]bool {
	t.Helper()
	out := map[string]map[string]bool{"True": {}, "False": {}, "Unknown": {}}
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), e.Name(), nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			fn, ok := call.Fun.(*ast.Ident)
			if !ok || !strings.HasPrefix(fn.Name, "verdict") {
				return true
			}
			status := strings.TrimPrefix(fn.Name, "verdict")
			if sel, ok := call.Args[0].(*ast.SelectorExpr); ok && out[status] != nil {
				out[status][sel.Sel.Name] = true
			}
			return true
		})
	}
	if len(out["False"]) == 0 {
		t.Fatal("found no verdictFalse calls; the scan is looking at the wrong thing")
	}
	return out
}

// TestPodVocabularyIsWhatTheChainWrites: for each pod condition type the vocabulary lists a
// (status, reason) pair only when a check returns it with that status, or, for Unknown, when an
// earlier step's Unknown is carried down the chain by Evaluate. A False of an earlier step never
// is (the chain stops, or the later check runs on its own).
func TestPodVocabularyIsWhatTheChainWrites(t *testing.T) {
	returned := returnedReasons(t)
	inherited := map[string]bool{}
	for _, step := range Chain {
		ti, ok := conditions.Lookup(string(step.Type))
		if !ok {
			t.Fatalf("%s is not in the vocabulary", step.Type)
		}
		for status, list := range map[string][]string{"True": ti.True, "False": ti.False, "Unknown": ti.Unknown} {
			for _, reason := range list {
				if returned[status][reason] || (status == "Unknown" && inherited[reason]) {
					continue
				}
				t.Errorf("the vocabulary lists %s %s/%s, which no step of the chain writes", step.Type, status, reason)
			}
		}
		for _, r := range ti.Unknown {
			inherited[r] = true
		}
	}
}
