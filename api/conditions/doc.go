// Package conditions is the condition vocabulary every meshkeeper kind and every meshed pod shares,
// so that controllers, the CLI and generic tools (kstatus, Flux, Argo CD) read status the same way.
//
// +kubebuilder:object:generate=true
package conditions
