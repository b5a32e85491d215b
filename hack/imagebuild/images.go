package main

// Binary is a Go program built from this repository and copied into an image.
type Binary struct {
	// Package is the main package, relative to the repository root (./cmd/manager).
	Package string
	// Path is where the binary lands in the image.
	Path string
	// Prebuilt, instead of Package, is a binary built elsewhere and copied as it is (OSM's
	// programs, built from its module by hack/cluster/osm.sh). $VARIABLES in it are taken from
	// the environment; a relative path is relative to the repository root.
	Prebuilt string `json:",omitempty"`
}

// Tree is a directory copied into an image, its regular files only (OSM's CRDs, read from its
// module in Go's module cache). $VARIABLES in From are taken from the environment.
type Tree struct {
	From string
	To   string
}

// Image describes one image: what goes into its single layer and how it starts.
type Image struct {
	// Name is the short name used on the command line and for the archive file.
	Name string
	// Tags are the references the image is imported under; the first is its own.
	Tags []string
	// DebianRootfs puts the Debian root filesystem (with iptables) under the binaries.
	DebianRootfs bool
	// NonRootFiles adds /etc/passwd and /etc/group with the nonroot user (65532) and a
	// world-writable /tmp, as a distroless static base image has them.
	NonRootFiles bool
	Binaries     []Binary
	// Trees are directories copied into the image.
	Trees      []Tree `json:",omitempty"`
	Entrypoint []string
	User       string
	Env        []string
}

// Tag is the tag of every image built here: the manager's default --init-image is
// ghcr.io/meshkeeper/init:<version>, and a binary built without a version stamp says "dev".
const Tag = "dev"

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Images are the images the real-node cluster and its tests run. The manager and init images
// describe the same images as Dockerfile and Dockerfile.init (a test keeps them in step).
var Images = []Image{
	runs(Binary{Package: "./cmd/manager", Path: "/manager"},
		Image{Name: "manager", Tags: []string{"ghcr.io/meshkeeper/manager:" + Tag}, NonRootFiles: true, User: nonRoot}),
	runs(Binary{Package: "./cmd/meshkeeper-init", Path: "/meshkeeper-init"},
		Image{Name: "init", Tags: []string{"ghcr.io/meshkeeper/init:" + Tag}, DebianRootfs: true}),
	{
		// The sandbox ("pause") image containerd starts first in every pod.
		Name:       "pause",
		Tags:       []string{"localhost/meshkeeper/pause:" + Tag},
		Binaries:   []Binary{{Package: "./hack/cluster/pause", Path: "/pause"}},
		Entrypoint: []string{"/pause"},
		User:       "65535:65535",
	},
	// Stands in for Envoy under the names the injector uses (its default and the one in
	// config/samples): no Envoy binary can be had on the machines this runs on.
	runs(envoyStandin, Image{Name: "standin", Tags: []string{"envoyproxy/envoy:v1.31.2", "mcr.microsoft.com/oss/envoyproxy/envoy:v1.22.2"}}),
	runs(Binary{Package: "./test/e2e/testapp", Path: "/testapp"},
		Image{Name: "testapp", Tags: []string{"localhost/meshkeeper/testapp:" + Tag}, NonRootFiles: true, User: nonRoot}),
}

// nonRoot is the user of a distroless static base image (see Image.NonRootFiles).
const nonRoot = "65532:65532"

// envoyStandin is the program that stands in for Envoy.
var envoyStandin = Binary{Package: "./test/e2e/standin", Path: "/usr/local/bin/envoy"}

// runs makes bin img's program: its binary, its entrypoint, with the default PATH.
func runs(bin Binary, img Image) Image {
	img.Binaries = append(img.Binaries, bin)
	img.Entrypoint = []string{bin.Path}
	img.Env = []string{defaultPath}
	return img
}
