package manager

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/meshkeeper/meshkeeper/internal/testenv"
)

// TestCertManagerModeWaitsForItsCertificate starts the manager as config/certmanager deploys it,
// with the cert dir still empty (cert-manager has not issued the certificate, the optional
// Secret volume is empty): it must keep running, unready, and turn ready once the files appear,
// instead of failing its webhook server on the missing files and exiting.
func TestCertManagerModeWaitsForItsCertificate(t *testing.T) {
	env := startEnvtest(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mutating, validating := operatorNamespace(t, ctx, env)
	certDir := t.TempDir()
	m := runDeployed(t, ctx, env, certDir, mutating, validating, "--cert-manager", "--shutdown-delay=0s")
	done, probeCode := m.done, m.probe

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
	if _, err := testenv.ServingCert(certDir, "meshkeeper-webhook-service.meshkeeper-system.svc"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, func() bool {
		m.mustRun(t)
		return probeCode("/readyz") == http.StatusOK
	})

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
