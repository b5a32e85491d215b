package analysis

import (
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"

	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

func TestIstioProtocolOf(t *testing.T) {
	for _, c := range []struct {
		name string
		port corev1.ServicePort
		want IstioProtocol
		wild bool
	}{
		{"http name", corev1.ServicePort{Name: "http", Port: 80}, IstioHTTP, true},
		{"http prefix", corev1.ServicePort{Name: "http-web", Port: 8080}, IstioHTTP, true},
		{"case-insensitive", corev1.ServicePort{Name: "HTTP2-api", Port: 8080}, IstioHTTP2, true},
		{"grpc", corev1.ServicePort{Name: "grpc-svc", Port: 9000}, IstioGRPC, true},
		{"grpc-web whole", corev1.ServicePort{Name: "grpc-web-ui", Port: 9001}, IstioGRPCWeb, true},
		{"tcp", corev1.ServicePort{Name: "tcp-7000", Port: 7000}, IstioTCP, false},
		{"redis", corev1.ServicePort{Name: "redis", Port: 6379}, IstioRedis, false},
		{"mongo", corev1.ServicePort{Name: "mongo-main", Port: 27018}, IstioMongo, false},
		{"mysql", corev1.ServicePort{Name: "mysql", Port: 3307}, IstioMySQL, false},
		{"tls", corev1.ServicePort{Name: "tls-x", Port: 443}, IstioTLS, false},
		{"https", corev1.ServicePort{Name: "https", Port: 443}, IstioHTTPS, false},
		{"unnamed", corev1.ServicePort{Port: 7000}, IstioAuto, true},
		{"unknown name", corev1.ServicePort{Name: "web", Port: 7000}, IstioAuto, true},
		{"prefix needs the dash", corev1.ServicePort{Name: "httpx", Port: 7000}, IstioAuto, true},
		{"unnamed MySQL port", corev1.ServicePort{Port: 3306}, IstioTCP, false},
		{"unnamed MongoDB port", corev1.ServicePort{Name: "db", Port: 27017}, IstioTCP, false},
		{"unnamed DNS port", corev1.ServicePort{Port: 53}, IstioTCP, false},
		{"unnamed Redis port is sniffed", corev1.ServicePort{Port: 6379}, IstioAuto, true},
		{"appProtocol wins", corev1.ServicePort{Name: "http", AppProtocol: ptr.To("tcp"), Port: 80}, IstioTCP, false},
		{"appProtocol http", corev1.ServicePort{Name: "tcp-x", AppProtocol: ptr.To("HTTP"), Port: 80}, IstioHTTP, true},
		{"appProtocol h2c", corev1.ServicePort{AppProtocol: ptr.To("kubernetes.io/h2c"), Port: 80}, IstioHTTP2, true},
		{"appProtocol ws", corev1.ServicePort{AppProtocol: ptr.To("kubernetes.io/ws"), Port: 80}, IstioHTTP, true},
		{"appProtocol wss", corev1.ServicePort{AppProtocol: ptr.To("kubernetes.io/wss"), Port: 443}, IstioHTTPS, false},
		{"appProtocol unknown", corev1.ServicePort{Name: "tcp", AppProtocol: ptr.To("example.com/custom"), Port: 80}, IstioAuto, true},
		{"udp", corev1.ServicePort{Name: "http", Protocol: corev1.ProtocolUDP, Port: 53}, IstioUDP, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, from := IstioProtocolOf(c.port)
			if got != c.want || got.Wildcard() != c.wild || from == "" {
				t.Errorf("got %s (wildcard %v, %q), want %s (wildcard %v)", got, got.Wildcard(), from, c.want, c.wild)
			}
		})
	}
}

func TestParseIstioMeshConfig(t *testing.T) {
	for _, c := range []struct{ in, want, err string }{
		{"", "ALLOW_ANY", ""},
		{"rootNamespace: istio-system\n", "ALLOW_ANY", ""},
		{"outboundTrafficPolicy: {}\n", "ALLOW_ANY", ""},
		{"outboundTrafficPolicy:\n  mode: REGISTRY_ONLY\n", "REGISTRY_ONLY", ""},
		{"outboundTrafficPolicy:\n  mode: ALLOW_ANY\n", "ALLOW_ANY", ""},
		{"outboundTrafficPolicy:\n  mode: registry_only\n", "", `outboundTrafficPolicy.mode "registry_only" is not ALLOW_ANY or REGISTRY_ONLY`},
		{"outboundTrafficPolicy:\n  mode: 1\n", "", `outboundTrafficPolicy.mode "1" is not`},
		{"outboundTrafficPolicy:\n  mode: [a]\n", "", "not valid YAML"},
		{"- a\n- b\n", "", "not valid YAML"},
		{"outboundTrafficPolicy: [\n", "", "not valid YAML"},
	} {
		got, err := ParseIstioMeshConfig(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: error %v, want one containing %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || string(got) != c.want {
			t.Errorf("%q: got %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	cm := &corev1.ConfigMap{Data: map[string]string{IstioMeshKey: "outboundTrafficPolicy: {mode: BLOCK}"}}
	cm.Namespace, cm.Name = "istio-system", "istio-canary"
	if _, err := IstioMeshOf(cm); err == nil || !strings.Contains(err.Error(), "ConfigMap istio-system/istio-canary key mesh: ") {
		t.Errorf("error %v does not name the ConfigMap and key", err)
	}
	if m, err := IstioMeshOf(nil); err != nil || m.Found || m.policy() != AllowAny {
		t.Errorf("no ConfigMap: %+v %v", m, err)
	}
}

func TestParseServiceEntry(t *testing.T) {
	const head = "apiVersion: networking.istio.io/v1beta1\nkind: ServiceEntry\nmetadata: {name: db, namespace: shop}\n"
	e, err := ParseServiceEntry([]byte(head + "spec:\n  hosts: [db.example.com]\n  addresses: [10.0.0.6, 10.1.0.0/16]\n  ports:\n  - {number: 5432, name: pg, protocol: TCP}\n  - {number: 8080, name: web}\n  resolution: STATIC\n"))
	if err != nil {
		t.Fatal(err)
	}
	if e.Name != "db" || e.Namespace != "shop" || len(e.Addresses) != 2 || e.Addresses[0] != netip.MustParsePrefix("10.0.0.6/32") ||
		e.Ports[0].Protocol != IstioTCP || e.Ports[1].Protocol != IstioAuto || e.Resolution != "STATIC" || e.Location != "MESH_EXTERNAL" {
		t.Errorf("got %+v", e)
	}
	for _, c := range []struct{ doc, err string }{
		{"apiVersion: v1\nkind: Service\nmetadata: {name: x}\n", "is not a networking.istio.io ServiceEntry"},
		{head, "has no spec"},
		{head + "spec: {addresses: [10.0.0.300]}\n", `spec.addresses[0] "10.0.0.300" is not an IP address or CIDR`},
		{head + "spec: {ports: [{number: 0}]}\n", "spec.ports[0].number 0 is not a port"},
		{head + "spec: {ports: [{number: 70000}]}\n", "spec.ports[0].number 70000 is not a port"},
		{head + "spec: {resolution: MAGIC}\n", `spec.resolution "MAGIC"`},
		{head + "spec: {location: MARS}\n", `spec.location "MARS"`},
		{head + "spec: {hosts: 3}\n", "ServiceEntry shop/db: spec:"},
		{"", "empty document"},
		{"[", "not a YAML or JSON object"},
	} {
		if _, err := ParseServiceEntry([]byte(c.doc)); err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%q: error %v, want one containing %q", c.doc, err, c.err)
		}
	}
}

// Istio's listener choice: exact addresses before 0.0.0.0, a ServiceEntry's addresses before a
// wildcard Service port, headless TCP ports on their endpoints, UDP and ExternalName ignored.
func TestTraceIstioListeners(t *testing.T) {
	parsed, err := redirect.Parse([]byte("*nat\n:OUTPUT ACCEPT [0:0]\n:ISTIO_OUTPUT - [0:0]\n-A OUTPUT -p tcp -j ISTIO_OUTPUT\n-A ISTIO_OUTPUT -d 192.168.0.0/16 -j RETURN\n-A ISTIO_OUTPUT -p tcp --dport 9999 -j RETURN\n-A ISTIO_OUTPUT -j REDIRECT --to-ports 15001\nCOMMIT\n"))
	if err != nil {
		t.Fatal(err)
	}
	svc := func(name, ip string, ports ...corev1.ServicePort) corev1.Service {
		s := corev1.Service{Spec: corev1.ServiceSpec{ClusterIP: ip, Ports: ports}}
		s.Namespace, s.Name = "ns", name
		return s
	}
	headless := svc("kafka", corev1.ClusterIPNone, corev1.ServicePort{Name: "tcp-kafka", Port: 9092})
	ext := svc("alias", "", corev1.ServicePort{Name: "http", Port: 8081})
	ext.Spec.Type = corev1.ServiceTypeExternalName
	slice := discoveryv1.EndpointSlice{Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.9.0.5"}}}}
	slice.Namespace, slice.Labels = "ns", map[string]string{discoveryv1.LabelServiceName: "kafka"}
	entry := ServiceEntry{Namespace: "ns", Name: "pg", Addresses: []netip.Prefix{netip.MustParsePrefix("10.5.0.0/16")},
		Ports: []ServiceEntryPort{{Number: 8080, Protocol: IstioTCP}}, Resolution: "NONE"}
	named := ServiceEntry{Namespace: "ns", Name: "api", Hosts: []string{"api.example.com"},
		Ports: []ServiceEntryPort{{Number: 8443, Protocol: IstioTLS}}, Resolution: "DNS"}
	in := IstioInput{Rules: PlanOf(parsed),
		Services: []corev1.Service{
			svc("web", "10.96.0.10", corev1.ServicePort{Name: "http", Port: 8080}, corev1.ServicePort{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 5353}),
			svc("db", "10.96.0.11", corev1.ServicePort{Name: "tcp-pg", Port: 5432}),
			headless, ext,
		},
		EndpointSlices: []discoveryv1.EndpointSlice{slice},
		ServiceEntries: []ServiceEntry{entry, named},
	}
	for _, c := range []struct {
		dst     string
		outcome Outcome
		detail  string
	}{
		{"10.96.0.10:8080", OutcomeMeshService, "Service ns/web port 8080 through listener 0.0.0.0:8080 (HTTP)"},
		{"10.96.0.11:5432", OutcomeMeshService, "through listener 10.96.0.11:5432 (TCP)"},
		{"10.5.1.1:8080", OutcomeServiceEntry, "ServiceEntry ns/pg port 8080/TCP (10.5.0.0/16, resolution NONE)"},
		{"10.6.1.1:8080", OutcomeServiceListener, "CAUGHT by listener 0.0.0.0:8080 of ClusterIP Service ns/web"},
		{"10.6.1.1:5432", OutcomeEgressOpen, "PassthroughCluster"},
		{"10.9.0.5:9092", OutcomeMeshService, "Headless Service ns/kafka port 9092 through listener 10.9.0.5:9092"},
		{"10.9.0.6:9092", OutcomeEgressOpen, "PassthroughCluster"},
		{"10.6.1.1:8081", OutcomeEgressOpen, "PassthroughCluster"},
		{"10.6.1.1:5353", OutcomeEgressOpen, "PassthroughCluster"},
		{"203.0.113.7:8443", OutcomeServiceEntry, "sent to the entry's dns endpoints for api.example.com"},
		{"192.168.3.4:8080", OutcomeBypassed, "inside outbound IP range exclusion 192.168.0.0/16, by rule ISTIO_OUTPUT #1"},
		{"10.6.1.1:9999", OutcomeBypassed, "port 9999 is in the outbound port exclusion list, by rule ISTIO_OUTPUT #2"},
		{"[2001:db8::1]:8080", OutcomeBypassed, "no rule matched"},
	} {
		r := TraceIstio(in, netip.MustParseAddrPort(c.dst))
		if r.Outcome != c.outcome || !strings.Contains(r.String(), c.detail) {
			t.Errorf("%s: got %s: %s; want %s containing %q", c.dst, r.Outcome, r, c.outcome, c.detail)
		}
	}
	in.Mesh.OutboundPolicy = RegistryOnly
	if r := TraceIstio(in, netip.MustParseAddrPort("10.6.1.1:5432")); r.Outcome != OutcomeDenied || !strings.Contains(r.String(), "BlackHoleCluster") {
		t.Errorf("REGISTRY_ONLY: got %s", r)
	}
}
