package main

import (
	"archive/tar"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// OSM's images name what the chart asks for (openservicemesh/<name>:<version>), stand-ins say so
// in their names or carry the stand-in program, and every program built here exists.
func TestOSMImages(t *testing.T) {
	seen := map[string]bool{}
	for _, img := range OSMImages {
		if seen[img.Name] {
			t.Errorf("two images named %s", img.Name)
		}
		seen[img.Name] = true
		if len(img.Tags) == 0 {
			t.Errorf("image %s has no tag", img.Name)
		}
		for _, b := range img.Binaries {
			switch {
			case b.Prebuilt != "" && b.Package != "":
				t.Errorf("image %s: binary %s is both built here and prebuilt", img.Name, b.Path)
			case b.Prebuilt != "":
				if !strings.HasPrefix(b.Prebuilt, "${OSM_BIN}/") && !strings.HasPrefix(b.Prebuilt, "${KUBE_BIN}/") {
					t.Errorf("image %s: prebuilt %s is neither OSM's nor the cluster's", img.Name, b.Prebuilt)
				}
			default:
				if _, err := os.Stat(filepath.Join("..", "..", b.Package, "main.go")); err != nil {
					t.Errorf("image %s: %v", img.Name, err)
				}
				if !strings.Contains(img.Name, "standin") {
					t.Errorf("image %s carries %s from this repository but is not named a stand-in", img.Name, b.Package)
				}
			}
		}
		if strings.HasPrefix(img.Tags[0], "openservicemesh/") && !strings.HasSuffix(img.Tags[0], ":"+OSMVersion) {
			t.Errorf("image %s: %s is not OSM %s's", img.Name, img.Tags[0], OSMVersion)
		}
	}
	for _, name := range []string{"osm-bootstrap", "osm-controller", "osm-injector", "osm-preinstall", "osm-init", "osm-crds"} {
		if !seen[name] {
			t.Errorf("no image %s, which OSM's chart uses", name)
		}
	}
}

// Prebuilt binaries and trees are read from where the environment says, and an unset variable
// is an error rather than a path at the root.
func TestPrebuiltAndTrees(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "osm-x"), []byte("prog"), 0o755); err != nil {
		t.Fatal(err)
	}
	crds := filepath.Join(dir, "crds")
	if err := os.MkdirAll(filepath.Join(crds, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"b.yaml", "a.yaml"} {
		if err := os.WriteFile(filepath.Join(crds, f), []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img := Image{
		Name:     "x",
		Tags:     []string{"example/x:1"},
		Binaries: []Binary{{Prebuilt: "${TEST_OSM_BIN}/osm-x", Path: "/osm-x"}},
		Trees:    []Tree{{From: "${TEST_OSM_MODULE}/crds", To: "/osm-crds"}},
	}
	if _, err := inputDigest(img, dir, ""); err == nil || !strings.Contains(err.Error(), "TEST_OSM_BIN") {
		t.Fatalf("unset variable: got %v", err)
	}
	t.Setenv("TEST_OSM_BIN", dir)
	t.Setenv("TEST_OSM_MODULE", dir)
	d1, err := inputDigest(img, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "x.tar")
	if _, err := buildImage(out, img, dir, "", "arm64"); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files, _ := readTar(t, f)
	var layer []byte
	for name, data := range files {
		if strings.HasSuffix(name, "/layer.tar") {
			layer = data
		}
	}
	lf, lh := readTar(t, strings.NewReader(string(layer)))
	for name, want := range map[string]string{"osm-x": "prog", "osm-crds/a.yaml": "a.yaml", "osm-crds/b.yaml": "b.yaml"} {
		if string(lf[name]) != want {
			t.Errorf("%s in the layer: %q, want %q", name, lf[name], want)
		}
	}
	if h := lh["osm-crds/sub"]; h != nil && h.Typeflag != tar.TypeDir {
		t.Errorf("a subdirectory was copied as a file")
	}
	if _, ok := lf["osm-crds/sub/"]; ok {
		t.Errorf("trees are flat, a subdirectory was copied")
	}
	if err := os.WriteFile(filepath.Join(crds, "a.yaml"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	if d2, _ := inputDigest(img, dir, ""); d2 == d1 {
		t.Errorf("a changed CRD file did not change the image's inputs")
	}
}
