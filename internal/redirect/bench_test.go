package redirect

import (
	"os"
	"testing"

	"sigs.k8s.io/yaml"
)

// benchConfig is a realistic pod: a few mesh-wide exclusions plus a pod annotation.
func benchConfig(b *testing.B) Config {
	return mustEffective(b, MeshSettings{
		OutboundIPRangeExclusionList:  []string{"169.254.169.254/32", "10.0.0.10/32", "fd00:ec2::254/128"},
		OutboundPortExclusionList:     []int{6379, 7070},
		InboundPortExclusionList:      []int{9090},
		NetworkInterfaceExclusionList: []string{"net1"},
	}, map[string]string{AnnotationOutboundPortExclusionList: "8080"})
}

// BenchmarkPodRenderParseDiff is the drift controller's per-pod work when the pod carries our
// init container: render what the pod should have, read what it has, compare.
func BenchmarkPodRenderParseDiff(b *testing.B) {
	cfg := benchConfig(b)
	c := InitContainer(Render(cfg))
	b.ReportAllocs()
	for b.Loop() {
		want := Render(cfg)
		p, err := ParseContainer(c)
		if err != nil {
			b.Fatal(err)
		}
		if d := Diff(cfg.Exclusions(), p.Exclusions()); !d.Empty() {
			b.Fatal(d)
		}
		_ = want
	}
}

// BenchmarkParseContainerOSMv1 reads an OSM v1.2 init container (here-document script).
func BenchmarkParseContainerOSMv1(b *testing.B) {
	data, err := os.ReadFile("testdata/parse-osm-v12-pod-json.input")
	if err != nil {
		b.Fatal(err)
	}
	var pod struct {
		Spec struct {
			InitContainers []Container `json:"initContainers"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(data, &pod); err != nil {
		b.Fatal(err)
	}
	c := pod.Spec.InitContainers[0]
	benchParseContainer(b, c)
}

// BenchmarkParseContainerOSMv0 reads an OSM v0.x init container (`iptables ... &&` chain).
func BenchmarkParseContainerOSMv0(b *testing.B) {
	data, err := os.ReadFile("testdata/parse-osm-v0-seed001-ranges.input")
	if err != nil {
		b.Fatal(err)
	}
	c := Container{Name: "osm-init", Command: []string{"/bin/sh"}, Args: []string{"-c", string(data)}}
	benchParseContainer(b, c)
}

// benchParseContainer is the drift controller reading a pod's rules it has not seen before.
func benchParseContainer(b *testing.B, c Container) {
	b.ReportAllocs()
	for b.Loop() {
		p, err := ParseContainer(c)
		if err != nil {
			b.Fatal(err)
		}
		_ = p.Exclusions()
	}
}
