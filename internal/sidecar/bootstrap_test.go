package sidecar

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	originaldstv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/original_dst/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3" // a broken variant uses it
	setfilterstatev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/set_filter_state/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/meshkeeper/meshkeeper/internal/golden"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// validator is what protoc-gen-validate generates for every Envoy message.
type validator interface{ ValidateAll() error }

// parse reads a bootstrap the way Envoy's config loader does as far as the schema goes: JSON
// through protojson (unknown fields are errors), every typed_config resolved to its message, and
// the protoc-gen-validate rules of the bootstrap and of each typed_config (ValidateAll does not
// look inside an Any, so they are unpacked and validated one by one).
func parse(raw []byte) (*bootstrapv3.Bootstrap, error) {
	var b bootstrapv3.Bootstrap
	if err := protojson.Unmarshal(raw, &b); err != nil {
		return nil, fmt.Errorf("protojson: %w", err)
	}
	if err := b.ValidateAll(); err != nil {
		return nil, fmt.Errorf("bootstrap validation: %w", err)
	}
	var anys []*anypb.Any
	for _, l := range b.GetStaticResources().GetListeners() {
		for _, lf := range l.GetListenerFilters() {
			anys = append(anys, lf.GetTypedConfig())
		}
		for _, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				anys = append(anys, f.GetTypedConfig())
			}
		}
	}
	for _, a := range anys {
		m, err := a.UnmarshalNew()
		if err != nil {
			return nil, fmt.Errorf("typed_config %s: %w", a.GetTypeUrl(), err)
		}
		v, ok := m.(validator)
		if !ok {
			return nil, fmt.Errorf("typed_config %s has no validation rules", a.GetTypeUrl())
		}
		if err := v.ValidateAll(); err != nil {
			return nil, fmt.Errorf("typed_config %s: %w", a.GetTypeUrl(), err)
		}
	}
	return &b, nil
}

// passthrough is what check found on one listener.
type passthrough struct {
	cluster string
	// upstream is the set_filter_state override of the cluster's address, "" when absent.
	upstream string
}

// check asserts the passthrough contract on a parsed bootstrap and returns what it found on the
// outbound and inbound listeners.
func check(b *bootstrapv3.Bootstrap, c Config) (out, in passthrough, err error) {
	admin := b.GetAdmin().GetAddress().GetSocketAddress()
	if admin.GetAddress() != "127.0.0.1" || admin.GetPortValue() != uint32(c.AdminPort) {
		return out, in, fmt.Errorf("admin listens on %s:%d, want 127.0.0.1:%d", admin.GetAddress(), admin.GetPortValue(), c.AdminPort)
	}
	clusters := map[string]*clusterv3.Cluster{}
	for _, cl := range b.GetStaticResources().GetClusters() {
		clusters[cl.GetName()] = cl
	}
	listeners := map[uint32][]*listenerv3.Listener{}
	for _, l := range b.GetStaticResources().GetListeners() {
		p := l.GetAddress().GetSocketAddress().GetPortValue()
		listeners[p] = append(listeners[p], l)
	}
	if len(listeners) != 2 {
		return out, in, fmt.Errorf("%d listener ports, want 2", len(listeners))
	}
	one := func(port uint16) (passthrough, error) {
		var pt passthrough
		ls := listeners[uint32(port)]
		if len(ls) != 1 {
			return pt, fmt.Errorf("%d listeners on port %d, want 1", len(ls), port)
		}
		l := ls[0]
		if sa := l.GetAddress().GetSocketAddress(); sa.GetAddress() != "0.0.0.0" || sa.GetProtocol() != corev3.SocketAddress_TCP {
			return pt, fmt.Errorf("listener %s binds %s/%s, want 0.0.0.0/TCP", l.GetName(), sa.GetAddress(), sa.GetProtocol())
		}
		if len(l.GetListenerFilters()) != 1 {
			return pt, fmt.Errorf("listener %s has %d listener filters, want the original_dst filter only", l.GetName(), len(l.GetListenerFilters()))
		}
		lf := l.GetListenerFilters()[0]
		if !lf.GetTypedConfig().MessageIs(&originaldstv3.OriginalDst{}) || lf.GetName() != "envoy.filters.listener.original_dst" {
			return pt, fmt.Errorf("listener %s: listener filter %s (%s), want envoy.filters.listener.original_dst", l.GetName(), lf.GetName(), lf.GetTypedConfig().GetTypeUrl())
		}
		if len(l.GetFilterChains()) != 1 || l.GetFilterChains()[0].GetFilterChainMatch() != nil || l.GetDefaultFilterChain() != nil {
			return pt, fmt.Errorf("listener %s: want exactly one filter chain, matching every connection", l.GetName())
		}
		filters := l.GetFilterChains()[0].GetFilters()
		if len(filters) == 0 {
			return pt, fmt.Errorf("listener %s has no network filters", l.GetName())
		}
		for _, f := range filters[:len(filters)-1] {
			var sfs setfilterstatev3.Config
			if f.GetName() != "envoy.filters.network.set_filter_state" || f.GetTypedConfig().UnmarshalTo(&sfs) != nil {
				return pt, fmt.Errorf("listener %s: unexpected network filter %s before tcp_proxy", l.GetName(), f.GetName())
			}
			for _, v := range sfs.GetOnNewConnection() {
				if v.GetObjectKey() != OriginalDstFilterStateKey {
					return pt, fmt.Errorf("listener %s sets filter state %q", l.GetName(), v.GetObjectKey())
				}
				if pt.upstream != "" {
					return pt, fmt.Errorf("listener %s overrides the upstream twice", l.GetName())
				}
				pt.upstream = v.GetFormatString().GetTextFormatSource().GetInlineString()
				if pt.upstream == "" {
					return pt, fmt.Errorf("listener %s: upstream override without an inline format string", l.GetName())
				}
			}
		}
		last := filters[len(filters)-1]
		var tp tcpproxyv3.TcpProxy
		if last.GetName() != "envoy.filters.network.tcp_proxy" || last.GetTypedConfig().UnmarshalTo(&tp) != nil {
			return pt, fmt.Errorf("listener %s ends with %s (%s), want tcp_proxy", l.GetName(), last.GetName(), last.GetTypedConfig().GetTypeUrl())
		}
		pt.cluster = tp.GetCluster()
		cl := clusters[pt.cluster]
		if cl == nil {
			return pt, fmt.Errorf("listener %s: tcp_proxy cluster %q does not exist", l.GetName(), pt.cluster)
		}
		if cl.GetType() != clusterv3.Cluster_ORIGINAL_DST || cl.GetLbPolicy() != clusterv3.Cluster_CLUSTER_PROVIDED {
			return pt, fmt.Errorf("cluster %s is %s/%s, want ORIGINAL_DST/CLUSTER_PROVIDED", cl.GetName(), cl.GetType(), cl.GetLbPolicy())
		}
		return pt, nil
	}
	if out, err = one(c.OutboundPort); err != nil {
		return out, in, err
	}
	if in, err = one(c.InboundPort); err != nil {
		return out, in, err
	}
	if out.upstream != "" {
		return out, in, fmt.Errorf("outbound connections are sent to %q instead of their original destination", out.upstream)
	}
	if in.upstream == "" {
		return out, in, errors.New("inbound connections go to their original destination (the pod IP), which the rules send back to the inbound listener")
	}
	up, err := upstreamFor(in.upstream, 8080)
	if err != nil {
		return out, in, err
	}
	if up.Addr() != netip.MustParseAddr("127.0.0.1") || up.Port() != 8080 {
		return out, in, fmt.Errorf("inbound upstream %q resolves to %s for port 8080, want 127.0.0.1:8080", in.upstream, up)
	}
	return out, in, nil
}

// upstreamFor is the address an upstream override names for a connection to port.
func upstreamFor(override string, port uint16) (netip.AddrPort, error) {
	s := strings.ReplaceAll(override, "%DOWNSTREAM_LOCAL_PORT%", fmt.Sprint(port))
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return ap, fmt.Errorf("upstream override %q is not IP:%%DOWNSTREAM_LOCAL_PORT%%: %w", override, err)
	}
	return ap, nil
}

func mustRender(t *testing.T, c Config) []byte {
	t.Helper()
	raw, err := Render(c)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestBootstrapValidatesAgainstEnvoyAPI(t *testing.T) {
	raw := mustRender(t, Default())
	b, err := parse(raw)
	if err != nil {
		t.Fatalf("%v\n%s", err, raw)
	}
	out, in, err := check(b, Config{AdminPort: redirect.AdminPort, OutboundPort: redirect.OutboundListenerPort, InboundPort: redirect.InboundListenerPort})
	if err != nil {
		t.Fatal(err)
	}
	if out.cluster == in.cluster {
		t.Errorf("both listeners share cluster %s", out.cluster)
	}
	if got := DefaultBootstrap(); got != string(raw) {
		t.Errorf("DefaultBootstrap differs from Render(Default()):\n%s\n%s", got, raw)
	}
}

// TestBrokenBootstrapsFail shows that parse and check catch what would leave a pod without a
// network: each variant breaks the rendered bootstrap in one place.
func TestBrokenBootstrapsFail(t *testing.T) {
	want := Default()
	listener := func(b map[string]any, i int) map[string]any {
		return b["static_resources"].(map[string]any)["listeners"].([]any)[i].(map[string]any)
	}
	filters := func(l map[string]any) []any {
		return l["filter_chains"].([]any)[0].(map[string]any)["filters"].([]any)
	}
	cluster := func(b map[string]any, i int) map[string]any {
		return b["static_resources"].(map[string]any)["clusters"].([]any)[i].(map[string]any)
	}
	cases := []struct {
		name   string
		mutate func(b map[string]any)
	}{
		{"outbound listener on the wrong port", func(b map[string]any) {
			listener(b, 0)["address"].(map[string]any)["socket_address"].(map[string]any)["port_value"] = 15006
		}},
		{"inbound listener on the outbound port", func(b map[string]any) {
			listener(b, 1)["address"].(map[string]any)["socket_address"].(map[string]any)["port_value"] = int(redirect.OutboundListenerPort)
		}},
		{"admin on every address", func(b map[string]any) {
			b["admin"].(map[string]any)["address"].(map[string]any)["socket_address"].(map[string]any)["address"] = "0.0.0.0"
		}},
		{"no original_dst listener filter", func(b map[string]any) { delete(listener(b, 0), "listener_filters") }},
		{"original_dst replaced by another listener filter", func(b map[string]any) {
			listener(b, 1)["listener_filters"] = []any{map[string]any{"name": "envoy.filters.listener.tls_inspector",
				"typed_config": map[string]any{"@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"}}}
		}},
		{"no set_filter_state on inbound", func(b map[string]any) {
			l := listener(b, 1)
			l["filter_chains"].([]any)[0].(map[string]any)["filters"] = filters(l)[1:]
		}},
		{"inbound upstream is the pod IP", func(b map[string]any) {
			f := filters(listener(b, 1))[0].(map[string]any)["typed_config"].(map[string]any)
			f["on_new_connection"].([]any)[0].(map[string]any)["format_string"] = map[string]any{"text_format_source": map[string]any{"inline_string": "%DOWNSTREAM_LOCAL_ADDRESS%"}}
		}},
		{"outbound upstream overridden", func(b map[string]any) {
			l := listener(b, 0)
			l["filter_chains"].([]any)[0].(map[string]any)["filters"] = append([]any{filters(listener(b, 1))[0]}, filters(l)...)
		}},
		{"tcp_proxy names a missing cluster", func(b map[string]any) {
			filters(listener(b, 0))[0].(map[string]any)["typed_config"].(map[string]any)["cluster"] = "passthrough"
		}},
		{"tcp_proxy without a cluster", func(b map[string]any) {
			delete(filters(listener(b, 0))[0].(map[string]any)["typed_config"].(map[string]any), "cluster")
		}},
		{"cluster is not ORIGINAL_DST", func(b map[string]any) { cluster(b, 1)["type"] = "STATIC" }},
		{"cluster load balancer is not CLUSTER_PROVIDED", func(b map[string]any) { cluster(b, 0)["lb_policy"] = "ROUND_ROBIN" }},
		{"unknown field", func(b map[string]any) { cluster(b, 0)["use_original_dst"] = true }},
		{"unknown field inside a typed_config", func(b map[string]any) {
			filters(listener(b, 0))[0].(map[string]any)["typed_config"].(map[string]any)["clusterr"] = "x"
		}},
		{"typed_config of an unknown type", func(b map[string]any) {
			filters(listener(b, 0))[0].(map[string]any)["typed_config"].(map[string]any)["@type"] = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v4.TcpProxy"
		}},
		{"validation rule: empty stat_prefix", func(b map[string]any) {
			filters(listener(b, 0))[0].(map[string]any)["typed_config"].(map[string]any)["stat_prefix"] = ""
		}},
		{"validation rule: negative connect_timeout", func(b map[string]any) { cluster(b, 0)["connect_timeout"] = "-1s" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var b map[string]any
			if err := json.Unmarshal(mustRender(t, want), &b); err != nil {
				t.Fatal(err)
			}
			tc.mutate(b)
			raw, err := json.Marshal(b)
			if err != nil {
				t.Fatal(err)
			}
			parsed, err := parse(raw)
			if err == nil {
				_, _, err = check(parsed, want)
			}
			if err == nil {
				t.Fatalf("the broken bootstrap passed:\n%s", raw)
			}
			t.Logf("rejected: %v", err)
		})
	}
}

// TestUpstreamsBypassRedirection walks the connections the proxy opens through the rules
// internal/redirect renders, in both local proxy modes: none may come back to a listener. It also
// shows why the inbound listener cannot dial the original destination unchanged.
func TestUpstreamsBypassRedirection(t *testing.T) {
	b, err := parse(mustRender(t, Default()))
	if err != nil {
		t.Fatal(err)
	}
	_, in, err := check(b, Default())
	if err != nil {
		t.Fatal(err)
	}
	const appPort = 8080
	inUp, err := upstreamFor(in.upstream, appPort)
	if err != nil {
		t.Fatal(err)
	}
	podIP := netip.MustParseAddrPort("10.244.0.7:8080")
	for _, mode := range []redirect.LocalProxyMode{redirect.LocalProxyModeLocalhost, redirect.LocalProxyModePodIP} {
		t.Run(string(mode), func(t *testing.T) {
			cfg, errs := redirect.Effective(redirect.MeshSettings{LocalProxyMode: string(mode)}, nil)
			if len(errs) > 0 {
				t.Fatal(errs.ToAggregate())
			}
			plan := redirect.Render(cfg)
			proxy := func(dst netip.AddrPort, iface string) redirect.Verdict {
				return redirect.Explain(&plan.IPv4, redirect.Packet{Direction: redirect.DirectionOutbound, UID: redirect.ProxyUID, Dst: dst, OutInterface: iface})
			}
			wantInbound := redirect.VerdictBypass
			if mode == redirect.LocalProxyModePodIP {
				wantInbound = redirect.VerdictDNAT // to the pod IP, where the application listens
			}
			if v := proxy(inUp, ""); v.Kind != wantInbound {
				t.Errorf("inbound upstream %s: %s to port %d, want %s", inUp, v.Kind, v.Port, wantInbound)
			}
			if v := proxy(netip.MustParseAddrPort("10.96.0.20:80"), ""); v.Kind != redirect.VerdictBypass {
				t.Errorf("outbound upstream: %s to port %d, want bypass", v.Kind, v.Port)
			}
			// The original destination of an inbound connection is the pod IP; the proxy reaching
			// it goes over lo and is redirected to the inbound listener again.
			if v := proxy(podIP, "lo"); v.Kind != redirect.VerdictRedirect || v.Port != redirect.InboundListenerPort {
				t.Errorf("proxy to the pod IP: %s to port %d; the bootstrap relies on it looping", v.Kind, v.Port)
			}
		})
	}
}

func TestRenderGolden(t *testing.T) {
	raw := mustRender(t, Default())
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, raw, "", "  "); err != nil {
		t.Fatal(err)
	}
	pretty.WriteByte('\n')
	golden.Check(t, "bootstrap.golden.json", pretty.Bytes())
	want, err := os.ReadFile(filepath.Join("testdata", "bootstrap.golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	// The golden file pins the exact bytes: compacting it gives Render's output.
	var compact bytes.Buffer
	if err := json.Compact(&compact, want); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(compact.Bytes(), raw) {
		t.Errorf("Render output is not the compacted golden file:\n%s", raw)
	}
	for range 3 {
		if again := mustRender(t, Default()); !bytes.Equal(again, raw) {
			t.Fatalf("Render is not deterministic:\n%s\n%s", raw, again)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{
		{OutboundPort: 15001, InboundPort: 15003},
		{AdminPort: 15000, OutboundPort: 15001, InboundPort: 15001},
		{AdminPort: 15003, OutboundPort: 15001, InboundPort: 15003},
	} {
		if _, err := Render(c); err == nil {
			t.Errorf("Render(%+v) accepted", c)
		}
	}
	other := Config{AdminPort: 9901, OutboundPort: 16001, InboundPort: 16003}
	b, err := parse(mustRender(t, other))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := check(b, other); err != nil {
		t.Errorf("ports other than the defaults: %v", err)
	}
	if _, _, err := check(b, Default()); err == nil {
		t.Error("a bootstrap on other ports passed the check for the default ports")
	}
}
