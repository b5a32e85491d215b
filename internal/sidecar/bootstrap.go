package sidecar

import (
	"encoding/json"
	"fmt"
	"sync"

	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// Names used in the rendered bootstrap.
const (
	OutboundListenerName = "outbound_passthrough"
	InboundListenerName  = "inbound_passthrough"
	OutboundClusterName  = "outbound_original_dst"
	InboundClusterName   = "inbound_original_dst"

	// OriginalDstFilterStateKey is the filter-state object an ORIGINAL_DST cluster dials instead of
	// the connection's original destination when it is set (Envoy's well-known filter state).
	OriginalDstFilterStateKey = "envoy.network.transport_socket.original_dst_address"
	// InboundUpstream is where the inbound listener sends a connection: the application on
	// loopback, at the port the peer asked for. In PodIP local proxy mode the init container's
	// OUTPUT rule rewrites exactly these connections (the proxy's, to 127.0.0.1 over lo) to the
	// pod IP. Dialing the pod IP directly instead would loop in both modes: the first rule of
	// OSM_PROXY_OUTBOUND sends the proxy's connections to a non-loopback address over lo back to
	// the inbound listener.
	InboundUpstream = "127.0.0.1:%DOWNSTREAM_LOCAL_PORT%"
)

// Config is what the bootstrap depends on. The log level is not part of it: it is a command-line
// flag of the sidecar.
type Config struct {
	// AdminPort is served on 127.0.0.1 only.
	AdminPort uint16
	// OutboundPort and InboundPort are the listeners the redirection rules send connections to.
	OutboundPort uint16
	InboundPort  uint16
}

// Default is the configuration matching the rules internal/redirect renders.
func Default() Config {
	return Config{
		AdminPort:    redirect.AdminPort,
		OutboundPort: redirect.OutboundListenerPort,
		InboundPort:  redirect.InboundListenerPort,
	}
}

// Validate reports ports that are unset or shared.
func (c Config) Validate() error {
	ports := []struct {
		name string
		port uint16
	}{{"admin", c.AdminPort}, {"outbound", c.OutboundPort}, {"inbound", c.InboundPort}}
	for i, p := range ports {
		if p.port == 0 {
			return fmt.Errorf("sidecar bootstrap: %s port is not set", p.name)
		}
		for _, q := range ports[:i] {
			if q.port == p.port {
				return fmt.Errorf("sidecar bootstrap: %s and %s ports are both %d", q.name, p.name, p.port)
			}
		}
	}
	return nil
}

type obj = map[string]any

// Render returns the bootstrap as compact JSON (JSON is YAML, so Envoy takes it with
// --config-yaml). The bytes depend on c only: encoding/json writes map keys sorted.
//
// The proxy it describes passes connections through and nothing else:
//   - admin on 127.0.0.1:AdminPort;
//   - on 0.0.0.0:OutboundPort, the original_dst listener filter restores the destination the
//     application dialed, and tcp_proxy forwards to an ORIGINAL_DST cluster; the proxy runs as
//     redirect.ProxyUID, whose connections the rules leave alone;
//   - on 0.0.0.0:InboundPort, the same, except that set_filter_state points the cluster at
//     InboundUpstream.
//
// Listeners are IPv4 only; docs/sidecar.md explains why and what that leaves out.
func Render(c Config) ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	socket := func(addr string, port uint16) obj {
		return obj{"socket_address": obj{"address": addr, "port_value": port}}
	}
	filter := func(name, typ string, cfg obj) obj {
		tc := obj{"@type": "type.googleapis.com/" + typ}
		for k, v := range cfg {
			tc[k] = v
		}
		return obj{"name": name, "typed_config": tc}
	}
	tcpProxy := func(cluster string) obj {
		return filter("envoy.filters.network.tcp_proxy", "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
			obj{"stat_prefix": cluster, "cluster": cluster})
	}
	listener := func(name, direction string, port uint16, filters ...obj) obj {
		return obj{
			"name":              name,
			"address":           socket("0.0.0.0", port),
			"traffic_direction": direction,
			"listener_filters": []obj{filter("envoy.filters.listener.original_dst",
				"envoy.extensions.filters.listener.original_dst.v3.OriginalDst", nil)},
			"filter_chains": []obj{{"filters": filters}},
		}
	}
	cluster := func(name string) obj {
		return obj{"name": name, "type": "ORIGINAL_DST", "lb_policy": "CLUSTER_PROVIDED", "connect_timeout": "5s"}
	}
	setUpstream := filter("envoy.filters.network.set_filter_state",
		"envoy.extensions.filters.network.set_filter_state.v3.Config",
		obj{"on_new_connection": []obj{{
			"object_key":    OriginalDstFilterStateKey,
			"format_string": obj{"text_format_source": obj{"inline_string": InboundUpstream}},
		}}})

	b := obj{
		"admin": obj{"address": socket("127.0.0.1", c.AdminPort)},
		"static_resources": obj{
			"listeners": []obj{
				listener(OutboundListenerName, "OUTBOUND", c.OutboundPort, tcpProxy(OutboundClusterName)),
				listener(InboundListenerName, "INBOUND", c.InboundPort, setUpstream, tcpProxy(InboundClusterName)),
			},
			"clusters": []obj{cluster(OutboundClusterName), cluster(InboundClusterName)},
		},
	}
	return json.Marshal(b)
}

var defaultBootstrap = sync.OnceValue(func() string {
	b, err := Render(Default())
	if err != nil {
		panic(err) // Default is valid; TestDefault keeps it so.
	}
	return string(b)
})

// DefaultBootstrap is Render(Default()) as a string, rendered once.
func DefaultBootstrap() string { return defaultBootstrap() }
