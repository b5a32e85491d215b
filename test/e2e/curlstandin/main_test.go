package main

import (
	"testing"
	"time"
)

func TestServiceFromEnv(t *testing.T) {
	env := map[string]string{"OSM_BOOTSTRAP_SERVICE_HOST": "10.96.0.12", "BROKEN_SERVICE_HOST": "nope"}
	getenv := func(k string) string { return env[k] }
	for _, tc := range []struct {
		host, ns, want string
	}{
		{"osm-bootstrap.osm-system.svc.cluster.local", "osm-system", "10.96.0.12"},
		{"osm-bootstrap.osm-system.svc", "osm-system", "10.96.0.12"},
		{"osm-bootstrap.osm-system.svc.cluster.local.", "osm-system", "10.96.0.12"},
		// The variables only describe the pod's own namespace.
		{"osm-bootstrap.osm-system.svc.cluster.local", "default", ""},
		{"osm-bootstrap.osm-system.svc.cluster.local", "", ""},
		{"osm-bootstrap.osm-system.svc.example.org", "osm-system", ""},
		{"osm-bootstrap.osm-system.pod.cluster.local", "osm-system", ""},
		{"osm-controller.osm-system.svc.cluster.local", "osm-system", ""},
		{"broken.osm-system.svc", "osm-system", ""},
		{"example.org", "osm-system", ""},
	} {
		got, ok := serviceFromEnv(tc.host, getenv, tc.ns)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("serviceFromEnv(%q, namespace %q) = %q, %v; want %q", tc.host, tc.ns, got, ok, tc.want)
		}
	}
}

func TestParseArgsTakesWhatOSMsInitContainersPass(t *testing.T) {
	o, err := parseArgs([]string{"http://osm-bootstrap.osm-system.svc.cluster.local:9091/healthz", "--connect-timeout", "2", "--retry", "50", "--retry-connrefused", "--retry-delay", "5"})
	if err != nil {
		t.Fatal(err)
	}
	want := options{url: "http://osm-bootstrap.osm-system.svc.cluster.local:9091/healthz", connectTimeout: 2 * time.Second, retries: 50, retryRefused: true, retryDelay: 5 * time.Second}
	if o != want {
		t.Errorf("got %+v, want %+v", o, want)
	}
	for _, bad := range [][]string{
		{},
		{"--retry", "x", "http://a/"},
		{"-f", "http://a/"},
		{"https://a/"},
		{"http://a/", "http://b/"},
		{"http://a/", "--retry-delay"},
	} {
		if _, err := parseArgs(bad); err == nil {
			t.Errorf("parseArgs(%q) accepted", bad)
		}
	}
}
