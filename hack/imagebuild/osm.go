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
	withCRDs(Image{
		// The chart's post-delete hook runs `sh -c "kubectl replace -f /osm-crds; kubectl delete ..."`
		// in it; OSM's has busybox and kubectl, this one Debian and the cluster's own kubectl.
		Name:         "osm-crds",
		Tags:         []string{"openservicemesh/osm-crds:" + OSMVersion},
		DebianRootfs: true,
		Binaries:     []Binary{{Prebuilt: "${KUBE_BIN}/kubectl", Path: "/usr/local/bin/kubectl"}},
		Entrypoint:   []string{"/usr/local/bin/kubectl"},
		Env:          []string{defaultPath},
	}),
	{
		// Envoy stand-in under the name the chart is given for Envoy (osm.sidecarImage, set by
		// osm.sh without the chart's digest): the same program as the "standin" image.
		Name:       "osm-envoy-standin",
		Tags:       []string{"envoyproxy/envoy-distroless:v1.22.2"},
		Binaries:   []Binary{{Package: "./test/e2e/standin", Path: "/usr/local/bin/envoy"}},
		Entrypoint: []string{"/usr/local/bin/envoy"},
		Env:        []string{defaultPath},
	},
	{
		// curl stand-in for the init containers of osm-controller and osm-injector, which wait
		// for osm-bootstrap with curl (osm.curlImage, set by osm.sh to this name).
		Name:         "curl-standin",
		Tags:         []string{"localhost/meshkeeper/curl-standin:" + Tag},
		NonRootFiles: true,
		Binaries:     []Binary{{Package: "./test/e2e/curlstandin", Path: "/usr/bin/curl"}},
		Entrypoint:   []string{"/usr/bin/curl"},
		Env:          []string{defaultPath},
	},
}

// osmProgram is one of OSM's control-plane programs alone at the root of a distroless-like
// image, as OSM's Dockerfiles build them; the chart gives the command (/<name>) and the user.
func osmProgram(name string) Image {
	return Image{
		Name:         name,
		Tags:         []string{"openservicemesh/" + name + ":" + OSMVersion},
		NonRootFiles: true,
		Binaries:     []Binary{{Prebuilt: "${OSM_BIN}/" + name, Path: "/" + name}},
		Entrypoint:   []string{"/" + name},
		Env:          []string{defaultPath},
	}
}

// withCRDs adds OSM's CRDs at /osm-crds, where osm-bootstrap and the cleanup hook read them.
func withCRDs(img Image) Image {
	img.Trees = append(img.Trees, Tree{From: "${OSM_MODULE}/cmd/osm-bootstrap/crds", To: "/osm-crds"})
	return img
}

// imageSets are the sets -set chooses from: the cluster's own images (the default) and OSM's.
var imageSets = map[string][]Image{"": Images, "osm": OSMImages}
