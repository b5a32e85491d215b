// Package gitops holds the tests that keep meshkeeper's GitOps health rules honest: the Argo CD
// Lua health script in config/argocd must reach the same verdict as kstatus (which Flux and
// kubectl wait use) on the statuses the controllers write, so both tools gate a rollout alike.
package gitops
