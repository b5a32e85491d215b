package drift

import (
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// CheckParsedExclusionsInSync judges rules that were read from somewhere other than the pod's
// init container spec: iptables-save output captured inside the pod, or a container saved to a
// file. It reaches the same verdict, in the same words, as CheckExclusionsInSync, so a person
// comparing the kernel's rules with the MeshConfig hears what the operator would say. source
// names the rules in messages ("the <source> rules").
func CheckParsedExclusionsInSync(in Input, parsed *redirect.Parsed, source string) Verdict {
	if v, unknown := expectedUnknown(in); unknown {
		return v
	}
	return judge(in, readRules{exclusions: parsed.Exclusions()}, source)
}
