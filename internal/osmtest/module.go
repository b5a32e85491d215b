package osmtest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/util/yaml"

	"github.com/meshkeeper/meshkeeper/internal/testenv"
)

const (
	// Module is OSM's Go module.
	Module = "github.com/openservicemesh/osm"
	// Version is the OSM release this package reproduces (its last).
	Version = "v1.2.4"
	// CRDSubdir holds, inside the module, the CRD manifests osm-bootstrap installs.
	CRDSubdir = "cmd/osm-bootstrap/crds"

	// LabelReconcile is set by osm-bootstrap on every CRD it installs, to the OSM version.
	LabelReconcile = "openservicemesh.io/reconcile"
	// LabelAppName is the label OSM's manifests carry (app.kubernetes.io/name=openservicemesh.io).
	LabelAppName = "app.kubernetes.io/name"
	// AppNameValue is LabelAppName's value on OSM's objects.
	AppNameValue = "openservicemesh.io"
	// lastApplied is the annotation kubectl-style apply bookkeeping uses; osm-bootstrap creates
	// the CRDs with it.
	lastApplied = "kubectl.kubernetes.io/last-applied-configuration"
)

var moduleDir = sync.OnceValues(downloadModule)

// ModuleDir returns the directory of OSM v1.2.4 in the Go module cache, downloading the module
// through the module proxy when it is not there yet. It runs `go mod download -json` in a
// scratch directory with GOFLAGS=-mod=mod, so meshkeeper's go.mod is never read or edited.
func ModuleDir() (string, error) { return moduleDir() }

func downloadModule() (string, error) {
	scratch, err := os.MkdirTemp("", "osmtest-mod-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(scratch)
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("go", "mod", "download", "-json", Module+"@"+Version)
	cmd.Dir = scratch
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var info struct {
		Dir   string
		Error string
	}
	if err := json.Unmarshal(stdout.Bytes(), &info); err != nil {
		return "", fmt.Errorf("go mod download %s@%s: %w (%v)\n%s", Module, Version, err, runErr, strings.TrimSpace(stderr.String()))
	}
	if info.Error != "" || runErr != nil {
		return "", fmt.Errorf("go mod download %s@%s: %s %v %s", Module, Version, info.Error, runErr, strings.TrimSpace(stderr.String()))
	}
	if info.Dir == "" {
		return "", fmt.Errorf("go mod download %s@%s reported no directory", Module, Version)
	}
	return info.Dir, nil
}

// CRDDir returns the directory of OSM v1.2.4's CRD manifests, exactly as OSM publishes them.
func CRDDir() (string, error) {
	dir, err := ModuleDir()
	if err != nil {
		return "", err
	}
	crds := filepath.Join(dir, filepath.FromSlash(CRDSubdir))
	if _, err := os.Stat(crds); err != nil {
		return "", fmt.Errorf("OSM %s module has no %s: %w", Version, CRDSubdir, err)
	}
	return crds, nil
}

// CRDs returns every CRD under CRDDir as osm-bootstrap creates it: decoded from its file, labelled
// openservicemesh.io/reconcile=v1.2.4 and carrying the last-applied-configuration annotation.
// They come back sorted by name.
func CRDs() ([]*apiextensionsv1.CustomResourceDefinition, error) {
	dir, err := CRDDir()
	if err != nil {
		return nil, err
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	var out []*apiextensionsv1.CustomResourceDefinition
	for _, f := range files {
		crd, err := readCRD(f)
		if err != nil {
			return nil, err
		}
		out = append(out, crd)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no CRD manifests in %s", dir)
	}
	slices.SortFunc(out, func(a, b *apiextensionsv1.CustomResourceDefinition) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// readCRD decodes one OSM CRD file (a licence comment, then a single document) and applies what
// osm-bootstrap adds before it creates the object.
func readCRD(file string) (*apiextensionsv1.CustomResourceDefinition, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	// The licence comment ahead of the document's `---` is no document of its own, but a
	// splitting reader returns it as one: skip what holds nothing.
	var crd *apiextensionsv1.CustomResourceDefinition
	docs := yaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := docs.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", file, err)
		}
		obj := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.Unmarshal(doc, obj); err != nil {
			return nil, fmt.Errorf("decoding %s: %w", file, err)
		}
		if obj.Kind == "" && obj.Name == "" {
			continue
		}
		if crd != nil || obj.Kind != "CustomResourceDefinition" || obj.Name == "" {
			return nil, fmt.Errorf("%s: want a single CustomResourceDefinition", file)
		}
		crd = obj
	}
	if crd == nil {
		return nil, fmt.Errorf("%s: no CustomResourceDefinition", file)
	}
	if crd.Labels == nil {
		crd.Labels = map[string]string{}
	}
	crd.Labels[LabelReconcile] = Version
	applied, err := json.Marshal(crd)
	if err != nil {
		return nil, err
	}
	if crd.Annotations == nil {
		crd.Annotations = map[string]string{}
	}
	crd.Annotations[lastApplied] = string(applied) + "\n"
	return crd, nil
}

// StartEnv boots envtest with OSM v1.2.4's CRDs installed as osm-bootstrap installs them, and
// none of meshkeeper's.
func StartEnv() (*testenv.Env, error) {
	crds, err := CRDs()
	if err != nil {
		return nil, errors.Join(errors.New("reading OSM's CRDs"), err)
	}
	return testenv.StartWith(testenv.Options{CRDs: crds})
}
