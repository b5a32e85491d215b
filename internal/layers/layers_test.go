package layers

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/meshkeeper/meshkeeper/"

// deps maps every package of the module (tests excluded) to what it links.
func deps(t *testing.T) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps=false", "-f", "{{.ImportPath}} {{join .Deps \" \"}}", module+"...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	m := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 {
			m[f[0]] = f[1:]
		}
	}
	if len(m) < 20 {
		t.Fatalf("go list found only %d packages:\n%s", len(m), out)
	}
	return m
}

// pure decide from facts already gathered (each doc.go says so); they must be usable by the CLI,
// the webhooks and the controllers alike, so none of them may hold an API client.
var pure = []string{
	"internal/analysis", "internal/diagnose", "internal/drift", "internal/injection", "internal/istio",
	"internal/redirect", "internal/redirect/podspec", "internal/redirect/manifest", "internal/validation", "internal/sidecar",
	"internal/text", "api/conditions",
}

// clientPackages are the ways to reach an API server.
var clientPackages = []string{
	"sigs.k8s.io/controller-runtime",
	"k8s.io/client-go/rest",
	"k8s.io/client-go/kubernetes",
	"k8s.io/client-go/dynamic",
}

// testSupport packages start control planes, fake OSM or enter network namespaces; only tests
// and the demo may link them.
var testSupport = []string{"internal/demo", "internal/osmtest", "internal/testenv", "internal/netnstest", "internal/gitops", "internal/layers", "internal/golden", "internal/podtest"}

func TestPurePackagesHoldNoClient(t *testing.T) {
	m := deps(t)
	for _, p := range pure {
		ds, ok := m[module+p]
		if !ok {
			t.Errorf("%s: no such package; update the list", p)
			continue
		}
		for _, d := range ds {
			for _, c := range clientPackages {
				if d == c || strings.HasPrefix(d, c+"/") {
					t.Errorf("%s links %s; pure packages take facts, they do not read the cluster", p, d)
				}
			}
		}
	}
}

func TestWebhooksAndControllersAreIndependent(t *testing.T) {
	for p, ds := range deps(t) {
		rel := strings.TrimPrefix(p, module)
		for _, d := range ds {
			drel := strings.TrimPrefix(d, module)
			switch {
			case under(rel, "webhooks") && under(drel, "controllers"):
				t.Errorf("%s links %s; webhooks and controllers share only the pure packages", rel, drel)
			case under(rel, "controllers") && under(drel, "webhooks"):
				t.Errorf("%s links %s; webhooks and controllers share only the pure packages", rel, drel)
			}
		}
	}
}

func TestTestSupportStaysOutOfProduction(t *testing.T) {
	for p, ds := range deps(t) {
		rel := strings.TrimPrefix(p, module)
		if rel == "cmd/meshkeeper-demo" || isTestSupport(rel) {
			continue
		}
		for _, d := range ds {
			if drel := strings.TrimPrefix(d, module); isTestSupport(drel) {
				t.Errorf("%s links %s, which only tests and the demo may use", rel, drel)
			}
		}
	}
}

func isTestSupport(rel string) bool {
	for _, s := range testSupport {
		if under(rel, s) {
			return true
		}
	}
	return false
}

func under(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }
