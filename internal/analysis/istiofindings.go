package analysis

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	policyv1alpha1 "github.com/meshkeeper/meshkeeper/api/policy/v1alpha1"
	"github.com/meshkeeper/meshkeeper/internal/drift"
	"github.com/meshkeeper/meshkeeper/internal/istio"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// WellKnownPort is a port a common non-HTTP server listens on.
type WellKnownPort struct {
	Port   int32
	Server string
}

// WellKnownPorts is the one table of non-HTTP servers whose default ports an HTTP or
// auto-detected Service port should not share under Istio: a client of such a server outside
// the mesh would be served by the sidecar's 0.0.0.0 listener instead.
var WellKnownPorts = []WellKnownPort{
	{2181, "ZooKeeper"},
	{3306, "MySQL"},
	{5432, "PostgreSQL"},
	{5672, "AMQP"},
	{6379, "Redis"},
	{7000, "Redis Cluster"}, {7001, "Redis Cluster"}, {7002, "Redis Cluster"},
	{7003, "Redis Cluster"}, {7004, "Redis Cluster"}, {7005, "Redis Cluster"},
	{9042, "Cassandra"},
	{9092, "Kafka"},
	{9300, "Elasticsearch transport"},
	{11211, "Memcached"},
	{27017, "MongoDB"},
}

// WellKnownServer names the server whose default port is port, if any.
func WellKnownServer(port int32) (string, bool) {
	i := slices.IndexFunc(WellKnownPorts, func(w WellKnownPort) bool { return w.Port == port })
	if i < 0 {
		return "", false
	}
	return WellKnownPorts[i].Server, true
}

// IstioAnalysisInput is what AnalyzeIstio looks at, gathered by the caller.
type IstioAnalysisInput struct {
	Mesh IstioMesh
	// Services are every Service of the cluster (each gives every sidecar its listeners).
	Services       []corev1.Service
	ServiceEntries []ServiceEntry
	// Egresses declare external destinations too (in clusters where OSM and Istio meet).
	Egresses []policyv1alpha1.Egress
	// Pods are candidates for "affected"; only those with an istio-proxy container count.
	Pods []corev1.Pod
}

// swallowed is an external destination a wildcard listener takes.
type swallowed struct {
	prefix netip.Prefix // invalid for an entry without addresses
	by     string       // the object that declares it
	what   string
}

// AnalyzeIstio reports the Services whose HTTP or auto-detected ports make every Istio sidecar
// listen on 0.0.0.0:<port>: an Error (PortCollision) when a destination a ServiceEntry or an
// Egress declares outside the mesh is on that port and nothing more specific takes it, a Warning
// (WellKnownPortCollision) when the port is only a well-known non-HTTP server's. Each finding
// carries seed 003's fixes as commands and manifests.
func AnalyzeIstio(in IstioAnalysisInput) []Finding {
	var pods []*corev1.Pod
	for i := range in.Pods {
		if p := &in.Pods[i]; p.DeletionTimestamp == nil && istio.ProxyContainer(p) != nil {
			pods = append(pods, p)
		}
	}
	slices.SortFunc(pods, func(a, b *corev1.Pod) int { return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name) })
	var out []Finding
	for _, l := range istioMeshListeners(in.Services, nil) {
		if !l.Wildcard {
			continue
		}
		lost := swallowedOn(in, l.Port)
		server, known := WellKnownServer(l.Port)
		if len(lost) == 0 && !known {
			continue
		}
		out = append(out, collisionFinding(in, l, lost, server, pods))
	}
	Sort(out)
	return out
}

// swallowedOn lists the external destinations on port that a wildcard listener takes: Egress
// tcp/https ranges no ServiceEntry address covers, and TCP-class ServiceEntry ports without
// addresses (their listener is 0.0.0.0:<port> too, and the HTTP one is in the way).
func swallowedOn(in IstioAnalysisInput, port int32) []swallowed {
	var out []swallowed
	coveredByEntry := func(p netip.Prefix) bool {
		for i := range in.ServiceEntries {
			e := &in.ServiceEntries[i]
			if !slices.ContainsFunc(e.Ports, func(sp ServiceEntryPort) bool { return sp.Number == port && sp.Protocol.TCPClass() }) {
				continue
			}
			if slices.ContainsFunc(e.Addresses, func(a netip.Prefix) bool { return covers(a, p) }) {
				return true
			}
		}
		return false
	}
	for i := range in.Egresses {
		e := &in.Egresses[i]
		if e.DeletionTimestamp != nil {
			continue
		}
		for _, d := range destinations(&e.Spec) {
			if d.Port != port || d.Any || d.Protocol == policyv1alpha1.ProtocolHTTP || coveredByEntry(d.Prefix) {
				continue
			}
			out = append(out, swallowed{prefix: d.Prefix, by: Object("Egress", e.Namespace, e.Name),
				what: fmt.Sprintf("%s:%d (Egress %s/%s)", d.Prefix, port, e.Namespace, e.Name)})
		}
	}
	for i := range in.ServiceEntries {
		e := &in.ServiceEntries[i]
		if len(e.Addresses) > 0 {
			continue
		}
		for _, p := range e.Ports {
			if p.Number == port && p.Protocol.TCPClass() {
				out = append(out, swallowed{by: e.object(),
					what: fmt.Sprintf("%s:%d (ServiceEntry %s/%s, no addresses, %s)", strings.Join(e.Hosts, "|"), port, e.Namespace, e.Name, p.Protocol)})
			}
		}
	}
	return out
}

// excludes reports whether a pod's Istio annotations take every destination in lost (or, with
// none known, the whole port) away from its sidecar.
func excludes(p *corev1.Pod, port int32, lost []swallowed) bool {
	for _, s := range strings.Split(p.Annotations[istio.AnnotationExcludeOutboundPorts], ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil && int32(n) == port {
			return true
		}
	}
	var ranges []netip.Prefix
	for _, s := range strings.Split(p.Annotations[istio.AnnotationExcludeOutboundIPRanges], ",") {
		if pr, err := redirect.ParsePrefix(strings.TrimSpace(s)); err == nil {
			ranges = append(ranges, pr)
		}
	}
	if len(lost) == 0 || len(ranges) == 0 {
		return false
	}
	for _, s := range lost {
		if !s.prefix.IsValid() || !slices.ContainsFunc(ranges, func(r netip.Prefix) bool { return covers(r, s.prefix) }) {
			return false
		}
	}
	return true
}

func collisionFinding(in IstioAnalysisInput, l Listener, lost []swallowed, server string, pods []*corev1.Pod) Finding {
	svc := l.Service
	var affected []string
	workloads := map[string]*corev1.Pod{}
	var order []string
	for _, p := range pods {
		if excludes(p, l.Port, lost) {
			continue
		}
		affected = append(affected, p.Namespace+"/"+p.Name)
		w := drift.WorkloadOf(p)
		key := w.Kind + "/" + w.Namespace + "/" + w.Name
		if w.Kind == "" {
			key = "Pod/" + p.Namespace + "/" + p.Name
		}
		if workloads[key] == nil {
			workloads[key] = p
			order = append(order, key)
		}
	}
	var prefixes []netip.Prefix
	var whats []string
	objs := []string{Object("Service", svc.Namespace, svc.Name)}
	for _, s := range lost {
		whats = append(whats, s.what)
		objs = append(objs, s.by)
		if s.prefix.IsValid() && !slices.Contains(prefixes, s.prefix) {
			prefixes = append(prefixes, s.prefix)
		}
	}
	for _, a := range affected {
		ns, name, _ := strings.Cut(a, "/")
		objs = append(objs, Object("Pod", ns, name))
	}
	head := fmt.Sprintf("Service %s/%s port %d is %s (%s), so every Istio sidecar listens on 0.0.0.0:%d for it and serves any destination on port %d as HTTP",
		svc.Namespace, svc.Name, l.Port, l.Protocol, l.ProtocolFrom, l.Port, l.Port)
	var who string
	switch {
	case len(affected) > 0:
		who = "affected Istio pods: " + nameList(affected, 8)
	case len(pods) > 0:
		who = "the Istio pods analysed exclude it through annotations, but every pod without them is affected"
	default:
		who = "every Istio pod is affected"
	}
	f := Finding{Objects: objects(objs...)}
	if len(lost) > 0 {
		f.Code, f.Severity = conditions.FindingPortCollision, conditions.SeverityError
		f.Message = fmt.Sprintf("%s: connections to %s never reach them; a client that does not speak HTTP (Redis, MySQL, raw TCP) gets \"HTTP/1.1 400 Bad Request\" from the proxy (seed 003); %s. Fix with one of the commands given: a ServiceEntry with protocol TCP for the destination, an excludeOutboundIPRanges annotation on the workloads, declaring the Service port TCP, or a Service with endpoints for the external server",
			head, nameList(whats, 6), who)
	} else {
		f.Code, f.Severity = conditions.FindingWellKnownPortCollision, conditions.SeverityWarning
		f.Message = fmt.Sprintf("%s: port %d is %s's, and a connection from an Istio pod to a %s outside the mesh on that port would be answered by the proxy (\"HTTP/1.1 400 Bad Request\", seed 003) unless something more specific claims it; %s. Declare the external server with a ServiceEntry, exclude it with an annotation, or declare the Service port TCP (commands given)",
			head, l.Port, server, server, who)
	}
	f.Fixes = istioFixes(in, l, prefixes, server, workloads, order)
	return f
}

// istioFixes renders seed 003's fixes for one colliding Service port, ready to run: the
// addresses are the swallowed destinations when known, a placeholder otherwise.
func istioFixes(in IstioAnalysisInput, l Listener, prefixes []netip.Prefix, server string, workloads map[string]*corev1.Pod, order []string) []string {
	port := l.Port
	addrs := make([]string, len(prefixes))
	for i, p := range prefixes {
		addrs[i] = p.String()
	}
	known := len(addrs) > 0
	if !known {
		addrs = []string{"<address of the external server>/32"}
	}
	ns := l.Service.Namespace
	if len(order) > 0 {
		ns = workloads[order[0]].Namespace
	}
	label := "tcp"
	if server != "" {
		label = strings.ToLower(strings.Fields(server)[0])
	}
	name := fmt.Sprintf("external-%s-%d", label, port)
	var b strings.Builder
	fmt.Fprintf(&b, "# 1. Declare the external server; its listener is more specific than 0.0.0.0:%d (resolution NONE passes connections on to the address dialled)\n", port)
	fmt.Fprintf(&b, "kubectl apply -f - <<'EOF'\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: %s\n  namespace: %s\nspec:\n  hosts:\n  - %s.external\n  addresses:\n", name, ns, name)
	for _, a := range addrs {
		fmt.Fprintf(&b, "  - %s\n", a)
	}
	fmt.Fprintf(&b, "  ports:\n  - number: %d\n    name: tcp-%d\n    protocol: TCP\n  resolution: NONE\n  location: MESH_EXTERNAL\nEOF", port, port)
	fixes := []string{b.String()}

	b.Reset()
	key, value := istio.AnnotationExcludeOutboundIPRanges, strings.Join(addrs, ",")
	if !known {
		key, value = istio.AnnotationExcludeOutboundPorts, strconv.Itoa(int(port))
		fmt.Fprintf(&b, "# 2. Take port %d away from the sidecar in the workloads that call the external server (their calls to Service %s/%s on %d then bypass the sidecar too); mesh-wide: the injector value global.proxy.excludeOutboundPorts", port, l.Service.Namespace, l.Service.Name, port)
	} else {
		b.WriteString("# 2. Take the external addresses away from the sidecar (no mesh features for them); mesh-wide: the injector value global.proxy.excludeIPRanges")
	}
	if len(order) == 0 {
		fmt.Fprintf(&b, "\nkubectl patch deployment <name> -n <namespace> --type merge -p '{\"spec\":{\"template\":{\"metadata\":{\"annotations\":{%q:%q}}}}}'", key, value)
	}
	for _, k := range order {
		p := workloads[k]
		v := value
		if old := strings.TrimSpace(p.Annotations[key]); old != "" {
			v = old + "," + value
		}
		w := drift.WorkloadOf(p)
		if !w.Restartable() {
			fmt.Fprintf(&b, "\n# pod %s/%s belongs to no Deployment, StatefulSet or DaemonSet: add %s: %q to its manifest's annotations and recreate it", p.Namespace, p.Name, key, v)
			continue
		}
		fmt.Fprintf(&b, "\nkubectl patch %s/%s -n %s --type merge -p '{\"spec\":{\"template\":{\"metadata\":{\"annotations\":{%q:%q}}}}}'", strings.ToLower(w.Kind), w.Name, p.Namespace, key, v)
	}
	fixes = append(fixes, b.String())

	idx := slices.IndexFunc(serviceOf(in, l).Spec.Ports, func(p corev1.ServicePort) bool { return p.Port == port })
	fixes = append(fixes, fmt.Sprintf("# 3. If Service %s/%s does not serve HTTP on %d, declare the port TCP: it then listens on its ClusterIP only (appProtocol wins over the port name; renaming the port to tcp-%d does the same)\nkubectl patch service %s -n %s --type json -p '[{\"op\":\"add\",\"path\":\"/spec/ports/%d/appProtocol\",\"value\":\"tcp\"}]'",
		l.Service.Namespace, l.Service.Name, port, port, l.Service.Name, l.Service.Namespace, idx))

	var ips []string
	fam := ipFamily(prefixes)
	for _, p := range prefixes {
		if p.IsSingleIP() && p.Addr().Is6() == (fam == 6) {
			ips = append(ips, p.Addr().String())
		}
	}
	if len(ips) > 0 {
		b.Reset()
		fmt.Fprintf(&b, "# 4. Or give the external server a Service of its own and have clients dial its name: its TCP listener is on its ClusterIP, and the endpoints below are where it sends them\n")
		fmt.Fprintf(&b, "kubectl apply -f - <<'EOF'\napiVersion: v1\nkind: Service\nmetadata:\n  name: %s\n  namespace: %s\nspec:\n  ports:\n  - name: tcp-%d\n    protocol: TCP\n    port: %d\n    targetPort: %d\n---\n", name, ns, port, port, port)
		fmt.Fprintf(&b, "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: %s-1\n  namespace: %s\n  labels:\n    kubernetes.io/service-name: %s\naddressType: IPv%d\nports:\n- name: tcp-%d\n  protocol: TCP\n  port: %d\nendpoints:\n", name, ns, name, fam, port, port)
		for _, ip := range ips {
			fmt.Fprintf(&b, "- addresses:\n  - %q\n", ip)
		}
		b.WriteString("EOF")
		fixes = append(fixes, b.String())
	}
	return fixes
}

func ipFamily(ps []netip.Prefix) int {
	if len(ps) > 0 && ps[0].Addr().Is6() {
		return 6
	}
	return 4
}

func serviceOf(in IstioAnalysisInput, l Listener) *corev1.Service {
	for i := range in.Services {
		if s := &in.Services[i]; s.Namespace == l.Service.Namespace && s.Name == l.Service.Name {
			return s
		}
	}
	return &corev1.Service{}
}
