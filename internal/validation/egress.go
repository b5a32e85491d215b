package validation

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

	policyv1alpha1 "github.com/meshkeeper/meshkeeper/api/policy/v1alpha1"
)

// Egress checks an Egress policy. OSM's webhook only looked at matches and silently ignored
// anything it did not understand, so a policy could be accepted and do nothing, or do far more
// than its author meant. The rules follow what each protocol actually matches:
//   - http matches the port on any address and routes by Host header: it needs hosts, and
//     ipAddresses alone cannot restrict it;
//   - tcp and tcp-server-first match port and ipAddresses: hosts cannot restrict them, and
//     without ipAddresses they open every destination outside the mesh on that port (warning);
//   - https matches port, ipAddresses and SNI hosts; with neither it opens the port (warning).
func Egress(e *policyv1alpha1.Egress) Result {
	var r Result
	spec := field.NewPath("spec")
	s := &e.Spec

	r.require(len(s.Sources), spec.Child("sources"), "at least one service account the policy applies to")
	type srcKey struct{ kind, name, ns string }
	seenSrc := map[srcKey]int{}
	for i, src := range s.Sources {
		p := spec.Child("sources").Index(i)
		if src.Kind != policyv1alpha1.KindServiceAccount {
			r.Errors = append(r.Errors, field.NotSupported(p.Child("kind"), src.Kind, []string{policyv1alpha1.KindServiceAccount}))
		}
		if src.Name == "" {
			r.Errors = append(r.Errors, field.Required(p.Child("name"), "the service account's name"))
		}
		if src.Namespace == "" {
			r.Errors = append(r.Errors, field.Required(p.Child("namespace"), "the service account's namespace"))
		}
		k := srcKey{src.Kind, src.Name, src.Namespace}
		if j, dup := seenSrc[k]; dup {
			r.Errors = append(r.Errors, field.Duplicate(p, fmt.Sprintf("%s/%s (same as %s)", src.Namespace, src.Name, spec.Child("sources").Index(j))))
		}
		seenSrc[k] = i
	}

	r.Errors = append(r.Errors, checkHosts(s.Hosts, spec.Child("hosts"))...)
	cidrs, errs := parseCIDRs(s.IPAddresses, spec.Child("ipAddresses"))
	r.Errors = append(r.Errors, errs...)
	for i, c := range cidrs {
		if isCatchAll(c) {
			r.warnf(spec.Child("ipAddresses").Index(i), "%s allows every destination outside the mesh on the listed ports", c)
		}
	}

	r.require(len(s.Ports), spec.Child("ports"), "at least one port")
	var hasHTTP, hasNonHTTP, hasTCP bool
	seenPort := map[int32]int{}
	for i, port := range s.Ports {
		p := spec.Child("ports").Index(i)
		proto := policyv1alpha1.NormalizeProtocol(port.Protocol)
		if port.Number < 1 || port.Number > 65535 {
			r.Errors = append(r.Errors, field.Invalid(p.Child("number"), port.Number, "must be between 1 and 65535"))
		}
		if j, dup := seenPort[port.Number]; dup {
			prev := policyv1alpha1.NormalizeProtocol(s.Ports[j].Protocol)
			if prev == proto {
				r.Errors = append(r.Errors, field.Duplicate(p, fmt.Sprintf("%d/%s (same as %s)", port.Number, port.Protocol, spec.Child("ports").Index(j))))
			} else {
				r.Errors = append(r.Errors, field.Invalid(p.Child("protocol"), port.Protocol,
					fmt.Sprintf("port %d is already declared as %s in %s; one port carries one protocol", port.Number, s.Ports[j].Protocol, spec.Child("ports").Index(j))))
			}
		} else {
			seenPort[port.Number] = i
		}
		switch proto {
		case policyv1alpha1.ProtocolHTTP:
			hasHTTP = true
			if len(s.Hosts) == 0 {
				r.Errors = append(r.Errors, field.Required(spec.Child("hosts"),
					fmt.Sprintf("port %d is http, which is routed by Host header: list the hosts it may reach", port.Number)))
			}
		case policyv1alpha1.ProtocolHTTPS:
			hasNonHTTP = true
			if len(s.Hosts) == 0 && len(s.IPAddresses) == 0 {
				r.warnf(p, "https port %d has neither hosts nor ipAddresses: every destination outside the mesh on that port is allowed", port.Number)
			}
		case policyv1alpha1.ProtocolTCP, policyv1alpha1.ProtocolTCPServerFirst:
			hasNonHTTP, hasTCP = true, true
			if len(s.IPAddresses) == 0 {
				r.warnf(p, "%s port %d has no ipAddresses: every destination outside the mesh on that port is allowed", proto, port.Number)
			}
		default:
			r.Errors = append(r.Errors, field.NotSupported(p.Child("protocol"), port.Protocol,
				[]string{policyv1alpha1.ProtocolHTTP, policyv1alpha1.ProtocolHTTPS, policyv1alpha1.ProtocolTCP, policyv1alpha1.ProtocolTCPServerFirst}))
		}
	}
	if len(s.IPAddresses) > 0 && hasHTTP && !hasNonHTTP {
		r.Errors = append(r.Errors, field.Invalid(spec.Child("ipAddresses"), strings.Join(s.IPAddresses, ","),
			"every port is http, which matches any address: ipAddresses would not restrict anything; use hosts"))
	}
	if len(s.Hosts) > 0 && hasTCP && !hasHTTP && !hasProto(s, policyv1alpha1.ProtocolHTTPS) {
		r.Errors = append(r.Errors, field.Invalid(spec.Child("hosts"), strings.Join(s.Hosts, ","),
			"every port is tcp, which cannot see host names: hosts would not restrict anything; use ipAddresses"))
	}

	for i, m := range s.Matches {
		p := spec.Child("matches").Index(i)
		group := ""
		if m.APIGroup != nil {
			group = *m.APIGroup
		}
		switch {
		case m.Kind == policyv1alpha1.KindHTTPRouteGroup && group == policyv1alpha1.MatchGroupSMISpecs:
			if !hasHTTP {
				r.Errors = append(r.Errors, field.Invalid(p.Child("kind"), m.Kind, "HTTPRouteGroup matches apply to http ports only, and this policy has none"))
			}
		case m.Kind == policyv1alpha1.KindUpstreamTrafficSetting && group == policyv1alpha1.MatchGroupPolicy:
		default:
			r.Errors = append(r.Errors, field.Invalid(p, fmt.Sprintf("%s %s", group, m.Kind),
				"must be kind HTTPRouteGroup with apiGroup "+policyv1alpha1.MatchGroupSMISpecs+" or kind UpstreamTrafficSetting with apiGroup "+policyv1alpha1.MatchGroupPolicy))
		}
		if m.Name == "" {
			r.Errors = append(r.Errors, field.Required(p.Child("name"), "the referenced object's name"))
		}
	}
	return r
}

func hasProto(s *policyv1alpha1.EgressSpec, proto string) bool {
	for _, p := range s.Ports {
		if policyv1alpha1.NormalizeProtocol(p.Protocol) == proto {
			return true
		}
	}
	return false
}
