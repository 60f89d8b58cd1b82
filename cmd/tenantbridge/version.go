package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

type versionView struct {
	Version string `json:"version"`
	Commit  string `json:"commit,omitempty"`
	Go      string `json:"go"`
}

func (c *cli) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			v := versionView{Version: version, Go: runtime.Version()}
			if bi, ok := debug.ReadBuildInfo(); ok {
				if v.Version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
					v.Version = bi.Main.Version
				}
				for _, s := range bi.Settings {
					if s.Key == "vcs.revision" {
						v.Commit = s.Value
					}
				}
			}
			if c.format(cmd) == outputJSON {
				return writeJSON(c.stdout, v)
			}
			if v.Commit != "" {
				_, err := fmt.Fprintf(c.stdout, "tenantbridge %s (commit %s, %s)\n", v.Version, v.Commit, v.Go)
				return err
			}
			_, err := fmt.Fprintf(c.stdout, "tenantbridge %s (%s)\n", v.Version, v.Go)
			return err
		},
	}
}
