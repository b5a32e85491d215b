package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// krewPlugin is the part of krew's Plugin manifest (krew.googlecontainertools.github.com/
// v1alpha2) that make dist fills in and krew checks on install.
type krewPlugin struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Version          string `json:"version"`
		Homepage         string `json:"homepage"`
		ShortDescription string `json:"shortDescription"`
		Description      string `json:"description"`
		Platforms        []struct {
			Selector struct {
				MatchLabels map[string]string `json:"matchLabels"`
			} `json:"selector"`
			URI    string `json:"uri"`
			Sha256 string `json:"sha256"`
			Bin    string `json:"bin"`
			Files  []struct {
				From string `json:"from"`
				To   string `json:"to"`
			} `json:"files"`
		} `json:"platforms"`
	} `json:"spec"`
}

// The manifest names, for each platform hack/dist.sh builds, the archive dist builds for it,
// the placeholder of its checksum, and the binary kubectl runs as `kubectl meshkeeper`.
func TestKrewManifest(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "plugins", "meshkeeper.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var p krewPlugin
	if err := yaml.UnmarshalStrict(data, &p); err != nil {
		t.Fatalf("plugins/meshkeeper.yaml: %v", err)
	}
	if p.APIVersion != "krew.googlecontainertools.github.com/v1alpha2" || p.Kind != "Plugin" || p.Metadata.Name != "meshkeeper" {
		t.Errorf("header: %s %s %s", p.APIVersion, p.Kind, p.Metadata.Name)
	}
	if p.Spec.Version != "VERSION" || p.Spec.ShortDescription == "" || p.Spec.Description == "" || p.Spec.Homepage == "" {
		t.Errorf("spec.version %q (want the VERSION placeholder), shortDescription %q", p.Spec.Version, p.Spec.ShortDescription)
	}
	dist, err := os.ReadFile(filepath.Join("..", "..", "hack", "dist.sh"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, pl := range p.Spec.Platforms {
		os, arch := pl.Selector.MatchLabels["os"], pl.Selector.MatchLabels["arch"]
		key := os + "_" + arch
		seen[key] = true
		if !strings.Contains(string(dist), os+"/"+arch) {
			t.Errorf("platform %s/%s: hack/dist.sh builds no archive for it", os, arch)
		}
		if want := "/releases/download/VERSION/kubectl-meshkeeper_" + key + ".tar.gz"; !strings.HasSuffix(pl.URI, want) {
			t.Errorf("platform %s: uri %s does not end with %s", key, pl.URI, want)
		}
		if pl.Sha256 != "SHA256_"+key {
			t.Errorf("platform %s: sha256 %q, want the placeholder SHA256_%s", key, pl.Sha256, key)
		}
		if pl.Bin != "kubectl-meshkeeper" || len(pl.Files) == 0 || pl.Files[0].From != "kubectl-meshkeeper" {
			t.Errorf("platform %s: bin %q files %+v", key, pl.Bin, pl.Files)
		}
	}
	for _, want := range []string{"linux_amd64", "linux_arm64", "darwin_amd64", "darwin_arm64"} {
		if !seen[want] {
			t.Errorf("no platform %s", want)
		}
	}
}
