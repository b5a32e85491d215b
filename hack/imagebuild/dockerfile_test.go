package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// dockerImage is what a Dockerfile says about the image it builds.
type dockerImage struct {
	base       string
	binaries   []Binary
	entrypoint []string
	user       string
	aptInstall []string
}

var goBuildOut = regexp.MustCompile(`go build .*-o (\S+) (\./\S+)`)

// parseDockerfile reads the instructions this project's Dockerfiles use: a build stage running
// `go build -o /out/NAME ./PACKAGE`, then a final stage copying those outputs.
func parseDockerfile(t *testing.T, file string) dockerImage {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	// Join continuation lines, drop comments.
	var lines []string
	var cur strings.Builder
	for _, l := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(l)
		if strings.HasPrefix(trimmed, "#") {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		if s := strings.TrimSpace(cur.String()); s != "" {
			lines = append(lines, s)
		}
		cur.Reset()
	}
	built := map[string]string{}
	var img dockerImage
	for _, l := range lines {
		instr, rest, _ := strings.Cut(l, " ")
		switch strings.ToUpper(instr) {
		case "FROM":
			img = dockerImage{base: strings.Fields(rest)[0]}
		case "RUN":
			for _, m := range goBuildOut.FindAllStringSubmatch(rest, -1) {
				built[m[1]] = m[2]
			}
			if _, pkgs, ok := strings.Cut(rest, "apt-get install"); ok {
				pkgs, _, _ = strings.Cut(pkgs, "&&")
				for _, f := range strings.Fields(pkgs) {
					if !strings.HasPrefix(f, "-") {
						img.aptInstall = append(img.aptInstall, f)
					}
				}
			}
		case "COPY":
			f := strings.Fields(rest)
			if len(f) == 3 && strings.HasPrefix(f[0], "--from=") {
				pkg, ok := built[f[1]]
				if !ok {
					t.Fatalf("%s: COPY %s: not a go build output", file, f[1])
				}
				img.binaries = append(img.binaries, Binary{Package: pkg, Path: f[2]})
			}
		case "USER":
			img.user = rest
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(rest), &img.entrypoint); err != nil {
				t.Fatalf("%s: ENTRYPOINT %s: %v", file, rest, err)
			}
		}
	}
	return img
}

func imageNamed(t *testing.T, name string) Image {
	t.Helper()
	for _, img := range Images {
		if img.Name == name {
			return img
		}
	}
	t.Fatalf("no image %q", name)
	return Image{}
}

// The images built without an engine describe the same images as the Dockerfiles users build:
// same programs at the same paths, same entrypoint, same user, the same kind of base.
func TestImagesMatchDockerfiles(t *testing.T) {
	root := filepath.Join("..", "..")
	for _, tc := range []struct {
		dockerfile, image string
	}{
		{"Dockerfile", "manager"},
		{"Dockerfile.init", "init"},
	} {
		t.Run(tc.dockerfile, func(t *testing.T) {
			d := parseDockerfile(t, filepath.Join(root, tc.dockerfile))
			img := imageNamed(t, tc.image)
			if !reflect.DeepEqual(d.binaries, img.Binaries) {
				t.Errorf("binaries: %s has %v, the image builder %v", tc.dockerfile, d.binaries, img.Binaries)
			}
			if !reflect.DeepEqual(d.entrypoint, img.Entrypoint) {
				t.Errorf("entrypoint: %s has %q, the image builder %q", tc.dockerfile, d.entrypoint, img.Entrypoint)
			}
			if d.user != img.User {
				t.Errorf("user: %s has %q, the image builder %q", tc.dockerfile, d.user, img.User)
			}
			distroless := strings.HasPrefix(d.base, "gcr.io/distroless/static")
			if distroless != img.NonRootFiles || distroless == img.DebianRootfs {
				t.Errorf("base: %s starts from %s; the image builder has NonRootFiles=%v DebianRootfs=%v", tc.dockerfile, d.base, img.NonRootFiles, img.DebianRootfs)
			}
			if img.DebianRootfs {
				if !strings.HasPrefix(d.base, "debian:bookworm") {
					t.Errorf("base: %s starts from %s, the image builder from Debian bookworm", tc.dockerfile, d.base)
				}
				if !reflect.DeepEqual(d.aptInstall, []string{"iptables"}) {
					t.Errorf("%s installs %v; the image builder's root filesystem has iptables only (hack/cluster/images.sh)", tc.dockerfile, d.aptInstall)
				}
			}
		})
	}
}

// Every package an image needs exists, so a renamed command breaks this test, not a cluster run.
func TestImageBinariesExist(t *testing.T) {
	for _, img := range Images {
		for _, b := range img.Binaries {
			if _, err := os.Stat(filepath.Join("..", "..", b.Package, "main.go")); err != nil {
				t.Errorf("image %s: %v", img.Name, err)
			}
		}
		if len(img.Tags) == 0 || len(img.Entrypoint) == 0 {
			t.Errorf("image %s needs tags and an entrypoint", img.Name)
		}
	}
}
