package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func readTar(t *testing.T, r io.Reader) (map[string][]byte, map[string]*tar.Header) {
	t.Helper()
	files := map[string][]byte{}
	headers := map[string]*tar.Header{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, headers
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = data
		headers[h.Name] = h
	}
}

func TestBuildImageWritesADockerArchive(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "prog"), []byte("#!binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A base filesystem with a file the layer replaces and one it keeps.
	var base bytes.Buffer
	bw := tar.NewWriter(&base)
	for name, body := range map[string]string{"./usr/sbin/iptables": "nft", "./usr/local/bin/prog": "old"} {
		if err := bw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := bw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := bw.Close(); err != nil {
		t.Fatal(err)
	}
	rootfs := filepath.Join(dir, "rootfs.tar")
	if err := os.WriteFile(rootfs, base.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	img := Image{
		Name: "x", Tags: []string{"example.com/x:dev", "other/x:1"}, DebianRootfs: true, NonRootFiles: true,
		Binaries:   []Binary{{Package: "./cmd/prog", Path: "/usr/local/bin/prog"}},
		Entrypoint: []string{"/usr/local/bin/prog"}, User: "65532:65532",
	}
	out := filepath.Join(dir, "x.tar")
	id, err := buildImage(out, img, dir, rootfs, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files, _ := readTar(t, f)

	var manifest []manifestEntry
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil {
		t.Fatal(err)
	}
	if len(manifest) != 1 || len(manifest[0].Layers) != 1 {
		t.Fatalf("manifest: %+v", manifest)
	}
	m := manifest[0]
	if got := m.RepoTags; len(got) != 2 || got[0] != "example.com/x:dev" || got[1] != "other/x:1" {
		t.Errorf("RepoTags = %v", got)
	}
	cfgJSON := files[m.Config]
	sum := sha256.Sum256(cfgJSON)
	if want := "sha256:" + hex.EncodeToString(sum[:]); id != want || m.Config != want[7:]+".json" {
		t.Errorf("image ID %s, config file %s, config digest %s", id, m.Config, want)
	}
	var cfg imageConfig
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		t.Fatal(err)
	}
	layer := files[m.Layers[0]]
	lsum := sha256.Sum256(layer)
	if want := "sha256:" + hex.EncodeToString(lsum[:]); len(cfg.RootFS.DiffIDs) != 1 || cfg.RootFS.DiffIDs[0] != want {
		t.Errorf("diff_ids %v, layer digest %s", cfg.RootFS.DiffIDs, want)
	}
	if cfg.Config.User != "65532:65532" || len(cfg.Config.Entrypoint) != 1 || cfg.OS != "linux" || cfg.Architecture != "amd64" {
		t.Errorf("config: %+v", cfg)
	}

	lfiles, lheaders := readTar(t, bytes.NewReader(layer))
	if string(lfiles["usr/local/bin/prog"]) != "#!binary" {
		t.Errorf("the built binary must replace the base's file, got %q", lfiles["usr/local/bin/prog"])
	}
	if string(lfiles["./usr/sbin/iptables"]) != "nft" {
		t.Errorf("the base's files must be kept: %v", keys(lfiles))
	}
	if h := lheaders["tmp/"]; h == nil || h.Mode != 0o1777 {
		t.Errorf("/tmp must be world-writable and sticky: %+v", h)
	}
	if !bytes.Contains(lfiles["etc/passwd"], []byte("nonroot:x:65532:65532")) {
		t.Errorf("/etc/passwd: %q", lfiles["etc/passwd"])
	}

	// Same inputs, same image.
	id2, err := buildImage(filepath.Join(dir, "y.tar"), img, dir, rootfs, "amd64")
	if err != nil || id2 != id {
		t.Errorf("rebuild gave %s (%v), want %s", id2, err, id)
	}
}

func keys[V any](m map[string]V) []string {
	return sortedKeys(m)
}
