package manager

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/yaml"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/meshkeeper/meshkeeper/internal/testenv"
)

// kustomize renders a kustomization with kubectl's built-in kustomize.
func kustomize(t *testing.T, dir string) []byte {
	t.Helper()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not installed")
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	var out, stderr bytes.Buffer
	cmd := exec.Command(kubectl, "kustomize", filepath.Join(root, dir))
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, stderr.String())
	}
	return out.Bytes()
}

type object struct {
	Kind     string
	Metadata metav1.ObjectMeta
	raw      []byte
}

func objects(t *testing.T, rendered []byte) []object {
	t.Helper()
	r := yaml.NewYAMLReader(bufioFrom(rendered))
	var out []object
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		var o object
		if err := sigsyaml.Unmarshal(doc, &o); err != nil {
			t.Fatal(err)
		}
		if o.Kind != "" {
			o.raw = doc
			out = append(out, o)
		}
	}
}

func managerDeployment(t *testing.T, objs []object) *appsv1.Deployment {
	t.Helper()
	for _, o := range objs {
		if o.Kind == "Deployment" && o.Metadata.Name == "meshkeeper-controller-manager" {
			d := &appsv1.Deployment{}
			if err := sigsyaml.Unmarshal(o.raw, d); err != nil {
				t.Fatal(err)
			}
			return d
		}
	}
	t.Fatal("no meshkeeper-controller-manager Deployment")
	return nil
}

// parseArgs parses a container's args with every flag the binary defines.
func parseArgs(t *testing.T, args []string) *Options {
	t.Helper()
	var o Options
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o.Bind(fs)
	flag.CommandLine.VisitAll(func(f *flag.Flag) {
		if fs.Lookup(f.Name) == nil {
			fs.Var(f.Value, f.Name, f.Usage)
		}
	})
	if err := fs.Parse(args); err != nil {
		t.Fatalf("the Deployment passes arguments the manager rejects: %v (args %q)", err, args)
	}
	return &o
}

// overlays are the kustomize entry points users deploy, with the mode each must run.
var overlays = []struct {
	dir        string
	mode       Mode
	webhooks   bool
	mutating   bool
	injectorRB bool
}{
	{"config/default", ModeAudit, false, false, false},
	{"config/validating", ModeAudit, true, false, false},
	{"config/injector", ModeInject, true, true, true},
	{"config/certmanager", ModeInject, true, true, true},
}

func TestOverlaysMatchTheBinary(t *testing.T) {
	for _, ov := range overlays {
		t.Run(ov.dir, func(t *testing.T) {
			objs := objects(t, kustomize(t, ov.dir))
			d := managerDeployment(t, objs)
			pod := d.Spec.Template.Spec
			c := pod.Containers[0]
			o := parseArgs(t, c.Args)
			if err := o.Validate(); err != nil {
				t.Fatal(err)
			}
			if o.Mode != ov.mode || o.ServesWebhooks() != ov.webhooks {
				t.Errorf("mode %s, serves webhooks %v; want %s, %v", o.Mode, o.ServesWebhooks(), ov.mode, ov.webhooks)
			}
			if !o.LeaderElect {
				t.Error("no leader election")
			}
			checkPodSecurity(t, pod)
			kinds := map[string][]string{}
			for _, obj := range objs {
				kinds[obj.Kind] = append(kinds[obj.Kind], obj.Metadata.Name)
			}
			if n := len(kinds["CustomResourceDefinition"]); n > 0 {
				t.Errorf("%d CRDs in %s: no overlay installs CRDs (make install does, never over OSM's)", n, ov.dir)
			}
			if got := len(kinds["MutatingWebhookConfiguration"]) > 0; got != ov.mutating {
				t.Errorf("pod webhook present %v, want %v", got, ov.mutating)
			}
			if got := len(kinds["ValidatingWebhookConfiguration"]) > 0; got != ov.webhooks {
				t.Errorf("validating webhooks present %v, want %v", got, ov.webhooks)
			}
			if !ov.webhooks {
				return
			}
			// The names the manager defaults to are the ones kustomize produces.
			want := map[string]string{"Service": o.WebhookService, "ValidatingWebhookConfiguration": o.ValidatingWebhookName}
			if ov.mutating {
				want["MutatingWebhookConfiguration"] = o.MutatingWebhookName
			}
			if !o.CertManager {
				want["Secret"] = o.WebhookSecret
			}
			for kind, name := range want {
				if !slices.Contains(kinds[kind], name) {
					t.Errorf("no %s named %s (a manager default); have %q", kind, name, kinds[kind])
				}
			}
			if why := certDirProblem(pod, c, *o); why != "" {
				t.Error(why)
			}
		})
	}
}

// certDirProblem says what is wrong with the manager's cert dir, "" when nothing is: with its own
// certificate the manager writes the files there itself (certFiles), so the dir is a writable
// emptyDir; with cert-manager it is cert-manager's Secret, mounted read-only.
func certDirProblem(pod corev1.PodSpec, c corev1.Container, o Options) string {
	for _, m := range c.VolumeMounts {
		if m.MountPath != o.WebhookCertDir {
			continue
		}
		for _, v := range pod.Volumes {
			if v.Name != m.Name {
				continue
			}
			have := "a volume that is neither a Secret nor an emptyDir"
			switch {
			case v.Secret != nil:
				have = "the Secret " + v.Secret.SecretName
			case v.EmptyDir != nil:
				have = "an emptyDir"
			}
			have += fmt.Sprintf(" (readOnly: %v)", m.ReadOnly)
			switch {
			case o.CertManager && (v.Secret == nil || v.Secret.SecretName != o.WebhookSecret || !m.ReadOnly):
				return "with --cert-manager the cert dir must be the Secret " + o.WebhookSecret + " mounted read-only; it is " + have
			case !o.CertManager && (v.EmptyDir == nil || m.ReadOnly):
				return "the manager writes its own certificate files, so the cert dir must be a writable emptyDir; it is " + have
			}
			return ""
		}
		return "the cert dir's volume " + m.Name + " does not exist"
	}
	return "nothing is mounted at the cert dir " + o.WebhookCertDir
}

func checkPodSecurity(t *testing.T, pod corev1.PodSpec) {
	t.Helper()
	c := pod.Containers[0]
	if pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot ||
		pod.SecurityContext.SeccompProfile == nil || pod.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod security context = %+v", pod.SecurityContext)
	}
	sc := c.SecurityContext
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.ReadOnlyRootFilesystem == nil ||
		!*sc.ReadOnlyRootFilesystem || sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("container security context = %+v", sc)
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("readiness probe = %+v", c.ReadinessProbe)
	}
}

// TestAuditRBACIsReadOnly: audit mode may write pods/status, events and the status of its own
// kinds, and nothing else; the webhook and injector roles are only in the overlays that need them.
func TestAuditRBACIsReadOnly(t *testing.T) {
	objs := objects(t, kustomize(t, "config/default"))
	readOnly := []string{"get", "list", "watch"}
	writable := map[string]bool{"pods/status": true, "events": true, "meshconfigs/status": true, "egresses/status": true,
		"ingressbackends/status": true, "leases": true, "tokenreviews": true, "subjectaccessreviews": true, "configmaps": true}
	for _, obj := range objs {
		if obj.Kind != "ClusterRole" && obj.Kind != "Role" {
			continue
		}
		var role rbacv1.ClusterRole
		if err := sigsyaml.Unmarshal(obj.raw, &role); err != nil {
			t.Fatal(err)
		}
		for _, r := range role.Rules {
			for _, v := range r.Verbs {
				if slices.Contains(readOnly, v) {
					continue
				}
				for _, res := range r.Resources {
					if !writable[res] {
						t.Errorf("%s %s may %s %s in audit mode", obj.Kind, obj.Metadata.Name, v, res)
					}
				}
			}
		}
	}
}

func TestCertManagerOverlay(t *testing.T) {
	objs := objects(t, kustomize(t, "config/certmanager"))
	o := parseArgs(t, managerDeployment(t, objs).Spec.Template.Spec.Containers[0].Args)
	if !o.CertManager {
		t.Error("the cert-manager overlay does not pass --cert-manager")
	}
	var cert bool
	for _, obj := range objs {
		switch obj.Kind {
		case "Secret":
			t.Errorf("the overlay still ships Secret %s; cert-manager owns it", obj.Metadata.Name)
		case "Certificate":
			cert = true
		case "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration":
			if obj.Metadata.Annotations["cert-manager.io/inject-ca-from"] == "" {
				t.Errorf("%s has no cert-manager CA injection", obj.Metadata.Name)
			}
		}
	}
	if !cert {
		t.Error("no Certificate in the overlay")
	}
}

// TestOverlaysApply sends every overlay, after meshkeeper's CRDs, to a real API server
// (server-side dry run), so every object is checked against the real schemas, including webhook
// fields such as matchConditions.
func TestOverlaysApply(t *testing.T) {
	env := startEnvtest(t)
	if err := env.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "meshkeeper-system"}}); err != nil {
		t.Fatal(err)
	}
	kubectl, _ := exec.LookPath("kubectl")
	for _, dir := range []string{"config/crd", "config/default", "config/validating", "config/injector"} {
		rendered := kustomize(t, dir)
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(kubectl, "--kubeconfig", env.Kubeconfig, "apply", "--server-side", "--dry-run=server", "-f", "-")
		cmd.Stdin = bytes.NewReader(rendered)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		cmd.Env = append(os.Environ(), "KUBECONFIG="+env.Kubeconfig)
		if err := cmd.Run(); err != nil {
			t.Errorf("server-side dry run of %s failed: %v\n%s\n%s", dir, err, stderr.String(), stdout.String())
		}
	}
}

func bufioFrom(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }
