package cli

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestVersionSkew(t *testing.T) {
	op := func(image, tag string) operatorVersion {
		return operatorVersion{Namespace: "meshkeeper-system", Name: "meshkeeper-controller-manager", Image: image, Tag: tag}
	}
	for _, tc := range []struct {
		cli  string
		op   operatorVersion
		want string // a word the warning must hold; empty: no warning
	}{
		{"v0.4.0", op("ghcr.io/meshkeeper/manager:v0.4.0", "v0.4.0"), ""},
		{"v0.4.0", op("ghcr.io/meshkeeper/manager:v0.3.1", "v0.3.1"), "release"},
		{"v0.4.0", op("ghcr.io/meshkeeper/manager:dev", "dev"), "development build"},
		{"dev", op("ghcr.io/meshkeeper/manager:v0.4.0", "v0.4.0"), "development build"},
		{"dev", op("ghcr.io/meshkeeper/manager:dev", "dev"), ""},
		{"v0.4.0", op("ghcr.io/meshkeeper/manager@sha256:0123", ""), ""},
	} {
		got := versionSkew(tc.cli, tc.op)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("versionSkew(%s, %s) = %q, want a warning with %q", tc.cli, tc.op.Image, got, tc.want)
		}
	}
}

func TestVersionClientOnly(t *testing.T) {
	out, errOut, code := run("", "version", "--client", "-o", "json")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	var rep versionReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.Client.Version == "" || rep.Client.GoVersion == "" || rep.Client.Platform == "" || len(rep.Operators) != 0 {
		t.Errorf("report %+v", rep)
	}
}

// Against the scenario cluster: the operator's Deployment and its image are read; this test
// binary is a development build, the scenario's operator runs a release, so a warning says so.
func TestVersionReadsTheOperator(t *testing.T) {
	cluster(t)
	out, errOut, code := run("", kubectlArgs("version")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "operator meshkeeper-system/meshkeeper-controller-manager: ") || !strings.Contains(out, "(1/1 ready)") {
		t.Errorf("stdout lacks the operator:\n%s", out)
	}
	if !strings.Contains(errOut, "development build") {
		t.Errorf("stderr lacks the skew warning:\n%s", errOut)
	}
	_, errOut, code = run("", kubectlArgs("version", "--operator-namespace", "nowhere")...)
	if code != 0 || !strings.Contains(errOut, "no Deployment labelled") {
		t.Errorf("an empty operator namespace: exit %d, stderr %q", code, errOut)
	}
}
