// Command meshkeeper-demo is what `make demo` runs: it brings up a local control plane with a
// fake node, runs the operator against it and plays a scenario that shows injection, drift and
// recovery, so that meshkeeper can be seen working without a cluster.
package main
