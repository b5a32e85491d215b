package drift

import (
	"fmt"
	"strings"
	"testing"

	"github.com/meshkeeper/meshkeeper/internal/istio"
	"github.com/meshkeeper/meshkeeper/internal/podtest"
)

// BenchmarkJudgeIstioPod judges one istio-init pod, its injector's values read for every pod
// (how each Istio pod was judged before IstioInjector) or read once and shared (how the pod
// controller and analyze judge now), side by side in one run. The values are the tests' short
// document and the same padded to 8 KiB with keys judging does not read, as istiod's values
// carry many.
func BenchmarkJudgeIstioPod(b *testing.B) {
	var pad strings.Builder
	for i := 0; pad.Len() < 8<<10; i++ {
		fmt.Fprintf(&pad, `,"k%03d":{"enabled":false,"image":"docker.io/istio/component:1.0.0"}`, i)
	}
	documents := []struct{ name, values string }{
		{"short", istioValues},
		{"8KiB", strings.Replace(istioValues, `{"global":{`, `{"unread":{"x":1`+pad.String()+`},"global":{`, 1)},
	}
	pod := istioPod().IstioInit(istioArgs...).Obj()
	ref := InjectorRef("istio-system", istio.Revision(pod))
	for _, d := range documents {
		cm := podtest.IstioInjectorConfigMap(d.values)
		b.Run("values="+d.name+"/read=per-pod", func(b *testing.B) {
			for b.Loop() {
				_ = Evaluate(GatherIstio(pod, istioNamespace, ReadIstioInjector(ref, cm), nil, testNow))
			}
		})
		b.Run("values="+d.name+"/read=once", func(b *testing.B) {
			inj := ReadIstioInjector(ref, cm)
			for b.Loop() {
				_ = Evaluate(GatherIstio(pod, istioNamespace, inj, nil, testNow))
			}
		})
	}
}
