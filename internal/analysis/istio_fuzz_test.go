package analysis

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParseServiceEntry feeds arbitrary documents to the ServiceEntry reader. It may refuse
// them, with an error naming the ServiceEntry or the document, but never panic, and what it
// accepts is usable by the model: ports in range, addresses valid, resolution and location known.
func FuzzParseServiceEntry(f *testing.F) {
	if data, err := os.ReadFile(filepath.Join("testdata", "istio-seed003-fix-serviceentry.yaml")); err == nil {
		f.Add(string(data))
	}
	f.Add("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: a, namespace: b}\nspec: {hosts: [x], ports: [{number: 443, protocol: TLS}], resolution: DNS}\n")
	f.Add(`{"apiVersion":"networking.istio.io/v1beta1","kind":"ServiceEntry","spec":{"addresses":["::1","10.0.0.0/8"],"ports":[{"number":65536}]}}`)
	f.Add("kind: ServiceEntry\napiVersion: networking.istio.io/v1alpha3\nspec: [1, 2]\n")
	f.Fuzz(func(t *testing.T, doc string) {
		e, err := ParseServiceEntry([]byte(doc))
		if err != nil {
			return
		}
		for _, p := range e.Ports {
			if p.Number < 1 || p.Number > 65535 || p.Protocol == "" {
				t.Fatalf("accepted port %+v", p)
			}
		}
		for _, a := range e.Addresses {
			if !a.IsValid() {
				t.Fatalf("accepted an invalid address in %+v", e)
			}
		}
		if !strings.Contains("NONE STATIC DNS DNS_ROUND_ROBIN", e.Resolution) || e.Resolution == "" ||
			(e.Location != "MESH_EXTERNAL" && e.Location != "MESH_INTERNAL") {
			t.Fatalf("accepted resolution %q location %q", e.Resolution, e.Location)
		}
		// The model takes whatever was accepted.
		_ = matchEntries([]ServiceEntry{e}, netip.MustParseAddrPort("10.0.0.6:7000"), len(e.Addresses) == 0)
	})
}

// FuzzParseIstioMeshConfig feeds arbitrary mesh configurations to the outboundTrafficPolicy
// reader: it returns one of the two modes or an error, never panics.
func FuzzParseIstioMeshConfig(f *testing.F) {
	f.Add("outboundTrafficPolicy:\n  mode: REGISTRY_ONLY\n")
	f.Add("outboundTrafficPolicy: {mode: ALLOW_ANY}\nrootNamespace: istio-system\n")
	f.Add("outboundTrafficPolicy: 3\n")
	f.Add("{{{")
	f.Fuzz(func(t *testing.T, data string) {
		m, err := ParseIstioMeshConfig(data)
		if err != nil {
			if m != "" {
				t.Fatalf("error %v with mode %q", err, m)
			}
			return
		}
		if m != AllowAny && m != RegistryOnly {
			t.Fatalf("accepted mode %q", m)
		}
	})
}
