// Package archive is the format of a tenantbridge backup (package
// backup): one gzip-compressed tar file whose first entry is a manifest
// (ManifestName) listing every other entry with its mode, size and
// SHA-256, followed by those entries in the manifest's order. Extract
// trusts nothing in it: paths, types, sizes, modes and checksums are
// checked before anything is put in place. It imports nothing of the
// store, so that its fuzz target stays small.
package archive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ManifestName is the archive's first entry.
const ManifestName = "tenantbridge-backup.json"

// Format and Version identify the archive format in the manifest.
const (
	Format  = "tenantbridge-backup"
	Version = 1
)

// DatabaseName is the entry holding the embedded store's copy, restored as
// the data directory's tenantbridge.db, the file serve opens when it is
// given no --store.
const DatabaseName = "tenantbridge.db"

// LockName is the data directory's lock file (internal/server's
// lockFileName): never archived, never restored over.
const LockName = "serve.lock"

// Manifest describes an archive.
type Manifest struct {
	Format  string    `json:"format"`
	Version int       `json:"version"`
	Created time.Time `json:"created"`
	// Store is the backend the server used: "sqlite" (the archive holds
	// the store as DatabaseName) or "postgres" (it does not: the database
	// is dumped with pg_dump).
	Store string `json:"store"`
	// KEK reports whether the archive holds keys/kek.key. It does not
	// when the server takes its KEK from TENANTBRIDGE_KEK; the restored
	// directory then needs the same variable.
	KEK   bool   `json:"kek"`
	Files []File `json:"files"`
}

// File is one archived file.
type File struct {
	// Path is relative to the data directory, with slashes.
	Path string `json:"path"`
	// Mode is the file's permission bits in octal ("0600").
	Mode   string `json:"mode"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Limits bound what Extract accepts, so that a damaged or hostile archive
// cannot fill the disk or memory.
type Limits struct {
	// MaxFiles is the most files an archive may list.
	MaxFiles int
	// MaxFileSize bounds each file but the database: a data directory
	// holds keys, certificates and small JSON files.
	MaxFileSize int64
	// MaxTotalSize bounds the sum of all sizes, the database's included.
	MaxTotalSize int64
}

// DefaultLimits are Extract's limits unless the caller gives others.
var DefaultLimits = Limits{MaxFiles: 10000, MaxFileSize: 16 << 20, MaxTotalSize: 64 << 30}

// maxManifestSize bounds the manifest entry; 10,000 files take about 2 MB
// of JSON at most.
const maxManifestSize = 4 << 20

// maxPathDepth and maxPathLen bound a file's path: a data directory is two
// levels deep (signing/<kid>.pem, keys/kek.key).
const (
	maxPathDepth = 4
	maxPathLen   = 255
)

// validPath reports why p is not a path Extract may write, or nil: it must
// be relative, slash-separated and clean, each component made only of
// letters, digits, '.', '_' and '-', not starting with a dot (no "..", no
// hidden or temporary files), and it must not be the manifest or the lock.
func validPath(p string) error {
	if p == "" || len(p) > maxPathLen {
		return fmt.Errorf("path %q is empty or longer than %d bytes", p, maxPathLen)
	}
	if path.Clean(p) != p || path.IsAbs(p) {
		return fmt.Errorf("path %q is not clean and relative", p)
	}
	parts := strings.Split(p, "/")
	if len(parts) > maxPathDepth {
		return fmt.Errorf("path %q is more than %d levels deep", p, maxPathDepth)
	}
	for _, part := range parts {
		if part == "" || part[0] == '.' {
			return fmt.Errorf("path %q has an empty, hidden or parent component", p)
		}
		for _, r := range part {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
				return fmt.Errorf("path %q has a character other than letters, digits, '.', '_' and '-'", p)
			}
		}
	}
	if p == ManifestName || p == LockName {
		return fmt.Errorf("path %q is reserved", p)
	}
	return nil
}

// parseMode reads a manifest mode: permission bits only, in octal.
func parseMode(s string) (os.FileMode, error) {
	m, err := strconv.ParseUint(s, 8, 32)
	if err != nil || m > 0o777 || len(s) > 4 {
		return 0, fmt.Errorf("mode %q is not octal permission bits (e.g. 0600)", s)
	}
	return os.FileMode(m), nil
}

// FormatMode writes a manifest mode.
func FormatMode(m os.FileMode) string { return fmt.Sprintf("%04o", m.Perm()) }

// Check reports the first reason m is not a manifest Extract accepts
// within lim.
func (m *Manifest) Check(lim Limits) error {
	if m.Format != Format {
		return fmt.Errorf("not a tenantbridge backup (format %q)", m.Format)
	}
	if m.Version != Version {
		return fmt.Errorf("backup format version %d; this tenantbridge reads version %d", m.Version, Version)
	}
	if m.Store != "sqlite" && m.Store != "postgres" {
		return fmt.Errorf("store %q is neither sqlite nor postgres", m.Store)
	}
	if len(m.Files) > lim.MaxFiles {
		return fmt.Errorf("%d files, more than the limit of %d", len(m.Files), lim.MaxFiles)
	}
	seen := make(map[string]bool, len(m.Files))
	var total int64
	hasDB := false
	for _, f := range m.Files {
		if err := validPath(f.Path); err != nil {
			return err
		}
		// Case-folded: two names differing only in case would be one file
		// on a case-insensitive file system.
		key := strings.ToLower(f.Path)
		if seen[key] {
			return fmt.Errorf("path %q is listed twice", f.Path)
		}
		seen[key] = true
		if _, err := parseMode(f.Mode); err != nil {
			return fmt.Errorf("%s: %w", f.Path, err)
		}
		if b, err := hex.DecodeString(f.SHA256); err != nil || len(b) != sha256.Size {
			return fmt.Errorf("%s: sha256 %q is not 64 hex digits", f.Path, f.SHA256)
		}
		limit := lim.MaxFileSize
		if f.Path == DatabaseName {
			hasDB = true
			limit = lim.MaxTotalSize
		}
		if f.Size < 0 || f.Size > limit {
			return fmt.Errorf("%s: size %d is outside 0..%d", f.Path, f.Size, limit)
		}
		total += f.Size
		if total > lim.MaxTotalSize {
			return fmt.Errorf("the files add up to more than the limit of %d bytes", lim.MaxTotalSize)
		}
	}
	// A path may not be both a file and another's directory.
	for _, f := range m.Files {
		for dir := path.Dir(f.Path); dir != "."; dir = path.Dir(dir) {
			if seen[strings.ToLower(dir)] {
				return fmt.Errorf("path %q is a file and the directory of %q", dir, f.Path)
			}
		}
	}
	switch {
	case m.Store == "sqlite" && !hasDB:
		return fmt.Errorf("a backup of the embedded store does not list %s", DatabaseName)
	case m.Store == "postgres" && hasDB:
		return fmt.Errorf("a backup of a PostgreSQL server's directory lists %s", DatabaseName)
	}
	return nil
}

// Source is a file to archive: its manifest entry and how to read it.
type Source struct {
	File
	Open func() (io.ReadCloser, error)
}

// Write writes the archive of m (whose Files are those of srcs, in
// order) to w. A source whose content is not what its File says fails it.
func Write(w io.Writer, m *Manifest, srcs []Source) error {
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	mj, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	hdr := func(name string, mode os.FileMode, size int64) *tar.Header {
		return &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: int64(mode.Perm()), Size: size,
			ModTime: m.Created, Format: tar.FormatPAX}
	}
	if err := tw.WriteHeader(hdr(ManifestName, 0o600, int64(len(mj)))); err != nil {
		return err
	}
	if _, err := tw.Write(mj); err != nil {
		return err
	}
	for _, s := range srcs {
		mode, err := parseMode(s.Mode)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(hdr(s.Path, mode, s.Size)); err != nil {
			return err
		}
		r, err := s.Open()
		if err != nil {
			return err
		}
		h := sha256.New()
		n, err := io.Copy(tw, io.TeeReader(io.LimitReader(r, s.Size+1), h))
		r.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", s.Path, err)
		}
		if n != s.Size || hex.EncodeToString(h.Sum(nil)) != s.SHA256 {
			return fmt.Errorf("%s changed while it was archived", s.Path)
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

// ErrInvalid is wrapped by every refusal of an archive's content.
var ErrInvalid = errors.New("invalid backup archive")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Extract reads an archive from r and writes its files into dir, which
// must be an empty directory, with their modes. It checks, before or while
// writing, that the manifest comes first and is well formed (see
// Manifest.check and validPath: no absolute paths or "..", no links or
// other entry types, within lim), that the entries are exactly the
// manifest's files in its order with their sizes and modes, and that each
// file's SHA-256 and the gzip checksum match. On any failure it returns an
// error wrapping ErrInvalid (or the I/O error) and dir may hold part of
// the files: the caller extracts into a staging directory and discards it.
func Extract(r io.Reader, dir string, lim Limits) (*Manifest, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, invalid("not gzip-compressed: %v", err)
	}
	gz.Multistream(false)
	tr := tar.NewReader(gz)
	hdr, err := tr.Next()
	if err != nil {
		return nil, invalid("no manifest: %v", err)
	}
	if hdr.Name != ManifestName || hdr.Typeflag != tar.TypeReg {
		return nil, invalid("the first entry is %q, not the manifest %s", hdr.Name, ManifestName)
	}
	if hdr.Size < 0 || hdr.Size > maxManifestSize {
		return nil, invalid("the manifest is larger than %d bytes", maxManifestSize)
	}
	mj, err := io.ReadAll(tr)
	if err != nil {
		return nil, invalid("reading the manifest: %v", err)
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(mj))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, invalid("the manifest is not valid JSON: %v", err)
	}
	if dec.More() {
		return nil, invalid("the manifest has data after its JSON object")
	}
	if err := m.Check(lim); err != nil {
		return nil, invalid("manifest: %v", err)
	}
	for _, f := range m.Files {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, invalid("the archive ends before %s", f.Path)
		}
		if err != nil {
			return nil, invalid("reading the entry for %s: %v", f.Path, err)
		}
		mode, _ := parseMode(f.Mode)
		switch {
		case hdr.Name != f.Path:
			return nil, invalid("entry %q where the manifest lists %q", hdr.Name, f.Path)
		case hdr.Typeflag != tar.TypeReg:
			return nil, invalid("%s is not a regular file (tar type %q)", f.Path, hdr.Typeflag)
		case hdr.Size != f.Size:
			return nil, invalid("%s is %d bytes; the manifest says %d", f.Path, hdr.Size, f.Size)
		case hdr.Mode != int64(mode):
			return nil, invalid("%s has mode %o; the manifest says %s", f.Path, hdr.Mode, f.Mode)
		}
		if err := extractFile(tr, dir, f, mode); err != nil {
			return nil, err
		}
	}
	if hdr, err := tr.Next(); err == nil {
		return nil, invalid("entry %q is not in the manifest", hdr.Name)
	} else if !errors.Is(err, io.EOF) {
		return nil, invalid("after the last file: %v", err)
	}
	// The rest of the stream is the tar's zero padding; reading it to
	// the end makes gzip check its CRC and length.
	rest, err := io.ReadAll(io.LimitReader(gz, 1<<20+1))
	if err != nil {
		return nil, invalid("%v", err)
	}
	if len(rest) > 1<<20 || bytes.ContainsFunc(rest, func(r rune) bool { return r != 0 }) {
		return nil, invalid("data after the archive's end")
	}
	return &m, nil
}

// extractFile writes one file of the archive under dir, creating its
// parent directories (0700), and checks its checksum. The file is created
// exclusively: nothing already there is ever written through.
func extractFile(r io.Reader, dir string, f File, mode os.FileMode) error {
	dst := filepath.Join(dir, filepath.FromSlash(f.Path))
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), archiveReader{io.LimitReader(r, f.Size)})
	var ae archiveError
	if errors.As(err, &ae) {
		err = invalid("%s: %v", f.Path, ae.err)
	}
	if err == nil && n != f.Size {
		err = invalid("%s ends after %d of its %d bytes", f.Path, n, f.Size)
	}
	if err == nil && hex.EncodeToString(h.Sum(nil)) != strings.ToLower(f.SHA256) {
		err = invalid("%s does not match its checksum", f.Path)
	}
	if err == nil {
		// Chmod states the mode whatever the umask.
		err = out.Chmod(mode)
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// archiveReader marks the errors of reading the archive, so that a
// truncated or corrupt entry is told apart from a failure to write the
// file (a full disk).
type archiveReader struct{ r io.Reader }

type archiveError struct{ err error }

func (e archiveError) Error() string { return e.err.Error() }

func (a archiveReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if err != nil && err != io.EOF {
		err = archiveError{err}
	}
	return n, err
}
