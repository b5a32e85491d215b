// Package rules tests meshkeeper's alerting rules (config/prometheus) and Grafana dashboard
// (config/grafana) with Prometheus's own code: the rules file is parsed and validated as
// `promtool check rules` does (rulefmt), each alert is evaluated by Prometheus's rule evaluator
// (rules.AlertingRule, the query engine over series fixtures in promqltest's notation) minute by
// minute, as a rule group would, for a case where it must fire and one where it must not, and
// every metric, label and value of a closed label (verdict, outcome, severity) an expression or
// fixture names must be documented in docs/metrics.md.
//
// It is a module of its own so that the Prometheus server module never enters meshkeeper's build;
// `make test` runs it (make test-rules).
package rules

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/prometheus/prometheus/rules"
	"go.yaml.in/yaml/v3"
)

const (
	rulesFile     = "../../config/prometheus/prometheusrule.yaml"
	dashboardFile = "../../config/grafana/meshkeeper.json"
	metricsDoc    = "../../docs/metrics.md"
)

var promqlParser = parser.NewParser(parser.Options{})

// loadRules parses the PrometheusRule's spec with Prometheus's rule file parser, which validates
// every expression, duration, label and annotation template like `promtool check rules`.
func loadRules(t *testing.T) *rulefmt.RuleGroups {
	t.Helper()
	raw, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var obj struct {
		APIVersion string    `yaml:"apiVersion"`
		Kind       string    `yaml:"kind"`
		Spec       yaml.Node `yaml:"spec"`
	}
	if err := yaml.Unmarshal(raw, &obj); err != nil {
		t.Fatal(err)
	}
	if obj.APIVersion != "monitoring.coreos.com/v1" || obj.Kind != "PrometheusRule" {
		t.Fatalf("%s is a %s %s, want a monitoring.coreos.com/v1 PrometheusRule", rulesFile, obj.APIVersion, obj.Kind)
	}
	spec, err := yaml.Marshal(&obj.Spec)
	if err != nil {
		t.Fatal(err)
	}
	groups, errs := rulefmt.Parse(spec, false, model.UTF8Validation, promqlParser, slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Errorf("%s: %v", rulesFile, err)
	}
	if groups == nil || len(errs) > 0 {
		t.FailNow()
	}
	return groups
}

// alertCase is one fixture: series in promqltest's `load` notation (one sample a minute from
// time 0), the minute at which the alert is looked at after evaluating it every minute from 0, and
// the alerts that must be firing then, each given by labels it must carry.
type alertCase struct {
	name   string
	series string
	at     time.Duration
	firing []map[string]string
}

// cases holds, for every alert, at least one fixture where it fires and one where it does not.
var cases = map[string][]alertCase{
	"MeshkeeperWorkloadDrifted": {
		{
			name: "drifted for 20 minutes",
			series: `
meshkeeper_drifted_pods{mesh="osm",namespace="shop",kind="Deployment",workload="web"} 2x25
meshkeeper_drifted_pods{mesh="osm",namespace="shop",kind="StatefulSet",workload="db"} _x10 1x15`,
			at:     20 * time.Minute,
			firing: []map[string]string{{"mesh": "osm", "namespace": "shop", "kind": "Deployment", "workload": "web", "severity": "warning"}},
		},
		{
			name: "drifted for 10 minutes, then restarted",
			series: `
meshkeeper_drifted_pods{mesh="osm",namespace="shop",kind="Deployment",workload="web"} 2x10 stale`,
			at: 25 * time.Minute,
		},
	},
	"MeshkeeperInitContainerFailed": {
		{
			name: "a pod whose init container failed, for 10 minutes, in each mesh",
			series: `
meshkeeper_namespace_pods{mesh="osm",namespace="shop",verdict="init_failed"} 1x10
meshkeeper_namespace_pods{mesh="osm",namespace="shop",verdict="in_sync"} 4x10
meshkeeper_namespace_pods{mesh="osm",namespace="pay",verdict="init_failed"} 0x10
meshkeeper_namespace_pods{mesh="istio",namespace="web",verdict="init_failed"} 2x10`,
			at: 10 * time.Minute,
			firing: []map[string]string{{"mesh": "osm", "namespace": "shop", "severity": "critical"},
				{"mesh": "istio", "namespace": "web", "severity": "critical"}},
		},
		{
			name: "pods without their sidecar, drifted or unreadable, none whose init container failed",
			series: `
meshkeeper_namespace_pods{mesh="osm",namespace="shop",verdict="init_failed"} 0x30
meshkeeper_namespace_pods{mesh="osm",namespace="shop",verdict="sidecar_missing"} 2x30
meshkeeper_namespace_pods{mesh="osm",namespace="shop",verdict="drifted"} 3x30
meshkeeper_namespace_pods{mesh="osm",namespace="shop",verdict="unreadable"} 1x30
meshkeeper_namespace_pods{mesh="osm",namespace="shop",verdict="other"} 2x30`,
			at: 30 * time.Minute,
		},
		{
			name: "failed for two minutes during a rollout",
			series: `
meshkeeper_namespace_pods{mesh="osm",namespace="shop",verdict="init_failed"} 0 0 1 1 0x10`,
			at: 12 * time.Minute,
		},
	},
	"MeshkeeperSidecarMissing": {
		{
			name: "a pod without its sidecar for 10 minutes",
			series: `
meshkeeper_namespace_pods{mesh="osm",namespace="shop",verdict="sidecar_missing"} 1x10
meshkeeper_namespace_pods{mesh="osm",namespace="shop",verdict="in_sync"} 4x10
meshkeeper_namespace_pods{mesh="osm",namespace="pay",verdict="sidecar_missing"} 0x10`,
			at:     10 * time.Minute,
			firing: []map[string]string{{"mesh": "osm", "namespace": "shop", "severity": "critical"}},
		},
		{
			name: "init containers failed, every sidecar there",
			series: `
meshkeeper_namespace_pods{mesh="osm",namespace="shop",verdict="sidecar_missing"} 0x30
meshkeeper_namespace_pods{mesh="osm",namespace="shop",verdict="init_failed"} 2x30`,
			at: 30 * time.Minute,
		},
	},
	"MeshkeeperRulesUnreadable": {
		{
			name: "a pod whose rules cannot be parsed, for 40 minutes",
			series: `
meshkeeper_namespace_pods{mesh="osm",namespace="legacy",verdict="unreadable"} 1x40
meshkeeper_namespace_pods{mesh="osm",namespace="shop",verdict="unreadable"} 0x40`,
			at:     40 * time.Minute,
			firing: []map[string]string{{"mesh": "osm", "namespace": "legacy", "severity": "info"}},
		},
		{
			name: "unreadable for 20 minutes, then restarted; pods not judged yet",
			series: `
meshkeeper_namespace_pods{mesh="osm",namespace="legacy",verdict="unreadable"} 1x20 0x20
meshkeeper_namespace_pods{mesh="osm",namespace="legacy",verdict="other"} 3x40`,
			at: 40 * time.Minute,
		},
	},
	"MeshkeeperErrorFindings": {
		{
			name: "an Egress with an Error finding",
			series: `
meshkeeper_object_findings{kind="Egress",namespace="shop",name="to-db",severity="Error"} 1x10
meshkeeper_object_findings{kind="Egress",namespace="shop",name="to-db",severity="Warning"} 0x10
meshkeeper_object_findings{kind="MeshConfig",namespace="osm-system",name="osm-mesh-config",severity="Error"} 0x10`,
			at:     10 * time.Minute,
			firing: []map[string]string{{"kind": "Egress", "namespace": "shop", "name": "to-db", "severity": "warning"}},
		},
		{
			name: "warnings and info only",
			series: `
meshkeeper_object_findings{kind="MeshConfig",namespace="osm-system",name="osm-mesh-config",severity="Error"} 0x30
meshkeeper_object_findings{kind="MeshConfig",namespace="osm-system",name="osm-mesh-config",severity="Warning"} 3x30
meshkeeper_object_findings{kind="MeshConfig",namespace="osm-system",name="osm-mesh-config",severity="Info"} 1x30`,
			at: 30 * time.Minute,
		},
	},
	"MeshkeeperObjectNotReady": {
		{
			name: "a MeshConfig not Ready for 40 minutes",
			series: `
meshkeeper_object_ready{kind="MeshConfig",namespace="osm-system",name="osm-mesh-config"} 0x40
meshkeeper_object_ready{kind="Egress",namespace="shop",name="to-db"} 1x40`,
			at:     40 * time.Minute,
			firing: []map[string]string{{"kind": "MeshConfig", "namespace": "osm-system", "name": "osm-mesh-config", "severity": "info"}},
		},
		{
			name: "not Ready for 10 minutes, then fixed",
			series: `
meshkeeper_object_ready{kind="MeshConfig",namespace="osm-system",name="osm-mesh-config"} 0x10 1x30`,
			at: 40 * time.Minute,
		},
	},
	"MeshkeeperAdmissionErrors": {
		{
			name: "undecodable requests",
			series: `
meshkeeper_admission_decisions_total{outcome="error"} 0x5 1 2 2 2
meshkeeper_admission_decisions_total{outcome="injected"} 0+5x10`,
			at:     9 * time.Minute,
			firing: []map[string]string{{"severity": "warning"}},
		},
		{
			name: "pods injected, none in error",
			series: `
meshkeeper_admission_decisions_total{outcome="error"} 0x30
meshkeeper_admission_decisions_total{outcome="injected"} 0+5x30
meshkeeper_admission_decisions_total{outcome="skipped"} 0+1x30`,
			at: 30 * time.Minute,
		},
		{
			name: "an error an hour ago",
			series: `
meshkeeper_admission_decisions_total{outcome="error"} 0 1x60`,
			at: 60 * time.Minute,
		},
	},
	"MeshkeeperPodsAdmittedUninjected": {
		{
			name: "pods let through while the MeshConfig was invalid",
			series: `
meshkeeper_admission_decisions_total{outcome="not_injected"} 0x5 3x5`,
			at:     10 * time.Minute,
			firing: []map[string]string{{"severity": "warning"}},
		},
		{
			name: "another injector serves the mesh (paused), nothing let through uninjected",
			series: `
meshkeeper_admission_decisions_total{outcome="not_injected"} 0x30
meshkeeper_admission_decisions_total{outcome="paused"} 0+2x30`,
			at: 30 * time.Minute,
		},
	},
	"MeshkeeperWebhookFailing": {
		{
			name: "one request in seven fails",
			series: `
controller_runtime_webhook_requests_total{webhook="/mutate-v1-pod",code="200"} 0+60x20
controller_runtime_webhook_requests_total{webhook="/mutate-v1-pod",code="500"} 0+10x20
controller_runtime_webhook_requests_total{webhook="/validate-config-openservicemesh-io-v1alpha2-meshconfig",code="200"} 0+1x20`,
			at:     20 * time.Minute,
			firing: []map[string]string{{"webhook": "/mutate-v1-pod", "severity": "critical"}},
		},
		{
			name: "one request in a hundred fails",
			series: `
controller_runtime_webhook_requests_total{webhook="/mutate-v1-pod",code="200"} 0+99x20
controller_runtime_webhook_requests_total{webhook="/mutate-v1-pod",code="500"} 0+1x20`,
			at: 20 * time.Minute,
		},
	},
	"MeshkeeperWebhookSlow": {
		{
			name: "every request takes over 2.5 s",
			series: `
controller_runtime_webhook_latency_seconds_bucket{webhook="/mutate-v1-pod",le="0.1"} 0x30
controller_runtime_webhook_latency_seconds_bucket{webhook="/mutate-v1-pod",le="1"} 0x30
controller_runtime_webhook_latency_seconds_bucket{webhook="/mutate-v1-pod",le="2.5"} 0x30
controller_runtime_webhook_latency_seconds_bucket{webhook="/mutate-v1-pod",le="+Inf"} 0+10x30`,
			at:     30 * time.Minute,
			firing: []map[string]string{{"webhook": "/mutate-v1-pod", "severity": "warning"}},
		},
		{
			name: "every request under 0.1 s",
			series: `
controller_runtime_webhook_latency_seconds_bucket{webhook="/mutate-v1-pod",le="0.1"} 0+10x30
controller_runtime_webhook_latency_seconds_bucket{webhook="/mutate-v1-pod",le="1"} 0+10x30
controller_runtime_webhook_latency_seconds_bucket{webhook="/mutate-v1-pod",le="2.5"} 0+10x30
controller_runtime_webhook_latency_seconds_bucket{webhook="/mutate-v1-pod",le="+Inf"} 0+10x30`,
			at: 30 * time.Minute,
		},
	},
}

func TestAlertsFireOnlyWhenTheyShould(t *testing.T) {
	groups := loadRules(t)
	seen := map[string]bool{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			seen[r.Alert] = true
			cs := cases[r.Alert]
			var fires, silent bool
			for _, c := range cs {
				fires, silent = fires || len(c.firing) > 0, silent || len(c.firing) == 0
			}
			if !fires || !silent {
				t.Errorf("alert %s needs a fixture where it fires and one where it does not (has %d)", r.Alert, len(cs))
			}
			for _, c := range cs {
				t.Run(r.Alert+"/"+c.name, func(t *testing.T) {
					checkSeriesDocumented(t, c.series)
					evalAlert(t, r, c)
				})
			}
		}
	}
	for name := range cases {
		if !seen[name] {
			t.Errorf("fixtures for %s, which is not an alert in %s", name, rulesFile)
		}
	}
}

// evalAlert evaluates the rule every minute from 0 to c.at, as a rule group with a one-minute
// interval would, then compares the firing alerts with c.firing.
func evalAlert(t *testing.T, r rulefmt.Rule, c alertCase) {
	storage := promqltest.LoadedStorage(t, "load 1m\n"+indent(c.series))
	engine := promqltest.NewTestEngine(t, false, 0, promqltest.DefaultMaxSamplesPerQuery)
	expr, err := promqlParser.ParseExpr(r.Expr)
	if err != nil {
		t.Fatal(err)
	}
	rule := rules.NewAlertingRule(r.Alert, expr, time.Duration(r.For), time.Duration(r.KeepFiringFor),
		labels.FromMap(r.Labels), labels.FromMap(r.Annotations), labels.EmptyLabels(), "", true, slog.New(slog.DiscardHandler))
	query := rules.EngineQueryFunc(engine, storage)
	start := time.Unix(0, 0).UTC()
	for ts := time.Duration(0); ts <= c.at; ts += time.Minute {
		if _, err := rule.Eval(context.Background(), 0, start.Add(ts), query, nil, 0); err != nil {
			t.Fatalf("at %s: %v", ts, err)
		}
	}
	var firing []labels.Labels
	for _, a := range rule.ActiveAlerts() {
		if a.State == rules.StateFiring {
			firing = append(firing, a.Labels)
		}
	}
	if len(firing) != len(c.firing) {
		t.Fatalf("at %s: %d alerts firing %v, want %d %v", c.at, len(firing), firing, len(c.firing), c.firing)
	}
	for _, want := range c.firing {
		if !slices.ContainsFunc(firing, func(got labels.Labels) bool {
			for k, v := range want {
				if got.Get(k) != v {
					return false
				}
			}
			return got.Get("alertname") == r.Alert
		}) {
			t.Errorf("no firing alert with %v among %v", want, firing)
		}
	}
}

func indent(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		b.WriteString("  " + l + "\n")
	}
	return b.String()
}

// documented reads docs/metrics.md's tables: metric name to its documented labels.
func documented(t *testing.T) map[string][]string {
	t.Helper()
	raw, err := os.ReadFile(metricsDoc)
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("^\\| `([a-z_:]+)` \\| (counter|gauge|histogram|summary) \\|([^|]*)\\|")
	name := regexp.MustCompile("`([a-z_]+)`")
	out := map[string][]string{}
	for _, l := range strings.Split(string(raw), "\n") {
		m := row.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		var ls []string
		for _, n := range name.FindAllStringSubmatch(m[3], -1) {
			ls = append(ls, n[1])
		}
		out[m[1]] = ls
		if m[2] == "histogram" {
			out[m[1]+"_bucket"] = append(slices.Clone(ls), "le")
			out[m[1]+"_sum"], out[m[1]+"_count"] = ls, ls
		}
	}
	if len(out) == 0 {
		t.Fatalf("no metric table in %s", metricsDoc)
	}
	return out
}

// closedLabels are the labels whose values form a fixed vocabulary: a query or fixture that
// names a value the manager does not export would match nothing and never say so.
var closedLabels = []string{"verdict", "outcome", "severity"}

// labelValues reads what docs/metrics.md says each label value of closedLabels is: the values
// in backquotes in a metric's row, and the rows of the label-value tables (| `label` | `value` |
// meaning |), which hold for every metric with that label.
func labelValues(t *testing.T) (inRow map[string]string, inTable map[string][]string) {
	t.Helper()
	raw, err := os.ReadFile(metricsDoc)
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("^\\| `([a-z_:]+)` \\| (counter|gauge|histogram|summary) \\|(.*)$")
	value := regexp.MustCompile("^\\| `([a-z_]+)` \\| `([A-Za-z0-9_]+)` \\|")
	inRow, inTable = map[string]string{}, map[string][]string{}
	for _, l := range strings.Split(string(raw), "\n") {
		if m := row.FindStringSubmatch(l); m != nil {
			inRow[m[1]] = m[3]
		}
		if m := value.FindStringSubmatch(l); m != nil {
			inTable[m[1]] = append(inTable[m[1]], m[2])
		}
	}
	if len(inTable["verdict"]) == 0 {
		t.Fatalf("%s has no table of the verdict label's values", metricsDoc)
	}
	return inRow, inTable
}

// checkValueDocumented fails when metric's label, one of closedLabels, is given a value that
// docs/metrics.md does not list, neither in the metric's row nor in the label's value table.
func checkValueDocumented(t *testing.T, where, metric, label, value string) {
	t.Helper()
	if !slices.Contains(closedLabels, label) {
		return
	}
	inRow, inTable := labelValues(t)
	if !strings.Contains(inRow[metric], "`"+value+"`") && !slices.Contains(inTable[label], value) {
		t.Errorf("%s: %s{%s=%q}: docs/metrics.md does not list the value %q", where, metric, label, value, value)
	}
}

// checkExprDocumented fails for a metric or a label (in a matcher or a by/without clause) that
// docs/metrics.md does not document, and for a value of a closed label it does not list.
func checkExprDocumented(t *testing.T, where, expr string) {
	t.Helper()
	docs := documented(t)
	e, err := promqlParser.ParseExpr(expr)
	if err != nil {
		t.Errorf("%s: %v", where, err)
		return
	}
	var names []string
	var grouping [][]string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.VectorSelector:
			labelsOf, ok := docs[n.Name]
			if !ok {
				t.Errorf("%s: metric %s is not documented in docs/metrics.md", where, n.Name)
				return nil
			}
			names = append(names, n.Name)
			for _, m := range n.LabelMatchers {
				if m.Name == model.MetricNameLabel {
					continue
				}
				if !slices.Contains(labelsOf, m.Name) {
					t.Errorf("%s: %s has no documented label %s", where, n.Name, m.Name)
				}
				values := []string{m.Value}
				if m.Type == labels.MatchRegexp || m.Type == labels.MatchNotRegexp {
					values = strings.Split(m.Value, "|")
				}
				for _, v := range values {
					checkValueDocumented(t, where, n.Name, m.Name, v)
				}
			}
		case *parser.AggregateExpr:
			grouping = append(grouping, n.Grouping)
		}
		return nil
	})
	for _, g := range grouping {
		for _, l := range g {
			var ok bool
			for _, n := range names {
				ok = ok || slices.Contains(docs[n], l)
			}
			if !ok {
				t.Errorf("%s: groups by %s, a label none of %v is documented with", where, l, names)
			}
		}
	}
}

// checkSeriesDocumented: fixtures name only documented metrics and labels, so they look like
// what the manager exports.
func checkSeriesDocumented(t *testing.T, series string) {
	t.Helper()
	docs := documented(t)
	for _, l := range strings.Split(strings.TrimSpace(series), "\n") {
		lbls, _, err := promqlParser.ParseSeriesDesc(strings.TrimSpace(l))
		if err != nil {
			t.Fatalf("fixture %q: %v", l, err)
		}
		name := lbls.Get(model.MetricNameLabel)
		doc, ok := docs[name]
		if !ok {
			t.Errorf("fixture series %s is not a documented metric", name)
			continue
		}
		lbls.Range(func(lb labels.Label) {
			if lb.Name == model.MetricNameLabel {
				return
			}
			if !slices.Contains(doc, lb.Name) {
				t.Errorf("fixture series %s has label %s, not documented", name, lb.Name)
			}
			checkValueDocumented(t, "fixture", name, lb.Name, lb.Value)
		})
	}
}

func TestRuleExpressionsNameDocumentedMetrics(t *testing.T) {
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			checkExprDocumented(t, "alert "+r.Alert, r.Expr)
		}
	}
}

type panel struct {
	Type    string  `json:"type"`
	Title   string  `json:"title"`
	Panels  []panel `json:"panels"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

func dashboardPanels(t *testing.T) []panel {
	t.Helper()
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string  `json:"title"`
		UID    string  `json:"uid"`
		Panels []panel `json:"panels"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if d.Title == "" || d.UID == "" {
		t.Errorf("%s has no title or uid", dashboardFile)
	}
	var out []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if p.Type != "row" {
				out = append(out, p)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// dashboardFixture has a series of every metric the dashboard shows, with the labels the
// manager exports, over an hour.
const dashboardFixture = `
meshkeeper_mesh_pods{namespace="osm-system",name="osm-mesh-config",verdict="in_sync"} 8x60
meshkeeper_mesh_pods{namespace="osm-system",name="osm-mesh-config",verdict="drifted"} 2x60
meshkeeper_mesh_pods{namespace="osm-system",name="osm-mesh-config",verdict="init_failed"} 1x60
meshkeeper_namespace_pods{mesh="osm",namespace="shop",verdict="in_sync"} 8x60
meshkeeper_namespace_pods{mesh="osm",namespace="shop",verdict="drifted"} 2x60
meshkeeper_namespace_pods{mesh="osm",namespace="shop",verdict="init_failed"} 1x60
meshkeeper_namespace_pods{mesh="osm",namespace="shop",verdict="sidecar_missing"} 0x60
meshkeeper_namespace_pods{mesh="osm",namespace="shop",verdict="unreadable"} 0x60
meshkeeper_namespace_pods{mesh="osm",namespace="shop",verdict="other"} 0x60
meshkeeper_namespace_pods{mesh="istio",namespace="web",verdict="sidecar_missing"} 1x60
meshkeeper_namespace_pods{mesh="istio",namespace="web",verdict="unreadable"} 1x60
meshkeeper_drifted_pods{mesh="osm",namespace="shop",kind="Deployment",workload="web"} 2x60
meshkeeper_object_ready{kind="MeshConfig",namespace="osm-system",name="osm-mesh-config"} 0x60
meshkeeper_object_findings{kind="MeshConfig",namespace="osm-system",name="osm-mesh-config",severity="Error"} 1x60
meshkeeper_findings{kind="MeshConfig",code="ExclusionOverlapsServiceCIDR",severity="Error"} 1x60
meshkeeper_findings{kind="Egress",code="PortCollision",severity="Error"} 2x60
meshkeeper_admission_decisions_total{outcome="injected"} 0+3x60
meshkeeper_auto_restarts_total{namespace="shop",kind="Deployment"} 0 1x59
meshkeeper_pod_evaluation_duration_seconds_bucket{le="0.001"} 0+5x60
meshkeeper_pod_evaluation_duration_seconds_bucket{le="+Inf"} 0+6x60
controller_runtime_webhook_requests_total{webhook="/mutate-v1-pod",code="200"} 0+3x60
controller_runtime_webhook_latency_seconds_bucket{webhook="/mutate-v1-pod",le="0.005"} 0+3x60
controller_runtime_webhook_latency_seconds_bucket{webhook="/mutate-v1-pod",le="+Inf"} 0+3x60
controller_runtime_reconcile_errors_total{controller="pod"} 0+1x60
`

// TestDashboard: every panel has queries; each parses, names only documented metrics and
// labels, and returns data from the fixture (so selectors and labels match what is exported).
func TestDashboard(t *testing.T) {
	panels := dashboardPanels(t)
	if len(panels) == 0 {
		t.Fatal("no panels")
	}
	checkSeriesDocumented(t, dashboardFixture)
	storage := promqltest.LoadedStorage(t, "load 1m\n"+indent(dashboardFixture))
	engine := promqltest.NewTestEngine(t, false, 0, promqltest.DefaultMaxSamplesPerQuery)
	titles := map[string]bool{}
	for _, p := range panels {
		if titles[p.Title] {
			t.Errorf("two panels titled %q", p.Title)
		}
		titles[p.Title] = true
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			where := "panel " + p.Title
			checkExprDocumented(t, where, tg.Expr)
			q, err := engine.NewInstantQuery(context.Background(), storage, nil, tg.Expr, time.Unix(0, 0).Add(50*time.Minute))
			if err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			res := q.Exec(context.Background())
			if res.Err != nil {
				t.Errorf("%s: %v", where, res.Err)
			} else if v, ok := res.Value.(promql.Vector); !ok || len(v) == 0 {
				t.Errorf("%s: %q returns nothing from the fixture", where, tg.Expr)
			}
			q.Close()
		}
	}
}

// TestDashboardIsDescribed: docs/metrics.md describes every panel (a screenshot needs Grafana).
func TestDashboardIsDescribed(t *testing.T) {
	raw, err := os.ReadFile(metricsDoc)
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	for _, p := range dashboardPanels(t) {
		if !strings.Contains(string(raw), "**"+p.Title+"**") {
			missing = append(missing, p.Title)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("panels not described (as **title**) in %s: %q", filepath.Base(metricsDoc), missing)
	}
}
