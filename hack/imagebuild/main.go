// Command imagebuild writes the container images of the real-node cluster as docker-archive
// tarballs (what `docker save` writes: manifest.json with the tags, the configuration JSON and
// one uncompressed layer) without a container engine or a registry. containerd imports them with
// `ctr -n k8s.io images import`.
//
// It builds each image's Go programs (static, CGO_ENABLED=0) from this repository, then writes
// bin/images/<name>.tar. The init image's layer starts from a Debian root filesystem with
// iptables (a tarball made by mmdebstrap, see hack/cluster/images.sh).
//
//	go run ./hack/imagebuild -out bin/images -rootfs bin/images/debian-bookworm-iptables.tar [name...]
//
// With -set osm it writes the images of OSM's control plane instead (see osm.go), from
// binaries hack/cluster/osm.sh built.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"time"
)

func main() {
	out := flag.String("out", "bin/images", "Directory the archives (and the built binaries, in bin/) go to.")
	rootfs := flag.String("rootfs", "bin/images/debian-bookworm-iptables.tar", "Debian root filesystem tarball for the images that need one.")
	list := flag.Bool("list", false, "Print each image's name and tags, one image a line, and exit.")
	set := flag.String("set", "", `Which images: "" (the cluster's own) or "osm" (OSM's control plane and its stand-ins).`)
	flag.Parse()
	images, ok := imageSets[*set]
	if !ok {
		fmt.Fprintf(os.Stderr, "imagebuild: no image set %q\n", *set)
		os.Exit(2)
	}
	if *list {
		for _, img := range images {
			fmt.Println(img.Name, img.Tags)
		}
		return
	}
	if err := run(context.Background(), images, *out, *rootfs, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "imagebuild:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, images []Image, out, rootfs string, names []string) error {
	var todo []Image
	for _, img := range images {
		if len(names) == 0 || slices.Contains(names, img.Name) {
			todo = append(todo, img)
		}
	}
	if len(todo) == 0 {
		return fmt.Errorf("no image named %v", names)
	}
	binDir := filepath.Join(out, "bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return err
	}
	for _, img := range todo {
		for _, b := range img.Binaries {
			if b.Prebuilt != "" {
				continue
			}
			if err := goBuild(ctx, b, filepath.Join(binDir, binaryName(b))); err != nil {
				return err
			}
		}
	}
	for _, img := range todo {
		t0 := time.Now()
		file := filepath.Join(out, img.Name+".tar")
		inputs, err := inputDigest(img, binDir, rootfs)
		if err != nil {
			return fmt.Errorf("image %s: %w", img.Name, err)
		}
		stamp := file + ".inputs"
		if prev, err := os.ReadFile(stamp); err == nil && string(prev) == inputs {
			if _, err := os.Stat(file); err == nil {
				fmt.Fprintf(os.Stderr, "imagebuild: %s unchanged\n", file)
				continue
			}
		}
		id, err := buildImage(file, img, binDir, rootfs, runtime.GOARCH)
		if err != nil {
			return fmt.Errorf("image %s: %w", img.Name, err)
		}
		if err := os.WriteFile(stamp, []byte(inputs), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "imagebuild: wrote %s (%s, %s) in %s\n", file, img.Tags[0], id[:19], time.Since(t0).Round(time.Millisecond))
	}
	return nil
}

// goBuild builds one static binary, printing the elapsed time every 30 s while it runs.
func goBuild(ctx context.Context, b Binary, dst string) error {
	t0 := time.Now()
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", dst, b.Package)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err != nil {
				return fmt.Errorf("go build %s: %w", b.Package, err)
			}
			fmt.Fprintf(os.Stderr, "imagebuild: built %s in %s\n", b.Package, time.Since(t0).Round(100*time.Millisecond))
			return nil
		case <-tick.C:
			fmt.Fprintf(os.Stderr, "imagebuild:   ... building %s: %s so far\n", b.Package, time.Since(t0).Round(time.Second))
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// inputDigest identifies what an image is made from: its description, the content of its
// binaries and, when it has one, the base filesystem tarball (by size and modification time).
// An archive whose inputs did not change is not written again.
func inputDigest(img Image, binDir, rootfs string) (string, error) {
	h := sha256.New()
	desc, err := json.Marshal(img)
	if err != nil {
		return "", err
	}
	h.Write(desc)
	bins, err := binaryFiles(img, binDir)
	if err != nil {
		return "", err
	}
	for _, b := range bins {
		h.Write(b.data)
	}
	files, err := treeFiles(img)
	if err != nil {
		return "", err
	}
	for _, f := range files {
		fmt.Fprintf(h, "file %s %o %d\n", f.path, f.mode, len(f.data))
		h.Write(f.data)
	}
	if img.DebianRootfs {
		st, err := os.Stat(rootfs)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "rootfs %d %d", st.Size(), st.ModTime().UnixNano())
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
