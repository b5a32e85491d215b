package version

import (
	"runtime/debug"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	checkout := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "4ca32ce0123456789abcdef0123456789abcdef0"}, {Key: "vcs.modified", Value: "true"}}}
	installed := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.4.0"}}
	for _, tc := range []struct {
		name   string
		linked string
		bi     *debug.BuildInfo
		want   string
		commit string
		dirty  bool
	}{
		{"release build: the linker's value wins", "v0.4.1", installed, "v0.4.1", "", false},
		{"go install @version", "", installed, "v0.4.0", "", false},
		{"checkout", "", checkout, "dev", "4ca32ce0123456789abcdef0123456789abcdef0", true},
		{"no build information", "", nil, "dev", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := fromBuildInfo(tc.linked, tc.bi)
			if got.Version != tc.want || got.Commit != tc.commit || got.Modified != tc.dirty {
				t.Errorf("got %+v, want version %s commit %q modified %t", got, tc.want, tc.commit, tc.dirty)
			}
		})
	}
	if s := fromBuildInfo("", checkout).String(); s != "dev (commit 4ca32ce01234, modified, go1.26.8, "+fromBuildInfo("", checkout).Platform+")" {
		t.Errorf("String() = %q", s)
	}
}

func TestIsReleaseAndImageTag(t *testing.T) {
	for v, want := range map[string]bool{
		"v0.4.0": true, "v1.12.3-rc.1": true, "dev": false, "0.4.0": false,
		"v0.0.0-20261207010203-abcdef123456": false, "v0.4.0+dirty": false,
	} {
		if got := IsRelease(v); got != want {
			t.Errorf("IsRelease(%q) = %t, want %t", v, got, want)
		}
	}
	for image, want := range map[string]string{
		"ghcr.io/meshkeeper/manager:v0.4.0":                 "v0.4.0",
		"localhost:5000/meshkeeper/manager":                 "",
		"localhost:5000/meshkeeper/manager:dev":             "dev",
		"ghcr.io/meshkeeper/manager:v0.4.0@sha256:0123abcd": "v0.4.0",
		"ghcr.io/meshkeeper/manager@sha256:0123abcd":        "",
	} {
		if got := ImageTag(image); got != want {
			t.Errorf("ImageTag(%q) = %q, want %q", image, got, want)
		}
	}
}
