package demo

import (
	"encoding/json"
	"slices"
	"strconv"
	"testing"

	"github.com/meshkeeper/meshkeeper/internal/redirect"
	"github.com/meshkeeper/meshkeeper/internal/validation"
)

func TestManagerArgs(t *testing.T) {
	args := ManagerArgs("/r/bin/manager", "/r/.demo/kubeconfig", 9443, "/tmp/certs", 8081)
	if args[0] != "/r/bin/manager" {
		t.Fatalf("argv[0] = %q", args[0])
	}
	for _, want := range []string{
		"--kubeconfig=/r/.demo/kubeconfig",
		"--webhook-port=9443",
		"--webhook-cert-dir=/tmp/certs",
		"--cert-manager", // envtest made the certificate: the manager must not rotate it
		"--metrics-bind-address=0",
		"--health-probe-bind-address=127.0.0.1:8081",
		"--mode=inject", // the demo shows injection; the manager's default is audit
		"--meshconfig=" + MeshNamespace + "/" + MeshConfigName,
	} {
		if !slices.Contains(args, want) {
			t.Errorf("manager args %q lack %q", args, want)
		}
	}
}

// Both MeshConfigs of the scenario must be valid, or step 2 would show a refusal instead of drift.
func TestScenarioMeshConfigsAreValid(t *testing.T) {
	before := MeshConfig()
	if r := validation.MeshConfig(before, redirect.ClusterRanges{}); len(r.Errors) > 0 {
		t.Fatalf("starting MeshConfig invalid: %v", r.Errors.ToAggregate())
	}
	after := MeshConfig()
	if err := json.Unmarshal([]byte(ExclusionChange), after); err != nil {
		t.Fatalf("ExclusionChange is not JSON for a MeshConfig: %v", err)
	}
	if r := validation.MeshConfig(after, redirect.ClusterRanges{}); len(r.Errors) > 0 {
		t.Fatalf("changed MeshConfig invalid: %v", r.Errors.ToAggregate())
	}
	// Step 2 looks for these two values in the drift messages; the change must add exactly them.
	added := map[string]bool{}
	for _, c := range after.Spec.Traffic.OutboundIPRangeExclusionList {
		if !slices.Contains(before.Spec.Traffic.OutboundIPRangeExclusionList, c) {
			added[c] = true
		}
	}
	for _, p := range after.Spec.Traffic.OutboundPortExclusionList {
		if !slices.Contains(before.Spec.Traffic.OutboundPortExclusionList, p) {
			added[strconv.Itoa(int(p))] = true
		}
	}
	if len(added) != 2 || !added["192.0.2.0/24"] || !added["6379"] {
		t.Fatalf("ExclusionChange adds %v, want 192.0.2.0/24 and 6379", added)
	}
	if !slices.Equal(after.Spec.Traffic.InboundPortExclusionList, before.Spec.Traffic.InboundPortExclusionList) {
		t.Errorf("ExclusionChange must keep the inbound exclusions")
	}
}
