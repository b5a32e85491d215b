package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/meshkeeper/meshkeeper/internal/golden"
)

// runGolden compares a command's exit code and output with testdata/NAME.golden (-update rewrites it).
func runGolden(t *testing.T, name string, wantCode int, args ...string) (stdout, stderr string) {
	t.Helper()
	stdout, stderr, code := run("", args...)
	if code != wantCode {
		t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, wantCode, stdout, stderr)
	}
	got := fmt.Sprintf("$ meshkeeper %s\n--- exit %d\n--- stdout\n%s--- stderr\n%s", strings.Join(args, " "), code, stdout, stderr)
	if env != nil {
		got = strings.ReplaceAll(got, env.Kubeconfig, "$KUBECONFIG")
	}
	golden.CheckString(t, name+".golden", got)
	return stdout, stderr
}

const (
	seedPod       = "testdata/diagnose/seed001-pod.yaml"
	seedDoubleAnd = "testdata/diagnose/seed001-double-and-pod.yaml"
	seedMC        = "testdata/diagnose/seed001-meshconfig.yaml"
	seedMCExtra   = "testdata/diagnose/seed001-meshconfig-extra.yaml"
	seed003MC     = "testdata/diagnose/seed003-meshconfig.yaml"
	seed003Objs   = "testdata/diagnose/seed003-objects.yaml"
	seedNS        = "testdata/diagnose/seed001-namespace.yaml"
	ingressObjs   = "testdata/diagnose/ingress-objects.yaml"
)

// Seed 003 as Istio ran it (internal/analysis holds the files).
const (
	istioPod      = "../analysis/testdata/istio-seed003-pod.yaml"
	istioObjs     = "../analysis/testdata/istio-seed003-objects.yaml"
	istioFixSE    = "../analysis/testdata/istio-seed003-fix-serviceentry.yaml"
	istioExcluded = "../analysis/testdata/istio-seed003-iptables-excluded.txt"
)

func TestOfflineGolden(t *testing.T) {
	cases := []struct {
		name string
		code int
		args []string
	}{
		{"diagnose-offline-seed001", 0, []string{"diagnose", "pod", "--pod", seedPod, "--meshconfig", seedMC}},
		{"diagnose-offline-seed001-json", 0, []string{"diagnose", "pod", "--pod", seedPod, "--meshconfig", seedMC, "-o", "json"}},
		{"diagnose-offline-extra-range-json", 1, []string{"diagnose", "pod", "--pod", seedPod, "--meshconfig", seedMCExtra, "-o", "json"}},
		{"diagnose-offline-extra-range", 1, []string{"diagnose", "pod", "--pod", seedPod, "--meshconfig", seedMCExtra}},
		{"diagnose-offline-double-and", 0, []string{"diagnose", "pod", "--pod", seedDoubleAnd, "--meshconfig", seedMC}},
		{"diagnose-offline-rules-file-yaml", 1, []string{"diagnose", "pod", "--pod", seedPod, "--meshconfig", seedMC, "--rules-file", "testdata/iptables-save.txt", "-o", "yaml"}},
		{"diagnose-offline-no-meshconfig", 0, []string{"diagnose", "pod", "--pod", seedPod}},
		{"diagnose-offline-objects", 0, []string{"diagnose", "pod", "--pod", seedPod, "--objects", seedNS, "--objects", seedMC}},
		{"diagnose-offline-objects-not-injected", 1, []string{"diagnose", "pod", "--pod", seedPod, "--meshconfig", seedMC, "--objects", seed003Objs}},
		{"usage-objects-without-pod", 2, []string{"diagnose", "pod", "web", "--objects", seedNS}},
		{"explain-pod-offline-bypass", 0, []string{"explain", "pod", "--pod", seedPod, "--meshconfig", seedMC, "--to", "1.1.1.1:443"}},
		{"explain-pod-offline-seed003", 1, []string{"explain", "pod", "--pod", seedPod, "--meshconfig", seed003MC, "--objects", seed003Objs, "--to", "10.0.0.6:7000"}},
		{"explain-pod-offline-seed003-json", 0, []string{"explain", "pod", "--pod", seedPod, "--meshconfig", seed003MC, "--objects", seed003Objs, "--to", "10.0.0.6:7003", "-o", "json"}},
		{"explain-pod-offline-inbound", 0, []string{"explain", "pod", "--pod", seedPod, "--meshconfig", seedMC, "--objects", ingressObjs, "--inbound", "--port", "8080"}},
		{"explain-pod-offline-inbound-no-backend", 0, []string{"explain", "pod", "--pod", seedPod, "--meshconfig", seedMC, "--objects", ingressObjs, "--inbound", "--port", "9090"}},
		{"explain-pod-offline-inbound-bypass-json", 1, []string{"explain", "pod", "--pod", seedPod, "--meshconfig", seedMC, "--objects", ingressObjs, "--rules-file", "testdata/iptables-save.txt", "--inbound", "--port", "8080", "--from", "10.244.1.5", "-o", "json"}},
		// Seed 003 under Istio: the pod's istio-init arguments, the mesh Service on 7000 whose
		// auto-detected port gets a catch-all listener, ALLOW_ANY, then the ServiceEntry fix.
		{"explain-pod-offline-istio-seed003", 1, []string{"explain", "pod", "--pod", istioPod, "--objects", istioObjs, "--to", "10.0.0.6:7000"}},
		{"explain-pod-offline-istio-seed003-7003", 0, []string{"explain", "pod", "--pod", istioPod, "--objects", istioObjs, "--to", "10.0.0.6:7003"}},
		{"explain-pod-offline-istio-seed003-serviceentry", 0, []string{"explain", "pod", "--pod", istioPod, "--objects", istioObjs, "--objects", istioFixSE, "--to", "10.0.0.6:7000"}},
		{"explain-pod-offline-istio-seed003-excluded", 0, []string{"explain", "pod", "--pod", istioPod, "--objects", istioObjs, "--rules-file", istioExcluded, "--to", "10.0.0.6:7000"}},
		{"diagnose-offline-istio-in-sync", 0, []string{"diagnose", "pod", "--pod", istioPod, "--objects", "testdata/istio-injector.yaml"}},
		// The values changed after the pod was admitted: its istio-init rules lack the range.
		{"diagnose-offline-istio-drifted", 1, []string{"diagnose", "pod", "--pod", istioPod, "--objects", "testdata/istio-injector-fixed.yaml"}},
		{"diagnose-offline-istio-no-injector", 0, []string{"diagnose", "pod", "--pod", istioPod}},
		{"analyze-offline-istio-seed003", 1, []string{"analyze", "--pod", istioPod, "--objects", istioObjs, "--objects", "testdata/istio-injector-fixed.yaml"}},
		{"usage-inbound-without-port", 2, []string{"explain", "pod", "--pod", seedPod, "--inbound"}},
		{"usage-inbound-with-to", 2, []string{"explain", "pod", "--pod", seedPod, "--inbound", "--port", "8080", "--to", "10.0.0.6:7000"}},
		{"usage-port-without-inbound", 2, []string{"explain", "pod", "--pod", seedPod, "--port", "8080"}},
		{"usage-explain-no-to", 2, []string{"explain", "pod", "--pod", seedPod}},
		{"analyze-offline-seed003", 1, []string{"analyze", "--meshconfig", seed003MC, "--objects", seed003Objs, "--pod", seedPod, "--service-cidr", "10.96.0.0/12"}},
		{"analyze-offline-clean", 0, []string{"analyze", "--meshconfig", seedMC, "--pod", seedPod, "--service-cidr", "10.96.0.0/12", "--pod-cidr", "10.244.0.0/16"}},
		{"analyze-offline-seed003-json", 1, []string{"analyze", "--meshconfig", seedMCExtra, "--objects", seed003Objs, "--pod", seedPod, "-o", "json", "--fail-on", "warning"}},
		{"usage-bad-output", 2, []string{"diagnose", "pod", "--pod", seedPod, "-o", "xml"}},
		{"usage-name-and-file", 2, []string{"diagnose", "pod", "web", "--pod", seedPod}},
		{"usage-no-pod", 2, []string{"diagnose", "pod", "--meshconfig", seedMC}},
		{"usage-unknown-flag", 2, []string{"analyze", "--bogus"}},
		{"usage-unknown-command", 2, []string{"diagnos", "pod", "web"}},
		{"usage-unknown-subcommand", 2, []string{"explain", "pods", "web"}},
		{"usage-unknown-root-flag", 2, []string{"--bogus"}},
		{"usage-bad-fail-on", 2, []string{"analyze", "--objects", seed003Objs, "--fail-on", "fatal"}},
		{"usage-bad-to", 2, []string{"explain", "pod", "--pod", seedPod, "--to", "10.0.0.6"}},
		{"usage-missing-file", 2, []string{"diagnose", "pod", "--pod", "testdata/diagnose/nope.yaml"}},
		{"usage-wrong-kind", 2, []string{"diagnose", "pod", "--pod", seedMC}},
		{"usage-unknown-object-kind", 2, []string{"analyze", "--objects", "testdata/diagnose/seed001-pod.yaml", "--objects", "testdata/meshconfig-warn.yaml", "--objects", "testdata/osm-v12-pod.json", "--objects", "testdata/diagnose/deployment.yaml"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runGolden(t, tc.name, tc.code, tc.args...) })
	}
}

// The JSON contract: a checks list whose items carry name, status (pass|warn|fail), reason and
// hint; skipped checks are listed apart, never as failures.
func TestDiagnoseJSONContract(t *testing.T) {
	for _, mc := range []string{seedMC, seedMCExtra} {
		stdout, stderr, _ := run("", "diagnose", "pod", "--pod", seedPod, "--meshconfig", mc, "-o", "json")
		var rep struct {
			Checks  []map[string]any `json:"checks"`
			Skipped []map[string]any `json:"skipped"`
		}
		if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
			t.Fatalf("%v: %s %s", err, stdout, stderr)
		}
		if len(rep.Checks) == 0 || len(rep.Skipped) == 0 {
			t.Fatalf("want both checks and skipped checks offline, got %d and %d", len(rep.Checks), len(rep.Skipped))
		}
		for _, c := range rep.Checks {
			for _, k := range []string{"name", "status", "reason", "hint"} {
				if _, ok := c[k]; !ok {
					t.Errorf("check %v lacks %q", c["name"], k)
				}
			}
			if s := c["status"]; s != "pass" && s != "warn" && s != "fail" {
				t.Errorf("check %v has status %v", c["name"], s)
			}
			if c["name"] == "exclusions-in-sync" {
				wantStatus, has := "pass", ""
				if mc == seedMCExtra {
					wantStatus, has = "fail", "3.3.3.0/24"
				}
				if c["status"] != wantStatus || !strings.Contains(c["reason"].(string), has) {
					t.Errorf("%s: exclusions-in-sync %v: %v", mc, c["status"], c["reason"])
				}
			}
		}
	}
}

func TestTroubleshootingVerbsRegistered(t *testing.T) {
	root := NewRootCommand(genericiooptionsDiscard())
	for _, path := range [][]string{{"diagnose", "pod"}, {"explain", "pod"}, {"analyze"}} {
		c, _, err := root.Find(path)
		if err != nil || c.Name() != path[len(path)-1] {
			t.Errorf("%v not found: %v", path, err)
			continue
		}
		for _, f := range []string{"kubeconfig", "context", "namespace", "output"} {
			if c.Flags().Lookup(f) == nil {
				t.Errorf("%v lacks --%s", path, f)
			}
		}
	}
}

func genericiooptionsDiscard() genericiooptions.IOStreams {
	return genericiooptions.NewTestIOStreamsDiscard()
}

// With --objects the namespace checks run offline; a file without the pod's namespace says so
// instead of skipping for "offline mode".
func TestDiagnoseOfflineNamespace(t *testing.T) {
	other := filepath.Join(t.TempDir(), "ns.yaml")
	if err := os.WriteFile(other, []byte("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: other\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		objects string
		status  string
		reason  string
	}{
		{seedNS, "pass", "namespace test is labelled openservicemesh.io/monitored-by=osm"},
		{other, "skip", "namespace test is not in the --objects files"},
	} {
		stdout, stderr, _ := run("", "diagnose", "pod", "--pod", seedPod, "--meshconfig", seedMC, "--objects", tc.objects, "-o", "json")
		var rep diagnoseReport
		if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
			t.Fatalf("%v: %s", err, stderr)
		}
		var got []string
		for _, c := range rep.Checks {
			if c.Name == "namespace-monitored" {
				got = append(got, string(c.Status), c.Reason)
			}
		}
		for _, s := range rep.Skipped {
			if s.Name == "namespace-monitored" {
				got = append(got, "skip", s.Reason)
			}
		}
		if len(got) != 2 || got[0] != tc.status || !strings.Contains(got[1], tc.reason) {
			t.Errorf("--objects %s: namespace-monitored %v, want %s %q", tc.objects, got, tc.status, tc.reason)
		}
	}
}
