// Package osmtest is test support that reproduces Open Service Mesh v1.2.4's footprint in a real
// API server (envtest): OSM's own CustomResourceDefinitions, labelled the way osm-bootstrap
// installs them, and a stand-in for osm-injector that answers pod admission the way OSM v1.2.4
// does (osm-init with the iptables-restore here-document, the envoy sidecar, the osm-proxy-uuid
// label and the envoy-bootstrap-config-<uuid> Secret).
//
// OSM's files are read from the Go module cache (`go mod download -json
// github.com/openservicemesh/osm@v1.2.4`), never copied into this tree; meshkeeper's go.mod does
// not require OSM. What is reproduced and what is left out is listed on Injector.
//
// Its code lives in non-test files so that tests in any package can import it; only tests may.
package osmtest
