package main

import (
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Shell completion is cobra's: `tenantbridge completion bash|zsh|fish|powershell`
// prints the script, which calls back into the binary (the hidden
// __complete command) for commands, flags and the values below.

// registerCompletions gives the values of the global flags and of every
// --tenant flag to shell completion: the output formats, the profiles'
// names, and the tenants the CLI has profiles for. Completion reads only
// profiles.json: it never reaches the server.
func (c *cli) registerCompletions(root *cobra.Command) {
	_ = root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(outputFormats, cobra.ShellCompDirectiveNoFileComp))
	_ = root.RegisterFlagCompletionFunc("profile", func(cmd *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
		return c.profileNames(prefix), cobra.ShellCompDirectiveNoFileComp
	})
	_ = root.RegisterFlagCompletionFunc("data", func(cmd *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
		return nil, cobra.ShellCompDirectiveFilterDirs
	})
	tenants := func(cmd *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
		return c.tenantNames(prefix), cobra.ShellCompDirectiveNoFileComp
	}
	var walk func(cmd *cobra.Command)
	walk = func(cmd *cobra.Command) {
		for _, fs := range []*pflag.FlagSet{cmd.LocalNonPersistentFlags(), cmd.PersistentFlags()} {
			if f := fs.Lookup("tenant"); f != nil {
				if _, done := cmd.GetFlagCompletionFunc("tenant"); !done {
					_ = cmd.RegisterFlagCompletionFunc("tenant", tenants)
				}
			}
		}
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// profileNames are the names of the saved profiles that start with prefix.
func (c *cli) profileNames(prefix string) []string {
	return c.completeProfiles(prefix, profileStore.sorted, func(p Profile) string { return p.Name })
}

// tenantNames are the names of the tenants the CLI has profiles for that
// start with prefix.
func (c *cli) tenantNames(prefix string) []string {
	return c.completeProfiles(prefix, profileStore.tenants, Profile.name)
}

// completeProfiles is the name of each profile of list that starts with prefix.
func (c *cli) completeProfiles(prefix string, list func(profileStore) []Profile, name func(Profile) string) []string {
	s, err := c.loadProfiles()
	if err != nil {
		return nil
	}
	var out []string
	for _, p := range list(s) {
		if n := name(p); strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	return out
}
