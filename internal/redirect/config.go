package redirect

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Pod annotations that extend the mesh-wide exclusion lists for one pod. The names are OSM's, so
// existing manifests keep working.
const (
	AnnotationOutboundPortExclusionList    = "openservicemesh.io/outbound-port-exclusion-list"
	AnnotationInboundPortExclusionList     = "openservicemesh.io/inbound-port-exclusion-list"
	AnnotationOutboundIPRangeExclusionList = "openservicemesh.io/outbound-ip-range-exclusion-list"
	AnnotationOutboundIPRangeInclusionList = "openservicemesh.io/outbound-ip-range-inclusion-list"
)

// ExclusionAnnotations are the pod annotations Effective reads, in List order: everything a pod
// contributes to its own rules. Callers that reuse a rendering for pods whose values of these
// annotations are equal key on exactly this list.
var ExclusionAnnotations = [...]string{AnnotationOutboundIPRangeExclusionList, AnnotationOutboundIPRangeInclusionList,
	AnnotationOutboundPortExclusionList, AnnotationInboundPortExclusionList}

// Ports and identities the sidecar relies on. They are fixed by the proxy bootstrap, so they are
// constants rather than settings.
const (
	ProxyUID             uint32 = 1500
	OutboundListenerPort uint16 = 15001
	InboundListenerPort  uint16 = 15003
	AdminPort            uint16 = 15000
	MetricsPort          uint16 = 15010
	LivenessProbePort    uint16 = 15901
	ReadinessProbePort   uint16 = 15902
	StartupProbePort     uint16 = 15903
	HealthcheckPort      uint16 = 15904
)

// Limits keep a single pod's rule set small enough to apply quickly and to read in
// `kubectl describe`; they are far above anything seen in practice.
const (
	MaxIPRanges        = 256
	MaxPorts           = 256
	MaxInterfaces      = 32
	MaxAnnotationBytes = 8192
)

// LocalProxyMode says how the sidecar reaches the application container.
type LocalProxyMode string

const (
	// LocalProxyModeLocalhost sends sidecar-to-app traffic to 127.0.0.1 (OSM's default).
	LocalProxyModeLocalhost LocalProxyMode = "Localhost"
	// LocalProxyModePodIP rewrites sidecar-to-localhost traffic to the pod IP, for applications
	// that listen on the pod IP only.
	LocalProxyModePodIP LocalProxyMode = "PodIP"
)

// MeshSettings are the mesh-wide inputs exactly as written in MeshConfig spec, not yet validated.
// The type is independent of the API package so that this package stays usable from the init
// binary and the CLI without pulling in the CRD types.
type MeshSettings struct {
	OutboundIPRangeExclusionList  []string
	OutboundIPRangeInclusionList  []string
	OutboundPortExclusionList     []int
	InboundPortExclusionList      []int
	NetworkInterfaceExclusionList []string
	LocalProxyMode                string
}

// Config is the effective redirection configuration of one pod: merged, validated and
// canonical. Lists keep the merge order because that is the order rules are rendered in.
type Config struct {
	OutboundIPRangeExclusions  []netip.Prefix
	OutboundIPRangeInclusions  []netip.Prefix
	OutboundPortExclusions     []uint16
	InboundPortExclusions      []uint16
	NetworkInterfaceExclusions []string
	LocalProxyMode             LocalProxyMode

	ProxyUID             uint32
	OutboundListenerPort uint16
	InboundListenerPort  uint16
	AdminPort            uint16
	MetricsPort          uint16
	ProbePorts           []uint16
	HealthcheckPort      uint16

	// inputs are what the merged lists were read from, kept so that SourceOf can say who asked
	// for a value. Only drift reports and diagnose ask, so nothing is worked out in advance.
	inputs configInputs
}

// configInputs are Effective's inputs as given: slice headers and strings, no copies.
type configInputs struct {
	mesh        MeshSettings
	annotations [4]string // values of the annotations of the four lists, in List order
}

// The MeshConfig fields under spec.traffic that hold the merged lists; Source and SourceOf name
// them so that reports point at the exact field.
const (
	ListOutboundIPRangeExclusions = "outboundIPRangeExclusionList"
	ListOutboundIPRangeInclusions = "outboundIPRangeInclusionList"
	ListOutboundPortExclusions    = "outboundPortExclusionList"
	ListInboundPortExclusions     = "inboundPortExclusionList"
)

// Lists only Istio has; SourceOf of an OSM Config knows nothing of them.
const (
	ListOutboundPortInclusions = "outboundPortInclusions"
	ListInboundPortInclusions  = "inboundPortInclusions"
	ListInterfaceExclusions    = "interfaceExclusions"
	ListRerouteInterfaces      = "rerouteInterfaces"
)

// Desired is what a pod's redirection should be, and who asked for each value. The OSM
// configuration (Config) and Istio's (internal/istio) both provide it, so drift reports and
// diagnose speak of either mesh's pods the same way.
type Desired interface {
	Exclusions() Exclusions
	SourceOf(list, value string) Source
}

// Source says who asked for one value of the effective configuration. Keeping it with the value
// lets a report send a person to the MeshConfig or to the workload without reading either again.
type Source struct {
	// MeshConfigField is the path of the mesh-wide setting that lists the value (spec.traffic.<list>
	// of the MeshConfig, or global.proxy.<value> of Istio's injector values), empty otherwise.
	MeshConfigField string
	// Annotation is the pod annotation listing the value, empty when the pod does not.
	Annotation string
	// Spelled is the value as written, the MeshConfig's spelling when both list it: a range
	// written 10.0.0.10/24 is effective as 10.0.0.0/24 but only the first can be found with grep.
	Spelled string
	// Builtin says why the mesh adds the value by itself, for values nobody configured (Istio's
	// injection template always excludes its own ports).
	Builtin string
}

// Known reports whether anybody asked for the value.
func (s Source) Known() bool { return s.MeshConfigField != "" || s.Annotation != "" || s.Builtin != "" }

// SourceOf returns who asked for value (a canonical CIDR or a decimal port) in list (one of the
// List constants); the zero Source when nobody did. It reads the inputs the way Effective does,
// so a value Effective refused has no source.
func (c Config) SourceOf(list, value string) Source {
	var src Source
	in := c.inputs
	var mesh []string
	var ann string
	var canon func(string) (string, bool)
	switch list {
	case ListOutboundIPRangeExclusions:
		mesh, ann, canon = in.mesh.OutboundIPRangeExclusionList, AnnotationOutboundIPRangeExclusionList, canonPrefix
	case ListOutboundIPRangeInclusions:
		mesh, ann, canon = in.mesh.OutboundIPRangeInclusionList, AnnotationOutboundIPRangeInclusionList, canonPrefix
	case ListOutboundPortExclusions:
		mesh, ann, canon = portTexts(in.mesh.OutboundPortExclusionList), AnnotationOutboundPortExclusionList, canonPort
	case ListInboundPortExclusions:
		mesh, ann, canon = portTexts(in.mesh.InboundPortExclusionList), AnnotationInboundPortExclusionList, canonPort
	default:
		return src
	}
	for _, raw := range mesh {
		if v, ok := canon(strings.TrimSpace(raw)); ok && v == value {
			src.MeshConfigField = trafficPath.Child(list).String()
			src.Spelled = strings.TrimSpace(raw)
			break
		}
	}
	for _, elem := range strings.Split(in.annotations[listIndex(list)], ",") {
		elem = strings.TrimSpace(elem)
		if v, ok := canon(elem); ok && v == value {
			src.Annotation = ann
			if src.Spelled == "" {
				src.Spelled = elem
			}
			break
		}
	}
	return src
}

// PrefixSource is SourceOf for a range.
func (c Config) PrefixSource(list string, p netip.Prefix) Source { return c.SourceOf(list, p.String()) }

// PortSource is SourceOf for a port.
func (c Config) PortSource(list string, port uint16) Source {
	return c.SourceOf(list, strconv.Itoa(int(port)))
}

func listIndex(list string) int {
	switch list {
	case ListOutboundIPRangeExclusions:
		return 0
	case ListOutboundIPRangeInclusions:
		return 1
	case ListOutboundPortExclusions:
		return 2
	}
	return 3
}

func canonPrefix(s string) (string, bool) {
	p, err := ParsePrefix(s)
	return p.String(), err == nil
}

func canonPort(s string) (string, bool) {
	n, err := strconv.Atoi(s)
	if err != nil || checkPort(n) != nil {
		return "", false
	}
	return strconv.Itoa(n), true
}

func portTexts(ports []int) []string {
	out := make([]string, len(ports))
	for i, n := range ports {
		out[i] = strconv.Itoa(n)
	}
	return out
}

// baseConfig carries the fixed facts; Effective fills in the sets.
func baseConfig() Config {
	return Config{
		LocalProxyMode:       LocalProxyModeLocalhost,
		ProxyUID:             ProxyUID,
		OutboundListenerPort: OutboundListenerPort,
		InboundListenerPort:  InboundListenerPort,
		AdminPort:            AdminPort,
		MetricsPort:          MetricsPort,
		ProbePorts:           []uint16{LivenessProbePort, ReadinessProbePort, StartupProbePort},
		HealthcheckPort:      HealthcheckPort,
	}
}

var (
	trafficPath = field.NewPath("spec", "traffic")
	sidecarPath = field.NewPath("spec", "sidecar")
	annotations = field.NewPath("metadata", "annotations")
)

// Effective merges mesh-wide settings with one pod's annotations the way OSM did: ports global
// first then pod, IP ranges pod first then global, both de-duplicated; interfaces come from the
// mesh only. Every invalid value is reported; the returned Config is only meaningful when the
// error list is empty.
func Effective(global MeshSettings, podAnnotations map[string]string) (Config, field.ErrorList) {
	cfg := baseConfig()
	cfg.inputs.mesh = global
	for i, name := range ExclusionAnnotations {
		cfg.inputs.annotations[i] = podAnnotations[name]
	}
	var errs field.ErrorList

	gExcl, e := parsePrefixList(global.OutboundIPRangeExclusionList, trafficPath.Child(ListOutboundIPRangeExclusions))
	errs = append(errs, e...)
	gIncl, e := parsePrefixList(global.OutboundIPRangeInclusionList, trafficPath.Child(ListOutboundIPRangeInclusions))
	errs = append(errs, e...)
	gOutPorts, e := parseIntPorts(global.OutboundPortExclusionList, trafficPath.Child(ListOutboundPortExclusions))
	errs = append(errs, e...)
	gInPorts, e := parseIntPorts(global.InboundPortExclusionList, trafficPath.Child(ListInboundPortExclusions))
	errs = append(errs, e...)
	ifaces, e := parseInterfaces(global.NetworkInterfaceExclusionList, trafficPath.Child("networkInterfaceExclusionList"))
	errs = append(errs, e...)
	mode, e := parseMode(global.LocalProxyMode, sidecarPath.Child("localProxyMode"))
	errs = append(errs, e...)

	pExcl, e := annotationPrefixes(podAnnotations, AnnotationOutboundIPRangeExclusionList)
	errs = append(errs, e...)
	pIncl, e := annotationPrefixes(podAnnotations, AnnotationOutboundIPRangeInclusionList)
	errs = append(errs, e...)
	pOutPorts, e := annotationPorts(podAnnotations, AnnotationOutboundPortExclusionList)
	errs = append(errs, e...)
	pInPorts, e := annotationPorts(podAnnotations, AnnotationInboundPortExclusionList)
	errs = append(errs, e...)

	cfg.OutboundIPRangeExclusions = mergePrefixes(pExcl, gExcl)
	cfg.OutboundIPRangeInclusions = mergePrefixes(pIncl, gIncl)
	cfg.OutboundPortExclusions = mergePorts(gOutPorts, pOutPorts)
	cfg.InboundPortExclusions = mergePorts(gInPorts, pInPorts)
	cfg.NetworkInterfaceExclusions = ifaces
	cfg.LocalProxyMode = mode

	errs = append(errs, checkMergedSize(cfg)...)
	return cfg, errs
}

// ValidateSettings checks mesh-wide settings on their own, for the MeshConfig admission webhook.
// fldPath is the path of the MeshConfig spec (usually field.NewPath("spec")).
func ValidateSettings(s MeshSettings, fldPath *field.Path) field.ErrorList {
	if fldPath == nil {
		fldPath = field.NewPath("spec")
	}
	traffic := fldPath.Child("traffic")
	var errs field.ErrorList
	_, e := parsePrefixList(s.OutboundIPRangeExclusionList, traffic.Child(ListOutboundIPRangeExclusions))
	errs = append(errs, e...)
	_, e = parsePrefixList(s.OutboundIPRangeInclusionList, traffic.Child(ListOutboundIPRangeInclusions))
	errs = append(errs, e...)
	_, e = parseIntPorts(s.OutboundPortExclusionList, traffic.Child(ListOutboundPortExclusions))
	errs = append(errs, e...)
	_, e = parseIntPorts(s.InboundPortExclusionList, traffic.Child(ListInboundPortExclusions))
	errs = append(errs, e...)
	_, e = parseInterfaces(s.NetworkInterfaceExclusionList, traffic.Child("networkInterfaceExclusionList"))
	errs = append(errs, e...)
	_, e = parseMode(s.LocalProxyMode, fldPath.Child("sidecar", "localProxyMode"))
	errs = append(errs, e...)
	return errs
}

// ValidateAnnotations checks the redirection annotations of a pod, for the pod admission
// webhook. Other annotations are ignored.
func ValidateAnnotations(podAnnotations map[string]string) field.ErrorList {
	var errs field.ErrorList
	_, e := annotationPrefixes(podAnnotations, AnnotationOutboundIPRangeExclusionList)
	errs = append(errs, e...)
	_, e = annotationPrefixes(podAnnotations, AnnotationOutboundIPRangeInclusionList)
	errs = append(errs, e...)
	_, e = annotationPorts(podAnnotations, AnnotationOutboundPortExclusionList)
	errs = append(errs, e...)
	_, e = annotationPorts(podAnnotations, AnnotationInboundPortExclusionList)
	errs = append(errs, e...)
	return errs
}

func checkMergedSize(cfg Config) field.ErrorList {
	var errs field.ErrorList
	for _, l := range [...]struct {
		n, limit int
		name     string
	}{
		{len(cfg.OutboundIPRangeExclusions), MaxIPRanges, "outboundIPRangeExclusionList"},
		{len(cfg.OutboundIPRangeInclusions), MaxIPRanges, "outboundIPRangeInclusionList"},
		{len(cfg.OutboundPortExclusions), MaxPorts, "outboundPortExclusionList"},
		{len(cfg.InboundPortExclusions), MaxPorts, "inboundPortExclusionList"},
	} {
		if l.n > l.limit {
			errs = append(errs, field.TooMany(trafficPath.Child(l.name), l.n, l.limit))
		}
	}
	return errs
}

// ParsePrefix parses one CIDR the way every input of this package does: IPv4 or IPv6, a prefix
// length is required, IPv4-mapped IPv6 and zones are refused, and host bits are cleared.
func ParsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		return netip.Prefix{}, fmt.Errorf("must be a CIDR with a prefix length, such as 10.0.0.0/8")
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("must be a valid IPv4 or IPv6 CIDR, such as 10.0.0.0/8 or fd00::/8")
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("IPv4-mapped IPv6 ranges are not supported; write the IPv4 CIDR")
	}
	return p.Masked(), nil
}

func parsePrefixList(list []string, path *field.Path) ([]netip.Prefix, field.ErrorList) {
	var errs field.ErrorList
	if len(list) > MaxIPRanges {
		return nil, field.ErrorList{field.TooMany(path, len(list), MaxIPRanges)}
	}
	out := make([]netip.Prefix, 0, len(list))
	for i, s := range list {
		p, err := ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			errs = append(errs, field.Invalid(path.Index(i), s, err.Error()))
			continue
		}
		out = append(out, p)
	}
	return out, errs
}

func checkPort(n int) error {
	if n < 1 || n > 65535 {
		return fmt.Errorf("port must be between 1 and 65535")
	}
	return nil
}

func parseIntPorts(list []int, path *field.Path) ([]uint16, field.ErrorList) {
	return parseList(list, MaxPorts, path, false, func(n int) (uint16, string) {
		if err := checkPort(n); err != nil {
			return 0, err.Error()
		}
		return uint16(n), ""
	})
}

// parseList checks a settings list: at most limit entries, each one accepted by parse, which
// returns its value or why it is invalid; with dedup a repeated value is kept once.
func parseList[T any, U comparable](list []T, limit int, path *field.Path, dedup bool, parse func(T) (U, string)) ([]U, field.ErrorList) {
	if len(list) > limit {
		return nil, field.ErrorList{field.TooMany(path, len(list), limit)}
	}
	var errs field.ErrorList
	out := make([]U, 0, len(list))
	for i, x := range list {
		v, why := parse(x)
		switch {
		case why != "":
			errs = append(errs, field.Invalid(path.Index(i), x, why))
		case !dedup || !slices.Contains(out, v):
			out = append(out, v)
		}
	}
	return out, errs
}

// ValidInterfaceName reports whether s is acceptable as a Linux interface name in a rule. The
// character set is deliberately narrower than the kernel's so that a name can never carry
// anything a shell or iptables would interpret.
func ValidInterfaceName(s string) bool {
	if len(s) < 1 || len(s) > 15 || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '.', c == '-':
		default:
			return false
		}
	}
	return true
}

func parseInterfaces(list []string, path *field.Path) ([]string, field.ErrorList) {
	return parseList(list, MaxInterfaces, path, true, func(s string) (string, string) {
		if !ValidInterfaceName(s) {
			return "", "interface name must be 1-15 characters of letters, digits, '_', '.' or '-' (and not '.' or '..')"
		}
		return s, ""
	})
}

func parseMode(s string, path *field.Path) (LocalProxyMode, field.ErrorList) {
	switch LocalProxyMode(s) {
	case "", LocalProxyModeLocalhost:
		return LocalProxyModeLocalhost, nil
	case LocalProxyModePodIP:
		return LocalProxyModePodIP, nil
	}
	return LocalProxyModeLocalhost, field.ErrorList{field.NotSupported(path, s, []string{string(LocalProxyModeLocalhost), string(LocalProxyModePodIP)})}
}

// splitAnnotation walks a comma list, tolerating spaces around elements. An empty value means
// an empty list; an empty element between commas is a mistake worth reporting.
func splitAnnotation(name, value string, each func(elem string) error) field.ErrorList {
	path := annotations.Key(name)
	if len(value) > MaxAnnotationBytes {
		return field.ErrorList{field.TooLong(path, "", MaxAnnotationBytes)}
	}
	if strings.TrimSpace(value) == "" {
		return nil
	}
	var errs field.ErrorList
	for rest := value; ; {
		elem, tail, more := strings.Cut(rest, ",")
		elem = strings.TrimSpace(elem)
		if elem == "" {
			errs = append(errs, field.Invalid(path, value, "empty element in comma-separated list"))
		} else if err := each(elem); err != nil {
			errs = append(errs, field.Invalid(path, elem, strconv.Quote(elem)+": "+err.Error()))
		}
		if !more {
			break
		}
		rest = tail
	}
	return errs
}

func annotationPrefixes(ann map[string]string, name string) ([]netip.Prefix, field.ErrorList) {
	value, ok := ann[name]
	if !ok {
		return nil, nil
	}
	var out []netip.Prefix
	errs := splitAnnotation(name, value, func(elem string) error {
		p, err := ParsePrefix(elem)
		if err != nil {
			return err
		}
		out = append(out, p)
		return nil
	})
	if len(out) > MaxIPRanges {
		errs = append(errs, field.TooMany(annotations.Key(name), len(out), MaxIPRanges))
	}
	return out, errs
}

func annotationPorts(ann map[string]string, name string) ([]uint16, field.ErrorList) {
	value, ok := ann[name]
	if !ok {
		return nil, nil
	}
	var out []uint16
	errs := splitAnnotation(name, value, func(elem string) error {
		n, err := strconv.Atoi(elem)
		if err != nil {
			return fmt.Errorf("port must be a decimal number between 1 and 65535")
		}
		if err := checkPort(n); err != nil {
			return err
		}
		out = append(out, uint16(n))
		return nil
	})
	if len(out) > MaxPorts {
		errs = append(errs, field.TooMany(annotations.Key(name), len(out), MaxPorts))
	}
	return out, errs
}

func mergePrefixes(first, second []netip.Prefix) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(first)+len(second))
	for _, l := range [2][]netip.Prefix{first, second} {
		for _, p := range l {
			if !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	return out
}

func mergePorts(first, second []uint16) []uint16 {
	out := make([]uint16, 0, len(first)+len(second))
	for _, l := range [2][]uint16{first, second} {
		for _, p := range l {
			if !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	return out
}

// Digest is a short, stable fingerprint of the exclusion sets (order-insensitive) and the local
// proxy mode. The injector stamps it on pods so the drift controller can skip pods whose
// configuration has not changed without parsing their rules.
func (c Config) Digest() string {
	ex := c.Exclusions()
	h := sha256.New()
	var buf []byte
	writeList := func(tag string, n int, item func(i int) []byte) {
		buf = append(buf[:0], tag...)
		buf = append(buf, '=')
		for i := 0; i < n; i++ {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, item(i)...)
		}
		buf = append(buf, '\n')
		h.Write(buf)
	}
	var tmp []byte
	writeList("xcidr", len(ex.OutboundIPRanges), func(i int) []byte { tmp = ex.OutboundIPRanges[i].AppendTo(tmp[:0]); return tmp })
	writeList("icidr", len(ex.OutboundIPRangeInclusions), func(i int) []byte {
		tmp = ex.OutboundIPRangeInclusions[i].AppendTo(tmp[:0])
		return tmp
	})
	writeList("oport", len(ex.OutboundPorts), func(i int) []byte { return strconv.AppendUint(tmp[:0], uint64(ex.OutboundPorts[i]), 10) })
	writeList("iport", len(ex.InboundPorts), func(i int) []byte { return strconv.AppendUint(tmp[:0], uint64(ex.InboundPorts[i]), 10) })
	writeList("iface", len(ex.Interfaces), func(i int) []byte { return []byte(ex.Interfaces[i]) })
	writeList("uid", 1, func(int) []byte { return strconv.AppendInt(tmp[:0], ex.ProxyUID, 10) })
	writeList("mode", 1, func(int) []byte { return []byte(ex.LocalProxyMode) })
	sum := h.Sum(nil)
	return hex.EncodeToString(sum[:8])
}
