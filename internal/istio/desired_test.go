package istio

import (
	"reflect"
	"strings"
	"testing"

	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// valuesJSON is the shape of the values key Istio's chart writes (trimmed to what matters).
const valuesJSON = `{
  "global": {
    "proxy": {
      "excludeIPRanges": "10.0.0.0/24",
      "excludeInboundPorts": "",
      "excludeOutboundPorts": "7000",
      "includeIPRanges": "*",
      "includeInboundPorts": "*",
      "includeOutboundPorts": "",
      "statusPort": 15020
    }
  },
  "pilot": {"cni": {"enabled": false}},
  "revision": ""
}`

func TestParseValues(t *testing.T) {
	v, err := ParseValues(valuesJSON)
	if err != nil {
		t.Fatal(err)
	}
	want := Values{IncludeIPRanges: "*", ExcludeIPRanges: "10.0.0.0/24", IncludeInboundPorts: "*", ExcludeOutboundPorts: "7000", StatusPort: "15020"}
	if v != want {
		t.Errorf("got %+v\nwant %+v", v, want)
	}
	if v, err := ParseValues(`{"global":{}}`); err != nil || v != DefaultValues() {
		t.Errorf("absent keys must keep the chart's defaults: %+v, %v", v, err)
	}
	if v, err := ParseValues(`{"pilot":{"cni":{"enabled":true}}}`); err != nil || !v.CNI {
		t.Errorf("pilot.cni.enabled: %+v, %v", v, err)
	}
	for in, msg := range map[string]string{
		`{"global":`: "key values is not valid JSON",
		`{"global":{"proxy":{"excludeIPRanges":["10.0.0.0/8"]}}}`: "values.global.proxy.excludeIPRanges: want a string or a number",
		`{"pilot":{"cni":{"enabled":"sometimes"}}}`:               "values.pilot.cni.enabled",
	} {
		if _, err := ParseValues(in); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("ParseValues(%s) = %v, want %q", in, err, msg)
		}
	}
}

func TestExpectedPrecedence(t *testing.T) {
	v, err := ParseValues(valuesJSON)
	if err != nil {
		t.Fatal(err)
	}
	// An annotation replaces the value, even an empty one; it is never merged.
	ann := map[string]string{
		AnnotationExcludeOutboundIPRanges: "192.168.0.0/16",
		AnnotationExcludeOutboundPorts:    "",
		AnnotationStatusPort:              "15030",
		AnnotationKubevirtInterfaces:      "old0",
		AnnotationRerouteInterfaces:       "net1",
	}
	d, errs := Expected(v, ann, 1337)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	s := d.Settings
	if !reflect.DeepEqual(s.ExcludeOutboundIPRanges, prefixes("192.168.0.0/16")) {
		t.Errorf("excluded ranges %v: the annotation must replace the value", s.ExcludeOutboundIPRanges)
	}
	if len(s.ExcludeOutboundPorts) != 0 {
		t.Errorf("excluded outbound ports %v: an empty annotation still replaces the value", s.ExcludeOutboundPorts)
	}
	if !reflect.DeepEqual(s.ExcludeInboundPorts, []uint16{15090, 15021, 15030}) {
		t.Errorf("excluded inbound ports %v, want the template's 15090,15021 and the annotated status port", s.ExcludeInboundPorts)
	}
	if !reflect.DeepEqual(s.RerouteInterfaces, []string{"net1"}) {
		t.Errorf("rerouted interfaces %v: istio.io/reroute-virtual-interfaces wins over kubevirtInterfaces", s.RerouteInterfaces)
	}

	cases := []struct {
		list, value string
		want        redirect.Source
	}{
		{redirect.ListOutboundIPRangeExclusions, "192.168.0.0/16", redirect.Source{Annotation: AnnotationExcludeOutboundIPRanges, Spelled: "192.168.0.0/16"}},
		{redirect.ListInboundPortExclusions, "15090", redirect.Source{Builtin: "Istio's injection template (the proxy's own port)", Spelled: "15090"}},
		{redirect.ListInboundPortExclusions, "15030", redirect.Source{Annotation: AnnotationStatusPort, Spelled: "15030"}},
		{redirect.ListOutboundIPRangeExclusions, "10.0.0.0/24", redirect.Source{}},
	}
	for _, tc := range cases {
		if got := d.SourceOf(tc.list, tc.value); got != tc.want {
			t.Errorf("SourceOf(%s, %s) = %+v, want %+v", tc.list, tc.value, got, tc.want)
		}
	}
	// Without annotations, every value comes from the ConfigMap.
	d, _ = Expected(v, nil, 1337)
	if got := d.SourceOf(redirect.ListOutboundIPRangeExclusions, "10.0.0.0/24"); got.MeshConfigField != ValueExcludeIPRanges {
		t.Errorf("source of 10.0.0.0/24 = %+v, want %s", got, ValueExcludeIPRanges)
	}
	if got := d.SourceOf(redirect.ListInboundPortExclusions, "15020"); got.MeshConfigField != ValueStatusPort {
		t.Errorf("source of 15020 = %+v, want %s", got, ValueStatusPort)
	}
}

func TestExpectedMatchesInjectedArgs(t *testing.T) {
	// What the injection template renders for a pod with these values and no annotations.
	v, _ := ParseValues(valuesJSON)
	d, errs := Expected(v, nil, 1337)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	args := []string{"istio-iptables", "-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT", "-i", "*",
		"-x", "10.0.0.0/24", "-b", "*", "-d", "15090,15021,15020", "-o", "7000", "--log_output_level=default:info"}
	s, err := ParseArgs(args)
	if err != nil {
		t.Fatal(err)
	}
	if diff := redirect.Diff(d.Exclusions(), s.Exclusions()); !diff.Empty() {
		t.Errorf("a freshly injected pod differs from its values:\n%s", diff)
	}
	// The same pod after the values changed (seed 003's fix applied mesh-wide afterwards).
	v.ExcludeIPRanges = "10.0.0.0/24,10.0.1.0/24"
	d, _ = Expected(v, nil, 1337)
	diff := redirect.Diff(d.Exclusions(), s.Exclusions())
	if got := diff.String(); got != "outbound IP range exclusions: missing 10.0.1.0/24\n" {
		t.Errorf("drift after a values change:\n%s", got)
	}
}

func TestExpectedErrorsNameThePath(t *testing.T) {
	v := DefaultValues()
	v.ExcludeIPRanges = "10.0.0.0/33"
	_, errs := Expected(v, map[string]string{AnnotationIncludeInboundPorts: "http"}, 1337)
	got := errs.ToAggregate().Error()
	for _, want := range []string{"values.global.proxy.excludeIPRanges", `metadata.annotations[traffic.sidecar.istio.io/includeInboundPorts]: Invalid value: "http"`} {
		if !strings.Contains(got, want) {
			t.Errorf("errors %q do not name %q", got, want)
		}
	}
}

func TestCNI(t *testing.T) {
	v, _ := ParseValues(valuesJSON)
	tmpl := map[string]string{AnnotationExcludeOutboundPorts: "6379"}
	injected := InjectorAnnotations(v, tmpl)
	want := map[string]string{
		AnnotationInterceptionMode:        "REDIRECT",
		AnnotationIncludeOutboundIPRanges: "*",
		AnnotationExcludeOutboundIPRanges: "10.0.0.0/24",
		AnnotationIncludeInboundPorts:     "*",
		AnnotationExcludeInboundPorts:     "15020",
		AnnotationExcludeOutboundPorts:    "6379",
	}
	if !reflect.DeepEqual(injected, want) {
		t.Errorf("InjectorAnnotations:\n got %v\nwant %v", injected, want)
	}
	actual, err := CNISettings(injected, 1337)
	if err != nil {
		t.Fatal(err)
	}
	d, errs := ExpectedCNI(v, tmpl, 1337)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if diff := redirect.Diff(d.Exclusions(), actual.Exclusions()); !diff.Empty() {
		t.Errorf("a fresh CNI pod differs from its values:\n%s", diff)
	}
	// Without an outbound port annotation the plugin excludes the status port outbound.
	s, _ := CNISettings(map[string]string{}, 1337)
	if !reflect.DeepEqual(s.ExcludeOutboundPorts, []uint16{15020}) {
		t.Errorf("CNI default outbound exclusions %v, want [15020]", s.ExcludeOutboundPorts)
	}
	d, _ = ExpectedCNI(DefaultValues(), nil, 1337)
	if src := d.SourceOf(redirect.ListOutboundPortExclusions, "15020"); src.Builtin == "" {
		t.Errorf("source of the CNI default 15020 = %+v, want the plugin named", src)
	}
	if _, err := CNISettings(map[string]string{AnnotationExcludeOutboundIPRanges: "10.0.0.0/8,nope"}, 1337); err == nil ||
		!strings.Contains(err.Error(), "annotation traffic.sidecar.istio.io/excludeOutboundIPRanges=") {
		t.Errorf("CNISettings with a bad range: %v", err)
	}
}
