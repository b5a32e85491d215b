// Package chart tests the Helm chart charts/meshkeeper against the kustomize overlays it stands
// for: `helm lint`, and `helm template` in each mode compared object by object with `kubectl
// kustomize` of the matching overlay. The differences that are intended are normalised here, one
// function each, and listed in docs/helm.md.
//
// helm is the pinned build of hack/cluster/osm.sh (`make test` builds it first); the test is
// skipped, saying so, only when no helm binary is there.
package chart

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/yaml"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/meshkeeper/meshkeeper/internal/testenv"
)

const (
	chartDir  = "charts/meshkeeper"
	release   = "meshkeeper"
	namespace = "meshkeeper-system"
)

// modes are the overlays the chart renders, with the values that select each.
var modes = []struct {
	overlay string
	values  []string
}{
	{"config/default", nil},
	{"config/validating", []string{"validatingWebhooks=true"}},
	{"config/injector", []string{"mode=inject"}},
	{"config/certmanager", []string{"mode=inject", "certManager.enabled=true"}},
}

func root(t *testing.T) string {
	t.Helper()
	r, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// helmBin finds the pinned helm: $HELM (set by make test), else bin/helm/<version>/helm.
func helmBin(t *testing.T) string {
	t.Helper()
	if h := os.Getenv("HELM"); h != "" {
		if _, err := os.Stat(h); err == nil {
			return h
		}
	}
	found, _ := filepath.Glob(filepath.Join(root(t), "bin", "helm", "*", "helm"))
	if len(found) == 0 {
		t.Skip("no helm binary in bin/helm/: the chart is not tested; `make test` builds it (hack/cluster/osm.sh helm)")
	}
	sort.Strings(found)
	return found[len(found)-1]
}

func run(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	var out, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Dir = root(t)
	// helm's own configuration and caches stay out of the home directory; no repository is used.
	tmp := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+tmp, "HELM_CACHE_HOME="+tmp, "HELM_DATA_HOME="+tmp)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, stderr.String())
	}
	return out.Bytes()
}

func kustomize(t *testing.T, dir string) []byte {
	t.Helper()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		kubectl = filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl")
		if _, err := os.Stat(kubectl); os.Getenv("KUBEBUILDER_ASSETS") == "" || err != nil {
			t.Skip("no kubectl on PATH or in KUBEBUILDER_ASSETS (make test provides it): kustomize output cannot be rendered")
		}
	}
	return run(t, kubectl, "kustomize", dir)
}

func template(t *testing.T, values ...string) []byte {
	t.Helper()
	args := []string{"template", release, chartDir, "--namespace", namespace, "--set", "namespace.create=true"}
	for _, v := range values {
		args = append(args, "--set", v)
	}
	return run(t, helmBin(t), args...)
}

type object = map[string]any

func parse(t *testing.T, rendered []byte) map[string]object {
	t.Helper()
	out := map[string]object{}
	r := yaml.NewYAMLReader(bufioReader(rendered))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		var o object
		if err := sigsyaml.Unmarshal(doc, &o); err != nil {
			t.Fatalf("%v\n%s", err, doc)
		}
		if o == nil {
			continue
		}
		k := key(o)
		if _, dup := out[k]; dup {
			t.Errorf("%s rendered twice", k)
		}
		out[k] = o
	}
}

func key(o object) string {
	md, _ := o["metadata"].(map[string]any)
	ns, _ := md["namespace"].(string)
	return fmt.Sprintf("%s %s/%s", o["kind"], ns, md["name"])
}

// helmLabels are the labels the chart puts on every object's metadata, and their values.
func helmLabels() map[string]string {
	return map[string]string{
		"helm.sh/chart":                "meshkeeper-0.1.0",
		"app.kubernetes.io/managed-by": "Helm",
		"app.kubernetes.io/instance":   release,
		"app.kubernetes.io/version":    "latest",
	}
}

// normaliseLabels removes the labels each tool adds to every object's metadata, after checking
// they are there: Helm's four (helmLabels) on every object of the chart, kustomize's
// app.kubernetes.io/managed-by on those of the overlays that set it (config/certmanager adds its
// Issuer and Certificate without). Pod templates and selectors carry neither.
func normaliseLabels(t *testing.T, o object, want map[string]string, required bool) {
	t.Helper()
	md := o["metadata"].(map[string]any)
	labels, _ := md["labels"].(map[string]any)
	for k, v := range want {
		if _, ok := labels[k]; (ok || required) && labels[k] != v {
			t.Errorf("%s: label %s = %v, want %s", key(o), k, labels[k], v)
		}
		delete(labels, k)
	}
	if labels != nil && len(labels) == 0 {
		delete(md, "labels")
	}
}

func TestChartLint(t *testing.T) {
	h := helmBin(t)
	for _, m := range modes {
		args := []string{"lint", "--strict", chartDir}
		for _, v := range m.values {
			args = append(args, "--set", v)
		}
		run(t, h, args...)
	}
	run(t, h, "lint", "--strict", chartDir, "--set",
		"metrics.serviceMonitor.enabled=true,metrics.prometheusRule.enabled=true,metrics.dashboard.enabled=true")
}

// TestChartMatchesKustomize: each mode renders the overlay's objects, the same set and the same
// content once the intended differences are normalised.
func TestChartMatchesKustomize(t *testing.T) {
	helmBin(t)
	for _, m := range modes {
		t.Run(filepath.Base(m.overlay), func(t *testing.T) {
			want := parse(t, kustomize(t, m.overlay))
			got := parse(t, template(t, m.values...))
			for k, o := range want {
				normaliseLabels(t, o, map[string]string{"app.kubernetes.io/managed-by": "kustomize"}, false)
				if _, ok := got[k]; !ok {
					t.Errorf("%s is in %s but not rendered by the chart", k, m.overlay)
				}
			}
			for k, o := range got {
				normaliseLabels(t, o, helmLabels(), true)
				w, ok := want[k]
				if !ok {
					t.Errorf("the chart renders %s, which %s does not have", k, m.overlay)
					continue
				}
				for _, d := range diff("", w, o) {
					t.Errorf("%s: %s", k, d)
				}
			}
		})
	}
}

// TestChartMonitoring: the PrometheusRule is config/prometheus's, the ServiceMonitor selects the
// metrics Service's port, the dashboard ConfigMap holds config/grafana's JSON; none is rendered
// by default.
func TestChartMonitoring(t *testing.T) {
	helmBin(t)
	for k := range parse(t, template(t)) {
		for _, kind := range []string{"PrometheusRule", "ServiceMonitor", "ConfigMap"} {
			if strings.HasPrefix(k, kind+" ") {
				t.Errorf("%s rendered by default", k)
			}
		}
	}
	got := parse(t, template(t, "metrics.serviceMonitor.enabled=true", "metrics.prometheusRule.enabled=true",
		"metrics.dashboard.enabled=true", "metrics.prometheusRule.labels.release=prometheus"))
	want := parse(t, kustomize(t, "config/prometheus"))
	if len(want) != 1 {
		t.Fatalf("config/prometheus renders %d objects, want 1", len(want))
	}
	for k, w := range want {
		o, ok := got[k]
		if !ok {
			t.Fatalf("the chart renders no %s", k)
		}
		labels := helmLabels()
		labels["release"] = "prometheus"
		normaliseLabels(t, o, labels, true)
		for _, d := range diff("", w, o) {
			t.Errorf("%s: %s", k, d)
		}
	}
	svc := got["Service "+namespace+"/meshkeeper-controller-manager-metrics-service"]
	sm := got["ServiceMonitor "+namespace+"/meshkeeper-controller-manager-metrics-monitor"]
	if svc == nil || sm == nil {
		t.Fatalf("metrics Service %v, ServiceMonitor %v", svc != nil, sm != nil)
	}
	svcLabels := svc["metadata"].(map[string]any)["labels"].(map[string]any)
	for k, v := range sm["spec"].(map[string]any)["selector"].(map[string]any)["matchLabels"].(map[string]any) {
		if svcLabels[k] != v {
			t.Errorf("the ServiceMonitor selects %s=%v, the metrics Service has %v", k, v, svcLabels[k])
		}
	}
	port := sm["spec"].(map[string]any)["endpoints"].([]any)[0].(map[string]any)["port"]
	if p := svc["spec"].(map[string]any)["ports"].([]any)[0].(map[string]any)["name"]; p != port {
		t.Errorf("the ServiceMonitor scrapes port %v, the Service's is %v", port, p)
	}
	cm := got["ConfigMap "+namespace+"/meshkeeper-grafana-dashboard"]
	if cm == nil {
		t.Fatal("no dashboard ConfigMap")
	}
	dashboard, err := os.ReadFile(filepath.Join(root(t), "config", "grafana", "meshkeeper.json"))
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	if err := json.Unmarshal(dashboard, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(cm["data"].(map[string]any)["meshkeeper.json"].(string)), &b); err != nil {
		t.Fatalf("the ConfigMap's dashboard is not JSON: %v", err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Error("the ConfigMap's dashboard differs from config/grafana/meshkeeper.json")
	}
}

// TestChartValues: values.schema.json rejects what the chart cannot render, and the values that
// change the manager's arguments reach them.
func TestChartValues(t *testing.T) {
	h := helmBin(t)
	for _, bad := range [][]string{{"mode=gateway"}, {"replicas=-1"}, {"webhook.failurePolicy=Maybe"}, {"certManager.enabled=true"}} {
		args := []string{"template", release, chartDir, "--namespace", namespace}
		for _, v := range bad {
			args = append(args, "--set", v)
		}
		cmd := exec.Command(h, args...)
		cmd.Dir = root(t)
		if out, err := cmd.CombinedOutput(); err == nil {
			t.Errorf("helm template --set %s succeeded; want an error\n%s", strings.Join(bad, ","), out)
		}
	}
	got := parse(t, template(t, "meshName=prod", "meshConfig=osm-system/osm-mesh-config", "mode=inject", "extraArgs[0]=--auto-restart-min-interval=30m"))
	d := got["Deployment "+namespace+"/meshkeeper-controller-manager"]
	c := d["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
	var args []string
	for _, a := range c["args"].([]any) {
		args = append(args, a.(string))
	}
	for _, want := range []string{"--mode=inject", "--mesh-name=prod", "--meshconfig=osm-system/osm-mesh-config", "--auto-restart-min-interval=30m"} {
		if !slices.Contains(args, want) {
			t.Errorf("args %q lack %s", args, want)
		}
	}
	mwc := got["MutatingWebhookConfiguration /meshkeeper-mutating-webhook-configuration"]
	sel, _ := json.Marshal(mwc["webhooks"].([]any)[0].(map[string]any)["namespaceSelector"])
	if !strings.Contains(string(sel), `"key":"openservicemesh.io/monitored-by","operator":"In","values":["prod"]`) {
		t.Errorf("the injector's namespaceSelector does not follow meshName: %s", sel)
	}
}

// TestChartFilesAreCurrent: the files the chart reads are copies of config/ (make chart-files,
// run by make manifests), never edited by hand.
func TestChartFilesAreCurrent(t *testing.T) {
	r := root(t)
	for src, dst := range map[string]string{
		"config/rbac/role.yaml":                 "rbac/manager-role.yaml",
		"config/webhook/role.yaml":              "rbac/webhook-role.yaml",
		"config/injector/role.yaml":             "rbac/injector-role.yaml",
		"config/webhook/manifests.yaml":         "webhooks.yaml",
		"config/prometheus/prometheusrule.yaml": "prometheusrule.yaml",
		"config/grafana/meshkeeper.json":        "meshkeeper-dashboard.json",
	} {
		a, err := os.ReadFile(filepath.Join(r, src))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(r, chartDir, "files", dst))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s/files/%s differs from %s: run make chart-files (or make manifests)", chartDir, dst, src)
		}
	}
}

// diff lists the paths where two decoded YAML values differ.
func diff(path string, want, got any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: want %s, got %s", or(path), show(want), show(got))}
		}
		var out []string
		for _, k := range union(w, g) {
			wv, wok := w[k]
			gv, gok := g[k]
			switch {
			case !gok:
				out = append(out, fmt.Sprintf("%s.%s: missing from the chart (kustomize: %s)", path, k, show(wv)))
			case !wok:
				out = append(out, fmt.Sprintf("%s.%s: only in the chart: %s", path, k, show(gv)))
			default:
				out = append(out, diff(path+"."+k, wv, gv)...)
			}
		}
		return out
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return []string{fmt.Sprintf("%s: want %s, got %s", or(path), show(want), show(got))}
		}
		var out []string
		for i := range w {
			out = append(out, diff(fmt.Sprintf("%s[%d]", path, i), w[i], g[i])...)
		}
		return out
	default:
		if !reflect.DeepEqual(want, got) {
			return []string{fmt.Sprintf("%s: want %s, got %s", or(path), show(want), show(got))}
		}
		return nil
	}
}

func union(a, b map[string]any) []string {
	var keys []string
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

func or(path string) string {
	if path == "" {
		return "."
	}
	return path
}

func show(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }
