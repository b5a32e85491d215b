// Package layers holds the test that keeps the import graph the doc.go files describe: the
// packages that decide (redirect, drift, injection, analysis, diagnose and the other pure ones)
// never reach an API client, webhooks and controllers stay independent of each other, and the
// demo and test-support packages stay out of the binaries. A doc comment can only promise this;
// the test fails the build of a change that breaks it.
package layers
