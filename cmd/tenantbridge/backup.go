package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/tenantbridge/tenantbridge/internal/backup"
	"github.com/tenantbridge/tenantbridge/internal/backup/archive"
	"github.com/tenantbridge/tenantbridge/internal/server"
	"github.com/tenantbridge/tenantbridge/internal/store/backends"
)

// backupView is what backup and restore print: the archive and what it
// holds.
type backupView struct {
	File    string `json:"file"`
	DataDir string `json:"dataDirectory"`
	Created string `json:"created"`
	Store   string `json:"store"`
	// Database says whether the archive holds the store: false for a
	// PostgreSQL server, whose database is dumped with pg_dump.
	Database bool  `json:"database"`
	KEK      bool  `json:"kek"`
	Files    int   `json:"files"`
	Bytes    int64 `json:"bytes"`
}

func viewOf(file, dir string, m *archive.Manifest) backupView {
	v := backupView{File: file, DataDir: dir, Created: fmtTime(m.Created), Store: m.Store, KEK: m.KEK, Files: len(m.Files)}
	for _, f := range m.Files {
		v.Bytes += f.Size
		if f.Path == archive.DatabaseName {
			v.Database = true
		}
	}
	return v
}

func (c *cli) renderBackup(cmd *cobra.Command, v backupView) error {
	return c.render(cmd, v, func() table {
		return fields("File", v.File, "DataDirectory", v.DataDir, "Created", v.Created, "Store", v.Store,
			"Database", strconv.FormatBool(v.Database), "KEK", strconv.FormatBool(v.KEK),
			"Files", strconv.Itoa(v.Files), "Bytes", strconv.FormatInt(v.Bytes, 10))
	})
}

func (c *cli) backupCommand() *cobra.Command {
	var out, storeURL string
	cmd := &cobra.Command{
		Use:   "backup --out FILE",
		Short: "Back up the data directory, online: the store (a consistent copy while the server runs), the CA, certificates, signing keys, secret-hash key and KEK, operator.json and the CLI profiles, in one file",
		Long: `Back up the data directory (--data) into one file (--out): a gzip-compressed
tar archive, mode 0600, whose manifest lists every file with its mode, size
and SHA-256. It runs while tenantbridge serve runs on the directory, taking
none of the server's locks: the embedded store is copied with SQLite's online
backup API, consistent as of one commit while writes go on.

The archive holds the keys that protect the data: keep it as you keep the
keys (anyone holding it can sign tokens and decrypt the vault secrets).

With --store postgres://… (the server's store is PostgreSQL) the archive
holds the key material only; dump the database with pg_dump as well (see
docs/operations.md). When the server takes its KEK from TENANTBRIDGE_KEK the
archive does not hold it: keep it with the archive.

Restore with tenantbridge restore --in FILE --data NEWDIR.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return errors.New("--out FILE is required: the archive to write")
			}
			outAbs, err := filepath.Abs(out)
			if err != nil {
				return err
			}
			if _, err := os.Lstat(outAbs); err == nil {
				return fmt.Errorf("%s exists; a backup is never written over a file: choose another --out", outAbs)
			}
			o := backup.Options{DataDir: c.dataDir, Staging: filepath.Dir(outAbs)}
			switch {
			case storeURL == "":
				o.Database = filepath.Join(c.dataDir, archive.DatabaseName)
				if _, err := os.Stat(o.Database); err != nil {
					return fmt.Errorf("%s has no embedded store (%v); if serve runs with --store, give backup the same --store", c.dataDir, err)
				}
			default:
				kind, target, err := backends.Parse(storeURL)
				if err != nil {
					return err
				}
				o.Database, o.Postgres = target, kind == backends.Postgres
			}
			m, err := writeBackup(cmd, outAbs, o)
			if err != nil {
				return err
			}
			if m.Store == "postgres" {
				c.notef("The archive holds the key material only: the store is PostgreSQL. Dump the database with pg_dump as well (see docs/operations.md).")
			}
			if !m.KEK {
				c.notef("The archive holds no KEK: %s has no keys/kek.key, so the server takes it from TENANTBRIDGE_KEK. Keep that value with the archive: the restored directory needs it.", c.dataDir)
			}
			abs, _ := filepath.Abs(c.dataDir)
			return c.renderBackup(cmd, viewOf(outAbs, abs, m))
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "the archive to write (mode 0600); it must not exist")
	cmd.Flags().StringVar(&storeURL, "store", "", "the server's --store, if it was given one: sqlite://PATH, or postgres://… (the archive then holds the key material only)")
	return cmd
}

// writeBackup writes the archive next to out under a hidden name and
// links it to out only once it is complete and synced, so that out is
// either absent or a whole backup, and never replaces a file that
// appeared meanwhile.
func writeBackup(cmd *cobra.Command, out string, o backup.Options) (*archive.Manifest, error) {
	f, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp-*")
	if err != nil {
		return nil, err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	m, err := backup.Write(cmd.Context(), f, o)
	if err == nil {
		err = f.Chmod(0o600) // CreateTemp's mode already; stated whatever the umask
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	if err := os.Link(tmp, out); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("%s appeared while the backup was written; it is left alone", out)
		}
		return nil, err
	}
	return m, nil
}

func (c *cli) restoreCommand() *cobra.Command {
	var in string
	var force bool
	cmd := &cobra.Command{
		Use:   "restore --in FILE --data DIR",
		Short: "Restore a data directory from a backup, to serve the same world: tenants, credentials, vault secrets, queues, signing keys, operator.json and the CLI profiles",
		Long: `Restore the data directory --data from an archive written by tenantbridge
backup. The directory is created (0700) if needed; one with content is
refused unless --force, and one a server is running on is always refused.
The archive is checked whole before anything is written into place: no
absolute paths or "..", no links, sizes within limits, every file's SHA-256,
and the store's integrity; files get the modes they had.

Then start the server on it: tenantbridge serve --data DIR. Tokens issued
before the backup still verify, client secrets still work and vault secrets
still decrypt. A backup of a PostgreSQL server's directory holds no database:
restore its pg_dump with pg_restore and serve with the same --store.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if in == "" {
				return errors.New("--in FILE is required: the archive to restore")
			}
			f, err := os.Open(in)
			if err != nil {
				return err
			}
			defer f.Close()
			m, err := backup.Restore(cmd.Context(), f, c.dataDir, backup.RestoreOptions{Force: force, Lock: server.LockDataDir})
			if err != nil {
				return err
			}
			abs, _ := filepath.Abs(c.dataDir)
			if m.Store == "postgres" {
				c.notef("The archive holds no database: the server's store was PostgreSQL. Restore its pg_dump with pg_restore, then serve with --data %s --store postgres://… (see docs/operations.md).", abs)
			}
			if !m.KEK {
				c.notef("The archive holds no KEK: serve %s with the TENANTBRIDGE_KEK the backed-up server had.", abs)
			}
			inAbs, _ := filepath.Abs(in)
			return c.renderBackup(cmd, viewOf(inAbs, abs, m))
		},
	}
	cmd.Flags().StringVar(&in, "in", "", "the archive to restore (from tenantbridge backup)")
	cmd.Flags().BoolVar(&force, "force", false, "replace the content of a directory that is not empty (never one a server is running on)")
	return cmd
}
