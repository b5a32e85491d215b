package pod

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
)

// offeredRates are the admission rates the load benchmark sends, open loop, one sub-benchmark
// each.
var offeredRates = []int{500, 1000}

// maxInFlight bounds concurrent requests, as the API server's connection pool would.
const maxInFlight = 32

// BenchmarkWebhookHTTPSLoad drives the real controller-runtime webhook server (TLS, HTTP/1.1 only,
// as the manager configures it) on loopback with AdmissionReviews for a typical pod, offered at
// 500 and at 1,000 per second with at most 32 in flight. Latency is measured from each
// request's scheduled send time, so queueing behind a slow request counts against the server.
// b.N is the number of admissions; ns/op only reflects the pacing. Read p50-ms, p99-ms and
// admissions/s instead:
//
//	go test ./webhooks/pod -run '^$' -bench WebhookHTTPSLoad -benchtime 5000x
func BenchmarkWebhookHTTPSLoad(b *testing.B) {
	logf.SetLogger(logr.Discard())
	for _, rate := range offeredRates {
		b.Run(fmt.Sprintf("offered=%d", rate), func(b *testing.B) { webhookLoad(b, rate) })
	}
}

func webhookLoad(b *testing.B, offeredRate int) {
	dir := b.TempDir()
	caPool := writeServingCert(b, dir)
	port := freePort(b)

	srv := webhook.NewServer(webhook.Options{
		Host: "127.0.0.1", Port: port, CertDir: dir,
		TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }},
	})
	inj := newInjector(namespace("app", true, "enabled"), testMeshConfig())
	srv.Register(Path, &webhook.Admission{Handler: inj})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Start(ctx) }()
	waitListening(b, fmt.Sprintf("127.0.0.1:%d", port), caPool)

	body := admissionReview(b)
	url := fmt.Sprintf("https://127.0.0.1:%d%s", port, Path)
	httpc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: caPool, MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost: maxInFlight,
		MaxConnsPerHost:     maxInFlight,
	}}
	send := func() error {
		resp, err := httpc.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var review admissionv1.AdmissionReview
		if err := json.NewDecoder(resp.Body).Decode(&review); err != nil {
			return err
		}
		if review.Response == nil || !review.Response.Allowed || len(review.Response.Patch) == 0 {
			return fmt.Errorf("pod not injected: %+v", review.Response)
		}
		return nil
	}
	// Warm the connection pool and the handler so the first TLS handshakes are not measured.
	for range maxInFlight {
		if err := send(); err != nil {
			b.Fatal(err)
		}
	}

	latencies := make([]time.Duration, b.N)
	var (
		wg       sync.WaitGroup
		errMu    sync.Mutex
		firstErr error
	)
	sem := make(chan struct{}, maxInFlight)
	interval := time.Second / time.Duration(offeredRate)
	b.ResetTimer()
	cpuBefore := processCPU(b)
	start := time.Now()
	for i := range b.N {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			err := send()
			latencies[i] = time.Since(due)
			if err != nil {
				errMu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				errMu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := processCPU(b) - cpuBefore
	b.StopTimer()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		return float64(latencies[int(p*float64(len(latencies)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(latencies[len(latencies)-1].Microseconds())/1000, "max-ms")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "admissions/s")
	// CPU per admission (client and server together) does not depend on what else the machine
	// is running, unlike the latencies.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/admission")

	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

func admissionReview(b *testing.B) []byte {
	req := request(b, typicalPod(), "app")
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request:  &req.AdmissionRequest,
	}
	raw, err := json.Marshal(review)
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

// writeServingCert writes a self-signed certificate for 127.0.0.1 as tls.crt/tls.key in dir and
// returns a pool that trusts it.
func writeServingCert(b *testing.B, dir string) *x509.CertPool {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "meshkeeper-webhook-bench"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		b.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		b.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), certPEM, 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		b.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return pool
}

func freePort(b *testing.B) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitListening completes a TLS handshake with the server, so the wait itself leaves no
// half-open connection behind in the server's log.
func waitListening(b *testing.B, addr string, pool *x509.CertPool) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 200 * time.Millisecond}, "tcp", addr, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.Fatalf("webhook server did not listen on %s", addr)
}

// processCPU is the user+system CPU time this process has used so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
