package pipeline

import (
	"cmp"
	"runtime/debug"
)

// Version says which sesrouter this is and the Go it was built with:
// "sesrouter v1.2.0 go1.25.1", or "(devel 0123456789ab)" for a build
// from a checkout.
func Version() string {
	version, goVersion := "(devel)", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		version, goVersion = cmp.Or(bi.Main.Version, version), bi.GoVersion
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && version == "(devel)" {
				version = "(devel " + s.Value[:min(12, len(s.Value))] + ")"
			}
		}
	}
	return "sesrouter " + version + " " + goVersion
}
