package redirect

import (
	"math/rand/v2"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// randomSettings draws a configuration; the generator covers both families, duplicates,
// non-canonical CIDRs, >15 ports, interfaces, inclusions and both proxy modes.
func randomSettings(r *rand.Rand) (MeshSettings, map[string]string) {
	cidr := func() string {
		if r.IntN(3) == 0 {
			var a [16]byte
			a[0] = 0xfd
			for i := 1; i < 16; i++ {
				a[i] = byte(r.IntN(256))
			}
			return netip.AddrFrom16(a).String() + "/" + strconv.Itoa(8+r.IntN(121))
		}
		a := [4]byte{byte(1 + r.IntN(223)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))}
		return netip.AddrFrom4(a).String() + "/" + strconv.Itoa(1+r.IntN(32))
	}
	cidrs := func(max int) []string {
		out := make([]string, r.IntN(max+1))
		for i := range out {
			out[i] = cidr()
		}
		return out
	}
	ports := func(max int) []int {
		out := make([]int, r.IntN(max+1))
		for i := range out {
			out[i] = 1 + r.IntN(65535)
		}
		return out
	}
	g := MeshSettings{
		OutboundIPRangeExclusionList: cidrs(6),
		OutboundPortExclusionList:    ports(20),
		InboundPortExclusionList:     ports(20),
	}
	if r.IntN(4) == 0 {
		g.OutboundIPRangeInclusionList = cidrs(4)
	}
	if r.IntN(3) == 0 {
		for range 1 + r.IntN(3) {
			g.NetworkInterfaceExclusionList = append(g.NetworkInterfaceExclusionList, "net"+strconv.Itoa(r.IntN(5)))
		}
	}
	if r.IntN(2) == 0 {
		g.LocalProxyMode = "PodIP"
	}
	ann := map[string]string{}
	join := func(ss []string) string { return strings.Join(ss, " , ") }
	if r.IntN(2) == 0 {
		ann[AnnotationOutboundIPRangeExclusionList] = join(cidrs(4))
	}
	if r.IntN(2) == 0 {
		ps := ports(18)
		ss := make([]string, len(ps))
		for i, p := range ps {
			ss[i] = strconv.Itoa(p)
		}
		ann[AnnotationOutboundPortExclusionList] = join(ss)
		if len(g.OutboundPortExclusionList) > 0 {
			// Force a duplicate between global and pod.
			ann[AnnotationInboundPortExclusionList] = strconv.Itoa(g.OutboundPortExclusionList[0])
		}
	}
	return g, ann
}

func TestRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const cases = 400
	for i := range cases {
		g, ann := randomSettings(r)
		cfg, errs := Effective(g, ann)
		if len(errs) != 0 {
			t.Fatalf("case %d: generated invalid settings: %v", i, errs)
		}
		want := cfg.Exclusions()
		plan := Render(cfg)

		// 1. The container the injector builds, read back by the drift controller.
		c := InitContainer(plan)
		p, err := ParseContainer(c)
		if err != nil {
			t.Fatalf("case %d: ParseContainer: %v\n%q", i, err, c.Args)
		}
		check(t, i, "container", p, want, plan.NeedsPodIP)

		// 2. The same container inside a pod manifest, through the file parser. (podspec's
		// tests do the same with the full Kubernetes container.)
		pod := map[string]any{"apiVersion": "v1", "kind": "Pod", "spec": map[string]any{
			"initContainers": []Container{c},
			"containers":     []Container{{Name: "app"}},
		}}
		data, err := yaml.Marshal(pod)
		if err != nil {
			t.Fatal(err)
		}
		p, err = parseYAML(data)
		if err != nil {
			t.Fatalf("case %d: parseYAML(pod YAML): %v\n%s", i, err, data)
		}
		check(t, i, "pod", p, want, plan.NeedsPodIP)

		// 3. The args alone, as JSON.
		args, _ := yaml.Marshal(InitArgs(plan))
		if p, err = parseYAML(args); err != nil {
			t.Fatalf("case %d: parseYAML(args): %v", i, err)
		}
		check(t, i, "args", p, want, plan.NeedsPodIP)

		// 4. What iptables-save would print after the init container ran (IPv4 + IPv6 text).
		if p, err = parseYAML([]byte(plan.IPv4.RestoreInput() + plan.IPv6.RestoreInput())); err != nil {
			t.Fatalf("case %d: parseYAML(restore): %v", i, err)
		}
		if p.Format != FormatIPTablesSave {
			t.Fatalf("case %d: format %s", i, p.Format)
		}
		if d := Diff(want, p.Exclusions()); !d.Empty() {
			t.Fatalf("case %d: restore text lost meaning:\n%s", i, d)
		}
	}
}

func check(t *testing.T, i int, via string, p *Parsed, want Exclusions, podIP bool) {
	t.Helper()
	if p.Format != FormatMeshkeeper {
		t.Fatalf("case %d (%s): format %q", i, via, p.Format)
	}
	got := p.Exclusions()
	if !reflect.DeepEqual(normalise(got), normalise(want)) {
		t.Fatalf("case %d (%s): exclusions differ\n got %+v\nwant %+v\n%s", i, via, got, want, Diff(want, got))
	}
	if d := Diff(want, got); !d.Empty() {
		t.Fatalf("case %d (%s): Diff not empty: %s", i, via, d)
	}
	if (p.PodIPEnv == PodIPEnvVar) != podIP {
		t.Fatalf("case %d (%s): pod IP env %q, PodIP mode %v", i, via, p.PodIPEnv, podIP)
	}
}

// normalise makes nil and empty slices equal for DeepEqual.
func normalise(e Exclusions) Exclusions {
	if len(e.OutboundIPRanges) == 0 {
		e.OutboundIPRanges = nil
	}
	if len(e.OutboundIPRangeInclusions) == 0 {
		e.OutboundIPRangeInclusions = nil
	}
	if len(e.OutboundPorts) == 0 {
		e.OutboundPorts = nil
	}
	if len(e.InboundPorts) == 0 {
		e.InboundPorts = nil
	}
	if len(e.Interfaces) == 0 {
		e.Interfaces = nil
	}
	return e
}

// Values that collide with the fixed rules (loopback, the sidecar's own inbound ports) must
// still come back as exclusions.
func TestRoundTripReservedValues(t *testing.T) {
	cfg := mustEffective(t, MeshSettings{
		OutboundIPRangeExclusionList: []string{"127.0.0.1/32", "::1/128"},
		InboundPortExclusionList:     []int{15010, 15904},
		OutboundPortExclusionList:    []int{15001},
	}, nil)
	p, err := ParseContainer(InitContainer(Render(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	if d := Diff(cfg.Exclusions(), p.Exclusions()); !d.Empty() {
		t.Errorf("lost values:\n%s", d)
	}
}
