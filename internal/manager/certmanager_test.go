package manager

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshkeeper/meshkeeper/internal/testenv"
)

// TestCertManagerModeWaitsForItsCertificate starts the manager as config/certmanager deploys it,
// with the cert dir still empty (cert-manager has not issued the certificate, the optional
// Secret volume is empty): it must keep running, unready, and turn ready once the files appear,
// instead of failing its webhook server on the missing files and exiting.
func TestCertManagerModeWaitsForItsCertificate(t *testing.T) {
	if testing.Short() {
		t.Skip("envtest")
	}
	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := env.Stop(); err != nil {
			t.Error(err)
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	mutating, validating := installWebhookConfigs(t, ctx, env.Client, filepath.Join(root, "config", "webhook", "manifests.yaml"))
	const ns = "meshkeeper-system"
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}

	var o Options
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	o.Bind(fs)
	certDir := t.TempDir()
	probe := freeAddr(t)
	if err := fs.Parse([]string{
		"--mode=inject",
		"--cert-manager",
		"--meshconfig=osm-system/osm-mesh-config",
		"--metrics-bind-address=0",
		"--health-probe-bind-address=" + probe,
		"--webhook-port=" + portOf(t, freeAddr(t)),
		"--webhook-cert-dir=" + certDir,
		"--operator-namespace=" + ns,
		"--mutating-webhook-configuration=" + mutating,
		"--validating-webhook-configuration=" + validating,
		"--shutdown-delay=0s",
	}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- Run(ctx, env.Config, &o) }()
	probeCode := func(path string) int {
		resp, err := http.Get("http://" + probe + path)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	// Without a certificate: up (its probe answers), unready on the webhook check, still running
	// over several looks at the cert dir.
	eventually(t, 60*time.Second, func() bool { return probeCode("/readyz/ping") == http.StatusOK })
	for range 5 {
		if code := probeCode("/readyz/webhook"); code == http.StatusOK {
			t.Fatal("/readyz/webhook was OK without a certificate")
		}
		select {
		case err := <-done:
			t.Fatalf("the manager stopped while cert-manager's certificate was missing: %v", err)
		case <-time.After(time.Second):
		}
	}

	// cert-manager's certificate arrives, as the kubelet projects it: the manager turns ready.
	certPEM, keyPEM := selfSigned(t)
	for name, b := range map[string][]byte{"tls.key": keyPEM, "tls.crt": certPEM} {
		if err := os.WriteFile(filepath.Join(certDir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 60*time.Second, func() bool { return probeCode("/readyz") == http.StatusOK })

	cancel()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("manager: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("manager did not stop")
	}
}

// selfSigned returns a throwaway serving certificate and its key, PEM-encoded.
func selfSigned(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "meshkeeper-webhook-service.meshkeeper-system.svc"},
		DNSNames:     []string{"meshkeeper-webhook-service.meshkeeper-system.svc"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}
