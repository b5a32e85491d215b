//go:build e2e

// Package e2eutil is what the end-to-end suites on the real node share (test/e2e for inject and
// audit mode, test/e2e/osm beside OSM): commands run from the repository root, polls that log
// how long they took and never assert it, pod conditions, the host pid of a container, and the
// operator's rollout. Both suites are separate packages because their clusters differ (whose
// CRDs, whose MeshConfig); their helpers are one.
package e2eutil
