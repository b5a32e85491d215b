package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Options configure a demo run.
type Options struct {
	// Root is the repository root: config/, bin/ and hack/ are found under it.
	Root string
	// Dir receives the kubeconfig, the stages and every log (.demo under Root).
	Dir string
	// Assets holds kube-apiserver and etcd.
	Assets string
	// Hold keeps everything running after the scenario until ctx ends (Ctrl-C).
	Hold bool
	// Timeout bounds each expectation.
	Timeout time.Duration
	Out     io.Writer
}

// Run brings the control plane, kwok and the manager up, plays the scenario, optionally holds,
// then shuts everything down. It returns the process exit code: 0 only when every expectation
// was met.
func Run(ctx context.Context, o Options) int {
	start := time.Now()
	progress := func(format string, args ...any) {
		fmt.Fprintf(o.Out, "[%5.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	r := &Runner{Out: o.Out, Timeout: o.Timeout, Interval: 500 * time.Millisecond}
	var stops []func() error
	defer func() {
		if len(stops) == 0 {
			return
		}
		progress("shutting down manager, kwok, kube-apiserver and etcd")
		for i := len(stops) - 1; i >= 0; i-- {
			if err := stops[i](); err != nil {
				fmt.Fprintf(o.Out, "        %v\n", err)
			}
		}
		progress("stopped")
	}()
	fail := func(what string, err error) int {
		fmt.Fprintf(o.Out, "\n[FAIL] %s: %v\n", what, err)
		return 1
	}

	manager := filepath.Join(o.Root, "bin", "manager")
	kwok := filepath.Join(o.Root, "bin", "kwok")
	for _, bin := range []string{manager, kwok} {
		if _, err := os.Stat(bin); err != nil {
			return fail("looking for the binaries `make demo` builds", err)
		}
	}

	progress("starting kube-apiserver and etcd from %s", o.Assets)
	cp, err := StartControlPlane(o.Root, o.Assets, o.Dir)
	if err != nil {
		return fail("starting the control plane", err)
	}
	stops = append(stops, cp.Stop)
	progress("control plane up at %s; kubeconfig: %s", cp.Config.Host, cp.Kubeconfig)

	progress("starting kwok (fake node %s; stages from the kwok module plus hack/demo/kwok-stage-init-failed.yaml)", NodeName)
	stages, err := writeKwokStages(ctx, o)
	if err != nil {
		return fail("preparing kwok's stages", err)
	}
	kw, err := StartProcess("kwok", KwokArgs(kwok, cp.Kubeconfig, stages), nil, filepath.Join(o.Dir, "kwok.log"))
	if err != nil {
		return fail("starting kwok", err)
	}
	stops = append(stops, func() error { return kw.Stop(10 * time.Second) })

	probe, err := freePort()
	if err != nil {
		return fail("finding a port for the manager's probes", err)
	}
	progress("starting bin/manager (webhooks on 127.0.0.1:%d, certificates from envtest; log: %s)",
		cp.WebhookPort, filepath.Join(o.Dir, "manager.log"))
	mgr, err := StartProcess("manager", ManagerArgs(manager, cp.Kubeconfig, cp.WebhookPort, cp.WebhookCertDir, probe), nil,
		filepath.Join(o.Dir, "manager.log"))
	if err != nil {
		return fail("starting the manager", err)
	}
	stops = append(stops, func() error { return mgr.Stop(15 * time.Second) })
	r.Alive = func() error {
		for _, p := range []*Process{mgr, kw} {
			select {
			case <-p.Done():
				return fmt.Errorf("%s exited (%v); last lines of %s:\n%s", p.Name, p.Err(), p.Log, Indent(tailFile(p.Log, 15), "           "))
			default:
			}
		}
		return nil
	}

	r.Section("bring-up")
	ok := r.Expect(ctx, "kwok reports node "+NodeName+" Ready", nodeReady(cp.Client))
	ok = r.Expect(ctx, "the manager is ready and serving its webhooks", managerReady(probe)) && ok
	if ok {
		sh := &Shell{Out: o.Out, Kubeconfig: cp.Kubeconfig, KubectlBin: FindKubectl(o.Assets), Dir: o.Root}
		s := &scenario{r: r, sh: sh, c: cp.Client}
		s.run(ctx)
	}

	summary, failed := Summary(r.Results)
	fmt.Fprint(o.Out, summary)
	progress("scenario finished")
	switch {
	case ctx.Err() != nil:
		fmt.Fprintf(o.Out, "\nInterrupted. Logs: %s\n", o.Dir)
	case o.Hold:
		fmt.Fprintf(o.Out, "\nExplore the cluster; it keeps running until Ctrl-C:\n"+
			"    export KUBECONFIG=%s\n"+
			"    kubectl get pods -n %s -o custom-columns='%s'\n"+
			"    kubectl get meshconfig -A\n"+
			"    bin/meshkeeper diagnose pod <pod> -n %s\n"+
			"Logs: %s (manager.log, kwok.log, kube-apiserver.log, etcd.log)\n",
			cp.Kubeconfig, AppNamespace, PodColumns, AppNamespace, o.Dir)
		select {
		case <-ctx.Done():
		case <-mgr.Done():
			fmt.Fprintf(o.Out, "the manager exited (%v); see %s\n", mgr.Err(), mgr.Log)
		}
	default:
		fmt.Fprintf(o.Out, "\nNot holding (DEMO_HOLD=0 or stdin is not a terminal): stopping now. Logs: %s\n"+
			"Run `make demo` at a terminal to keep the cluster up and explore it with KUBECONFIG=%s.\n", o.Dir, cp.Kubeconfig)
	}
	if failed > 0 || len(r.Results) == 0 {
		return 1
	}
	return 0
}

// ManagerArgs is the manager's command line for the demo: the envtest-generated serving
// certificate (so its own rotation is off), no metrics endpoint, and probes on a local port the
// demo polls.
func ManagerArgs(bin, kubeconfig string, webhookPort int, certDir string, probePort int) []string {
	return []string{
		bin,
		"--kubeconfig=" + kubeconfig,
		"--webhook-port=" + strconv.Itoa(webhookPort),
		"--webhook-cert-dir=" + certDir,
		"--cert-manager",
		"--metrics-bind-address=0",
		"--health-probe-bind-address=127.0.0.1:" + strconv.Itoa(probePort),
		"--mode=inject",
		"--mesh-name=" + MeshName,
		"--meshconfig=" + MeshNamespace + "/" + MeshConfigName,
	}
}

// writeKwokStages finds the kwok module through the tool module that built bin/kwok and writes
// its stages, plus ours, to one file.
func writeKwokStages(ctx context.Context, o Options) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/kwok")
	cmd.Dir = filepath.Join(o.Root, "hack", "tools", "kwok")
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go list -m sigs.k8s.io/kwok in %s: %w: %s", cmd.Dir, err, strings.TrimSpace(stderr.String()))
	}
	moduleDir := strings.TrimSpace(stdout.String())
	if moduleDir == "" {
		return "", fmt.Errorf("go list -m sigs.k8s.io/kwok in %s: module not downloaded", cmd.Dir)
	}
	data, err := KwokStages(moduleDir, filepath.Join(o.Root, "hack", "demo", "kwok-stage-init-failed.yaml"))
	if err != nil {
		return "", err
	}
	path := filepath.Join(o.Dir, "kwok-stages.yaml")
	return path, os.WriteFile(path, data, 0o644)
}

func nodeReady(c client.Client) Check {
	created := false
	return func(ctx context.Context) (bool, string, error) {
		if !created {
			if err := c.Create(ctx, FakeNode(NodeName)); err != nil && !apierrors.IsAlreadyExists(err) {
				return false, "", fmt.Errorf("creating node %s: %w", NodeName, err)
			}
			created = true
		}
		n := &corev1.Node{}
		if err := c.Get(ctx, client.ObjectKey{Name: NodeName}, n); err != nil {
			return false, "", err
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady {
				return cond.Status == corev1.ConditionTrue, fmt.Sprintf("Ready=%s (%s)", cond.Status, cond.Reason), nil
			}
		}
		return false, "no Ready condition yet", nil
	}
}

func managerReady(port int) Check {
	hc := &http.Client{Timeout: 2 * time.Second}
	url := fmt.Sprintf("http://127.0.0.1:%d/readyz", port)
	return func(ctx context.Context) (bool, string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, "", err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return false, "", err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if resp.StatusCode != http.StatusOK {
			return false, fmt.Sprintf("%s answered %d: %s", url, resp.StatusCode, strings.TrimSpace(string(body))), nil
		}
		return true, url + " answered 200", nil
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return 0, errors.New("not a TCP address")
	}
	return addr.Port, nil
}

func tailFile(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
