package manager

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshkeeper/meshkeeper/internal/testenv"
)

func TestFlagsParse(t *testing.T) {
	var o Options
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	o.Bind(fs)
	if err := fs.Parse([]string{"--service-cidr=10.96.0.0/12", "--service-cidr", "fd00:10:96::/108", "--pod-cidr=10.244.0.0/16,10.245.0.0/16"}); err != nil {
		t.Fatal(err)
	}
	r, err := o.ClusterRanges()
	if err != nil {
		t.Fatal(err)
	}
	if len(r.ServiceCIDRs) != 2 || len(r.PodCIDRs) != 2 {
		t.Errorf("ranges = %+v", r)
	}
	if o.MeshConfigFlag != "" || o.MeshName != "osm" || o.Mode != ModeAudit || o.ServesWebhooks() {
		t.Errorf("defaults: meshconfig %q mesh %s mode %s webhooks %v", o.MeshConfigFlag, o.MeshName, o.Mode, o.ServesWebhooks())
	}
	o.PodCIDRs = append(o.PodCIDRs, "10.244.0.0")
	if _, err := o.ClusterRanges(); err == nil {
		t.Error("a CIDR without prefix length was accepted")
	}
}

// TestManagerManagesItsOwnCertificate starts the manager as deployed (cert rotation on, leader
// election on) against a real API server, as a replica that is not the leader: another holds the
// Lease for the whole test, and every replica serves webhooks. It checks that the Secret is
// filled, the manager writes the serving certificate into its cert dir itself (no kubelet
// projects the Secret here), both webhook configurations get the CA bundle, and /readyz turns
// ready only after that.
func TestManagerManagesItsOwnCertificate(t *testing.T) {
	env := startEnvtest(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := env.Client
	mutating, validating := operatorNamespace(t, ctx, env)
	secretKey := types.NamespacedName{Namespace: operatorNS, Name: "meshkeeper-webhook-server-cert"}
	if err := c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: secretKey.Name, Namespace: operatorNS}}); err != nil {
		t.Fatal(err)
	}

	// Another replica leads, and stays leader for the whole test.
	now := metav1.NewMicroTime(time.Now())
	if err := c.Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: "meshkeeper.meshkeeper.io", Namespace: operatorNS},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("another-replica"), LeaseDurationSeconds: ptr.To[int32](3600),
			AcquireTime: &now, RenewTime: &now},
	}); err != nil {
		t.Fatal(err)
	}

	certDir := t.TempDir()
	m := runDeployed(t, ctx, env, certDir, mutating, validating, "--leader-elect", "--shutdown-delay="+shutdownDelay.String())
	o, done := &m.o, m.done
	readyz := func() int {
		m.mustRun(t)
		return m.probe("/readyz")
	}

	// Wait for the rotator to fill the Secret; readiness must not come first.
	secret := &corev1.Secret{}
	eventually(t, 60*time.Second, func() bool {
		if code := readyz(); code == http.StatusOK {
			t.Fatal("/readyz was OK before the webhook certificate existed")
		}
		return c.Get(ctx, secretKey, secret) == nil && len(secret.Data["tls.crt"]) > 0 && len(secret.Data["ca.crt"]) > 0
	})
	// Nothing plays the kubelet: the manager copies the Secret into its cert dir.
	eventually(t, 90*time.Second, func() bool { return readyz() == http.StatusOK })
	if err := c.Get(ctx, secretKey, secret); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"tls.crt", "tls.key"} {
		if b, err := os.ReadFile(filepath.Join(certDir, k)); err != nil || !bytes.Equal(b, secret.Data[k]) {
			t.Errorf("%s in the cert dir is not the Secret's (err %v)", k, err)
		}
	}
	lease := &coordinationv1.Lease{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: operatorNS, Name: "meshkeeper.meshkeeper.io"}, lease); err != nil {
		t.Fatal(err)
	}
	if h := ptr.Deref(lease.Spec.HolderIdentity, ""); h != "another-replica" {
		t.Fatalf("the Lease is held by %q: the manager under test led, so this did not check a replica that does not", h)
	}

	mwc := &admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := c.Get(ctx, types.NamespacedName{Name: mutating}, mwc); err != nil {
		t.Fatal(err)
	}
	for _, w := range mwc.Webhooks {
		if !bytes.Equal(w.ClientConfig.CABundle, secret.Data["ca.crt"]) {
			t.Errorf("mutating webhook %s has no current CA bundle", w.Name)
		}
	}
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := c.Get(ctx, types.NamespacedName{Name: validating}, vwc); err != nil {
		t.Fatal(err)
	}
	for _, w := range vwc.Webhooks {
		if !bytes.Equal(w.ClientConfig.CABundle, secret.Data["ca.crt"]) {
			t.Errorf("validating webhook %s has no current CA bundle", w.Name)
		}
	}

	// A serving certificate the rotator no longer accepts (here: garbage written over it) is
	// replaced in the Secret, the replica writes the new one into its cert dir, and the webhook
	// server presents it without a restart.
	served := func() []byte {
		conn, err := tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(o.WebhookPort), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // reads the certificate presented
		if err != nil {
			return nil
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Raw
	}
	first := served()
	if first == nil || !bytes.Equal(first, pemBlock(t, secret.Data["tls.crt"])) {
		t.Fatal("the webhook server does not present the Secret's certificate")
	}
	secret.Data["tls.crt"] = []byte("not a certificate")
	if err := c.Update(ctx, secret); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, func() bool {
		m.mustRun(t)
		now := &corev1.Secret{}
		if err := c.Get(ctx, secretKey, now); err != nil || bytes.Equal(now.Data["tls.crt"], []byte("not a certificate")) {
			return false
		}
		onDisk, err := os.ReadFile(filepath.Join(certDir, "tls.crt"))
		presented := served()
		return err == nil && bytes.Equal(onDisk, now.Data["tls.crt"]) && presented != nil && !bytes.Equal(presented, first) &&
			bytes.Equal(presented, pemBlock(t, now.Data["tls.crt"]))
	})

	// Asked to stop, it turns unready but keeps serving admission for --shutdown-delay: the
	// API server may still call the old address until every kube-proxy has caught up.
	cancel()
	eventually(t, 5*time.Second, func() bool {
		return readyz() == http.StatusServiceUnavailable || readyz() == http.StatusInternalServerError
	})
	conn, err := tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(o.WebhookPort), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // only checks that the server still answers
	if err != nil {
		t.Errorf("the webhook server stopped answering at once, before the shutdown delay: %v", err)
	} else {
		conn.Close()
	}
	select {
	case err := <-done:
		t.Errorf("Run returned before the shutdown delay (%s) ended: %v", shutdownDelay, err)
	default:
	}
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("manager: %v", err)
		}
	case <-time.After(shutdownDelay + 30*time.Second):
		t.Error("manager did not stop")
	}
}

// pemBlock returns the DER bytes of the first PEM block of b.
func pemBlock(t *testing.T, b []byte) []byte {
	t.Helper()
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("no PEM block in %q", b)
	}
	return block.Bytes
}

// startEnvtest starts a real API server for one test and stops it when the test ends; -short
// skips the test.
func startEnvtest(t *testing.T) *testenv.Env {
	t.Helper()
	if testing.Short() {
		t.Skip("envtest")
	}
	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Error(err)
		}
	})
	return env
}

// operatorNS is where the tests that start the manager as deployed put the operator.
const operatorNS = "meshkeeper-system"

// operatorNamespace creates the operator's namespace and the generated webhook configurations,
// and returns the configurations' names.
func operatorNamespace(t *testing.T, ctx context.Context, env *testenv.Env) (mutating, validating string) {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	mutating, validating = installWebhookConfigs(t, ctx, env.Client, filepath.Join(root, "config", "webhook", "manifests.yaml"))
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: operatorNS}}); err != nil {
		t.Fatal(err)
	}
	return mutating, validating
}

// deployed is a manager started by runDeployed.
type deployed struct {
	o         Options
	probeAddr string
	// done receives what Run returned.
	done chan error
}

// probe GETs path at the manager's probe address and returns the status code, 0 when nothing
// answers.
func (m *deployed) probe(path string) int {
	resp, err := http.Get("http://" + m.probeAddr + path)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// mustRun fails the test when Run has returned: a wait for readiness would otherwise end in a
// timeout that hides the manager's error.
func (m *deployed) mustRun(t *testing.T) {
	t.Helper()
	select {
	case err := <-m.done:
		m.done <- err
		t.Fatalf("the manager stopped: %v", err)
	default:
	}
}

// runDeployed starts Run in inject mode with the flags config/injector gives it (ports and cert
// dir of the test's own), plus extra, until ctx ends.
func runDeployed(t *testing.T, ctx context.Context, env *testenv.Env, certDir, mutating, validating string, extra ...string) *deployed {
	t.Helper()
	m := &deployed{probeAddr: freeAddr(t), done: make(chan error, 1)}
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	m.o.Bind(fs)
	m.o.skipNameValidation = true
	if err := fs.Parse(append([]string{
		"--mode=inject",
		"--meshconfig=osm-system/osm-mesh-config",
		"--metrics-bind-address=0",
		"--health-probe-bind-address=" + m.probeAddr,
		"--webhook-port=" + portOf(t, freeAddr(t)),
		"--webhook-cert-dir=" + certDir,
		"--operator-namespace=" + operatorNS,
		"--mutating-webhook-configuration=" + mutating,
		"--validating-webhook-configuration=" + validating,
	}, extra...)); err != nil {
		t.Fatal(err)
	}
	go func() { m.done <- Run(ctx, env.Config, &m.o) }()
	return m
}

// shutdownDelay for TestManagerManagesItsOwnCertificate: long enough for the checks made
// during it (each a local call), short enough to keep the test quick.
const shutdownDelay = 8 * time.Second

// installWebhookConfigs creates the generated webhook configurations under the names the
// default kustomization gives them.
func installWebhookConfigs(t *testing.T, ctx context.Context, c client.Client, path string) (string, string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const mutating, validating = "meshkeeper-mutating-webhook-configuration", "meshkeeper-validating-webhook-configuration"
	dec := yaml.NewYAMLOrJSONDecoder(f, 4096)
	var gotM, gotV bool
	for {
		var u map[string]any
		if err := dec.Decode(&u); err != nil {
			break
		}
		switch u["kind"] {
		case "MutatingWebhookConfiguration":
			obj := &admissionregistrationv1.MutatingWebhookConfiguration{}
			decodeInto(t, u, obj)
			obj.Name = mutating
			if err := c.Create(ctx, obj); err != nil {
				t.Fatal(err)
			}
			gotM = true
		case "ValidatingWebhookConfiguration":
			obj := &admissionregistrationv1.ValidatingWebhookConfiguration{}
			decodeInto(t, u, obj)
			obj.Name = validating
			if err := c.Create(ctx, obj); err != nil {
				t.Fatal(err)
			}
			gotV = true
		}
	}
	if !gotM || !gotV {
		t.Fatalf("%s lacks a webhook configuration (mutating %v, validating %v)", path, gotM, gotV)
	}
	return mutating, validating
}

func decodeInto(t *testing.T, u map[string]any, into any) {
	t.Helper()
	raw, err := yamlToJSON(u)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, into); err != nil {
		t.Fatal(err)
	}
}

func yamlToJSON(u map[string]any) ([]byte, error) {
	return json.Marshal(u)
}

func eventually(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(port)
}
