package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/modfile"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/meshkeeper/meshkeeper/api/scheme"
)

// AssetsEnv is the variable envtest reads for the directory holding kube-apiserver and etcd.
const AssetsEnv = "KUBEBUILDER_ASSETS"

// modulePath identifies the repository root when walking up from a test's directory.
const modulePath = "github.com/meshkeeper/meshkeeper"

// Env is a running control plane.
type Env struct {
	// Config reaches the apiserver as a cluster admin.
	Config *rest.Config
	// Client is a controller-runtime client with Scheme (no cache: reads go to the apiserver).
	Client client.Client
	// Scheme knows the built-in kinds and every meshkeeper kind.
	Scheme *runtime.Scheme
	// Kubeconfig is a kubeconfig file for the admin user, for tools such as kubectl.
	Kubeconfig string
	// Assets is the directory the control-plane binaries came from.
	Assets string

	env *envtest.Environment
	dir string
}

// NewScheme returns a scheme with the built-in kinds, CustomResourceDefinitions and all
// meshkeeper API versions.
func NewScheme() *runtime.Scheme { return scheme.New() }

// Options says what a control plane is started with.
type Options struct {
	// CRDPaths are directories or files of CRD manifests; relative paths are taken from the
	// repository root.
	CRDPaths []string
	// CRDs are installed as given, alongside CRDPaths.
	CRDs []*apiextensionsv1.CustomResourceDefinition
}

// startTimeout is how long kube-apiserver and etcd each get to answer. envtest's 20 s is
// exceeded on 2 cores when several suites start their control planes at once under load
// (observed at load average 15). envtest then sends that kube-apiserver SIGTERM without waiting
// for it and starts another; one of them was found still running after its test binary had
// exited. KUBEBUILDER_CONTROLPLANE_START_TIMEOUT still overrides it.
const startTimeout = 2 * time.Minute

// Start boots kube-apiserver and etcd with the CRDs found under crdPaths installed (directories
// or files; relative paths are taken from the repository root). With no paths it installs
// config/crd/bases. Call Stop when done, typically in AfterSuite.
func Start(crdPaths ...string) (*Env, error) {
	if len(crdPaths) == 0 {
		crdPaths = []string{filepath.Join("config", "crd", "bases")}
	}
	return StartWith(Options{CRDPaths: crdPaths})
}

// StartWith boots kube-apiserver and etcd with exactly the CRDs opts names (none when it names
// none), for suites that run on another project's CRDs instead of meshkeeper's.
func StartWith(opts Options) (*Env, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	assets, err := Assets(root)
	if err != nil {
		return nil, err
	}
	paths := make([]string, 0, len(opts.CRDPaths))
	for _, p := range opts.CRDPaths {
		if !filepath.IsAbs(p) {
			p = filepath.Join(root, p)
		}
		paths = append(paths, p)
	}

	scheme := NewScheme()
	te := &envtest.Environment{
		CRDDirectoryPaths:     paths,
		CRDs:                  opts.CRDs,
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
		Scheme:                scheme,
	}
	if os.Getenv("KUBEBUILDER_CONTROLPLANE_START_TIMEOUT") == "" {
		te.ControlPlaneStartTimeout = startTimeout
	}
	cfg, err := te.Start()
	if err != nil {
		return nil, fmt.Errorf("starting envtest with binaries from %s: %w", assets, err)
	}
	e := &Env{Config: cfg, Scheme: scheme, Assets: assets, env: te}

	e.Client, err = client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("creating client: %w", err), e.Stop())
	}
	e.dir, err = os.MkdirTemp("", "meshkeeper-testenv-")
	if err != nil {
		return nil, errors.Join(err, e.Stop())
	}
	e.Kubeconfig = filepath.Join(e.dir, "kubeconfig")
	if err := os.WriteFile(e.Kubeconfig, te.KubeConfig, 0o600); err != nil {
		return nil, errors.Join(fmt.Errorf("writing kubeconfig: %w", err), e.Stop())
	}
	return e, nil
}

// Stop shuts the control plane down and removes the kubeconfig.
func (e *Env) Stop() error {
	var errs []error
	if e.env != nil {
		errs = append(errs, e.env.Stop())
	}
	if e.dir != "" {
		errs = append(errs, os.RemoveAll(e.dir))
	}
	return errors.Join(errs...)
}

// Assets returns the directory with kube-apiserver and etcd: $KUBEBUILDER_ASSETS when set,
// otherwise whatever hack/envtest.sh (run from root) prints on its last line, building the
// binaries first if needed.
func Assets(root string) (string, error) {
	if dir := os.Getenv(AssetsEnv); dir != "" {
		if err := checkAssets(dir); err != nil {
			return "", fmt.Errorf("%s=%s: %w", AssetsEnv, dir, err)
		}
		return dir, nil
	}
	script := filepath.Join(root, "hack", "envtest.sh")
	if _, err := os.Stat(script); err != nil {
		return "", fmt.Errorf("%s is unset and %s is missing: set %s to a directory holding kube-apiserver and etcd", AssetsEnv, script, AssetsEnv)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("bash", script)
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s is unset and %s failed: %w\n%s", AssetsEnv, script, err, tail(stderr.String(), 20))
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	dir := strings.TrimSpace(lines[len(lines)-1])
	if err := checkAssets(dir); err != nil {
		return "", fmt.Errorf("%s printed %q: %w", script, dir, err)
	}
	return dir, nil
}

func checkAssets(dir string) error {
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		st, err := os.Stat(filepath.Join(dir, bin))
		if err != nil {
			return fmt.Errorf("no %s binary: %w", bin, err)
		}
		if st.Mode()&0o111 == 0 {
			return fmt.Errorf("%s is not executable", filepath.Join(dir, bin))
		}
	}
	return nil
}

// RepoRoot finds the repository root by walking up from the working directory to the go.mod that
// declares meshkeeper's module.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && modfile.ModulePath(data) == modulePath {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod for module %s above the working directory", modulePath)
		}
		dir = parent
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
