package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"
)

// epoch is the modification time of every file the builder writes, so that the same inputs give
// the same layer and the same image ID.
var epoch = time.Unix(0, 0).UTC()

// layerFile is one regular file added on top of the base.
type layerFile struct {
	path string // absolute, in the image
	mode int64
	data []byte
}

// writeLayer writes an uncompressed layer: every entry of base (a tar stream, may be nil) not
// replaced by a file, then the parent directories of files that base lacks, then the files.
func writeLayer(w io.Writer, base io.Reader, dirs map[string]int64, files []layerFile) error {
	tw := tar.NewWriter(w)
	replaced := map[string]bool{}
	for _, f := range files {
		replaced[clean(f.path)] = true
	}
	have := map[string]bool{}
	if base != nil {
		tr := tar.NewReader(base)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return fmt.Errorf("reading the base filesystem: %w", err)
			}
			name := clean(h.Name)
			if replaced[name] {
				continue
			}
			have[name] = true
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			if _, err := io.Copy(tw, tr); err != nil {
				return err
			}
		}
	}
	addDir := func(name string, mode int64) error {
		if name == "" || have[name] {
			return nil
		}
		have[name] = true
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, ModTime: epoch, Format: tar.FormatPAX})
	}
	for _, d := range sortedKeys(dirs) {
		if err := addParents(d, addDir); err != nil {
			return err
		}
		if err := addDir(d, dirs[d]); err != nil {
			return err
		}
	}
	for _, f := range files {
		name := clean(f.path)
		if err := addParents(name, addDir); err != nil {
			return err
		}
		h := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: f.mode, Size: int64(len(f.data)), ModTime: epoch, Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	return tw.Close()
}

func addParents(name string, addDir func(string, int64) error) error {
	parts := strings.Split(name, "/")
	for i := 1; i < len(parts); i++ {
		if err := addDir(strings.Join(parts[:i], "/"), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// clean turns "/a/b", "./a/b/" and "a/b" into "a/b" (tar entries of a root filesystem).
func clean(p string) string {
	p = strings.TrimPrefix(path.Clean("/"+p), "/")
	return p
}

// imageConfig is the part of the OCI/Docker image configuration the runtime reads.
type imageConfig struct {
	Architecture string        `json:"architecture"`
	OS           string        `json:"os"`
	Created      time.Time     `json:"created"`
	Config       runConfig     `json:"config"`
	RootFS       rootFS        `json:"rootfs"`
	History      []historyItem `json:"history"`
}

type runConfig struct {
	User       string   `json:"User,omitempty"`
	Env        []string `json:"Env,omitempty"`
	Entrypoint []string `json:"Entrypoint,omitempty"`
	WorkingDir string   `json:"WorkingDir,omitempty"`
}

type rootFS struct {
	Type    string   `json:"type"`
	DiffIDs []string `json:"diff_ids"`
}

type historyItem struct {
	Created   time.Time `json:"created"`
	CreatedBy string    `json:"created_by"`
}

// manifestEntry is one image of a docker-archive (`docker save`) manifest.json.
type manifestEntry struct {
	Config   string   `json:"Config"`
	RepoTags []string `json:"RepoTags"`
	Layers   []string `json:"Layers"`
}

// writeArchive writes img as a docker-archive tarball to w, its single layer read from layer.
// It returns the image ID (the digest of its configuration).
func writeArchive(w io.Writer, img Image, layer []byte, arch string) (string, error) {
	sum := sha256.Sum256(layer)
	layerHex := hex.EncodeToString(sum[:])
	cfg := imageConfig{
		Architecture: arch,
		OS:           "linux",
		Created:      epoch,
		Config:       runConfig{User: img.User, Env: img.Env, Entrypoint: img.Entrypoint, WorkingDir: "/"},
		RootFS:       rootFS{Type: "layers", DiffIDs: []string{"sha256:" + layerHex}},
		History:      []historyItem{{Created: epoch, CreatedBy: "meshkeeper hack/imagebuild: " + img.Name}},
	}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return "", err
	}
	cfgSum := sha256.Sum256(cfgJSON)
	cfgHex := hex.EncodeToString(cfgSum[:])
	manifest, err := json.Marshal([]manifestEntry{{
		Config:   cfgHex + ".json",
		RepoTags: img.Tags,
		Layers:   []string{layerHex + "/layer.tar"},
	}})
	if err != nil {
		return "", err
	}
	tw := tar.NewWriter(w)
	add := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: epoch}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: layerHex + "/", Mode: 0o755, ModTime: epoch}); err != nil {
		return "", err
	}
	if err := add(layerHex+"/layer.tar", layer); err != nil {
		return "", err
	}
	if err := add(cfgHex+".json", cfgJSON); err != nil {
		return "", err
	}
	if err := add("manifest.json", manifest); err != nil {
		return "", err
	}
	return "sha256:" + cfgHex, tw.Close()
}

// buildImage assembles img's layer from the built binaries (binDir/<base name of Path>) and,
// when asked, the Debian root filesystem tarball, and writes the archive to out.
func buildImage(out string, img Image, binDir, rootfs, arch string) (string, error) {
	files, err := binaryFiles(img, binDir)
	if err != nil {
		return "", err
	}
	trees, err := treeFiles(img)
	if err != nil {
		return "", err
	}
	files = append(files, trees...)
	dirs := map[string]int64{}
	if img.NonRootFiles {
		files = append(files,
			layerFile{path: "/etc/passwd", mode: 0o644, data: []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
			layerFile{path: "/etc/group", mode: 0o644, data: []byte("root:x:0:\nnonroot:x:65532:\n")},
		)
		dirs["tmp"] = 0o1777
		dirs["home/nonroot"] = 0o700
	}
	var base io.Reader
	if img.DebianRootfs {
		f, err := os.Open(rootfs)
		if err != nil {
			return "", fmt.Errorf("image %s needs the Debian root filesystem: %w", img.Name, err)
		}
		defer f.Close()
		base = f
	}
	var layer bytes.Buffer
	if err := writeLayer(&layer, base, dirs, files); err != nil {
		return "", err
	}
	tmp := out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return "", err
	}
	id, err := writeArchive(f, img, layer.Bytes(), arch)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return "", err
	}
	return id, os.Rename(tmp, out)
}

// binaryName is the file name a binary is built to: the last element of its package path.
func binaryName(b Binary) string {
	return path.Base(b.Package)
}

// binaryFile is where a binary of an image is read from: binDir for those built here, the
// expanded Prebuilt path for those built elsewhere.
// binaryFiles reads img's binaries as the layer holds them.
func binaryFiles(img Image, binDir string) ([]layerFile, error) {
	var files []layerFile
	for _, b := range img.Binaries {
		file, err := binaryFile(b, binDir)
		if err != nil {
			return nil, err
		}
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		files = append(files, layerFile{path: b.Path, mode: 0o755, data: data})
	}
	return files, nil
}

func binaryFile(b Binary, binDir string) (string, error) {
	if b.Prebuilt == "" {
		return path.Join(binDir, binaryName(b)), nil
	}
	return expandPath(b.Prebuilt)
}

// expandPath expands $VARIABLES from the environment, failing on one that is not set.
func expandPath(p string) (string, error) {
	var missing []string
	out := os.Expand(p, func(name string) string {
		v := os.Getenv(name)
		if v == "" {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("%s: %s not set in the environment", p, strings.Join(missing, ", "))
	}
	return out, nil
}

// treeFiles reads the regular files of an image's trees (not recursing: OSM's CRD directory is
// flat), in name order, as files of its layer.
func treeFiles(img Image) ([]layerFile, error) {
	var files []layerFile
	for _, t := range img.Trees {
		dir, err := expandPath(t.From)
		if err != nil {
			return nil, err
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if !e.Type().IsRegular() {
				continue
			}
			data, err := os.ReadFile(path.Join(dir, e.Name()))
			if err != nil {
				return nil, err
			}
			files = append(files, layerFile{path: path.Join(t.To, e.Name()), mode: 0o644, data: data})
		}
	}
	return files, nil
}
