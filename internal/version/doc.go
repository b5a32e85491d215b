// Package version is the one place a meshkeeper program learns which build it is: the manager
// stamps it on the pods it injects and logs it, the CLI prints it and compares it with the
// operator running in the cluster. A release sets it with
//
//	-ldflags "-X github.com/meshkeeper/meshkeeper/internal/version.Version=v0.4.0"
//
// (make dist does); otherwise the Go toolchain's build information is used, which names the
// module version for `go install ...@v0.4.0` and the commit for a build from a checkout.
package version
