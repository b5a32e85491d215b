package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The init container runs as root with NET_ADMIN in every meshed pod, so what it links is kept
// to the rule core: no Kubernetes API types, clients or controller machinery. A new import that
// drags them in fails here rather than surfacing as a larger, riskier image.
func TestDependencies(t *testing.T) {
	allowed := map[string]bool{
		// field.ErrorList for the core's validation; none of their code survives linking.
		"k8s.io/apimachinery/pkg/util/errors":           true,
		"k8s.io/apimachinery/pkg/util/sets":             true,
		"k8s.io/apimachinery/pkg/util/validation/field": true,
		// No YAML library: manifests are read by internal/redirect/manifest, which this
		// program does not link.
	}
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	var own int
	for _, p := range strings.Fields(string(out)) {
		switch {
		case strings.HasPrefix(p, "github.com/meshkeeper/meshkeeper/"):
			own++
			if strings.Contains(p, "/podspec") || strings.Contains(p, "/manifest") || strings.Contains(p, "/api/") {
				t.Errorf("meshkeeper-init links %s", p)
			}
		case !allowed[p]:
			t.Errorf("meshkeeper-init links %s; keep the init container program free of Kubernetes and other third-party packages", p)
		}
	}
	if own == 0 {
		t.Fatalf("go list found none of meshkeeper's own packages:\n%s", out)
	}
}
