// Command manager is the meshkeeper operator: one process that serves the admission webhooks
// (sidecar injection and validation) with a certificate it manages itself, and runs the
// controllers registered in setupFuncs.
package main
