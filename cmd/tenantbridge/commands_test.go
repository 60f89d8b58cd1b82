package main

import (
	"bytes"
	"errors"
	"testing"

	"github.com/spf13/cobra"
)

// runShape runs cmd as the only subcommand of a root with -o, as run does.
func runShape(t *testing.T, c *cli, cmd *cobra.Command, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	c.stdout, c.stderr = &stdout, &stderr
	root := &cobra.Command{Use: "root", SilenceErrors: true, SilenceUsage: true}
	root.PersistentFlags().StringVarP(&c.output, "output", "o", "", "")
	root.AddCommand(cmd)
	root.SetArgs(args)
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	err := root.Execute()
	return stdout.String(), stderr.String(), err
}

type item struct {
	Name string `json:"name"`
}

func TestListCommandPrintsNoneAsEmptyJSONList(t *testing.T) {
	c := &cli{}
	list := listCommand(c, "List items", func(*cobra.Command, []string) ([]item, error) { return nil, nil },
		[]string{"NAME"}, func(i item) []string { return []string{i.Name} })
	out, _, err := runShape(t, c, list, "list", "-o", "json")
	if err != nil || out != "[]\n" {
		t.Fatalf("list -o json = %q, %v; want [] and no error", out, err)
	}
}

func TestListCommandTable(t *testing.T) {
	c := &cli{}
	list := listCommand(c, "List items", func(*cobra.Command, []string) ([]item, error) { return []item{{"a"}, {""}}, nil },
		[]string{"NAME"}, func(i item) []string { return []string{i.Name} })
	out, _, err := runShape(t, c, list, "list", "-o", "table")
	if want := "NAME\na\n-\n"; err != nil || out != want {
		t.Fatalf("list = %q, %v; want %q", out, err, want)
	}
}

func TestShowCommandReturnsFetchError(t *testing.T) {
	c := &cli{}
	boom := errors.New("boom")
	show := showCommand(c, "show NAME", "Show an item", exactArgs(1, "NAME"),
		func(*cobra.Command, []string) (*item, error) { return nil, boom },
		func(i *item) table { return fields("name", i.Name) })
	out, _, err := runShape(t, c, show, "show", "x")
	if !errors.Is(err, boom) || out != "" {
		t.Fatalf("show = %q, %v; want nothing printed and the fetch error", out, err)
	}
}

func TestDeleteCommandNotesOnlyAfterRemoving(t *testing.T) {
	c := &cli{}
	note := func(i *item) string { return "Deleted item " + i.Name + "." }
	del := deleteCommand(c, "delete NAME", "Delete an item", exactArgs(1, "NAME"),
		func(_ *cobra.Command, args []string) (*item, error) { return &item{args[0]}, nil }, note)
	out, errOut, err := runShape(t, c, del, "delete", "x")
	if err != nil || out != "" || errOut != "Deleted item x.\n" {
		t.Fatalf("delete = %q, %q, %v; want the note on stderr only", out, errOut, err)
	}
	failed := deleteCommand(c, "delete NAME", "Delete an item", exactArgs(1, "NAME"),
		func(_ *cobra.Command, args []string) (*item, error) { return &item{args[0]}, errors.New("no") }, note)
	_, errOut, err = runShape(t, c, failed, "delete", "x")
	if err == nil || errOut != "" {
		t.Fatalf("failed delete = %q, %v; want an error and no note", errOut, err)
	}
}
