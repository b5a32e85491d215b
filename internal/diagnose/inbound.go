package diagnose

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/meshkeeper/meshkeeper/internal/analysis"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// Outcomes of an inbound connection that reaches the sidecar.
const (
	// OutcomeIngressBackend: an IngressBackend admits the listed clients to this port.
	OutcomeIngressBackend analysis.Outcome = "IngressBackend"
	// OutcomeMeshClientsOnly: no IngressBackend governs the port, so the sidecar accepts only
	// clients inside the mesh (mTLS).
	OutcomeMeshClientsOnly analysis.Outcome = "MeshClientsOnly"
)

// RouteInbound follows one TCP connection arriving at port of the pod (from src, when valid):
// through the rules the pod runs, does it reach the sidecar's inbound listener or go straight
// to the application, because of which rule and which setting; and which IngressBackend
// governs the port. A connection that bypasses the sidecar on a port an IngressBackend governs
// fails: the policy is not enforced and any client reaches the application.
func RouteInbound(in RouteInput, port uint16, src netip.Addr) (RouteResult, error) {
	pod := in.Pod
	res := RouteResult{Pod: pod.Namespace + "/" + pod.Name, Direction: redirect.DirectionInbound, Trace: []redirect.Step{}}
	podIP, _ := netip.ParseAddr(pod.Status.PodIP)
	dst := netip.AddrPortFrom(podIP.Unmap(), port)
	res.Destination = dst.String()
	if !podIP.IsValid() {
		res.Destination = fmt.Sprintf("pod port %d", port)
		res.Notes = append(res.Notes, "the pod has no IP in its status: rules that match a destination address are taken not to match")
	}
	if src.IsValid() {
		res.Source = src.Unmap().String()
	}
	matches := analysis.IngressBackendsFor(pod, int32(port), in.Services, in.IngressBackends)
	for _, m := range matches {
		res.IngressBackends = append(res.IngressBackends, m.String())
	}
	governed := ""
	if len(matches) > 0 {
		governed = fmt.Sprintf("IngressBackend %s/%s", matches[0].IngressBackend.Namespace, matches[0].IngressBackend.Name)
	}

	parsed, source, err := podRules(in)
	if err != nil {
		return res, err
	}
	if parsed == nil {
		res.RulesSource = "none"
		res.Path, res.Status = PathBypass, StatusPass
		res.Summary = fmt.Sprintf("%s: the pod has no %s or %s init container, so nothing redirects connections to a sidecar; they reach the application directly",
			res.Destination, redirect.InitContainerName, redirect.OSMInitContainerName)
		if governed != "" {
			res.Status = StatusFail
			res.Summary += fmt.Sprintf("; %s is not enforced: any client reaches the port unauthenticated", governed)
		}
		return res, nil
	}
	res.RulesSource = source

	cfg, cfgValid, notes := in.podConfig(pod)
	res.Notes = append(res.Notes, notes...)

	var rs *redirect.Ruleset
	if podIP.Is6() {
		rs = parsed.IPv6
	} else {
		rs = parsed.IPv4
	}
	if rs == nil {
		rs = &redirect.Ruleset{Family: redirect.IPv4}
		if podIP.Is6() {
			rs.Family = redirect.IPv6
			res.Notes = append(res.Notes, "the rules have no IPv6 table (OSM never rendered one), so IPv6 traffic is never redirected")
		}
	}
	v := redirect.Explain(rs, redirect.Packet{Direction: redirect.DirectionInbound, Src: src.Unmap(), Dst: dst})
	res.Trace, res.Rule = v.Trace, decidingRule(v.Trace)

	if v.Kind != redirect.VerdictRedirect {
		res.Path, res.Status = PathBypass, StatusPass
		switch why := inboundBypass(cfg, port); {
		case why != "" && cfgValid:
			res.Setting = why
		case in.MeshConfig == nil:
			res.Status = StatusWarn // the setting is probably in the MeshConfig nobody could read
		default:
			res.Notes = append(res.Notes, "no setting of the MeshConfig or the pod's annotations explains this bypass: the rules differ from the configuration (see the exclusions-in-sync check of diagnose)")
			res.Status = StatusWarn
		}
		res.Summary = fmt.Sprintf("%s: bypasses the sidecar (%s) and reaches the application directly", res.Destination, orDefault(res.Setting, "rule "+res.Rule))
		if governed != "" {
			res.Status = StatusFail
			res.Summary += fmt.Sprintf("; %s is not enforced on it: any client reaches the port unauthenticated", governed)
		} else {
			res.Summary += "; no mesh policy applies"
		}
		in.policyNote(&res)
		return res, nil
	}

	res.Path = PathSidecar
	listener := fmt.Sprintf("the sidecar's inbound listener on port %d", v.Port)
	if v.Port != redirect.InboundListenerPort {
		res.Notes = append(res.Notes, fmt.Sprintf("the rules redirect to port %d, not to the inbound listener %d", v.Port, redirect.InboundListenerPort))
	}
	res.Listener = listener
	switch {
	case len(matches) > 0:
		res.Outcome, res.Status = OutcomeIngressBackend, StatusPass
		var srcs []string
		for _, m := range matches {
			for _, s := range m.Sources {
				if !slices.Contains(srcs, s) {
					srcs = append(srcs, s)
				}
			}
		}
		res.Summary = fmt.Sprintf("%s: reaches %s; %s admits %s", res.Destination, listener, governed, strings.Join(srcs, ", "))
		if len(matches) > 1 {
			res.Notes = append(res.Notes, fmt.Sprintf("%d IngressBackend backends claim this port; the one created first is in effect (analyze reports BackendClaimedTwice)", len(matches)))
		}
		if in.MeshConfig != nil && !in.MeshConfig.Spec.FeatureFlags.EnableIngressBackendPolicy {
			res.Status = StatusWarn
			res.Notes = append(res.Notes, fmt.Sprintf("MeshConfig %s has featureFlags.enableIngressBackendPolicy: false, so the IngressBackend is not programmed", in.MeshConfigRef))
		}
	default:
		res.Outcome, res.Status = OutcomeMeshClientsOnly, StatusPass
		res.Summary = fmt.Sprintf("%s: reaches %s; no IngressBackend governs port %d, so only clients inside the mesh (mTLS) are accepted and clients outside it need one", res.Destination, listener, port)
	}
	in.policyNote(&res)
	return res, nil
}

// policyNote says, once, that Services or IngressBackends were not read; the verdict then only
// reflects the objects given.
func (in RouteInput) policyNote(res *RouteResult) {
	if in.PolicyUnknown == "" {
		return
	}
	res.Notes = append(res.Notes, "mesh Services and IngressBackends not read ("+string(in.PolicyUnknown)+"): which IngressBackend governs the port only reflects the objects given")
	if res.Status == StatusPass {
		res.Status = StatusWarn
	}
}

// inboundBypass names the setting that takes an inbound port away from the sidecar: the
// proxy's own ports, or an inbound port exclusion and where it was asked for.
func inboundBypass(cfg redirect.Config, port uint16) string {
	switch port {
	case redirect.MetricsPort, redirect.LivenessProbePort, redirect.ReadinessProbePort, redirect.StartupProbePort, redirect.HealthcheckPort:
		return fmt.Sprintf("port %d is one of the sidecar's own ports, never redirected", port)
	}
	if !slices.Contains(cfg.InboundPortExclusions, port) {
		return ""
	}
	var where []string
	src := cfg.PortSource(redirect.ListInboundPortExclusions, port)
	if src.MeshConfigField != "" {
		where = append(where, "the MeshConfig's "+strings.TrimPrefix(src.MeshConfigField, "spec."))
	}
	if src.Annotation != "" {
		where = append(where, "the pod's "+src.Annotation+" annotation")
	}
	if len(where) == 0 {
		return fmt.Sprintf("port %d is in the inbound port exclusion list", port)
	}
	return fmt.Sprintf("port %d is in %s", port, strings.Join(where, " and "))
}
