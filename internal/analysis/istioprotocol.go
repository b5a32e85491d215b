package analysis

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// IstioProtocol is the application protocol Istio's sidecar assumes for a port. It decides the
// kind of outbound listener the port gets: HTTP-class and auto-detected ports get one on
// 0.0.0.0:<port> that takes every destination on the port; TCP-class ports get one on the
// Service's own addresses only.
type IstioProtocol string

// The protocols Istio recognises in a port name prefix, an appProtocol or a ServiceEntry port.
const (
	IstioHTTP    IstioProtocol = "HTTP"
	IstioHTTP2   IstioProtocol = "HTTP2"
	IstioGRPC    IstioProtocol = "GRPC"
	IstioGRPCWeb IstioProtocol = "GRPC-Web"
	IstioHTTPS   IstioProtocol = "HTTPS"
	IstioTCP     IstioProtocol = "TCP"
	IstioTLS     IstioProtocol = "TLS"
	IstioMongo   IstioProtocol = "Mongo"
	IstioRedis   IstioProtocol = "Redis"
	IstioMySQL   IstioProtocol = "MySQL"
	IstioUDP     IstioProtocol = "UDP"
	// IstioAuto: nothing declares the protocol, so the sidecar detects it from the first bytes
	// the client sends (protocol sniffing).
	IstioAuto IstioProtocol = "auto"
)

// HTTPClass reports whether the port is served by an HTTP listener (HTTP/1.1, HTTP/2, gRPC).
func (p IstioProtocol) HTTPClass() bool {
	switch p {
	case IstioHTTP, IstioHTTP2, IstioGRPC, IstioGRPCWeb:
		return true
	}
	return false
}

// TCPClass reports whether the port is served as an opaque TCP stream (TLS and the database
// protocols included: without their experimental filters Istio proxies them as TCP).
func (p IstioProtocol) TCPClass() bool {
	switch p {
	case IstioTCP, IstioHTTPS, IstioTLS, IstioMongo, IstioRedis, IstioMySQL:
		return true
	}
	return false
}

// Wildcard reports whether a port of this protocol gets a 0.0.0.0:<port> listener: HTTP-class
// ports, and auto-detected ones (which must be able to hold an HTTP filter chain).
func (p IstioProtocol) Wildcard() bool { return p.HTTPClass() || p == IstioAuto }

// parseIstioProtocol reads one protocol name, case-insensitively; ok is false for a name Istio
// does not know.
func parseIstioProtocol(s string) (IstioProtocol, bool) {
	switch strings.ToLower(s) {
	case "http":
		return IstioHTTP, true
	case "http2":
		return IstioHTTP2, true
	case "grpc":
		return IstioGRPC, true
	case "grpc-web":
		return IstioGRPCWeb, true
	case "https":
		return IstioHTTPS, true
	case "tcp":
		return IstioTCP, true
	case "tls":
		return IstioTLS, true
	case "mongo":
		return IstioMongo, true
	case "redis":
		return IstioRedis, true
	case "mysql":
		return IstioMySQL, true
	case "udp":
		return IstioUDP, true
	}
	return IstioAuto, false
}

// sniffingUnsafePorts are the ports Istio treats as TCP when nothing declares their protocol,
// because their protocols talk first from the server and would stall waiting for detection:
// SMTP, DNS, MySQL and MongoDB.
var sniffingUnsafePorts = map[int32]bool{25: true, 53: true, 3306: true, 27017: true}

// IstioProtocolOf applies Istio's protocol selection to a Service port and says what decided
// it. In order: a UDP port is UDP; appProtocol wins over the port name (with Kubernetes' own
// kubernetes.io/h2c, /ws and /wss); otherwise the name's prefix before the first '-' ("grpc-web"
// as a whole); an unknown or missing name means auto-detection, except on the ports whose
// protocols the server speaks first (25, 53, 3306, 27017), which are TCP.
func IstioProtocolOf(p corev1.ServicePort) (IstioProtocol, string) {
	if p.Protocol == corev1.ProtocolUDP {
		return IstioUDP, "protocol UDP"
	}
	if p.Protocol == corev1.ProtocolSCTP {
		return IstioUDP, "protocol SCTP (not proxied)"
	}
	name, from := p.Name, fmt.Sprintf("port name %q", p.Name)
	if p.AppProtocol != nil {
		name, from = *p.AppProtocol, fmt.Sprintf("appProtocol %q", *p.AppProtocol)
		switch name {
		case "kubernetes.io/h2c":
			return IstioHTTP2, from
		case "kubernetes.io/ws":
			return IstioHTTP, from
		case "kubernetes.io/wss":
			return IstioHTTPS, from
		}
	}
	return protocolFromName(name, from, p.Port)
}

// protocolFromName is the name rule shared by Service ports and ServiceEntry ports.
func protocolFromName(name, from string, port int32) (IstioProtocol, string) {
	prefix := name
	if len(name) >= len("grpc-web") && strings.EqualFold(name[:len("grpc-web")], "grpc-web") {
		prefix = "grpc-web"
	} else if i := strings.IndexByte(name, '-'); i >= 0 {
		prefix = name[:i]
	}
	if proto, ok := parseIstioProtocol(prefix); ok {
		return proto, from
	}
	if sniffingUnsafePorts[port] {
		return IstioTCP, fmt.Sprintf("%s declares no protocol and port %d is always TCP", orUnnamed(name, from), port)
	}
	return IstioAuto, fmt.Sprintf("%s declares no protocol, so it is detected from the traffic", orUnnamed(name, from))
}

func orUnnamed(name, from string) string {
	if name == "" {
		return "the unnamed port"
	}
	return from
}
