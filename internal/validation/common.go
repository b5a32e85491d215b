package validation

import (
	"fmt"
	"net/netip"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// Result is the outcome of validating one object: errors deny the request, warnings are shown
// to the client and the object is admitted.
type Result struct {
	Errors   field.ErrorList
	Warnings []string
}

func (r *Result) warnf(path *field.Path, format string, args ...any) {
	r.Warnings = append(r.Warnings, path.String()+": "+fmt.Sprintf(format, args...))
}

// require reports path as required when the list there has n == 0 entries.
func (r *Result) require(n int, path *field.Path, what string) {
	if n == 0 {
		r.Errors = append(r.Errors, field.Required(path, what))
	}
}

// validHost accepts a DNS name with an optional leading "*." wildcard label, as OSM's Egress and
// SNI host lists did.
func validHost(h string) []string {
	if rest, ok := strings.CutPrefix(h, "*."); ok {
		h = rest
	}
	return validation.IsDNS1123Subdomain(strings.ToLower(h))
}

func checkHosts(hosts []string, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := make(map[string]int, len(hosts))
	for i, h := range hosts {
		p := path.Index(i)
		if msgs := validHost(h); len(msgs) > 0 {
			errs = append(errs, field.Invalid(p, h, "must be a DNS name, optionally starting with '*.': "+strings.Join(msgs, "; ")))
			continue
		}
		key := strings.ToLower(h)
		if j, dup := seen[key]; dup {
			errs = append(errs, field.Duplicate(p, fmt.Sprintf("%s (same as %s)", h, path.Index(j))))
			continue
		}
		seen[key] = i
	}
	return errs
}

// parseCIDRs parses with the redirection engine's rules so a CIDR means the same thing in every
// kind, and reports duplicates after normalisation (10.0.0.1/8 equals 10.0.0.0/8).
func parseCIDRs(list []string, path *field.Path) ([]netip.Prefix, field.ErrorList) {
	var errs field.ErrorList
	out := make([]netip.Prefix, 0, len(list))
	seen := make(map[netip.Prefix]int, len(list))
	for i, s := range list {
		p, err := redirect.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			errs = append(errs, field.Invalid(path.Index(i), s, err.Error()))
			continue
		}
		if j, dup := seen[p]; dup {
			errs = append(errs, field.Duplicate(path.Index(i), fmt.Sprintf("%s (same range as %s)", s, path.Index(j))))
			continue
		}
		seen[p] = i
		out = append(out, p)
	}
	return out, errs
}

func isCatchAll(p netip.Prefix) bool { return p.Bits() == 0 }
