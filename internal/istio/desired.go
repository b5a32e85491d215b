package istio

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// Pod annotations the injection template reads. Each replaces the matching injector value for
// that pod (it is not merged with it), even when empty.
const (
	AnnotationIncludeOutboundIPRanges = "traffic.sidecar.istio.io/includeOutboundIPRanges"
	AnnotationExcludeOutboundIPRanges = "traffic.sidecar.istio.io/excludeOutboundIPRanges"
	AnnotationIncludeInboundPorts     = "traffic.sidecar.istio.io/includeInboundPorts"
	AnnotationExcludeInboundPorts     = "traffic.sidecar.istio.io/excludeInboundPorts"
	AnnotationIncludeOutboundPorts    = "traffic.sidecar.istio.io/includeOutboundPorts"
	AnnotationExcludeOutboundPorts    = "traffic.sidecar.istio.io/excludeOutboundPorts"
	AnnotationKubevirtInterfaces      = "traffic.sidecar.istio.io/kubevirtInterfaces"
	AnnotationRerouteInterfaces       = "istio.io/reroute-virtual-interfaces"
	AnnotationExcludeInterfaces       = "traffic.sidecar.istio.io/excludeInterfaces"
	AnnotationStatusPort              = "status.sidecar.istio.io/port"
	AnnotationInterceptionMode        = "sidecar.istio.io/interceptionMode"
	// AnnotationStatus is written by the injector on every pod it injected.
	AnnotationStatus = "sidecar.istio.io/status"
)

// input is one istio-iptables input: the value used and where it came from.
type input struct {
	value      string
	annotation string // set when the pod's annotation decided it
	valuePath  string // the injector value it otherwise comes from
}

func pick(ann map[string]string, annotation, valuePath, value string) input {
	if v, ok := ann[annotation]; ok {
		return input{value: v, annotation: annotation, valuePath: valuePath}
	}
	return input{value: value, valuePath: valuePath}
}

// Desired is the redirection an Istio pod should have today: the injector's current values with
// the pod's annotations applied the way the injection template applies them. It implements
// redirect.Desired.
type Desired struct {
	Settings Settings
	inputs   map[string]input // by redirect.List* name
	status   input
	cni      bool
}

// ExpectedCNI is Expected for a pod set up by istio-cni: the injector writes its values into
// the pod's annotations (templateAnn are the workload's own, before injection) and the CNI
// plugin renders rules from those, with its own defaults and additions.
func ExpectedCNI(v Values, templateAnn map[string]string, proxyUID int64) (Desired, field.ErrorList) {
	d, errs := Expected(v, templateAnn, proxyUID)
	if len(errs) > 0 {
		return d, errs
	}
	s, err := CNISettings(InjectorAnnotations(v, templateAnn), proxyUID)
	if err != nil {
		return d, field.ErrorList{field.Invalid(field.NewPath("metadata", "annotations"), "", err.Error())}
	}
	d.Settings, d.cni = s, true
	return d, nil
}

// Expected works out a pod's settings from the injector values and the pod's annotations.
// proxyUID is the UID the pod's istio-proxy runs as (the injector derives both from the same
// setting, so the rules must let that UID through). Invalid values or annotations are returned
// with their path; the settings are then meaningless.
func Expected(v Values, ann map[string]string, proxyUID int64) (Desired, field.ErrorList) {
	d := Desired{Settings: DefaultSettings(), inputs: map[string]input{}}
	d.Settings.ProxyUIDs = []int64{proxyUID}
	var errs field.ErrorList
	if err := checkProxyUID(proxyUID); err != nil {
		errs = append(errs, field.Invalid(field.NewPath("spec", "containers").Key(ProxyContainerName).Child("securityContext", "runAsUser"), proxyUID, err.Error()))
	}
	path := func(in input) *field.Path {
		if in.annotation != "" {
			return field.NewPath("metadata", "annotations").Key(in.annotation)
		}
		return field.NewPath(InjectorValuesKey, strings.Split(in.valuePath, ".")...)
	}
	check := func(in input, err error) {
		if err != nil {
			errs = append(errs, field.Invalid(path(in), in.value, err.Error()))
		}
	}

	inc := pick(ann, AnnotationIncludeOutboundIPRanges, ValueIncludeIPRanges, v.IncludeIPRanges)
	d.inputs[redirect.ListOutboundIPRangeInclusions] = inc
	var err error
	d.Settings.OutboundIPRanges, err = parseIncludeRanges(inc.value)
	check(inc, err)

	exc := pick(ann, AnnotationExcludeOutboundIPRanges, ValueExcludeIPRanges, v.ExcludeIPRanges)
	d.inputs[redirect.ListOutboundIPRangeExclusions] = exc
	d.Settings.ExcludeOutboundIPRanges, err = parseRanges(exc.value)
	check(exc, err)

	inb := pick(ann, AnnotationIncludeInboundPorts, ValueIncludeInboundPorts, v.IncludeInboundPorts)
	d.inputs[redirect.ListInboundPortInclusions] = inb
	d.Settings.InboundPorts, err = parseIncludePorts(inb.value)
	check(inb, err)

	// The template always excludes 15090 and 15021, then the configured ports, then the status
	// port unless already listed.
	exin := pick(ann, AnnotationExcludeInboundPorts, ValueExcludeInboundPorts, v.ExcludeInboundPorts)
	d.inputs[redirect.ListInboundPortExclusions] = exin
	configured, err := parsePorts(exin.value)
	check(exin, err)
	d.status = pick(ann, AnnotationStatusPort, ValueStatusPort, v.StatusPort)
	d.Settings.ExcludeInboundPorts = append([]uint16{MetricsPort, HealthPort}, configured...)
	if sp := strings.TrimSpace(d.status.value); sp != "" && sp != "0" {
		p, err := parsePort(sp)
		check(d.status, err)
		if err == nil && !slices.Contains(configured, p) {
			d.Settings.ExcludeInboundPorts = append(d.Settings.ExcludeInboundPorts, p)
		}
	}

	inout := pick(ann, AnnotationIncludeOutboundPorts, ValueIncludeOutboundPorts, v.IncludeOutboundPorts)
	d.inputs[redirect.ListOutboundPortInclusions] = inout
	d.Settings.OutboundPorts, err = parsePorts(inout.value)
	check(inout, err)

	exout := pick(ann, AnnotationExcludeOutboundPorts, ValueExcludeOutboundPorts, v.ExcludeOutboundPorts)
	d.inputs[redirect.ListOutboundPortExclusions] = exout
	d.Settings.ExcludeOutboundPorts, err = parsePorts(exout.value)
	check(exout, err)

	// istio.io/reroute-virtual-interfaces wins over the older kubevirtInterfaces annotation.
	if _, ok := ann[AnnotationRerouteInterfaces]; ok {
		d.inputs[redirect.ListRerouteInterfaces] = input{value: ann[AnnotationRerouteInterfaces], annotation: AnnotationRerouteInterfaces}
	} else if _, ok := ann[AnnotationKubevirtInterfaces]; ok {
		d.inputs[redirect.ListRerouteInterfaces] = input{value: ann[AnnotationKubevirtInterfaces], annotation: AnnotationKubevirtInterfaces}
	}
	if in, ok := d.inputs[redirect.ListRerouteInterfaces]; ok {
		d.Settings.RerouteInterfaces, err = parseInterfaces(in.value)
		check(in, err)
	}
	if v, ok := ann[AnnotationExcludeInterfaces]; ok {
		in := input{value: v, annotation: AnnotationExcludeInterfaces}
		d.inputs[redirect.ListInterfaceExclusions] = in
		d.Settings.ExcludeInterfaces, err = parseInterfaces(v)
		check(in, err)
	}

	mode := pick(ann, AnnotationInterceptionMode, "", v.InterceptionMode)
	d.Settings.Interception, err = ParseInterceptionMode(mode.value)
	if err != nil {
		p := field.NewPath("metadata", "annotations").Key(AnnotationInterceptionMode)
		if mode.annotation == "" {
			p = field.NewPath(InjectorValuesKey, "global", "proxy", "interceptionMode")
		}
		errs = append(errs, field.Invalid(p, mode.value, err.Error()))
	}
	if d.Settings.Interception == redirect.InterceptTProxy {
		// The template runs TPROXY pods' rules with UID 1337 whatever the proxy's UID.
		d.Settings.ProxyUIDs = []int64{DefaultProxyUID}
	}
	return d, errs
}

// Exclusions implements redirect.Desired.
func (d Desired) Exclusions() redirect.Exclusions { return d.Settings.Exclusions() }

// SourceOf implements redirect.Desired: the pod annotation or the injector value the value was
// read from, or the template itself for the ports it always excludes.
func (d Desired) SourceOf(list, value string) redirect.Source {
	if list == redirect.ListInboundPortExclusions {
		switch value {
		case strconv.Itoa(int(MetricsPort)), strconv.Itoa(int(HealthPort)):
			return redirect.Source{Builtin: "Istio's injection template (the proxy's own port)", Spelled: value}
		}
		if in := d.status; strings.TrimSpace(in.value) == value && !listed(d.inputs[list].value, value) {
			return sourceOf(in, value)
		}
		if d.cni && value == strconv.Itoa(int(DefaultStatusPort)) && !listed(d.inputs[list].value, value) {
			return redirect.Source{Builtin: "istio-cni (always excludes the status port)", Spelled: value}
		}
	}
	if list == redirect.ListOutboundPortExclusions && d.cni && !listed(d.inputs[list].value, value) {
		return redirect.Source{Builtin: "istio-cni (excludes the status port outbound when the pod names no outbound port exclusions)", Spelled: value}
	}
	in, ok := d.inputs[list]
	if !ok || !listed(in.value, value) {
		return redirect.Source{}
	}
	return sourceOf(in, value)
}

func sourceOf(in input, value string) redirect.Source {
	if in.annotation != "" {
		return redirect.Source{Annotation: in.annotation, Spelled: value}
	}
	return redirect.Source{MeshConfigField: in.valuePath, Spelled: value}
}

// listed reports whether list (as written) holds value, comparing ranges by meaning.
func listed(list, value string) bool {
	want, isPrefix := netip.ParsePrefix(value)
	for _, e := range elements(list) {
		if e == value {
			return true
		}
		if isPrefix == nil {
			if p, err := netip.ParsePrefix(e); err == nil && p.Masked() == want.Masked() {
				return true
			}
		}
	}
	return false
}
