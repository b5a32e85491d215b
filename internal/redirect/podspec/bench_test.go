package podspec

import (
	"testing"

	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// BenchmarkPodRenderParseDiff is internal/redirect's benchmark of the same name taken through
// the Kubernetes container, as the drift controller runs it: reading the rules must not copy or
// convert more than the container's name and argv.
func BenchmarkPodRenderParseDiff(b *testing.B) {
	cfg, errs := redirect.Effective(redirect.MeshSettings{
		OutboundIPRangeExclusionList:  []string{"169.254.169.254/32", "10.0.0.10/32", "fd00:ec2::254/128"},
		OutboundPortExclusionList:     []int{6379, 7070},
		InboundPortExclusionList:      []int{9090},
		NetworkInterfaceExclusionList: []string{"net1"},
	}, map[string]string{redirect.AnnotationOutboundPortExclusionList: "8080"})
	if len(errs) != 0 {
		b.Fatal(errs)
	}
	c := InitContainer(redirect.Render(cfg), "img", false)
	b.ReportAllocs()
	for b.Loop() {
		want := redirect.Render(cfg)
		p, err := ParseContainer(&c)
		if err != nil {
			b.Fatal(err)
		}
		if d := redirect.Diff(cfg.Exclusions(), p.Exclusions()); !d.Empty() {
			b.Fatal(d)
		}
		_ = want
	}
}
