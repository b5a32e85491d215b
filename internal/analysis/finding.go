package analysis

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	"github.com/meshkeeper/meshkeeper/internal/text"
)

// Finding is one problem found in an object, with what it does to the object's conditions.
type Finding struct {
	// Code is a stable PascalCase identifier (the Finding* constants of api/conditions).
	Code string
	// Severity ranks the finding: Error means part of the object has no effect or breaks traffic.
	Severity conditions.Severity
	// Message names the objects involved and the action to take.
	Message string
	// Objects are "Kind/namespace/name" (or "Kind/name" for cluster-scoped kinds), most important
	// first.
	Objects []string
	// Condition is the positive condition type the finding turns False (Accepted, ResolvedRefs or
	// Ready), or empty when it only informs.
	Condition string
	// Reason is the reason written on Condition (and on Ready) when the finding decides them.
	Reason string
	// Stalls says that only a change by a person can resolve the finding; controllers then set
	// Stalled, which kstatus reads as Failed.
	Stalls bool
	// Benign findings set Condition False without making the object unhealthy: an Egress that
	// egress-open mode makes moot is not acted on, yet nothing is broken.
	Benign bool
	// Fixes are ready-to-run remedies (commands, manifests), each one whole alternative, for
	// the reports that can show them (meshkeeper analyze); status keeps only Message.
	Fixes []string
}

// API converts the finding to the form stored in status.findings.
func (f Finding) API() conditions.Finding {
	objs := f.Objects
	if len(objs) > maxObjects {
		objs = objs[:maxObjects]
	}
	return conditions.Finding{Code: f.Code, Severity: f.Severity, Message: truncate(f.Message, maxMessage),
		Objects: slices.Clone(objs)}
}

// Limits of the status schema (conditions.Finding).
const (
	maxObjects = 16
	maxMessage = 1024
)

// ToAPI converts findings for status.findings, most severe first, keeping at most
// conditions.MaxFindings. A nil result means no findings (the field is omitted).
func ToAPI(findings []Finding) []conditions.Finding {
	if len(findings) == 0 {
		return nil
	}
	sorted := slices.Clone(findings)
	Sort(sorted)
	if len(sorted) > conditions.MaxFindings {
		sorted = sorted[:conditions.MaxFindings]
	}
	out := make([]conditions.Finding, len(sorted))
	for i, f := range sorted {
		out[i] = f.API()
	}
	return out
}

func severityRank(s conditions.Severity) int {
	switch s {
	case conditions.SeverityError:
		return 0
	case conditions.SeverityWarning:
		return 1
	}
	return 2
}

// Sort orders findings most severe first, then by code and message, so that status does not
// change when nothing but the order of the input changed.
func Sort(fs []Finding) {
	slices.SortStableFunc(fs, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(severityRank(a.Severity), severityRank(b.Severity)),
			cmp.Compare(a.Code, b.Code), cmp.Compare(a.Message, b.Message))
	})
}

// Has reports whether a finding with code is present.
func Has(fs []Finding, code string) bool {
	return slices.ContainsFunc(fs, func(f Finding) bool { return f.Code == code })
}

// Object formats a namespaced object reference the way Finding.Objects lists them.
func Object(kind, namespace, name string) string {
	if namespace == "" {
		return kind + "/" + name
	}
	return kind + "/" + namespace + "/" + name
}

// objects de-duplicates references, keeping their order: the most important come first, so
// that the cap of the status schema drops the least important.
func objects(list ...string) []string {
	out := make([]string, 0, len(list))
	for _, o := range list {
		if o != "" && !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	return out
}

func truncate(s string, n int) string { return text.Truncate(s, n) }

// nameList renders at most limit names and says how many were left out.
func nameList(names []string, limit int) string {
	if len(names) <= limit {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:limit], ", "), len(names)-limit)
}
