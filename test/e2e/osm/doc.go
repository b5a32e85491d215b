// Package osm holds the end-to-end test of meshkeeper's audit mode beside Open Service Mesh
// v1.2.4 itself, on the real one-node cluster of hack/cluster: OSM installed from its own Helm
// chart by hack/cluster/osm.sh (its control plane built from its Go module; Envoy and curl are
// stand-ins, see hack/imagebuild/osm.go), meshkeeper deployed with test/e2e/deploy/audit. Run it
// with `make e2e-osm`, which installs OSM, runs it and uninstalls OSM.
//
// The tests are behind the e2e build tag, read the cluster from KUBECONFIG and skip, saying why,
// when OSM is not installed. They are a package of their own because they must not run the
// set-up of test/e2e, which applies meshkeeper's sample MeshConfig over the mesh's.
package osm
