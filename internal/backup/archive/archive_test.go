package archive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// entry is one tar entry of a crafted archive.
type entry struct {
	hdr  tar.Header
	body []byte
}

// file is the entry of a regular file and its manifest line.
func file(name string, mode os.FileMode, body string) (entry, File) {
	sum := sha256.Sum256([]byte(body))
	return entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: int64(mode), Size: int64(len(body))}, body: []byte(body)},
		File{Path: name, Mode: FormatMode(mode), Size: int64(len(body)), SHA256: hex.EncodeToString(sum[:])}
}

// craft writes a gzip-compressed tar of the manifest m (unless nil; any
// JSON value) and the entries, then tail inside the gzip stream.
func craft(t testing.TB, m any, entries []entry, tail []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	if m != nil {
		mj, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		entries = append([]entry{{hdr: tar.Header{Typeflag: tar.TypeReg, Name: ManifestName, Mode: 0o600, Size: int64(len(mj))}, body: mj}}, entries...)
	}
	for _, e := range entries {
		if err := tw.WriteHeader(&e.hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.body); err != nil && !errors.Is(err, tar.ErrWriteTooLong) {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	gz.Write(tail)
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// world is a good archive's manifest and entries: a PostgreSQL server's
// key material.
func world() (*Manifest, []entry) {
	e1, f1 := file("ca.pem", 0o644, "certificate")
	e2, f2 := file("keys/kek.key", 0o600, "0123456789abcdef0123456789abcdef")
	e3, f3 := file("signing/kid-1.pem", 0o600, "signing key")
	m := &Manifest{Format: Format, Version: Version, Created: time.Unix(1700000000, 0).UTC(), Store: "postgres", KEK: true, Files: []File{f1, f2, f3}}
	return m, []entry{e1, e2, e3}
}

func TestExtractGood(t *testing.T) {
	m, entries := world()
	dir := t.TempDir()
	got, err := Extract(bytes.NewReader(craft(t, m, entries, nil)), dir, DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Files) != 3 || !got.KEK || got.Store != "postgres" {
		t.Errorf("manifest %+v", got)
	}
	for _, e := range entries {
		p := filepath.Join(dir, filepath.FromSlash(e.hdr.Name))
		b, err := os.ReadFile(p)
		fi, _ := os.Stat(p)
		if err != nil || !bytes.Equal(b, e.body) || fi.Mode().Perm() != os.FileMode(e.hdr.Mode) {
			t.Errorf("%s: %q, %v, mode %v", e.hdr.Name, b, err, fi.Mode())
		}
	}
}

// TestExtractRefusals: every way an archive can be wrong is refused with
// ErrInvalid, and nothing is written outside the directory.
func TestExtractRefusals(t *testing.T) {
	type tc struct {
		name    string
		archive func() []byte
		want    string
		limits  Limits
	}
	// with returns the good world changed by change.
	with := func(change func(m *Manifest, es []entry) (*Manifest, []entry)) func() []byte {
		return func() []byte {
			m, es := world()
			m, es = change(m, es)
			return craft(t, m, es, nil)
		}
	}
	// evil makes one more file whose path is name in both the manifest
	// and the tar.
	evil := func(name string) func() []byte {
		return with(func(m *Manifest, es []entry) (*Manifest, []entry) {
			e, f := file(name, 0o600, "x")
			return &Manifest{Format: m.Format, Version: m.Version, Store: m.Store, Files: append(m.Files, f)}, append(es, e)
		})
	}
	cases := []tc{
		{"parent traversal", evil("../evil"), "parent component", Limits{}},
		{"nested traversal", evil("signing/../../evil"), "not clean and relative", Limits{}},
		{"absolute", evil("/tmp/evil"), "not clean and relative", Limits{}},
		{"dot dot only", evil(".."), "hidden or parent", Limits{}},
		{"hidden", evil(".evil"), "hidden or parent", Limits{}},
		{"backslash", evil(`..\evil`), "hidden or parent", Limits{}},
		{"backslash inside", evil(`keys\..\..\evil`), "character other than", Limits{}},
		{"space", evil("a b"), "character other than", Limits{}},
		{"nul in the manifest", with(func(m *Manifest, es []entry) (*Manifest, []entry) {
			m.Files[0].Path = "ca.pem\x00evil"
			return m, es
		}), "character other than", Limits{}},
		{"lock", evil("serve.lock"), "reserved", Limits{}},
		{"manifest twice", evil(ManifestName), "reserved", Limits{}},
		{"too deep", evil("a/b/c/d/e"), "levels deep", Limits{}},
		{"symlink entry", with(func(m *Manifest, es []entry) (*Manifest, []entry) {
			es[0].hdr = tar.Header{Typeflag: tar.TypeSymlink, Name: "ca.pem", Linkname: "/etc/passwd", Mode: 0o644}
			es[0].body = nil
			return m, es
		}), "not a regular file", Limits{}},
		{"hard link entry", with(func(m *Manifest, es []entry) (*Manifest, []entry) {
			es[0].hdr = tar.Header{Typeflag: tar.TypeLink, Name: "ca.pem", Linkname: "/etc/passwd", Mode: 0o644}
			es[0].body = nil
			return m, es
		}), "not a regular file", Limits{}},
		{"directory entry", with(func(m *Manifest, es []entry) (*Manifest, []entry) {
			es[0].hdr = tar.Header{Typeflag: tar.TypeDir, Name: "ca.pem", Mode: 0o755}
			es[0].body = nil
			return m, es
		}), "not a regular file", Limits{}},
		{"bad checksum", with(func(m *Manifest, es []entry) (*Manifest, []entry) {
			es[1].body = []byte("fedcba9876543210fedcba9876543210")
			return m, es
		}), "does not match its checksum", Limits{}},
		{"checksum not hex", with(func(m *Manifest, es []entry) (*Manifest, []entry) {
			m.Files[0].SHA256 = strings.Repeat("zz", 32)
			return m, es
		}), "not 64 hex digits", Limits{}},
		{"entry larger than the manifest says", with(func(m *Manifest, es []entry) (*Manifest, []entry) {
			es[0].body = []byte("certificate and more")
			es[0].hdr.Size = int64(len(es[0].body))
			return m, es
		}), "the manifest says", Limits{}},
		{"oversized file", with(func(m *Manifest, es []entry) (*Manifest, []entry) {
			big := strings.Repeat("k", 2048)
			es[2], m.Files[2] = file("signing/kid-1.pem", 0o600, big)
			return m, es
		}), "outside 0..1024", Limits{MaxFiles: 10, MaxFileSize: 1024, MaxTotalSize: 1 << 20}},
		{"oversized in total", with(func(m *Manifest, es []entry) (*Manifest, []entry) { return m, es }),
			"add up to more than", Limits{MaxFiles: 10, MaxFileSize: 40, MaxTotalSize: 50}},
		{"too many files", with(func(m *Manifest, es []entry) (*Manifest, []entry) { return m, es }),
			"more than the limit of 2", Limits{MaxFiles: 2, MaxFileSize: 1024, MaxTotalSize: 1 << 20}},
		{"negative size", with(func(m *Manifest, es []entry) (*Manifest, []entry) {
			m.Files[0].Size = -1
			return m, es
		}), "outside", Limits{}},
		{"manifest not first", func() []byte {
			m, es := world()
			mj, _ := json.Marshal(m)
			return craft(t, nil, append(es[:1:1], append([]entry{{hdr: tar.Header{Typeflag: tar.TypeReg, Name: ManifestName, Mode: 0o600, Size: int64(len(mj))}, body: mj}}, es[1:]...)...), nil)
		}, "not the manifest", Limits{}},
		{"no manifest", func() []byte { _, es := world(); return craft(t, nil, es, nil) }, "not the manifest", Limits{}},
		{"empty tar", func() []byte { return craft(t, nil, nil, nil) }, "no manifest", Limits{}},
		{"entry not in the manifest", with(func(m *Manifest, es []entry) (*Manifest, []entry) {
			e, _ := file("extra.json", 0o600, "{}")
			return m, append(es, e)
		}), "not in the manifest", Limits{}},
		{"entry missing", with(func(m *Manifest, es []entry) (*Manifest, []entry) { return m, es[:2] }), "ends before signing/kid-1.pem", Limits{}},
		{"entries out of order", with(func(m *Manifest, es []entry) (*Manifest, []entry) {
			es[0], es[1] = es[1], es[0]
			return m, es
		}), "where the manifest lists", Limits{}},
		{"listed twice", with(func(m *Manifest, es []entry) (*Manifest, []entry) {
			m.Files = append(m.Files, m.Files[0])
			return m, append(es, es[0])
		}), "listed twice", Limits{}},
		{"listed twice by case", with(func(m *Manifest, es []entry) (*Manifest, []entry) {
			e, f := file("CA.pem", 0o644, "other")
			m.Files = append(m.Files, f)
			return m, append(es, e)
		}), "listed twice", Limits{}},
		{"file and directory", with(func(m *Manifest, es []entry) (*Manifest, []entry) {
			e, f := file("keys", 0o600, "x")
			m.Files = append([]File{f}, m.Files...)
			return m, append([]entry{e}, es...)
		}), "is a file and the directory", Limits{}},
		{"mode differs", with(func(m *Manifest, es []entry) (*Manifest, []entry) {
			es[1].hdr.Mode = 0o644
			return m, es
		}), "has mode", Limits{}},
		{"setuid mode", with(func(m *Manifest, es []entry) (*Manifest, []entry) {
			m.Files[0].Mode = "4755"
			return m, es
		}), "not octal permission bits", Limits{}},
		{"unknown manifest field", func() []byte {
			m, es := world()
			b, _ := json.Marshal(m)
			var raw map[string]any
			json.Unmarshal(b, &raw)
			raw["exec"] = "rm -rf /"
			return craft(t, raw, es, nil)
		}, "unknown field", Limits{}},
		{"other format", with(func(m *Manifest, es []entry) (*Manifest, []entry) {
			m.Format = "tar"
			return m, es
		}), "not a tenantbridge backup", Limits{}},
		{"newer version", with(func(m *Manifest, es []entry) (*Manifest, []entry) {
			m.Version = 2
			return m, es
		}), "format version 2", Limits{}},
		{"sqlite without its database", with(func(m *Manifest, es []entry) (*Manifest, []entry) {
			m.Store = "sqlite"
			return m, es
		}), "does not list tenantbridge.db", Limits{}},
		{"postgres with a database", with(func(m *Manifest, es []entry) (*Manifest, []entry) {
			e, f := file(DatabaseName, 0o600, "SQLite format 3")
			m.Files = append(m.Files, f)
			return m, append(es, e)
		}), "lists tenantbridge.db", Limits{}},
		{"data after the end", func() []byte { m, es := world(); return craft(t, m, es, []byte("trailing")) }, "data after the archive's end", Limits{}},
		{"not gzip", func() []byte { return []byte("PK\x03\x04 a zip file") }, "not gzip", Limits{}},
		{"truncated", func() []byte { m, es := world(); b := craft(t, m, es, nil); return b[:len(b)-30] }, "", Limits{}},
		{"corrupt gzip", func() []byte {
			m, es := world()
			b := craft(t, m, es, nil)
			b[len(b)-6] ^= 0xff // the CRC-32
			return b
		}, "checksum", Limits{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "a", "b")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			lim := c.limits
			if lim == (Limits{}) {
				lim = DefaultLimits
			}
			_, err := Extract(bytes.NewReader(c.archive()), dir, lim)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Extract: %v; want ErrInvalid with %q", err, c.want)
			}
			// Nothing outside dir.
			filepath.WalkDir(parent, func(p string, d fs.DirEntry, err error) error {
				if !d.IsDir() && !strings.HasPrefix(p, dir+string(filepath.Separator)) {
					t.Errorf("%s was written outside the directory", p)
				}
				return nil
			})
		})
	}
}

// FuzzExtract: no input makes Extract panic or write outside its
// directory, and what it accepts is exactly what its manifest lists.
func FuzzExtract(f *testing.F) {
	m, es := world()
	f.Add(craft(f, m, es, nil))
	f.Add(craft(f, m, es[:1], nil))
	e, fl := file("../x", 0o600, "x")
	f.Add(craft(f, &Manifest{Format: Format, Version: Version, Store: "postgres", Files: []File{fl}}, []entry{e}, nil))
	f.Add([]byte{0x1f, 0x8b})
	lim := Limits{MaxFiles: 16, MaxFileSize: 4096, MaxTotalSize: 16384}
	f.Fuzz(func(t *testing.T, data []byte) {
		parent := t.TempDir()
		dir := filepath.Join(parent, "d")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		got, err := Extract(bytes.NewReader(data), dir, lim)
		var written []string
		filepath.WalkDir(parent, func(p string, d fs.DirEntry, _ error) error {
			if d != nil && !d.IsDir() {
				if !strings.HasPrefix(p, dir+string(filepath.Separator)) {
					t.Fatalf("%s was written outside the directory", p)
				}
				rel, _ := filepath.Rel(dir, p)
				written = append(written, filepath.ToSlash(rel))
			}
			return nil
		})
		if err != nil {
			return
		}
		if len(written) != len(got.Files) {
			t.Fatalf("accepted: wrote %v; the manifest lists %d files", written, len(got.Files))
		}
		for _, f := range got.Files {
			b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f.Path)))
			sum := sha256.Sum256(b)
			if err != nil || int64(len(b)) != f.Size || hex.EncodeToString(sum[:]) != strings.ToLower(f.SHA256) {
				t.Fatalf("accepted %s, but it is not as listed: %v", f.Path, err)
			}
		}
	})
}
