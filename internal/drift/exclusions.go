package drift

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	"github.com/meshkeeper/meshkeeper/internal/injection"
	"github.com/meshkeeper/meshkeeper/internal/istio"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// CheckExclusionsInSync compares the exclusions rendered into the pod with the ones the current
// MeshConfig and the pod's annotations ask for. Pods we injected carry a digest of what they
// were rendered from; when it equals today's digest nothing is parsed. Otherwise (an older
// injection, or a pod injected by OSM) the init container is parsed and compared by meaning.
// Rules that cannot be parsed give RulesUnreadable, which the vocabulary lists as Unknown: the
// pod may or may not run what it should, and saying Drifted would be a guess.
func CheckExclusionsInSync(in Input) Verdict {
	if in.Istio != nil {
		return checkIstioExclusionsInSync(in)
	}
	if in.MeshMissing {
		return verdictUnknown(conditions.MeshConfigNotFound, fmt.Sprintf("%s does not exist, so the exclusions this pod should have are unknown: recreate it, or point the manager at the MeshConfig in use with --meshconfig namespace/name", in.Mesh))
	}
	if v, unknown := expectedUnknown(in); unknown {
		return v
	}
	if in.Pod.Annotations[injection.AnnotationExclusionsDigest] == in.Expected.Digest() {
		return verdictTrue(conditions.InSync, inSyncMessage(in))
	}
	c := RedirectionInitContainer(in.Pod)
	if c == nil {
		return verdictUnknown(conditions.RulesUnreadable, fmt.Sprintf("pod has no %s or %s init container to read rules from",
			redirect.InitContainerName, redirect.OSMInitContainerName))
	}
	rules := in.Rules.read(c)
	if rules.err != nil {
		return verdictUnknown(conditions.RulesUnreadable, fmt.Sprintf("cannot read the rules of init container %s: %v; whether the pod is in sync is unknown, restart it to have its rules rendered again: %s",
			c.Name, rules.err, Action(in.Pod)))
	}
	return judge(in, rules, c.Name)
}

// expectedUnknown is the verdict when the MeshConfig or the pod's annotations are invalid, so
// the exclusions the pod should have are unknown.
func expectedUnknown(in Input) (Verdict, bool) {
	if len(in.ExpectedErrs) == 0 {
		return Verdict{}, false
	}
	return verdictUnknown(conditions.InvalidSpec, fmt.Sprintf("cannot tell which exclusions the pod should have: %s or the pod's annotations are invalid: %v",
		in.Mesh, in.ExpectedErrs.ToAggregate())), true
}

// judge compares what the rules implement with what the pod should have. source names the rules
// in messages ("the <source> rules").
func judge(in Input, rules readRules, source string) Verdict {
	diff := redirect.Diff(in.desired().Exclusions(), rules.exclusions)
	problems := describeDiff(in, diff, source)
	if !diff.LocalProxyMode.Empty() {
		problems = append(problems, proxyModeProblem(in, diff.LocalProxyMode.Expected == redirect.LocalProxyModePodIP, source))
	}
	if len(problems) == 0 {
		return verdictTrue(conditions.InSync, inSyncMessage(in))
	}
	return verdictFalse(conditions.Drifted, strings.Join(problems, "; ")+"; restart the pod: "+Action(in.Pod))
}

// inSyncMessage deliberately omits the MeshConfig generation: a MeshConfig change that does not
// touch exclusions must not rewrite the condition of every pod.
func inSyncMessage(in Input) string {
	return fmt.Sprintf("redirection rules match %s and the pod's annotations", in.Mesh)
}

func proxyModeProblem(in Input, wantPodIP bool, container string) string {
	if wantPodIP {
		return fmt.Sprintf("local proxy mode PodIP from %s is not in the %s rules (they send proxy traffic to localhost)", in.Mesh.WithGeneration(), container)
	}
	return fmt.Sprintf("the %s rules rewrite proxy traffic to the pod IP, but %s asks for local proxy mode Localhost", container, in.Mesh.WithGeneration())
}

// describeDiff turns a Difference into one sentence per value, each naming where the value was
// asked for, so a person knows whether to look at the MeshConfig or at the workload.
func describeDiff(in Input, d redirect.Difference, container string) []string {
	var out []string
	rules := "the " + container + " rules"
	missing := func(what, value, source string) {
		out = append(out, fmt.Sprintf("%s %s from %s is not in %s", what, value, source, rules))
	}
	unexpected := func(what, value string) {
		out = append(out, fmt.Sprintf("%s %s is in %s but neither %s nor the pod's annotations ask for it%s",
			what, value, rules, in.Mesh.WithGeneration(), admittedWith(in)))
	}
	desired := in.desired()
	prefixes := func(what string, delta redirect.Delta[netip.Prefix], list string) {
		for _, p := range delta.Missing {
			src := desired.SourceOf(list, p.String())
			missing(what, orDefault(src.Spelled, p.String()), sourceText(in, src))
		}
		for _, p := range delta.Unexpected {
			unexpected(what, p.String())
		}
	}
	ports := func(what string, delta redirect.Delta[uint16], list string) {
		for _, p := range delta.Missing {
			missing(what, strconv.Itoa(int(p)), sourceText(in, desired.SourceOf(list, strconv.Itoa(int(p)))))
		}
		for _, p := range delta.Unexpected {
			unexpected(what, strconv.Itoa(int(p)))
		}
	}
	names := func(what string, delta redirect.Delta[string], list string) {
		for _, name := range delta.Missing {
			src := desired.SourceOf(list, name)
			if !src.Known() {
				src.MeshConfigField = list
			}
			missing(what, name, sourceText(in, src))
		}
		for _, name := range delta.Unexpected {
			unexpected(what, name)
		}
	}
	prefixes("outbound IP range", d.OutboundIPRanges, redirect.ListOutboundIPRangeExclusions)
	prefixes("outbound IP range inclusion", d.OutboundIPRangeInclusions, redirect.ListOutboundIPRangeInclusions)
	ports("outbound port", d.OutboundPorts, redirect.ListOutboundPortExclusions)
	ports("inbound port", d.InboundPorts, redirect.ListInboundPortExclusions)
	ports("outbound port inclusion", d.OutboundPortInclusions, redirect.ListOutboundPortInclusions)
	ports("inbound port inclusion", d.InboundPortInclusions, redirect.ListInboundPortInclusions)
	names("network interface", d.Interfaces, redirect.ListInterfaceExclusions)
	names("rerouted interface", d.RerouteInterfaces, redirect.ListRerouteInterfaces)
	if !d.ProxyUID.Empty() {
		out = append(out, fmt.Sprintf("%s let traffic of UID %s bypass the proxy, but the proxy runs as UID %d",
			rules, redirect.UIDText(d.ProxyUID.Actual), d.ProxyUID.Expected))
	}
	if !d.ProxyGID.Empty() {
		out = append(out, fmt.Sprintf("%s let traffic of GID %s bypass the proxy, but the proxy runs as GID %s",
			rules, redirect.GIDText(d.ProxyGID.Actual), redirect.GIDText(d.ProxyGID.Expected)))
	}
	captures := func(direction string, c redirect.Change[redirect.Capture], list string) {
		if c.Empty() {
			return
		}
		src := sourceText(in, desired.SourceOf(list, "*"))
		if c.Expected == redirect.CaptureOff {
			out = append(out, fmt.Sprintf("%s capture %s traffic, but %s asks for none", rules, direction, in.Mesh.WithGeneration()))
			return
		}
		out = append(out, fmt.Sprintf("%s capture no %s traffic, but %s asks for it (%s)", rules, direction, in.Mesh.WithGeneration(), src))
	}
	captures("outbound", d.OutboundCapture, redirect.ListOutboundIPRangeInclusions)
	captures("inbound", d.InboundCapture, redirect.ListInboundPortInclusions)
	if !d.InboundInterception.Empty() {
		out = append(out, fmt.Sprintf("%s intercept inbound connections with %s, but the pod should use %s",
			rules, d.InboundInterception.Actual, d.InboundInterception.Expected))
	}
	return out
}

// desired is what the pod's redirection should be, for the mesh that injected it.
func (in Input) desired() redirect.Desired {
	if in.Istio != nil {
		return in.Istio.Desired
	}
	return in.Expected
}

// admittedWith adds what the pod was rendered from, when the injector recorded it.
func admittedWith(in Input) string {
	gen := in.Pod.Annotations[injection.AnnotationMeshConfigGeneration]
	if gen == "" {
		return ""
	}
	return " (the pod was rendered from generation " + gen + ")"
}

// sourceText names who asked for a value: the MeshConfig with its generation, the pod's
// annotation, or both.
func sourceText(in Input, src redirect.Source) string {
	var sources []string
	switch {
	case src.MeshConfigField != "" && in.Istio != nil:
		sources = append(sources, fmt.Sprintf("%s key %s, %s", in.Mesh, istio.InjectorValuesKey, src.MeshConfigField))
	case src.MeshConfigField != "":
		sources = append(sources, in.Mesh.WithGeneration())
	}
	if src.Builtin != "" {
		sources = append(sources, src.Builtin)
	}
	if src.Annotation != "" {
		sources = append(sources, "pod annotation "+src.Annotation)
	}
	if len(sources) == 0 {
		return "the effective configuration"
	}
	return strings.Join(sources, " and ")
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
