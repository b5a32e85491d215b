package istio

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// The injector's ConfigMap: one per control-plane revision, in the control plane's namespace.
const (
	InjectorConfigMapName = "istio-sidecar-injector"
	// InjectorValuesKey holds the Helm values the injection template reads, as JSON.
	InjectorValuesKey = "values"
	// DefaultRevision is what the injector writes in istio.io/rev for the unnamed revision.
	DefaultRevision = "default"
	// LabelRevision is on the injector's ConfigMap, on namespaces and on injected pods (as an
	// annotation) and names the control-plane revision.
	LabelRevision = "istio.io/rev"
)

// InjectorConfigMap is the ConfigMap holding the values for a revision ("" or "default" is the
// unnamed one).
func InjectorConfigMap(revision string) string {
	if revision == "" || revision == DefaultRevision {
		return InjectorConfigMapName
	}
	return InjectorConfigMapName + "-" + revision
}

// RevisionOfConfigMap is the revision an injector ConfigMap serves, and whether name is one.
func RevisionOfConfigMap(name string) (string, bool) {
	if name == InjectorConfigMapName {
		return DefaultRevision, true
	}
	rev, ok := strings.CutPrefix(name, InjectorConfigMapName+"-")
	return rev, ok && rev != ""
}

// Values are the injector values that decide a pod's redirection, as written (not yet
// validated): the injection template hands them to istio-iptables unless the pod's annotations
// say otherwise. Present records which keys the ConfigMap sets, so that reports can tell "the
// ConfigMap says" from "Istio's default".
type Values struct {
	IncludeIPRanges      string
	ExcludeIPRanges      string
	IncludeInboundPorts  string
	ExcludeInboundPorts  string
	IncludeOutboundPorts string
	ExcludeOutboundPorts string
	StatusPort           string
	InterceptionMode     string
	// CNI is pilot.cni.enabled: pods get istio-validation and annotations instead of istio-init.
	CNI bool
}

// DefaultValues are the chart's defaults, used for keys the ConfigMap leaves out.
func DefaultValues() Values {
	return Values{IncludeIPRanges: "*", IncludeInboundPorts: "*", StatusPort: strconv.Itoa(int(DefaultStatusPort))}
}

// The paths of the values under the ConfigMap's values key, as reports name them.
const (
	ValueIncludeIPRanges      = "global.proxy.includeIPRanges"
	ValueExcludeIPRanges      = "global.proxy.excludeIPRanges"
	ValueIncludeInboundPorts  = "global.proxy.includeInboundPorts"
	ValueExcludeInboundPorts  = "global.proxy.excludeInboundPorts"
	ValueIncludeOutboundPorts = "global.proxy.includeOutboundPorts"
	ValueExcludeOutboundPorts = "global.proxy.excludeOutboundPorts"
	ValueStatusPort           = "global.proxy.statusPort"
)

// ParseValues reads the values key of an injector ConfigMap. Values absent from it keep the
// chart's defaults. Malformed JSON, or a value of the wrong type, is an error naming the path:
// Istio's injector fails on it too, and a silent default would report drift that is not there.
func ParseValues(data string) (Values, error) {
	v := DefaultValues()
	if strings.TrimSpace(data) == "" {
		return v, nil
	}
	var doc struct {
		Global struct {
			Proxy map[string]json.RawMessage `json:"proxy"`
		} `json:"global"`
		Pilot struct {
			CNI struct {
				Enabled json.RawMessage `json:"enabled"`
			} `json:"cni"`
		} `json:"pilot"`
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(data)))
	if err := dec.Decode(&doc); err != nil {
		return v, fmt.Errorf("key %s is not valid JSON: %v", InjectorValuesKey, err)
	}
	fields := []struct {
		key string
		dst *string
	}{
		{"includeIPRanges", &v.IncludeIPRanges}, {"excludeIPRanges", &v.ExcludeIPRanges},
		{"includeInboundPorts", &v.IncludeInboundPorts}, {"excludeInboundPorts", &v.ExcludeInboundPorts},
		{"includeOutboundPorts", &v.IncludeOutboundPorts}, {"excludeOutboundPorts", &v.ExcludeOutboundPorts},
		{"statusPort", &v.StatusPort}, {"interceptionMode", &v.InterceptionMode},
	}
	for _, f := range fields {
		raw, ok := doc.Global.Proxy[f.key]
		if !ok || string(raw) == "null" {
			continue
		}
		s, err := scalar(raw)
		if err != nil {
			return v, fmt.Errorf("%s.global.proxy.%s: %v", InjectorValuesKey, f.key, err)
		}
		*f.dst = s
	}
	if raw := doc.Pilot.CNI.Enabled; len(raw) > 0 && string(raw) != "null" {
		s, err := scalar(raw)
		if err == nil {
			v.CNI, err = strconv.ParseBool(s)
		}
		if err != nil {
			return v, fmt.Errorf("%s.pilot.cni.enabled: want true or false", InjectorValuesKey)
		}
	}
	return v, nil
}

// scalar accepts a JSON string, number or boolean as text: Helm values are loosely typed
// (statusPort is a number, port lists are strings, and users write either).
func scalar(raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		return n.String(), nil
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err == nil {
		return strconv.FormatBool(b), nil
	}
	return "", fmt.Errorf("want a string or a number, found %s", truncateRaw(raw))
}

func truncateRaw(raw json.RawMessage) string {
	if len(raw) > 40 {
		return string(raw[:40]) + "..."
	}
	return string(raw)
}
