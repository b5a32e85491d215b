package cli

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/meshkeeper/meshkeeper/internal/golden"
)

func run(stdin string, args ...string) (stdout, stderr string, code int) {
	var out, errOut bytes.Buffer
	code = Run(args, genericiooptions.IOStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut})
	return out.String(), errOut.String(), code
}

func TestCommandsGolden(t *testing.T) {
	cases := []struct {
		name  string
		stdin string
		args  []string
		code  int
	}{
		{"parse-osm-v0-text", "", []string{"rules", "parse", "testdata/seed001-ranges.txt"}, 0},
		{"parse-osm-v12-json", "", []string{"rules", "parse", "testdata/osm-v12-pod.json", "-o", "json"}, 0},
		{"parse-iptables-save-json", "", []string{"rules", "parse", "testdata/iptables-save.txt", "-o", "json"}, 0},
		{"parse-stdin", "iptables -t nat -N PROXY_OUTPUT && iptables -t nat -A OUTPUT -p tcp -j PROXY_OUTPUT && iptables -t nat -I PROXY_OUTPUT -d 10.0.0.1 -j RETURN\n",
			[]string{"rules", "parse", "-", "-o", "json"}, 0},
		{"parse-describe-seed001", "", []string{"rules", "parse", "testdata/describe-seed001-ports.txt"}, 0},
		{"parse-describe-malformed", "", []string{"rules", "parse", "testdata/describe-seed001-double-and.txt"}, 1},
		{"parse-malformed", "", []string{"rules", "parse", "testdata/seed001-double-and.txt"}, 1},
		{"parse-malformed-stdin", "*nat\n-A OUTPUT -p tcp --dport 99999 -j RETURN\nCOMMIT\n", []string{"rules", "parse", "-"}, 1},
		{"parse-bad-output", "", []string{"rules", "parse", "testdata/seed001-ranges.txt", "-o", "yaml"}, 1},
		{"parse-istio-init-pod", "", []string{"rules", "parse", "testdata/istio-init-pod.yaml"}, 0},
		{"parse-istio-init-pod-json", "", []string{"rules", "parse", "testdata/istio-init-pod.yaml", "-o", "json"}, 0},
		{"parse-istio-cni-pod", "", []string{"rules", "parse", "testdata/istio-cni-pod.yaml"}, 0},
		{"parse-istio-seed002-args", "", []string{"rules", "parse", "testdata/istio-seed002-args.txt"}, 0},
		{"parse-istio-seed003-iptables-save", "", []string{"rules", "parse", "../analysis/testdata/istio-seed003-iptables.txt"}, 0},
		{"parse-istio-args-malformed", "", []string{"rules", "parse", "testdata/istio-args-malformed.txt"}, 1},
		{"explain-istio-seed003-redis", "", []string{"rules", "explain", "../analysis/testdata/istio-seed003-iptables.txt", "--to", "10.0.0.6:7000"}, 0},
		{"explain-istio-init-excluded", "", []string{"rules", "explain", "testdata/istio-init-pod.yaml", "--to", "10.0.0.6:7000"}, 0},
		{"explain-istio-init-excluded-port", "", []string{"rules", "explain", "testdata/istio-init-pod.yaml", "--to", "10.9.9.9:6379"}, 0},
		{"explain-istio-init-proxy-uid", "", []string{"rules", "explain", "testdata/istio-init-pod.yaml", "--to", "1.1.1.1:443", "--uid", "1337"}, 0},
		{"explain-istio-cni-inbound", "", []string{"rules", "explain", "testdata/istio-cni-pod.yaml", "--to", "10.244.0.7:8080", "--inbound"}, 0},
		{"explain-istio-cni-inbound-other-port", "", []string{"rules", "explain", "testdata/istio-cni-pod.yaml", "--to", "10.244.0.7:8081", "--inbound"}, 0},
		{"explain-excluded", "", []string{"rules", "explain", "testdata/seed001-ranges.txt", "--to", "2.2.2.9:443"}, 0},
		{"explain-redirect-json", "", []string{"rules", "explain", "testdata/osm-v12-pod.json", "--to", "10.1.2.3:80", "-o", "json"}, 0},
		{"explain-proxy-uid", "", []string{"rules", "explain", "testdata/iptables-save.txt", "--to", "10.1.2.3:80", "--uid", "1500"}, 0},
		{"explain-inbound-json", "", []string{"rules", "explain", "testdata/iptables-save.txt", "--to", "10.244.0.7:8080", "--inbound", "-o", "json"}, 0},
		{"explain-no-ipv6", "", []string{"rules", "explain", "testdata/seed001-ranges.txt", "--to", "[fd00::1]:80"}, 1},
		{"explain-bad-to", "", []string{"rules", "explain", "testdata/seed001-ranges.txt", "--to", "10.0.0.1"}, 1},
		{"rules-unknown-command", "", []string{"rules", "pars", "testdata/seed001-ranges.txt"}, 1},
		{"render", "", []string{"rules", "render", "--meshconfig", "testdata/meshconfig.yaml", "--pod", "testdata/pod.yaml"}, 0},
		{"render-invalid", "", []string{"rules", "render", "--meshconfig", "testdata/meshconfig-invalid.yaml"}, 1},
		{"render-warnings", "", []string{"rules", "render", "--meshconfig", "testdata/meshconfig-warn.yaml", "--service-cidr", "10.96.0.0/12", "--image", "init:test"}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := run(tc.stdin, tc.args...)
			if code != tc.code {
				t.Errorf("exit code %d, want %d (stderr: %s)", code, tc.code, stderr)
			}
			got := fmt.Sprintf("$ meshkeeper %s\n--- exit %d\n--- stdout\n%s--- stderr\n%s", strings.Join(tc.args, " "), code, stdout, stderr)
			golden.CheckString(t, tc.name+".golden", got)
		})
	}
}

// The rendered container must read back as our own format with the configured exclusions.
func TestRenderParsesBack(t *testing.T) {
	stdout, stderr, code := run("", "rules", "render", "--meshconfig", "testdata/meshconfig.yaml", "--pod", "testdata/pod.yaml")
	if code != 0 {
		t.Fatal(stderr)
	}
	out, stderr, code := run(stdout, "rules", "parse", "-", "-o", "json")
	if code != 0 {
		t.Fatal(stderr)
	}
	for _, want := range []string{`"format": "meshkeeper"`, `"169.254.169.254/32"`, `"fd00:10:96::/108"`, `"2.2.2.0/24"`, "8080", `"podIPEnv": "POD_IP"`} {
		if !strings.Contains(out, want) {
			t.Errorf("parse of rendered container lacks %s:\n%s", want, out)
		}
	}
}

func TestRootListsVerbs(t *testing.T) {
	root := NewRootCommand(genericiooptions.NewTestIOStreamsDiscard())
	if c, _, err := root.Find([]string{"rules", "parse"}); err != nil || c.Name() != "parse" {
		t.Errorf("rules parse not found: %v", err)
	}
}

func TestMigrateHelpTopic(t *testing.T) {
	var out, errOut bytes.Buffer
	code := Run([]string{"help", "migrate-from-osm"}, genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{"config/default", "FORCE_TAKEOVER=1 make install", "AKS add-on", "docs/migrating-from-osm.md"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
}
