package redirect

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Delta is what one category lacks (Missing: expected, not found) and has in excess
// (Unexpected: found, not expected).
type Delta[T any] struct {
	Missing    []T `json:"missing,omitempty"`
	Unexpected []T `json:"unexpected,omitempty"`
}

// Empty reports whether the category matches.
func (d Delta[T]) Empty() bool { return len(d.Missing) == 0 && len(d.Unexpected) == 0 }

// Change compares a single value: the proxy UID, the local proxy mode, whether a direction is
// captured at all.
type Change[T comparable] struct {
	Expected T `json:"expected"`
	Actual   T `json:"actual"`
}

// Empty reports whether the values agree.
func (d Change[T]) Empty() bool { return d.Expected == d.Actual }

// IsZero lets JSON output omit the categories that agree (omitzero), so reports about OSM pods
// do not list Istio-only settings.
func (d Change[T]) IsZero() bool { return d.Empty() }

// Difference is the semantic difference between the exclusions a pod should have and the ones
// its rules implement.
type Difference struct {
	OutboundIPRanges          Delta[netip.Prefix]    `json:"outboundIPRangeExclusions"`
	OutboundIPRangeInclusions Delta[netip.Prefix]    `json:"outboundIPRangeInclusions"`
	OutboundPorts             Delta[uint16]          `json:"outboundPortExclusions"`
	InboundPorts              Delta[uint16]          `json:"inboundPortExclusions"`
	Interfaces                Delta[string]          `json:"networkInterfaceExclusions"`
	ProxyUID                  Change[int64]          `json:"proxyUID"`
	LocalProxyMode            Change[LocalProxyMode] `json:"localProxyMode"`

	// The categories below are only ever non-empty for meshes that have them (Istio).
	OutboundPortInclusions Delta[uint16]            `json:"outboundPortInclusions,omitzero"`
	InboundPortInclusions  Delta[uint16]            `json:"inboundPortInclusions,omitzero"`
	RerouteInterfaces      Delta[string]            `json:"rerouteInterfaces,omitzero"`
	ProxyGID               Change[int64]            `json:"proxyGID,omitzero"`
	OutboundCapture        Change[Capture]          `json:"outboundCapture,omitzero"`
	InboundCapture         Change[Capture]          `json:"inboundCapture,omitzero"`
	InboundInterception    Change[InterceptionMode] `json:"inboundInterception,omitzero"`
}

// Diff compares two sets of exclusions by meaning: CIDRs are compared canonically and every
// category as a set, so order, duplicates and spelling never show up as drift.
func Diff(expected, actual Exclusions) Difference {
	return Difference{
		OutboundIPRanges:          deltaOf(expected.OutboundIPRanges, actual.OutboundIPRanges, comparePrefix, canonPrefixes),
		OutboundIPRangeInclusions: deltaOf(expected.OutboundIPRangeInclusions, actual.OutboundIPRangeInclusions, comparePrefix, canonPrefixes),
		OutboundPorts:             deltaOf(expected.OutboundPorts, actual.OutboundPorts, cmp.Compare[uint16], canonSorted[uint16]),
		InboundPorts:              deltaOf(expected.InboundPorts, actual.InboundPorts, cmp.Compare[uint16], canonSorted[uint16]),
		Interfaces:                deltaOf(expected.Interfaces, actual.Interfaces, strings.Compare, canonSorted[string]),
		ProxyUID:                  Change[int64]{Expected: expected.ProxyUID, Actual: actual.ProxyUID},
		LocalProxyMode:            Change[LocalProxyMode]{Expected: expected.LocalProxyMode, Actual: actual.LocalProxyMode},
		OutboundPortInclusions:    deltaOf(expected.OutboundPortInclusions, actual.OutboundPortInclusions, cmp.Compare[uint16], canonSorted[uint16]),
		InboundPortInclusions:     deltaOf(expected.InboundPortInclusions, actual.InboundPortInclusions, cmp.Compare[uint16], canonSorted[uint16]),
		RerouteInterfaces:         deltaOf(expected.RerouteInterfaces, actual.RerouteInterfaces, strings.Compare, canonSorted[string]),
		ProxyGID:                  Change[int64]{Expected: expected.ProxyGID, Actual: actual.ProxyGID},
		OutboundCapture:           Change[Capture]{Expected: expected.OutboundCapture, Actual: actual.OutboundCapture},
		InboundCapture:            Change[Capture]{Expected: expected.InboundCapture, Actual: actual.InboundCapture},
		InboundInterception:       Change[InterceptionMode]{Expected: expected.InboundInterception, Actual: actual.InboundInterception},
	}
}

// canonPrefixes returns s masked, sorted and unique, copying only when s is not already so.
func canonPrefixes(s []netip.Prefix) []netip.Prefix {
	ok := true
	for i, p := range s {
		if p != p.Masked() || (i > 0 && comparePrefix(s[i-1], p) >= 0) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	out := make([]netip.Prefix, len(s))
	for i, p := range s {
		out[i] = p.Masked()
	}
	return sortPrefixes(out)
}

func canonSorted[T cmp.Ordered](s []T) []T {
	for i := 1; i < len(s); i++ {
		if s[i-1] >= s[i] {
			out := slices.Clone(s)
			slices.Sort(out)
			return slices.Compact(out)
		}
	}
	return s
}

func deltaOf[T any](exp, act []T, compare func(a, b T) int, canon func([]T) []T) Delta[T] {
	exp, act = canon(exp), canon(act)
	var d Delta[T]
	i, j := 0, 0
	for i < len(exp) || j < len(act) {
		switch {
		case j >= len(act):
			d.Missing = append(d.Missing, exp[i])
			i++
		case i >= len(exp):
			d.Unexpected = append(d.Unexpected, act[j])
			j++
		default:
			switch c := compare(exp[i], act[j]); {
			case c == 0:
				i++
				j++
			case c < 0:
				d.Missing = append(d.Missing, exp[i])
				i++
			default:
				d.Unexpected = append(d.Unexpected, act[j])
				j++
			}
		}
	}
	return d
}

// Empty reports whether the rules implement exactly the expected exclusions.
func (d Difference) Empty() bool {
	return d.OutboundIPRanges.Empty() && d.OutboundIPRangeInclusions.Empty() && d.OutboundPorts.Empty() &&
		d.InboundPorts.Empty() && d.Interfaces.Empty() && d.ProxyUID.Empty() && d.LocalProxyMode.Empty() &&
		d.OutboundPortInclusions.Empty() && d.InboundPortInclusions.Empty() && d.RerouteInterfaces.Empty() &&
		d.ProxyGID.Empty() && d.OutboundCapture.Empty() && d.InboundCapture.Empty() && d.InboundInterception.Empty()
}

// UIDText spells a proxy UID for people: the number, or "none" for NoProxyUID.
func UIDText(u int64) string {
	if u == NoProxyUID {
		return "none"
	}
	return strconv.FormatInt(u, 10)
}

// GIDText spells a proxy GID for people: the number, or "none" for 0.
func GIDText(g int64) string {
	if g == 0 {
		return "none"
	}
	return strconv.FormatInt(g, 10)
}

// String lists every missing and unexpected value, one category per line, or "" when empty.
func (d Difference) String() string {
	var b strings.Builder
	line := func(category string, missing, unexpected []string) {
		if len(missing) == 0 && len(unexpected) == 0 {
			return
		}
		b.WriteString(category)
		b.WriteString(":")
		if len(missing) > 0 {
			b.WriteString(" missing ")
			b.WriteString(strings.Join(missing, ", "))
			if len(unexpected) > 0 {
				b.WriteString(";")
			}
		}
		if len(unexpected) > 0 {
			b.WriteString(" unexpected ")
			b.WriteString(strings.Join(unexpected, ", "))
		}
		b.WriteString("\n")
	}
	line("outbound IP range exclusions", texts(d.OutboundIPRanges.Missing, netip.Prefix.String), texts(d.OutboundIPRanges.Unexpected, netip.Prefix.String))
	line("outbound IP range inclusions", texts(d.OutboundIPRangeInclusions.Missing, netip.Prefix.String), texts(d.OutboundIPRangeInclusions.Unexpected, netip.Prefix.String))
	line("outbound port exclusions", texts(d.OutboundPorts.Missing, portText), texts(d.OutboundPorts.Unexpected, portText))
	line("inbound port exclusions", texts(d.InboundPorts.Missing, portText), texts(d.InboundPorts.Unexpected, portText))
	line("network interface exclusions", d.Interfaces.Missing, d.Interfaces.Unexpected)
	if !d.ProxyUID.Empty() {
		b.WriteString("proxy UID: expected " + UIDText(d.ProxyUID.Expected) + ", found " + UIDText(d.ProxyUID.Actual) + "\n")
	}
	if !d.LocalProxyMode.Empty() {
		b.WriteString("local proxy mode: expected " + string(d.LocalProxyMode.Expected) + ", found " + string(d.LocalProxyMode.Actual) + "\n")
	}
	line("outbound port inclusions", texts(d.OutboundPortInclusions.Missing, portText), texts(d.OutboundPortInclusions.Unexpected, portText))
	line("inbound port inclusions", texts(d.InboundPortInclusions.Missing, portText), texts(d.InboundPortInclusions.Unexpected, portText))
	line("rerouted interfaces", d.RerouteInterfaces.Missing, d.RerouteInterfaces.Unexpected)
	if !d.ProxyGID.Empty() {
		b.WriteString("proxy GID: expected " + GIDText(d.ProxyGID.Expected) + ", found " + GIDText(d.ProxyGID.Actual) + "\n")
	}
	if !d.OutboundCapture.Empty() {
		b.WriteString("outbound capture: expected " + d.OutboundCapture.Expected.String() + ", found " + d.OutboundCapture.Actual.String() + "\n")
	}
	if !d.InboundCapture.Empty() {
		b.WriteString("inbound capture: expected " + d.InboundCapture.Expected.String() + ", found " + d.InboundCapture.Actual.String() + "\n")
	}
	if !d.InboundInterception.Empty() {
		b.WriteString("inbound interception: expected " + d.InboundInterception.Expected.String() + ", found " + d.InboundInterception.Actual.String() + "\n")
	}
	return b.String()
}

func portText(p uint16) string { return strconv.Itoa(int(p)) }

func texts[T any](s []T, f func(T) string) []string {
	if len(s) == 0 {
		return nil
	}
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = f(v)
	}
	return out
}
