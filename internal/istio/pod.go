package istio

import (
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/meshkeeper/meshkeeper/internal/text"
)

// Shape is how Istio set up a pod's redirection.
type Shape uint8

const (
	// NotIstio: the pod carries nothing Istio injects.
	NotIstio Shape = iota
	// InitContainer: istio-init ran istio-iptables with the arguments in the pod spec.
	InitContainer
	// CNI: the istio-cni node agent wrote the rules from the pod's annotations when the pod's
	// sandbox was created; istio-validation (or istio-init with --skip-rule-apply) only checks.
	CNI
	// NoRedirection: the pod has the proxy but nothing that redirects traffic to it.
	NoRedirection
)

// Injected reports whether Istio's injector handled the pod: it records its work in the
// sidecar.istio.io/status annotation, and the proxy container is there (as a container, or as a
// native sidecar among the init containers).
func Injected(pod *corev1.Pod) bool {
	if _, ok := pod.Annotations[AnnotationStatus]; ok {
		return true
	}
	return ProxyContainer(pod) != nil
}

// ProxyContainer is the pod's istio-proxy, nil when it has none.
func ProxyContainer(pod *corev1.Pod) *corev1.Container {
	if c := container(pod.Spec.Containers, ProxyContainerName); c != nil {
		return c
	}
	return container(pod.Spec.InitContainers, ProxyContainerName)
}

func container(cs []corev1.Container, name string) *corev1.Container {
	for i := range cs {
		if cs[i].Name == name {
			return &cs[i]
		}
	}
	return nil
}

// RedirectionContainer is the init container that applied (istio-init) or checked
// (istio-validation) the pod's rules, and the shape it implies.
func RedirectionContainer(pod *corev1.Pod) (*corev1.Container, Shape) {
	if c := container(pod.Spec.InitContainers, InitContainerName); c != nil {
		if skipsRules(c) {
			return c, CNI
		}
		return c, InitContainer
	}
	if c := container(pod.Spec.InitContainers, ValidationContainerName); c != nil {
		return c, CNI
	}
	if Injected(pod) {
		return nil, NoRedirection
	}
	return nil, NotIstio
}

func skipsRules(c *corev1.Container) bool {
	for _, part := range [2][]string{c.Command, c.Args} {
		for _, a := range part {
			if a == "--skip-rule-apply" || strings.HasPrefix(a, "--skip-rule-apply=") && a != "--skip-rule-apply=false" {
				return true
			}
		}
	}
	return false
}

// Argv is what a container runs: its command followed by its args.
func Argv(c *corev1.Container) []string {
	return append(append(make([]string, 0, len(c.Command)+len(c.Args)), c.Command...), c.Args...)
}

// Revision is the control-plane revision that injected the pod ("default" for the unnamed one).
func Revision(pod *corev1.Pod) string {
	if rev := pod.Annotations[LabelRevision]; rev != "" {
		return rev
	}
	if rev := pod.Labels[LabelRevision]; rev != "" {
		return rev
	}
	return DefaultRevision
}

// ProxyUID is the UID the pod's proxy runs as: the injector sets the same value in the proxy's
// security context and in istio-iptables' -u, so rules naming another UID would loop the
// proxy's own traffic back to itself.
func ProxyUID(pod *corev1.Pod) int64 {
	if c := ProxyContainer(pod); c != nil && c.SecurityContext != nil && c.SecurityContext.RunAsUser != nil && *c.SecurityContext.RunAsUser != 0 {
		return *c.SecurityContext.RunAsUser
	}
	return DefaultProxyUID
}

// InjectorAnnotations are the annotations the injector writes on a pod in CNI mode, for the
// CNI plugin to render rules from: the pod's own value where it has one, the injector's value
// otherwise. Only keys the template writes are returned.
func InjectorAnnotations(v Values, ann map[string]string) map[string]string {
	out := map[string]string{}
	get := func(key, def string) string {
		if val, ok := ann[key]; ok {
			return val
		}
		return def
	}
	mode := get(AnnotationInterceptionMode, v.InterceptionMode)
	if mode == "" {
		mode = "REDIRECT"
	}
	out[AnnotationInterceptionMode] = mode
	if val := get(AnnotationIncludeOutboundIPRanges, v.IncludeIPRanges); val != "" {
		out[AnnotationIncludeOutboundIPRanges] = val
	}
	if val := get(AnnotationExcludeOutboundIPRanges, v.ExcludeIPRanges); val != "" {
		out[AnnotationExcludeOutboundIPRanges] = val
	}
	out[AnnotationIncludeInboundPorts] = get(AnnotationIncludeInboundPorts, v.IncludeInboundPorts)
	out[AnnotationExcludeInboundPorts] = withStatusPort(get(AnnotationStatusPort, v.StatusPort), get(AnnotationExcludeInboundPorts, v.ExcludeInboundPorts))
	if _, ok := ann[AnnotationIncludeOutboundPorts]; ok || v.IncludeOutboundPorts != "" {
		out[AnnotationIncludeOutboundPorts] = get(AnnotationIncludeOutboundPorts, v.IncludeOutboundPorts)
	}
	if _, ok := ann[AnnotationExcludeOutboundPorts]; ok || v.ExcludeOutboundPorts != "" {
		out[AnnotationExcludeOutboundPorts] = get(AnnotationExcludeOutboundPorts, v.ExcludeOutboundPorts)
	}
	for _, key := range []string{AnnotationKubevirtInterfaces, AnnotationRerouteInterfaces, AnnotationExcludeInterfaces} {
		if val := ann[key]; val != "" {
			out[key] = val
		}
	}
	return out
}

// withStatusPort appends the status port to a port list unless listed or disabled ("0"), the
// way the injection template does.
func withStatusPort(status, ports string) string {
	status = strings.TrimSpace(status)
	if status == "" || status == "0" {
		return ports
	}
	kept := elements(ports)
	for _, p := range kept {
		if p == status {
			return ports
		}
	}
	return strings.Join(append(kept, status), ",")
}

// CNISettings are the rules the istio-cni plugin renders from a pod's annotations: the
// annotation where present, the plugin's default otherwise (capture everything, exclude the
// status port outbound and inbound), and the proxy's own ports always excluded inbound.
func CNISettings(ann map[string]string, proxyUID int64) (Settings, error) {
	s := DefaultSettings()
	if err := checkProxyUID(proxyUID); err != nil {
		return s, err
	}
	s.ProxyUIDs = []int64{proxyUID}
	get := func(key, def string) string {
		if val, ok := ann[key]; ok {
			return val
		}
		return def
	}
	var err error
	fail := func(key string, e error) {
		if e != nil && err == nil {
			err = &AnnotationError{Key: key, Value: ann[key], Msg: e.Error()}
		}
	}
	// The plugin's default for both port exclusion lists is the default status port, whatever
	// the pod's status port annotation says.
	status := strconv.Itoa(int(DefaultStatusPort))
	s.Interception, _ = ParseInterceptionMode(get(AnnotationInterceptionMode, "REDIRECT"))
	if m := get(AnnotationInterceptionMode, "REDIRECT"); m != "REDIRECT" && m != "TPROXY" {
		fail(AnnotationInterceptionMode, errInterception(m))
	}
	var e error
	s.OutboundIPRanges, e = parseIncludeRanges(get(AnnotationIncludeOutboundIPRanges, "*"))
	fail(AnnotationIncludeOutboundIPRanges, e)
	s.ExcludeOutboundIPRanges, e = parseRanges(get(AnnotationExcludeOutboundIPRanges, ""))
	fail(AnnotationExcludeOutboundIPRanges, e)
	s.InboundPorts, e = parseIncludePorts(get(AnnotationIncludeInboundPorts, "*"))
	fail(AnnotationIncludeInboundPorts, e)
	s.ExcludeInboundPorts, e = parsePorts(get(AnnotationExcludeInboundPorts, status) + ",15020,15021,15090")
	fail(AnnotationExcludeInboundPorts, e)
	s.OutboundPorts, e = parsePorts(get(AnnotationIncludeOutboundPorts, ""))
	fail(AnnotationIncludeOutboundPorts, e)
	s.ExcludeOutboundPorts, e = parsePorts(get(AnnotationExcludeOutboundPorts, status))
	fail(AnnotationExcludeOutboundPorts, e)
	if v, ok := ann[AnnotationRerouteInterfaces]; ok {
		s.RerouteInterfaces, e = parseInterfaces(v)
		fail(AnnotationRerouteInterfaces, e)
	} else {
		s.RerouteInterfaces, e = parseInterfaces(ann[AnnotationKubevirtInterfaces])
		fail(AnnotationKubevirtInterfaces, e)
	}
	s.ExcludeInterfaces, e = parseInterfaces(ann[AnnotationExcludeInterfaces])
	fail(AnnotationExcludeInterfaces, e)
	return s, err
}

// MaxID is the largest user or group ID a pod can run as (Kubernetes' limit for runAsUser).
const MaxID = 1<<31 - 1

// checkProxyUID refuses a proxy UID no process can run as: a pod file read offline is not
// validated by an API server, and rules owning a negative UID mean nothing to iptables.
func checkProxyUID(uid int64) error {
	if uid < 0 || uid > MaxID {
		return fmt.Errorf("proxy UID %d (the istio-proxy container's runAsUser) is not a user ID (0-%d)", uid, MaxID)
	}
	return nil
}

// AnnotationError is an annotation the CNI plugin cannot read.
type AnnotationError struct {
	Key, Value, Msg string
}

func (e *AnnotationError) Error() string {
	return "annotation " + e.Key + "=" + strconv.Quote(text.Truncate(e.Value, 67)) + ": " + e.Msg
}
