package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// version, when set at build time (-ldflags "-X main.version=v1.2.3"),
// overrides the module version the build info records.
var version string

// develVersion is what Go records as the version of a module built from
// its own source tree, and what version prints when nothing better is known.
const develVersion = "(devel)"

type versionView struct {
	Version  string `json:"version"`
	Module   string `json:"module,omitempty"`
	Commit   string `json:"commit,omitempty"`
	Time     string `json:"commitTime,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	Go       string `json:"go"`
}

// buildVersion reads what the Go toolchain stamped into the binary: the
// main module's version ("v1.2.3" from go install …@v1.2.3, "(devel)" from
// a source tree) and, when it was built in a VCS checkout without
// -buildvcs=false, the commit, its time and whether the tree was modified.
func buildVersion() versionView {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	return versionOf(bi)
}

// versionOf is buildVersion of the build info bi (nil when the binary has
// none).
func versionOf(bi *debug.BuildInfo) versionView {
	v := versionView{Version: version, Go: runtime.Version()}
	if bi != nil {
		v.Module = bi.Main.Path
		if v.Version == "" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Commit = s.Value
			case "vcs.time":
				v.Time = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
	}
	if v.Version == "" {
		v.Version = develVersion
	}
	return v
}

// String is the one line version prints for people.
func (v versionView) String() string {
	var extra []string
	if v.Commit != "" {
		extra = append(extra, "commit "+v.Commit)
	}
	if v.Time != "" {
		extra = append(extra, v.Time)
	}
	if v.Modified {
		extra = append(extra, "modified")
	}
	extra = append(extra, v.Go)
	return fmt.Sprintf("tenantbridge %s (%s)", v.Version, strings.Join(extra, ", "))
}

func (c *cli) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version: the module version and the commit it was built from, from the binary's build info",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			v := buildVersion()
			if c.structured(cmd) {
				return c.emit(cmd, v)
			}
			_, err := fmt.Fprintln(c.stdout, v.String())
			return err
		},
	}
}
