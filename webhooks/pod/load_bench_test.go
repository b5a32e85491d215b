package pod

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/meshkeeper/meshkeeper/internal/testenv"
)

// offeredRates are the admission rates the load benchmark sends, open loop, one sub-benchmark
// each.
var offeredRates = []int{500, 1000}

// maxInFlight bounds concurrent requests, as the API server's connection pool would.
const maxInFlight = 32

// BenchmarkWebhookHTTPSLoad drives the real controller-runtime webhook server (TLS, HTTP/1.1 only,
// as the manager configures it) on loopback with AdmissionReviews for a typical pod, offered at
// 500 and at 1,000 per second with at most 32 in flight. b.N is the number of admissions; ns/op
// only reflects the pacing. Read the reported metrics instead:
//
//   - p50-ms, p99-ms, max-ms: from each request's scheduled send time to its decoded answer, so
//     queueing behind a slow request counts, and so does a late wake-up of the load generator;
//   - pacing-p99-ms: how late the generator itself sent (actual minus scheduled send time), the
//     share of p99-ms that is this machine's timer and scheduler rather than the server;
//   - sent-p99-ms: from the actual send to the answer;
//   - cpu-us/admission (client and server), server-cpu-us/admission (own process only).
//
// Each rate runs in four variants, side by side in one run: the server in the benchmark's
// process or in its own (as in the manager's pod), answering with the injector or with a
// constant answer of the same bytes (handler=constant), which is everything but meshkeeper's
// work: TLS, HTTP, the AdmissionReview's decoding and encoding. The injector's figures over the
// constant answer's are what meshkeeper adds.
//
//	go test ./webhooks/pod -run '^$' -bench WebhookHTTPSLoad -benchtime 5000x
//
// MESHKEEPER_BENCH_SERVER_CPUPROFILE=prefix writes a CPU profile of each server process to
// prefix.<rate>.<handler>.
func BenchmarkWebhookHTTPSLoad(b *testing.B) {
	logf.SetLogger(logr.Discard())
	for _, rate := range offeredRates {
		for _, layout := range []string{layoutOneProcess, layoutTwoProcesses} {
			for _, handler := range []string{handlerInjector, handlerConstant} {
				b.Run(fmt.Sprintf("offered=%d/%s/handler=%s", rate, layout, handler), func(b *testing.B) {
					webhookLoad(b, rate, layout, handler)
				})
			}
		}
	}
}

// The two layouts of the load benchmark. In one process the load generator and the server share
// the Go runtime (scheduler, garbage collector, timers); in two processes the server runs alone,
// as in the manager's pod, and the kernel shares the two CPUs between them.
const (
	layoutOneProcess   = "server=in-process"
	layoutTwoProcesses = "server=own-process"
)

// The two handlers: meshkeeper's injector, and a constant answer with the same bytes.
const (
	handlerInjector = "injector"
	handlerConstant = "constant"
)

// serveEnv, set in a re-executed test binary, makes it a webhook server for the load benchmark
// ("CERTDIR:PORT:HANDLER") instead of running tests; it stops when its standard input closes, so
// it never outlives the benchmark. serveProfileEnv names its CPU profile.
const (
	serveEnv        = "MESHKEEPER_BENCH_WEBHOOK_SERVE"
	serveProfileEnv = "MESHKEEPER_BENCH_WEBHOOK_SERVE_CPUPROFILE"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(serveEnv); spec != "" {
		if err := serveForLoad(spec); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// loadServer is the webhook server the load benchmark drives: the real controller-runtime server,
// configured as the manager configures it (TLS, HTTP/1.1 only), with the injector on a cache
// stand-in holding one monitored namespace and the MeshConfig, or with the constant answer.
func loadServer(dir string, port int, handler string) (webhook.Server, error) {
	srv := webhook.NewServer(webhook.Options{
		Host: "127.0.0.1", Port: port, CertDir: dir,
		TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }},
	})
	mc := testMeshConfig()
	mc.UID, mc.ResourceVersion = "load", "1" // as read from the cache
	inj := newInjector(namespace("app", true, "enabled"), mc)
	switch handler {
	case handlerInjector:
		srv.Register(Path, &webhook.Admission{Handler: inj})
	case handlerConstant:
		raw, err := json.Marshal(typicalPod())
		if err != nil {
			return nil, err
		}
		answer := inj.Handle(context.Background(), admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
			Namespace: "app", Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw},
		}})
		if len(answer.Patch) == 0 {
			return nil, fmt.Errorf("the injector did not inject the typical pod: %+v", answer.Result)
		}
		srv.Register(Path, &webhook.Admission{Handler: admission.HandlerFunc(func(context.Context, admission.Request) admission.Response {
			return answer
		})})
	default:
		return nil, fmt.Errorf("unknown handler %q", handler)
	}
	return srv, nil
}

func serveForLoad(spec string) error {
	parts := strings.Split(spec, ":")
	if len(parts) != 3 {
		return fmt.Errorf("%s=%q: want CERTDIR:PORT:HANDLER", serveEnv, spec)
	}
	port, err := strconv.Atoi(parts[1])
	if err != nil {
		return fmt.Errorf("%s=%q: %w", serveEnv, spec, err)
	}
	logf.SetLogger(logr.Discard())
	srv, err := loadServer(parts[0], port, parts[2])
	if err != nil {
		return err
	}
	if path := os.Getenv(serveProfileEnv); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	return srv.Start(ctx)
}

// startLoadServer starts the server in this process or in a child process and returns a function
// reading the server's CPU time so far (nil in one process: the process's CPU covers both).
func startLoadServer(b *testing.B, layout, handler, dir string, port int) func() time.Duration {
	if layout == layoutOneProcess {
		srv, err := loadServer(dir, port, handler)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- srv.Start(ctx) }()
		b.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				b.Error(err)
			}
		})
		return nil
	}
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s:%d:%s", serveEnv, dir, port, handler))
	if prefix := os.Getenv("MESHKEEPER_BENCH_SERVER_CPUPROFILE"); prefix != "" {
		cmd.Env = append(cmd.Env, fmt.Sprintf("%s=%s.%s", serveProfileEnv, prefix, strings.NewReplacer("/", ".", "=", "-").Replace(b.Name())))
	}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			b.Errorf("webhook server process: %v", err)
		}
	})
	return func() time.Duration { return childCPU(b, cmd.Process.Pid) }
}

func webhookLoad(b *testing.B, offeredRate int, layout, handler string) {
	dir := b.TempDir()
	certPEM, err := testenv.ServingCert(dir)
	if err != nil {
		b.Fatal(err)
	}
	caPool := x509.NewCertPool()
	caPool.AppendCertsFromPEM(certPEM)
	port := freePort(b)
	serverCPU := startLoadServer(b, layout, handler, dir, port)
	waitListening(b, fmt.Sprintf("127.0.0.1:%d", port), caPool)

	body := admissionReview(b)
	url := fmt.Sprintf("https://127.0.0.1:%d%s", port, Path)
	httpc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: caPool, MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost: maxInFlight,
		MaxConnsPerHost:     maxInFlight,
	}}
	defer httpc.CloseIdleConnections()
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
	late := make([]time.Duration, b.N)
	fromSend := make([]time.Duration, b.N)
	var (
		wg       sync.WaitGroup
		errMu    sync.Mutex
		firstErr error
	)
	sem := make(chan struct{}, maxInFlight)
	interval := time.Second / time.Duration(offeredRate)
	b.ResetTimer()
	cpuBefore := processCPU(b)
	var serverBefore time.Duration
	if serverCPU != nil {
		serverBefore = serverCPU()
	}
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
			sent := time.Now()
			err := send()
			answered := time.Now()
			latencies[i], late[i], fromSend[i] = answered.Sub(due), sent.Sub(due), answered.Sub(sent)
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
	b.Logf("%d admissions offered at %d/s, %s, %s handler; load average %s", b.N, offeredRate, layout, handler, testenv.LoadAverage())
	ms := func(d []time.Duration, q float64) float64 {
		return float64(testenv.Quantile(d, q).Microseconds()) / 1000
	}
	b.ReportMetric(ms(late, 0.99), "pacing-p99-ms")
	b.ReportMetric(ms(fromSend, 0.99), "sent-p99-ms")
	b.ReportMetric(ms(latencies, 0.99), "p99-ms")
	b.ReportMetric(ms(latencies, 0.5), "p50-ms")
	b.ReportMetric(ms(latencies, 1), "max-ms")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "admissions/s")
	// CPU per admission does not depend on what else the machine is running, unlike the
	// latencies. In one process it covers client and server together; in two, the server's share
	// is reported on its own.
	perAdmission := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(b.N) }
	if serverCPU == nil {
		b.ReportMetric(perAdmission(cpu), "cpu-us/admission")
		return
	}
	server := serverCPU() - serverBefore
	b.ReportMetric(perAdmission(cpu+server), "cpu-us/admission")
	b.ReportMetric(perAdmission(server), "server-cpu-us/admission")
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

// childCPU is the CPU time the server process pid has used so far.
func childCPU(b *testing.B, pid int) time.Duration {
	cpu, _, err := testenv.PIDCPU(pid)
	if err != nil {
		b.Fatal(err)
	}
	return cpu
}

// processCPU is the CPU time this process has used so far.
func processCPU(b *testing.B) time.Duration {
	cpu, err := testenv.ProcessCPU()
	if err != nil {
		b.Fatal(err)
	}
	return cpu
}
