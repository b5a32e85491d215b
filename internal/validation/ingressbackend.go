package validation

import (
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	policyv1alpha1 "github.com/meshkeeper/meshkeeper/api/policy/v1alpha1"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// IngressBackend checks an IngressBackend.
//
// The AuthenticatedPrincipal rule. Such a source admits a client by the identity in its TLS
// client certificate. That identity means something only if the backend's proxy demands a
// client certificate and verifies it against the mesh's trust root, which is the case exactly
// when the backend speaks https with tls.skipClientCertValidation=false. Over http there is no
// certificate at all, and with skipClientCertValidation=true any client can present any name, so
// in both cases the source would either match nobody or match a claim nobody checked. OSM's
// webhook tested the flag the wrong way round (it refused the one safe combination and admitted
// the unsafe one while its message described the safe one); here every backend of a policy with
// an AuthenticatedPrincipal source must be https with client certificate validation on.
//
// The reverse case, https with validation on but no AuthenticatedPrincipal source, is legal
// (any certificate the mesh issued is accepted) and produces a warning.
func IngressBackend(ib *policyv1alpha1.IngressBackend) Result {
	var r Result
	spec := field.NewPath("spec")
	s := &ib.Spec

	r.require(len(s.Backends), spec.Child("backends"), "at least one backend")
	r.require(len(s.Sources), spec.Child("sources"), "at least one source")

	var principals []int
	type srcKey struct{ kind, name, ns string }
	seenSrc := map[srcKey]int{}
	for i, src := range s.Sources {
		p := spec.Child("sources").Index(i)
		switch src.Kind {
		case policyv1alpha1.KindService:
			if src.Namespace == "" {
				r.Errors = append(r.Errors, field.Required(p.Child("namespace"), "namespace of the Service"))
			}
			if msgs := validation.IsDNS1035Label(src.Name); len(msgs) > 0 {
				r.Errors = append(r.Errors, field.Invalid(p.Child("name"), src.Name, "must be a Service name"))
			}
		case policyv1alpha1.KindIPRange:
			pfx, err := redirect.ParsePrefix(src.Name)
			if err != nil {
				r.Errors = append(r.Errors, field.Invalid(p.Child("name"), src.Name, err.Error()))
			} else if isCatchAll(pfx) {
				r.warnf(p.Child("name"), "%s admits ingress traffic from any address", src.Name)
			}
			if src.Namespace != "" {
				r.warnf(p.Child("namespace"), "ignored for kind %s", src.Kind)
			}
		case policyv1alpha1.KindAuthenticatedPrincipal:
			principals = append(principals, i)
			if src.Name == "" {
				r.Errors = append(r.Errors, field.Required(p.Child("name"), "the client certificate identity to accept"))
			}
			if src.Namespace != "" {
				r.warnf(p.Child("namespace"), "ignored for kind %s", src.Kind)
			}
		default:
			r.Errors = append(r.Errors, field.NotSupported(p.Child("kind"), src.Kind,
				[]string{policyv1alpha1.KindService, policyv1alpha1.KindIPRange, policyv1alpha1.KindAuthenticatedPrincipal}))
		}
		k := srcKey{src.Kind, src.Name, src.Namespace}
		if j, dup := seenSrc[k]; dup {
			r.Errors = append(r.Errors, field.Duplicate(p, fmt.Sprintf("%s %s (same as %s)", src.Kind, src.Name, spec.Child("sources").Index(j))))
		} else {
			seenSrc[k] = i
		}
	}

	type beKey struct {
		name string
		port int32
	}
	seenBe := map[beKey]int{}
	for i, be := range s.Backends {
		p := spec.Child("backends").Index(i)
		proto := policyv1alpha1.NormalizeProtocol(be.Port.Protocol)
		if msgs := validation.IsDNS1035Label(be.Name); len(msgs) > 0 {
			r.Errors = append(r.Errors, field.Invalid(p.Child("name"), be.Name, "must be a Service name"))
		}
		if be.Port.Number < 1 || be.Port.Number > 65535 {
			r.Errors = append(r.Errors, field.Invalid(p.Child("port", "number"), be.Port.Number, "must be between 1 and 65535"))
		}
		switch proto {
		case policyv1alpha1.ProtocolHTTP:
			if be.TLS.SkipClientCertValidation || len(be.TLS.SNIHosts) > 0 {
				r.Errors = append(r.Errors, field.Invalid(p.Child("tls"), be.TLS, "tls settings apply to https backends only; this backend is http"))
			}
		case policyv1alpha1.ProtocolHTTPS:
			r.Errors = append(r.Errors, checkHosts(be.TLS.SNIHosts, p.Child("tls", "sniHosts"))...)
			if !be.TLS.SkipClientCertValidation && len(principals) == 0 {
				r.warnf(p.Child("tls"), "client certificates are validated but no AuthenticatedPrincipal source names the identity to accept, so any certificate issued by the mesh is admitted")
			}
		default:
			r.Errors = append(r.Errors, field.NotSupported(p.Child("port", "protocol"), be.Port.Protocol,
				[]string{policyv1alpha1.ProtocolHTTP, policyv1alpha1.ProtocolHTTPS}))
		}
		if len(principals) > 0 {
			src := spec.Child("sources").Index(principals[0])
			switch {
			case proto != policyv1alpha1.ProtocolHTTPS:
				r.Errors = append(r.Errors, field.Invalid(p.Child("port", "protocol"), be.Port.Protocol,
					fmt.Sprintf("%s is an AuthenticatedPrincipal, which is read from a verified client certificate: the backend must use https", src)))
			case be.TLS.SkipClientCertValidation:
				r.Errors = append(r.Errors, field.Invalid(p.Child("tls", "skipClientCertValidation"), true,
					fmt.Sprintf("%s is an AuthenticatedPrincipal, which means nothing unless the client certificate is validated: set skipClientCertValidation to false", src)))
			}
		}

		k := beKey{be.Name, be.Port.Number}
		if j, dup := seenBe[k]; dup {
			prev := s.Backends[j]
			if policyv1alpha1.NormalizeProtocol(prev.Port.Protocol) == proto && prev.TLS.SkipClientCertValidation == be.TLS.SkipClientCertValidation &&
				slices.Equal(prev.TLS.SNIHosts, be.TLS.SNIHosts) {
				r.Errors = append(r.Errors, field.Duplicate(p, fmt.Sprintf("%s:%d (same as %s)", be.Name, be.Port.Number, spec.Child("backends").Index(j))))
			} else {
				r.Errors = append(r.Errors, field.Invalid(p, fmt.Sprintf("%s:%d", be.Name, be.Port.Number),
					fmt.Sprintf("conflicts with %s: the same Service port is declared with a different protocol or tls", spec.Child("backends").Index(j))))
			}
		} else {
			seenBe[k] = i
		}
	}

	if len(s.Matches) > 0 {
		r.warnf(spec.Child("matches"), "ignored: IngressBackend matches were never implemented")
	}
	return r
}
