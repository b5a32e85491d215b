// Package sidecar renders the bootstrap the injected Envoy starts with when no bootstrap Secret
// is configured.
//
// The rules meshkeeper-init loads redirect every outbound TCP connection to
// redirect.OutboundListenerPort and every inbound one to redirect.InboundListenerPort. If nothing
// listens there, a meshed pod has no network at all. Without a control plane, the least the
// sidecar must do is pass each connection through to where it was going: this package renders
// that as a static Envoy v3 bootstrap, passed inline with --config-yaml, so admission creates no
// Secret and the sidecar runs no shell.
//
// The package is pure and renders with encoding/json only: the manager does not link Envoy's API
// types. The tests check the output against go-control-plane's protos and validation rules
// (docs/sidecar.md says what that proves and what it does not).
package sidecar
