package manifest

import (
	"strings"
	"testing"

	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

const pod = `apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  initContainers:
  - name: osm-init
    command: ["/bin/sh"]
    args:
    - -c
    - |
      iptables -t nat -N PROXY_OUTPUT
      iptables -t nat -A OUTPUT -p tcp -j PROXY_OUTPUT
      iptables -t nat -A PROXY_OUTPUT -d 10.0.0.0/8 -j RETURN
      iptables -t nat -A PROXY_OUTPUT -p tcp -j REDIRECT --to-ports 15001
  containers:
  - name: app
`

// TestParseYAML: a YAML pod is read here and refused, with a clear message, by the core, which
// links no YAML library; JSON and text formats read the same through both.
func TestParseYAML(t *testing.T) {
	p, err := Parse([]byte(pod))
	if err != nil {
		t.Fatal(err)
	}
	if p.Container != "osm-init" || p.Format != redirect.FormatOSMv0 {
		t.Fatalf("read container %q format %s", p.Container, p.Format)
	}
	if got := p.Exclusions().OutboundIPRanges; len(got) != 1 || got[0].String() != "10.0.0.0/8" {
		t.Errorf("outbound ranges %v", got)
	}
	if _, err := redirect.Parse([]byte(pod)); err == nil || !strings.Contains(err.Error(), "YAML input") {
		t.Errorf("core on YAML: %v, want a pointer to this package", err)
	}
	args := `["apply", "--ipv4-rules", "*nat\n:OSM_PROXY_OUTBOUND - [0:0]\n-A OUTPUT -p tcp -j OSM_PROXY_OUTBOUND\n-A OSM_PROXY_OUTBOUND -d 1.1.1.1/32 -j RETURN\nCOMMIT\n"]`
	for name, parse := range map[string]func([]byte) (*redirect.Parsed, error){"manifest": Parse, "core": redirect.Parse} {
		p, err := parse([]byte(args))
		if err != nil {
			t.Fatalf("%s on JSON args: %v", name, err)
		}
		if got := p.Exclusions().OutboundIPRanges; len(got) != 1 || got[0].String() != "1.1.1.1/32" {
			t.Errorf("%s on JSON args: outbound ranges %v", name, got)
		}
	}
}

// TestParseYAMLErrorsPointIntoTheFile: an error inside the script is reported at its line in
// the manifest, not in the script string.
func TestParseYAMLErrorsPointIntoTheFile(t *testing.T) {
	bad := strings.Replace(pod, "-d 10.0.0.0/8", "-d 999.0.0.0/8", 1)
	_, err := Parse([]byte(bad))
	if err == nil || !strings.HasPrefix(err.Error(), "14:") || !strings.Contains(err.Error(), "999.0.0.0/8") {
		t.Fatalf("error %v, want it at line 14 naming the address", err)
	}
}
