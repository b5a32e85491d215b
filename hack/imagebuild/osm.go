package main

// OSMVersion is the Open Service Mesh release whose control plane the real-node cluster runs
// beside meshkeeper (hack/cluster/osm.sh installs it from its own Helm chart).
const OSMVersion = "v1.2.4"

// OSMImages are the images OSM's Helm chart names, written with `-set osm`. OSM's programs are
// built from its Go module by hack/cluster/osm.sh ($OSM_BIN) and its CRDs are read from the
// module in Go's module cache ($OSM_MODULE): nothing of OSM is in this repository. The bases
// follow OSM's Dockerfiles where this machine has them (a static program on a distroless-like
// base; the init image is Debian with iptables where OSM's is Alpine with iptables). Two images
// are stand-ins, named so: no Envoy and no curl image can be had here.
var OSMImages = []Image{
	osmProgram("osm-controller"),
	osmProgram("osm-injector"),
	withCRDs(osmProgram("osm-bootstrap")),
	osmProgram("osm-preinstall"),
	{
		// The sidecar's init container: OSM runs `/bin/sh -c "iptables-restore ..."` in it.
		Name:         "osm-init",
		Tags:         []string{"openservicemesh/init:" + OSMVersion},
		DebianRootfs: true,
		Env:          []string{defaultPath},
	},
	// The chart's post-delete hook runs `sh -c "kubectl replace -f /osm-crds; kubectl delete ..."`
	// in it; OSM's has busybox and kubectl, this one Debian and the cluster's own kubectl.
	withCRDs(runs(Binary{Prebuilt: "${KUBE_BIN}/kubectl", Path: "/usr/local/bin/kubectl"},
		Image{Name: "osm-crds", Tags: []string{"openservicemesh/osm-crds:" + OSMVersion}, DebianRootfs: true})),
	// Envoy stand-in under the name the chart is given for Envoy (osm.sidecarImage, set by
	// osm.sh without the chart's digest): the same program as the "standin" image.
	runs(envoyStandin, Image{Name: "osm-envoy-standin", Tags: []string{"envoyproxy/envoy-distroless:v1.22.2"}}),
	// curl stand-in for the init containers of osm-controller and osm-injector, which wait
	// for osm-bootstrap with curl (osm.curlImage, set by osm.sh to this name).
	runs(Binary{Package: "./test/e2e/curlstandin", Path: "/usr/bin/curl"},
		Image{Name: "curl-standin", Tags: []string{"localhost/meshkeeper/curl-standin:" + Tag}, NonRootFiles: true}),
}

// osmProgram is one of OSM's control-plane programs alone at the root of a distroless-like
// image, as OSM's Dockerfiles build them; the chart gives the command (/<name>) and the user.
func osmProgram(name string) Image {
	return runs(Binary{Prebuilt: "${OSM_BIN}/" + name, Path: "/" + name},
		Image{Name: name, Tags: []string{"openservicemesh/" + name + ":" + OSMVersion}, NonRootFiles: true})
}

// withCRDs adds OSM's CRDs at /osm-crds, where osm-bootstrap and the cleanup hook read them.
func withCRDs(img Image) Image {
	img.Trees = append(img.Trees, Tree{From: "${OSM_MODULE}/cmd/osm-bootstrap/crds", To: "/osm-crds"})
	return img
}

// imageSets are the sets -set chooses from: the cluster's own images (the default) and OSM's.
var imageSets = map[string][]Image{"": Images, "osm": OSMImages}
