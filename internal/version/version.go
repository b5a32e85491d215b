package version

import (
	"fmt"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
)

// Version is set by the linker for releases; empty otherwise.
var Version = ""

// Info describes a build.
type Info struct {
	// Version is the release ("v0.4.0"), the module's pseudo-version, or "dev".
	Version string `json:"version"`
	// Commit is the VCS revision the binary was built from, when the toolchain recorded it.
	Commit string `json:"commit,omitempty"`
	// Modified reports uncommitted changes in that checkout.
	Modified  bool   `json:"modified,omitempty"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// Get returns the running binary's build information.
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	return fromBuildInfo(Version, bi)
}

func fromBuildInfo(linked string, bi *debug.BuildInfo) Info {
	info := Info{Version: linked, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi == nil {
		if info.Version == "" {
			info.Version = "dev"
		}
		return info
	}
	info.GoVersion = bi.GoVersion
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Commit = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	if info.Version == "" {
		info.Version = bi.Main.Version
	}
	if info.Version == "" || info.Version == "(devel)" {
		info.Version = "dev"
	}
	return info
}

// String is the one-line form: "v0.4.0 (commit 1a2b3c4d5e6f, go1.26.8, linux/amd64)".
func (i Info) String() string {
	var parts []string
	if i.Commit != "" {
		c := i.Commit
		if len(c) > 12 {
			c = c[:12]
		}
		if i.Modified {
			c += ", modified"
		}
		parts = append(parts, "commit "+c)
	}
	parts = append(parts, i.GoVersion, i.Platform)
	return fmt.Sprintf("%s (%s)", i.Version, strings.Join(parts, ", "))
}

// release matches a release tag: v1.2.3, optionally with a pre-release suffix (v1.2.3-rc.1), and
// no pseudo-version (v0.0.0-20261207010203-abcdef123456).
var release = regexp.MustCompile(`^v\d+\.\d+\.\d+(-(alpha|beta|rc)[.0-9]*)?$`)

// IsRelease reports whether v names a release, as opposed to a development build.
func IsRelease(v string) bool { return release.MatchString(v) }

// ImageTag returns the tag of an image reference ("ghcr.io/meshkeeper/manager:v0.4.0" ->
// "v0.4.0"), empty when the reference has none or is pinned by digest only.
func ImageTag(image string) string {
	if i := strings.Index(image, "@"); i >= 0 {
		image = image[:i]
	}
	slash := strings.LastIndex(image, "/")
	if colon := strings.LastIndex(image, ":"); colon > slash {
		return image[colon+1:]
	}
	return ""
}
