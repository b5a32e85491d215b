package analysis

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/yaml"

	policyv1alpha1 "github.com/meshkeeper/meshkeeper/api/policy/v1alpha1"
	"github.com/meshkeeper/meshkeeper/internal/golden"
	"github.com/meshkeeper/meshkeeper/internal/istio"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// istioObjects are the objects of one or more testdata files, by kind.
type istioObjects struct {
	services   []corev1.Service
	slices     []discoveryv1.EndpointSlice
	entries    []ServiceEntry
	configMaps []corev1.ConfigMap
	pods       []corev1.Pod
}

func readIstioObjects(t *testing.T, files ...string) istioObjects {
	t.Helper()
	var o istioObjects
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range strings.Split(string(data), "\n---\n") {
			var meta struct{ Kind string }
			if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			into := func(v any) {
				if err := yaml.UnmarshalStrict([]byte(doc), v); err != nil {
					t.Fatalf("%s: %s: %v", f, meta.Kind, err)
				}
			}
			switch meta.Kind {
			case "Service":
				var s corev1.Service
				into(&s)
				o.services = append(o.services, s)
			case "EndpointSlice":
				var s discoveryv1.EndpointSlice
				into(&s)
				o.slices = append(o.slices, s)
			case "ConfigMap":
				var c corev1.ConfigMap
				into(&c)
				o.configMaps = append(o.configMaps, c)
			case "Pod":
				var p corev1.Pod
				into(&p)
				o.pods = append(o.pods, p)
			case "ServiceEntry":
				e, err := ParseServiceEntry([]byte(doc))
				if err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				o.entries = append(o.entries, e)
			default:
				t.Fatalf("%s: unexpected kind %q", f, meta.Kind)
			}
		}
	}
	return o
}

// readRules parses an iptables-save file of testdata.
func readRules(t *testing.T, name string) *redirect.Plan {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	p, err := redirect.Parse(data)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return PlanOf(p)
}

// writeRoute renders a route with the rule walk that decided between sidecar and bypass.
func writeRoute(buf *bytes.Buffer, r Route) {
	fmt.Fprintf(buf, "  %s\n", r)
	writeWalk(buf, r.Rules)
}

func writeWalk(buf *bytes.Buffer, v redirect.Verdict) {
	for _, s := range v.Trace {
		mark := " "
		if s.Matched {
			mark = "*"
		}
		where := fmt.Sprintf("%s #%d", s.Chain, s.Index)
		if s.Index == 0 {
			where = s.Chain
		}
		fmt.Fprintf(buf, "      %s %-18s %s\n", mark, where, s.Rule)
	}
}

// seed003Istio is the cluster of seed 003 before any fix.
func seed003Istio(t *testing.T) (IstioInput, istioObjects) {
	o := readIstioObjects(t, "istio-seed003-objects.yaml", "istio-seed003-pod.yaml")
	mesh, err := IstioMeshOf(&o.configMaps[0])
	if err != nil {
		t.Fatal(err)
	}
	return IstioInput{Rules: readRules(t, "istio-seed003-iptables.txt"), Services: o.services, Mesh: mesh}, o
}

// Seed 003 end to end: the pod's real rules send 10.0.0.6:7000 to the sidecar, where the
// 0.0.0.0:7000 listener of the mesh Service on 7000 answers a Redis client with 400 Bad
// Request, while 7003 passes through under ALLOW_ANY; then each of the seed's three fixes.
func TestGoldenIstioSeed003Trace(t *testing.T) {
	in, o := seed003Istio(t)
	if !strings.Contains(strings.Join(o.pods[0].Spec.InitContainers[0].Args, " "), "-p 15001 -z 15006 -u 1337 -m REDIRECT -i * -x  -b * -d 15090,15021,15020") {
		t.Fatalf("the seed pod's istio-init arguments changed: %q", o.pods[0].Spec.InitContainers[0].Args)
	}
	var buf bytes.Buffer
	section := func(title string, in IstioInput, dsts ...string) {
		fmt.Fprintf(&buf, "== %s\n", title)
		for _, d := range dsts {
			writeRoute(&buf, TraceIstio(in, netip.MustParseAddrPort(d)))
		}
		buf.WriteString("\n")
	}
	section("pod dev-self/test-8c4c9dcb9-kpm8n (10.64.192.14), outboundTrafficPolicy ALLOW_ANY from ConfigMap istio-system/istio",
		in, "10.0.0.6:7000", "10.0.0.6:7003", "10.233.0.115:7000")

	strict := in
	strict.Mesh.OutboundPolicy = RegistryOnly
	section("the same pod under outboundTrafficPolicy REGISTRY_ONLY", strict, "10.0.0.6:7003")

	fix1 := in
	fix1.ServiceEntries = readIstioObjects(t, "istio-seed003-fix-serviceentry.yaml").entries
	section("fix 1: ServiceEntry dev-self/rediscluster (10.0.0.6/32, ports 7000-7003, protocol tcp, resolution NONE)",
		fix1, "10.0.0.6:7000", "10.0.0.6:7003", "10.0.0.7:7000")

	fix2 := in
	fix2.Rules = readRules(t, "istio-seed003-iptables-excluded.txt")
	section("fix 2: traffic.sidecar.istio.io/excludeOutboundIPRanges: 10.0.0.0/24 (the seed's second iptables-save)",
		fix2, "10.0.0.6:7000", "10.0.0.6:7003", "10.233.0.115:7000")

	fix3 := in
	svc := readIstioObjects(t, "istio-seed003-fix-service.yaml")
	fix3.Services = append(append([]corev1.Service{}, in.Services...), svc.services...)
	fix3.EndpointSlices = svc.slices
	section("fix 3: Service dev-self/rediscluster (10.233.40.115, tcp-7000..tcp-7003) with an EndpointSlice for 10.0.0.6; clients dial the Service",
		fix3, "10.233.40.115:7000", "10.0.0.6:7000")
	golden.Check(t, "istio-seed003-trace.txt", buf.Bytes())
}

// The findings analyze reports for seed 003: the Service's auto-detected port 7000 is Redis
// Cluster's; with the Redis declared by an Egress (an OSM policy in the same cluster) and by a
// ServiceEntry without addresses, it is an Error; the ServiceEntry of fix 1 takes 10.0.0.6 away.
func TestGoldenIstioSeed003Findings(t *testing.T) {
	in, o := seed003Istio(t)
	pods := o.pods
	canary := *pods[0].DeepCopy()
	canary.Name, canary.Labels = "test-canary", nil
	canary.OwnerReferences = nil
	canary.Annotations = map[string]string{istio.AnnotationExcludeOutboundIPRanges: "10.0.0.0/24"}
	pods = append(pods, canary)
	egress := seed003Egress().obj()
	hostOnly, err := ParseServiceEntry([]byte(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: redis-by-name, namespace: dev-self}
spec:
  hosts: [redis.example.com]
  ports: [{number: 7000, name: tcp-redis, protocol: TCP}]
  resolution: DNS
`))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	write := func(title string, fs []Finding) {
		fmt.Fprintf(&buf, "== %s\n", title)
		for _, f := range fs {
			fmt.Fprintf(&buf, "%s %s\n  %s\n  objects: %s\n", f.Severity, f.Code, f.Message, strings.Join(f.Objects, ", "))
			for _, fix := range f.Fixes {
				buf.WriteString("  fix:\n    " + strings.ReplaceAll(fix, "\n", "\n    ") + "\n")
			}
		}
		buf.WriteString("\n")
	}
	write("the mesh Service alone", AnalyzeIstio(IstioAnalysisInput{Mesh: in.Mesh, Services: in.Services, Pods: pods}))
	write("with Egress shop/redis (10.0.0.6/32, 7000-7003) and ServiceEntry dev-self/redis-by-name (no addresses)",
		AnalyzeIstio(IstioAnalysisInput{Mesh: in.Mesh, Services: in.Services, Pods: pods,
			Egresses: []policyv1alpha1.Egress{*egress}, ServiceEntries: []ServiceEntry{hostOnly}}))
	fix1 := readIstioObjects(t, "istio-seed003-fix-serviceentry.yaml").entries
	write("with the Egress and fix 1's ServiceEntry (10.0.0.6/32 declared TCP)",
		AnalyzeIstio(IstioAnalysisInput{Mesh: in.Mesh, Services: in.Services, Pods: pods,
			Egresses: []policyv1alpha1.Egress{*egress}, ServiceEntries: fix1}))
	golden.Check(t, "istio-seed003-findings.txt", buf.Bytes())
}

// Seed 002's rules walked through: the productpage pod's istio-init (1.0, flag form
// -p 15001 -u 1337 -m REDIRECT -i '*' -x "" -b 9080 -d "") captures all outbound TCP but the
// proxy's own and loopback, and inbound TCP to 9080 only, both to 15001.
func TestGoldenIstioSeed002Walk(t *testing.T) {
	plan := readRules(t, "istio-seed002-iptables.txt")
	var buf bytes.Buffer
	for _, c := range []struct {
		title string
		pkt   redirect.Packet
	}{
		{"outbound from productpage (UID 1000) to reviews 10.254.0.12:9080", redirect.Packet{Direction: redirect.DirectionOutbound, UID: 1000, Dst: netip.MustParseAddrPort("10.254.0.12:9080")}},
		{"outbound from productpage to an external 203.0.113.9:443", redirect.Packet{Direction: redirect.DirectionOutbound, UID: 1000, Dst: netip.MustParseAddrPort("203.0.113.9:443")}},
		{"outbound from Envoy (UID 1337) to 172.33.84.8:9080", redirect.Packet{Direction: redirect.DirectionOutbound, UID: 1337, Dst: netip.MustParseAddrPort("172.33.84.8:9080")}},
		{"outbound from productpage to 127.0.0.1:15000", redirect.Packet{Direction: redirect.DirectionOutbound, UID: 1000, Dst: netip.MustParseAddrPort("127.0.0.1:15000")}},
		{"outbound from productpage to its own pod IP 172.33.78.10:9080 over lo", redirect.Packet{Direction: redirect.DirectionOutbound, UID: 1000, Dst: netip.MustParseAddrPort("172.33.78.10:9080"), OutInterface: "lo"}},
		{"inbound from the ingress gateway to 9080", redirect.Packet{Direction: redirect.DirectionInbound, Dst: netip.MustParseAddrPort("172.33.78.10:9080")}},
		{"inbound to 22 (not in -b 9080)", redirect.Packet{Direction: redirect.DirectionInbound, Dst: netip.MustParseAddrPort("172.33.78.10:22")}},
	} {
		v := redirect.Explain(&plan.IPv4, c.pkt)
		fmt.Fprintf(&buf, "== %s: %s\n", c.title, v)
		writeWalk(&buf, v)
	}
	golden.Check(t, "istio-seed002-walk.txt", buf.Bytes())
}
