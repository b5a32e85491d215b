// Package status turns what a reconcile found into kstatus-compatible conditions and writes them
// back in a single patch, so that every meshkeeper kind reports Ready, Reconciling and Stalled the
// same way and tools such as kubectl wait, Flux and Argo CD read them without special cases.
package status
