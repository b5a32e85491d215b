package diagnose

import (
	"slices"
)

// Status is the outcome of one check.
type Status string

const (
	// StatusPass: the aspect is healthy.
	StatusPass Status = "pass"
	// StatusWarn: the aspect works but needs attention, or cannot be judged yet.
	StatusWarn Status = "warn"
	// StatusFail: the aspect is broken; traffic does not flow as configured.
	StatusFail Status = "fail"
	// StatusSkip: the facts the check needs were not available (offline mode, missing
	// permission, an earlier failure that makes the check meaningless).
	StatusSkip Status = "skip"
)

// Check is the verdict on one aspect of a meshed pod.
type Check struct {
	// Name is stable (a kebab-case identifier) so scripts can select checks.
	Name   string `json:"name"`
	Status Status `json:"status"`
	// Reason is one line naming what was found (each missing or unexpected value for drift).
	Reason string `json:"reason"`
	// Hint is the command or change that fixes a failure; empty when nothing is to be done.
	Hint string `json:"hint"`
	// Code is the condition reason or finding code behind the verdict, when there is one.
	Code string `json:"code,omitempty"`
}

// Names of the checks, in the order they are reported.
const (
	CheckSidecarInjected   = "sidecar-injected"
	CheckSidecarReady      = "sidecar-ready"
	CheckInitContainer     = "init-container"
	CheckPodAnnotations    = "pod-annotations"
	CheckExclusionsInSync  = "exclusions-in-sync"
	CheckNamespaceMonitor  = "namespace-monitored"
	CheckNamespaceInject   = "namespace-injection"
	CheckMeshConfig        = "meshconfig"
	CheckCRDs              = "crds"
	CheckMutatingWebhook   = "mutating-webhook"
	CheckValidatingWebhook = "validating-webhook"
	CheckOperator          = "operator"
)

// CheckNames lists every check in report order.
var CheckNames = []string{
	CheckSidecarInjected, CheckSidecarReady, CheckInitContainer, CheckPodAnnotations, CheckExclusionsInSync,
	CheckNamespaceMonitor, CheckNamespaceInject, CheckMeshConfig, CheckCRDs, CheckMutatingWebhook,
	CheckValidatingWebhook, CheckOperator,
}

// Summary counts checks by status.
type Summary struct {
	Pass int `json:"pass"`
	Warn int `json:"warn"`
	Fail int `json:"fail"`
	Skip int `json:"skip"`
}

// Summarize counts checks by status.
func Summarize(checks []Check) Summary {
	var s Summary
	for _, c := range checks {
		switch c.Status {
		case StatusPass:
			s.Pass++
		case StatusWarn:
			s.Warn++
		case StatusFail:
			s.Fail++
		case StatusSkip:
			s.Skip++
		}
	}
	return s
}

// Worst returns the most severe status among checks (skip counts as nothing).
func Worst(checks []Check) Status {
	rank := []Status{StatusPass, StatusWarn, StatusFail}
	worst := StatusPass
	for _, c := range checks {
		if slices.Index(rank, c.Status) > slices.Index(rank, worst) {
			worst = c.Status
		}
	}
	return worst
}
