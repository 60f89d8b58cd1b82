// Package backup makes and restores backups of a tenantbridge data
// directory: the embedded store copied online and consistently while the
// server runs, and the key material that makes the copy usable (the CA,
// the server certificate, the token-signing keys, the secret-hash key, the
// KEK) with the operator credential and the CLI profiles, in one file of
// the format of package archive.
package backup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/backup/archive"
	"github.com/tenantbridge/tenantbridge/internal/store/sqlite"
)

// Options says what Write backs up.
type Options struct {
	// DataDir is the server's data directory.
	DataDir string
	// Database is the embedded store's file (DataDir/tenantbridge.db, or
	// the path of serve's --store sqlite://PATH); "" when Postgres is set.
	Database string
	// Postgres says the server's store is PostgreSQL: the archive holds
	// the key material only, and the database is dumped with pg_dump.
	Postgres bool
	// Staging is a directory outside DataDir where the database's copy is
	// made before it is archived (the output file's directory).
	Staging string
	// Now is the clock of the manifest's Created; time.Now if nil.
	Now func() time.Time
}

// keyMaterial are the files without which a data directory serves no
// world: Write refuses a directory lacking one (it is not a data
// directory, or not one a server has started on). The KEK is not among
// them: it may come from TENANTBRIDGE_KEK instead (internal/pki).
var keyMaterial = []string{"ca.pem", "ca-key.pem", "server.pem", "server-key.pem", "keys/secret-hash.key"}

// kekPath is the KEK's file when it is kept in the data directory.
const kekPath = "keys/kek.key"

// Write archives the data directory to w (see the package comment): the
// store copied online with sqlite.Backup (consistent as of one commit,
// while the server goes on writing; it needs no lock the server holds),
// then every regular file of the directory but the lock, the database's
// own files and hidden temporary files. The store is copied first: every
// signing key that signed a token before the copy is still published (a
// key is pruned only once no token it signed can be valid), so it is in
// the directory when the files are read.
func Write(ctx context.Context, w io.Writer, o Options) (*archive.Manifest, error) {
	dataDir, err := filepath.Abs(o.DataDir)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(dataDir); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("data directory %s is not a directory", dataDir)
	}
	for _, f := range keyMaterial {
		if _, err := os.Stat(filepath.Join(dataDir, filepath.FromSlash(f))); err != nil {
			return nil, fmt.Errorf("%s is not a tenantbridge data directory a server has started on: %w", dataDir, err)
		}
	}
	if signing, _ := filepath.Glob(filepath.Join(dataDir, "signing", "*.pem")); len(signing) == 0 {
		return nil, fmt.Errorf("%s is not a tenantbridge data directory a server has started on: no signing key in signing/", dataDir)
	}
	staging, err := filepath.Abs(o.Staging)
	if err != nil {
		return nil, err
	}
	if within(staging, dataDir) {
		return nil, fmt.Errorf("the backup must be written outside the data directory %s", dataDir)
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	m := &archive.Manifest{Format: archive.Format, Version: archive.Version, Created: now().UTC().Truncate(time.Second), Store: "sqlite"}
	// The lock is the server's; the database's files in the directory
	// are archived as its copy only, if at all (a PostgreSQL server's
	// directory may keep an old embedded store).
	skip := map[string]bool{archive.LockName: true}
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		skip[archive.DatabaseName+suffix] = true
	}
	var db *archive.Source
	if o.Postgres {
		m.Store = "postgres"
	} else {
		dbPath, err := filepath.Abs(o.Database)
		if err != nil {
			return nil, err
		}
		if within(dbPath, dataDir) {
			rel, _ := filepath.Rel(dataDir, dbPath)
			rel = filepath.ToSlash(rel)
			for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
				skip[rel+suffix] = true
			}
		}
		tmp, err := os.MkdirTemp(staging, ".tenantbridge-backup-*")
		if err != nil {
			return nil, fmt.Errorf("staging the database's copy: %w", err)
		}
		defer os.RemoveAll(tmp)
		cp := filepath.Join(tmp, archive.DatabaseName)
		if _, err := sqlite.Backup(ctx, dbPath, cp); err != nil {
			return nil, err
		}
		if err := sqlite.Check(ctx, cp); err != nil {
			return nil, err
		}
		f, err := fileOf(cp, archive.DatabaseName, 0o600)
		if err != nil {
			return nil, err
		}
		db = &archive.Source{File: f, Open: func() (io.ReadCloser, error) { return os.Open(cp) }}
	}
	srcs, err := directoryFiles(dataDir, skip)
	if err != nil {
		return nil, err
	}
	if db != nil {
		srcs = append(srcs, *db)
	}
	for _, s := range srcs {
		m.Files = append(m.Files, s.File)
		if s.Path == kekPath {
			m.KEK = true
		}
	}
	if err := m.Check(archive.DefaultLimits); err != nil {
		return nil, fmt.Errorf("%s cannot be archived: %w", dataDir, err)
	}
	if err := archive.Write(w, m, srcs); err != nil {
		return nil, fmt.Errorf("writing the archive: %w", err)
	}
	return m, nil
}

// directoryFiles reads the files of dataDir to archive, in lexical order:
// every regular file (a link is followed to one) but those in skip and
// hidden ones (pki's temporary files, a restore's staging directory).
// Files are read whole (each at most archive.DefaultLimits.MaxFileSize), so that
// what is archived is what was checksummed; a file removed meanwhile (a
// pruned signing key) is left out.
func directoryFiles(dataDir string, skip map[string]bool) ([]archive.Source, error) {
	var srcs []archive.Source
	err := filepath.WalkDir(dataDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if p == dataDir {
			return nil
		}
		rel, err := filepath.Rel(dataDir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || skip[rel] {
			return nil
		}
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file; a data directory holds only files and directories", p)
		}
		if fi.Size() > archive.DefaultLimits.MaxFileSize {
			return fmt.Errorf("%s is larger than %d bytes; a data directory holds keys, certificates and small JSON files: move it elsewhere", p, archive.DefaultLimits.MaxFileSize)
		}
		data, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		f := archive.File{Path: rel, Mode: archive.FormatMode(fi.Mode()), Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}
		srcs = append(srcs, archive.Source{File: f, Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the data directory: %w", err)
	}
	return srcs, nil
}

// fileOf is the manifest entry of the file at p, archived as name.
func fileOf(p, name string, mode os.FileMode) (archive.File, error) {
	f, err := os.Open(p)
	if err != nil {
		return archive.File{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return archive.File{}, err
	}
	return archive.File{Path: name, Mode: archive.FormatMode(mode), Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// within reports whether p is dir or inside it.
func within(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// RestoreOptions says how Restore writes the data directory.
type RestoreOptions struct {
	// Force allows restoring into a directory that is not empty: its
	// content is replaced, once the archive has been checked whole.
	Force bool
	// Limits bound the archive; archive.DefaultLimits if zero.
	Limits archive.Limits
	// Lock takes the directory's lock as a server does
	// (server.LockDataDir), failing when a server runs on it; it is held
	// while the directory is written, so no server starts on it half
	// restored.
	Lock func(dir string) (release func(), err error)
}

// ErrNotEmpty is Restore's refusal of a directory that has content,
// without RestoreOptions.Force.
var ErrNotEmpty = errors.New("the directory is not empty")

// Restore writes the data directory dir from the archive r. It creates
// dir (0700) if needed and refuses one with content unless o.Force; it
// always refuses a directory a server holds (o.Lock). The archive is
// extracted and checked whole (Extract, then sqlite.Check of the store)
// in a hidden staging directory inside dir before anything already there
// is touched; only then is the old content removed (with Force) and the
// new moved into place.
func Restore(ctx context.Context, r io.Reader, dir string, o RestoreOptions) (*archive.Manifest, error) {
	if o.Lock == nil {
		return nil, errors.New("restore: no data directory lock")
	}
	lim := o.Limits
	if lim == (archive.Limits{}) {
		lim = archive.DefaultLimits
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	if err := refuseContent(dir, o.Force, ""); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	release, err := o.Lock(dir)
	if err != nil {
		return nil, err
	}
	defer release()
	staging, err := os.MkdirTemp(dir, ".restore-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(staging)
	// Checked again under the lock: something may have been written
	// into dir meanwhile.
	if err := refuseContent(dir, o.Force, filepath.Base(staging)); err != nil {
		return nil, err
	}
	m, err := archive.Extract(r, staging, lim)
	if err != nil {
		return nil, err
	}
	if m.Store == "sqlite" {
		if err := sqlite.Check(ctx, filepath.Join(staging, archive.DatabaseName)); err != nil {
			return nil, fmt.Errorf("%w: %v", archive.ErrInvalid, err)
		}
	}
	if err := swapIn(dir, staging); err != nil {
		return nil, err
	}
	return m, nil
}

// swapIn replaces the content of dir (but the lock and staging) with the
// entries of staging, a directory inside dir. The old entries are first
// moved aside into a hidden directory of dir, not removed, so that a
// rename that fails half way puts everything back as it was instead of
// leaving dir with neither the old content nor the new; they are removed
// once the new content is in place.
func swapIn(dir, staging string) error {
	aside, err := os.MkdirTemp(dir, ".replaced-*")
	if err != nil {
		return err
	}
	keep := map[string]bool{archive.LockName: true, filepath.Base(staging): true, filepath.Base(aside): true}
	var movedOld, movedNew []string
	undo := func(cause error) error {
		for _, n := range movedNew {
			_ = os.Rename(filepath.Join(dir, n), filepath.Join(staging, n))
		}
		for _, n := range movedOld {
			_ = os.Rename(filepath.Join(aside, n), filepath.Join(dir, n))
		}
		_ = os.Remove(aside)
		return fmt.Errorf("replacing %s (its content is as it was): %w", dir, cause)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return undo(err)
	}
	for _, e := range entries {
		if keep[e.Name()] {
			continue
		}
		if err := os.Rename(filepath.Join(dir, e.Name()), filepath.Join(aside, e.Name())); err != nil {
			return undo(err)
		}
		movedOld = append(movedOld, e.Name())
	}
	staged, err := os.ReadDir(staging)
	if err != nil {
		return undo(err)
	}
	for _, e := range staged {
		if err := os.Rename(filepath.Join(staging, e.Name()), filepath.Join(dir, e.Name())); err != nil {
			return undo(err)
		}
		movedNew = append(movedNew, e.Name())
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // make the renames durable; best effort, as pki does
		d.Close()
	}
	if err := os.RemoveAll(aside); err != nil {
		return fmt.Errorf("%s is restored, but the content it replaced could not be removed from %s: %w", dir, aside, err)
	}
	return nil
}

// refuseContent fails with ErrNotEmpty when dir has an entry other than
// the lock file and ignore, unless force. A missing dir is empty.
func refuseContent(dir string, force bool, ignore string) error {
	if force {
		return nil
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() != archive.LockName && e.Name() != ignore {
			return fmt.Errorf("%w: %s holds %s; restore into a new directory, or give --force to replace its content", ErrNotEmpty, dir, e.Name())
		}
	}
	return nil
}
