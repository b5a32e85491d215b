package injection

import (
	"k8s.io/apimachinery/pkg/util/validation/field"

	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// MeshSettings extracts the traffic inputs of the redirection engine from a MeshConfig spec. It
// copies the raw values without judging them: the engine owns validation, so the webhook and the
// injector report the same errors with the same field paths.
func MeshSettings(spec *configv1alpha2.MeshConfigSpec) redirect.MeshSettings {
	t := &spec.Traffic
	return redirect.MeshSettings{
		OutboundIPRangeExclusionList:  t.OutboundIPRangeExclusionList,
		OutboundIPRangeInclusionList:  t.OutboundIPRangeInclusionList,
		OutboundPortExclusionList:     ints(t.OutboundPortExclusionList),
		InboundPortExclusionList:      ints(t.InboundPortExclusionList),
		NetworkInterfaceExclusionList: t.NetworkInterfaceExclusionList,
		LocalProxyMode:                string(spec.Sidecar.LocalProxyMode),
	}
}

func ints(in []int32) []int {
	if in == nil {
		return nil
	}
	out := make([]int, len(in))
	for i, v := range in {
		out[i] = int(v)
	}
	return out
}

// ValidateMeshConfig judges a MeshConfig's redirection settings with the engine injection
// renders from, with paths under spec. The controllers, the injector and the CLI all ask this.
func ValidateMeshConfig(spec *configv1alpha2.MeshConfigSpec) field.ErrorList {
	return redirect.ValidateSettings(MeshSettings(spec), field.NewPath("spec"))
}
