package validation

import (
	"fmt"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	"github.com/meshkeeper/meshkeeper/internal/injection"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// MeshConfig checks a MeshConfig. OSM stopped validating MeshConfig after v0.9, and several
// values it accepted broke every pod created afterwards; here the traffic settings go through
// the same engine that renders the init container (so what is admitted is what renders), and the
// remaining cross-field rules are checked below. Legal values that silently disable the mesh
// for some or all traffic are admitted with warnings.
func MeshConfig(mc *configv1alpha2.MeshConfig, cluster redirect.ClusterRanges) Result {
	var r Result
	spec := field.NewPath("spec")
	s := &mc.Spec

	settings := injection.MeshSettings(s)
	r.Errors = append(r.Errors, redirect.ValidateSettings(settings, spec)...)
	cfg, errs := redirect.Effective(settings, nil)
	if len(r.Errors) == 0 {
		// Effective repeats the per-item checks; only its merged-size checks are new here.
		r.Errors = append(r.Errors, errs...)
	}
	if len(r.Errors) == 0 {
		for _, w := range redirect.Warnings(cfg, cluster) {
			r.Warnings = append(r.Warnings, FormatWarning(spec.Child("traffic", w.Field).String(), w))
		}
	}

	sc := spec.Child("sidecar")
	if s.Sidecar.InitContainerImage != "" {
		// OSM manifests name OSM's init image, which cannot run meshkeeper's init program.
		r.warnf(sc.Child("initContainerImage"), "not used for injection: pods get the operator's own init image (manager flag --init-image) unless the operator runs with --use-meshconfig-init-image")
	}
	r.Errors = append(r.Errors, checkSchemaLimits(s, spec)...)
	r.Errors = append(r.Errors, checkTLSRange(s.Sidecar.TLSMinProtocolVersion, s.Sidecar.TLSMaxProtocolVersion, sc)...)
	r.Errors = append(r.Errors, checkDuration(s.Sidecar.ConfigResyncInterval, sc.Child("configResyncInterval"), false)...)

	ext := spec.Child("traffic", "inboundExternalAuthorization")
	if a := s.Traffic.InboundExternalAuthorization; a.Enable {
		if a.Address == "" {
			r.Errors = append(r.Errors, field.Required(ext.Child("address"), "required when enable is true"))
		}
		if a.Port == 0 {
			r.Errors = append(r.Errors, field.Required(ext.Child("port"), "required when enable is true"))
		}
		r.Errors = append(r.Errors, checkDuration(a.Timeout, ext.Child("timeout"), true)...)
		if a.FailureModeAllow {
			r.warnf(ext.Child("failureModeAllow"), "requests are let through whenever the authorization service does not answer")
		}
	}

	tr := spec.Child("observability", "tracing")
	if t := s.Observability.Tracing; t.Enable && t.Address == "" {
		r.Errors = append(r.Errors, field.Required(tr.Child("address"), "required when enable is true"))
	}

	cert := spec.Child("certificate")
	r.Errors = append(r.Errors, checkDuration(s.Certificate.ServiceCertValidityDuration, cert.Child("serviceCertValidityDuration"), true)...)
	if b := s.Certificate.CertKeyBitSize; b != 0 && b < 2048 {
		r.Errors = append(r.Errors, field.Invalid(cert.Child("certKeyBitSize"), b, "RSA keys shorter than 2048 bits are not accepted"))
	}
	if ig := s.Certificate.IngressGateway; ig != nil {
		p := cert.Child("ingressGateway")
		r.Errors = append(r.Errors, checkDuration(ig.ValidityDuration, p.Child("validityDuration"), true)...)
		r.Errors = append(r.Errors, checkHosts(ig.SubjectAltNames, p.Child("subjectAltNames"))...)
		if ig.Secret.Name == "" {
			r.Errors = append(r.Errors, field.Required(p.Child("secret", "name"), "where the certificate is stored"))
		}
	}
	return r
}

var logLevels = []string{
	configv1alpha2.LogLevelTrace, configv1alpha2.LogLevelDebug, configv1alpha2.LogLevelInfo, configv1alpha2.LogLevelWarning,
	configv1alpha2.LogLevelWarn, configv1alpha2.LogLevelError, configv1alpha2.LogLevelCritical, configv1alpha2.LogLevelOff,
}

var tlsVersions = []string{
	string(configv1alpha2.TLSVersionAuto), string(configv1alpha2.TLSVersion10), string(configv1alpha2.TLSVersion11),
	string(configv1alpha2.TLSVersion12), string(configv1alpha2.TLSVersion13),
}

// checkSchemaLimits repeats the schema's enums and list limits. The API server enforces them
// first; repeating them here keeps a cluster whose installed CRDs are older than this release
// from admitting values the rest of meshkeeper assumes cannot exist.
func checkSchemaLimits(s *configv1alpha2.MeshConfigSpec, spec *field.Path) field.ErrorList {
	var errs field.ErrorList
	sc, tr := spec.Child("sidecar"), spec.Child("traffic")
	if v := s.Sidecar.LogLevel; v != "" && !slices.Contains(logLevels, v) {
		errs = append(errs, field.NotSupported(sc.Child("logLevel"), v, logLevels))
	}
	for _, f := range []struct {
		name string
		v    configv1alpha2.TLSProtocolVersion
	}{{"tlsMinProtocolVersion", s.Sidecar.TLSMinProtocolVersion}, {"tlsMaxProtocolVersion", s.Sidecar.TLSMaxProtocolVersion}} {
		if f.v != "" && !slices.Contains(tlsVersions, string(f.v)) {
			errs = append(errs, field.NotSupported(sc.Child(f.name), f.v, tlsVersions))
		}
	}
	limit := func(name string, n, most int) {
		if n > most {
			errs = append(errs, field.TooMany(tr.Child(name), n, most))
		}
	}
	limit("outboundIPRangeExclusionList", len(s.Traffic.OutboundIPRangeExclusionList), configv1alpha2.MaxIPRanges)
	limit("outboundIPRangeInclusionList", len(s.Traffic.OutboundIPRangeInclusionList), configv1alpha2.MaxIPRanges)
	limit("outboundPortExclusionList", len(s.Traffic.OutboundPortExclusionList), configv1alpha2.MaxPorts)
	limit("inboundPortExclusionList", len(s.Traffic.InboundPortExclusionList), configv1alpha2.MaxPorts)
	limit("networkInterfaceExclusionList", len(s.Traffic.NetworkInterfaceExclusionList), configv1alpha2.MaxInterfaces)
	return errs
}

var tlsOrder = map[configv1alpha2.TLSProtocolVersion]int{
	configv1alpha2.TLSVersion10: 10, configv1alpha2.TLSVersion11: 11,
	configv1alpha2.TLSVersion12: 12, configv1alpha2.TLSVersion13: 13,
}

func checkTLSRange(lo, hi configv1alpha2.TLSProtocolVersion, sc *field.Path) field.ErrorList {
	l, okL := tlsOrder[lo]
	h, okH := tlsOrder[hi]
	if okL && okH && l > h {
		return field.ErrorList{field.Invalid(sc.Child("tlsMinProtocolVersion"), lo,
			fmt.Sprintf("is above tlsMaxProtocolVersion %s: no TLS version would be acceptable", hi))}
	}
	return nil
}

// checkDuration parses a Go duration; the schema's pattern only approximates the grammar.
func checkDuration(v string, p *field.Path, positive bool) field.ErrorList {
	if v == "" {
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return field.ErrorList{field.Invalid(p, v, "must be a Go duration such as 30s or 24h")}
	}
	if d < 0 || (positive && d == 0) {
		return field.ErrorList{field.Invalid(p, v, "must be greater than zero")}
	}
	return nil
}

// FormatWarning renders an engine warning as an admission warning line, led by the field or
// annotation it is about and its stable code so scripts can match on it.
func FormatWarning(where string, w redirect.Warning) string {
	return fmt.Sprintf("%s: %s: %s", where, w.Code, w.Message)
}
