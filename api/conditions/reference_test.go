package conditions

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"strings"
	"testing"

	"github.com/meshkeeper/meshkeeper/internal/golden"
)

const referencePath = "../../docs/conditions.md"

// The reference users read is generated from Vocabulary and the doc comments in types.go, so the
// page cannot drift from what the controllers are allowed to write.
func TestConditionsReferenceIsCurrent(t *testing.T) {
	docs, err := constantDocs("types.go")
	if err != nil {
		t.Fatal(err)
	}
	golden.CheckFile(t, referencePath, renderReference(docs))
}

// constantDocs maps each string constant's value to the doc comments of the constants that hold
// it: a value can be both a condition type and a reason ("Accepted", "ResolvedRefs").
func constantDocs(file string) (map[string][]string, error) {
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.ParseComments)
	if err != nil {
		return nil, err
	}
	docs := map[string][]string{}
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			if vs.Doc == nil || len(vs.Values) != 1 {
				continue
			}
			lit, ok := vs.Values[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				continue
			}
			value, err := strconv.Unquote(lit.Value)
			if err != nil {
				return nil, err
			}
			docs[value] = append(docs[value], vs.Doc.Text())
		}
	}
	return docs, nil
}

// typeSummary is a condition type's doc comment up to its "Polarity" sentence, on one line.
// Reason comments are told apart by their "Name: meaning" lead.
func typeSummary(docs []string) string {
	for _, doc := range docs {
		doc = strings.Join(strings.Fields(doc), " ")
		if name, _, _ := strings.Cut(doc, " "); strings.HasSuffix(name, ":") {
			continue
		}
		if i := strings.Index(doc, " Polarity"); i >= 0 {
			doc = doc[:i]
		}
		return doc
	}
	return ""
}

// reasonSummary is a reason's doc comment after its "Name:" lead, on one line.
func reasonSummary(docs []string) string {
	for _, doc := range docs {
		doc = strings.Join(strings.Fields(doc), " ")
		if name, rest, _ := strings.Cut(doc, " "); strings.HasSuffix(name, ":") {
			return rest
		}
	}
	return ""
}

func renderReference(docs map[string][]string) []byte {
	var b bytes.Buffer
	b.WriteString("# Condition types and reasons\n\n")
	b.WriteString("Generated from `api/conditions` (`go test ./api/conditions -run TestConditionsReferenceIsCurrent -update`).\n")
	b.WriteString("Controllers write only the (type, status, reason) triples listed here; reasons are stable and\n")
	b.WriteString("PascalCase, so alerts and scripts can match on them.\n")
	for _, pod := range []bool{false, true} {
		if pod {
			b.WriteString("\n## On pods\n\nmeshkeeper never touches the kubelet's pod conditions, only these.\n")
		} else {
			b.WriteString("\n## On MeshConfig, Egress and IngressBackend\n\nReady, Reconciling and Stalled mean what kstatus says they mean (Flux, Argo CD, `kubectl wait`).\n")
		}
		for _, ti := range Vocabulary {
			if ti.Pod != pod {
				continue
			}
			healthy := "True is healthy"
			if ti.Polarity == NegativePolarity {
				healthy = "True is unhealthy; absent or False when fine"
			}
			fmt.Fprintf(&b, "\n### `%s`\n\n%s Polarity: %s (%s).\n\n", ti.Type, typeSummary(docs[ti.Type]), ti.Polarity, healthy)
			b.WriteString("| status | reason | meaning |\n|---|---|---|\n")
			for _, row := range []struct {
				status  string
				reasons []string
			}{{"True", ti.True}, {"False", ti.False}, {"Unknown", ti.Unknown}} {
				for _, r := range row.reasons {
					fmt.Fprintf(&b, "| %s | `%s` | %s |\n", row.status, r, reasonSummary(docs[r]))
				}
			}
		}
	}
	return b.Bytes()
}

// Every condition type and reason in the vocabulary needs a documented meaning, or the reference
// page would show empty cells.
func TestEveryVocabularyEntryIsDocumented(t *testing.T) {
	docs, err := constantDocs("types.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range Vocabulary {
		if typeSummary(docs[ti.Type]) == "" {
			t.Errorf("condition type %s has no doc comment in types.go", ti.Type)
		}
		for _, reasons := range [][]string{ti.True, ti.False, ti.Unknown} {
			for _, r := range reasons {
				if reasonSummary(docs[r]) == "" {
					t.Errorf("reason %s (of %s) has no \"%s: meaning\" doc comment in types.go", r, ti.Type, r)
				}
			}
		}
	}
}
