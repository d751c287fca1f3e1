package app

import (
	"runtime/debug"
	"testing"
)

func TestTheVersionAndCommitComeFromTheStampOrTheBuildInformation(t *testing.T) {
	info := func(version string, settings ...debug.BuildSetting) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) {
			return &debug.BuildInfo{Main: debug.Module{Version: version}, Settings: settings}, true
		}
	}
	rev := debug.BuildSetting{Key: "vcs.revision", Value: "0123456789abcdef0123"}
	dirty := debug.BuildSetting{Key: "vcs.modified", Value: "true"}
	for _, c := range []struct {
		name, version, commit string
		read                  func() (*debug.BuildInfo, bool)
		wantV, wantC          string
	}{
		{"stamped", "v1.2.3", "abc", info("v9.9.9", rev), "v1.2.3", "abc"},
		{"go install @v1.4.0", "", "", info("v1.4.0"), "v1.4.0", "unknown"},
		{"a build with VCS stamping", "", "", info("(devel)", rev, dirty), "v0.0.0-dev", "0123456789ab-dirty"},
		{"a pseudo-version", "", "", info("v0.0.0-20261202093000-0123456789ab+dirty", rev), "v0.0.0-20261202093000-0123456789ab+dirty", "0123456789ab"},
		{"no build information", "", "", func() (*debug.BuildInfo, bool) { return nil, false }, "v0.0.0-dev", "unknown"},
	} {
		v, cm := versionOf(c.version, c.commit, c.read)
		if v != c.wantV || cm != c.wantC {
			t.Errorf("%s: %q, %q; want %q, %q", c.name, v, cm, c.wantV, c.wantC)
		}
	}
}
