package drift

import (
	"fmt"
	"strings"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// CheckParsedExclusionsInSync judges rules that were read from somewhere other than the pod's
// init container spec: iptables-save output captured inside the pod, or a container saved to a
// file. It reaches the same verdict, in the same words, as CheckExclusionsInSync, so a person
// comparing the kernel's rules with the MeshConfig hears what the operator would say. source
// names the rules in messages ("the <source> rules").
func CheckParsedExclusionsInSync(in Input, parsed *redirect.Parsed, source string) (reason, message string, failed bool) {
	if len(in.ExpectedErrs) > 0 {
		return conditions.InvalidSpec, fmt.Sprintf("cannot tell which exclusions the pod should have: %s or the pod's annotations are invalid: %v",
			in.Mesh, in.ExpectedErrs.ToAggregate()), false
	}
	diff := redirect.Diff(in.Expected.Exclusions(), parsed.Exclusions())
	problems := describeDiff(in, diff, source)
	if want, got := in.Expected.LocalProxyMode == redirect.LocalProxyModePodIP, hasDNAT(parsed); want != got {
		problems = append(problems, proxyModeProblem(in, want, source))
	}
	if len(problems) == 0 {
		return conditions.InSync, inSyncMessage(in), false
	}
	return conditions.Drifted, strings.Join(problems, "; ") + "; restart the pod: " + Action(in.Pod), true
}
