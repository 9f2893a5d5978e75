package pipeline

import (
	"runtime"
	"runtime/debug"
)

// Version says which sesrouter this is and the Go it was built with, as
// "sesrouter VERSION GOVERSION": "sesrouter v1.2.0 go1.26.8". VERSION is
// stamped, the version the build stamped into the binary (make's, from
// git describe); else the module's version when go install built it
// (github.com/sesrouter/sesrouter/cmd/sesrouter@v1.2.0); else, for a
// build from a checkout, "(devel REVISION)" with the commit Go recorded;
// else "(devel)", as in a build from a source archive without git. It
// never fails.
func Version(stamped string) string {
	bi, _ := debug.ReadBuildInfo()
	return version(stamped, bi)
}

// version is Version with the build information given (nil: none).
func version(stamped string, bi *debug.BuildInfo) string {
	v, goVersion := stamped, runtime.Version()
	if bi != nil {
		if bi.GoVersion != "" {
			goVersion = bi.GoVersion
		}
		if v == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		if v == "" {
			v = devel(bi.Settings)
		}
	}
	if v == "" {
		v = "(devel)"
	}
	return "sesrouter " + v + " " + goVersion
}

// devel is "(devel REVISION)", with "-dirty" after it for a tree with
// changes, from the version control settings Go records in a build from a
// checkout; "" when there are none.
func devel(settings []debug.BuildSetting) string {
	var rev, dirty string
	for _, s := range settings {
		switch {
		case s.Key == "vcs.revision":
			rev = s.Value[:min(12, len(s.Value))]
		case s.Key == "vcs.modified" && s.Value == "true":
			dirty = "-dirty"
		}
	}
	if rev == "" {
		return ""
	}
	return "(devel " + rev + dirty + ")"
}
