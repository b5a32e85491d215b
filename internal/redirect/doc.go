// Package redirect is the single source of truth for how a meshed pod's TCP traffic is steered
// into its sidecar: it merges MeshConfig and pod annotations into an effective configuration,
// renders that configuration as iptables rules for the init container, reads back rules written
// by meshkeeper or by any Open Service Mesh release, explains where a packet would go, and
// compares what a pod should have with what it has. Everything here is pure so that the injector,
// the drift controller and the CLI all reach the same answer from the same input.
package redirect
