package pipeline

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// TestVersion checks each source of the version, in the order Version
// takes them: the stamped version, the module's version from go install,
// the commit of a checkout, and (devel) when there is nothing.
func TestVersion(t *testing.T) {
	rev := []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"}}
	for _, tt := range []struct {
		name    string
		stamped string
		bi      *debug.BuildInfo
		want    string
	}{
		{"stamped by make", "v1.2.0-3-g0123456789ab", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.1.0"}, Settings: rev},
			"sesrouter v1.2.0-3-g0123456789ab go1.26.8"},
		{"go install of a release", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.0"}},
			"sesrouter v1.2.0 go1.26.8"},
		{"a checkout", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: rev},
			"sesrouter (devel 0123456789ab) go1.26.8"},
		{"a checkout with changes", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"},
			Settings: append(rev, debug.BuildSetting{Key: "vcs.modified", Value: "true"})},
			"sesrouter (devel 0123456789ab-dirty) go1.26.8"},
		{"a source archive", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			"sesrouter (devel) go1.26.8"},
		{"a test binary", "", &debug.BuildInfo{GoVersion: "go1.26.8"}, "sesrouter (devel) go1.26.8"},
		{"no build information", "", nil, "sesrouter (devel) " + runtime.Version()},
		{"stamped, no build information", "v1.2.0", nil, "sesrouter v1.2.0 " + runtime.Version()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := version(tt.stamped, tt.bi); got != tt.want {
				t.Errorf("version(%q, …) = %q, want %q", tt.stamped, got, tt.want)
			}
		})
	}
}

// TestVersionOfThisBinary checks Version in the test binary itself: one
// line, "sesrouter", a version and the Go that built it.
func TestVersionOfThisBinary(t *testing.T) {
	f := strings.Fields(Version(""))
	if len(f) != 3 || f[0] != "sesrouter" || f[2] != runtime.Version() {
		t.Errorf("Version(\"\") = %q, want \"sesrouter VERSION %s\"", Version(""), runtime.Version())
	}
	if got, want := Version("v9.9.9"), "sesrouter v9.9.9 "+runtime.Version(); got != want {
		t.Errorf("Version(\"v9.9.9\") = %q, want %q", got, want)
	}
}
