package pki

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
)

const (
	privateFileMode = 0o600
	publicFileMode  = 0o644
	privateDirMode  = 0o700
	// maxFileSize bounds what we read from the data directory: every file
	// here is a few kilobytes, and a huge one is a mistake, not a key.
	maxFileSize = 1 << 20
)

// ensureDir creates dir (0700) if it is missing. An existing directory keeps
// its mode: it is the operator's, and our secrets inside are 0600 anyway.
func ensureDir(dir string) error {
	if err := os.MkdirAll(dir, privateDirMode); err != nil {
		return fmt.Errorf("pki: create %s: %w", dir, err)
	}
	return nil
}

// ensurePrivateDir creates dir (0700), and tightens it to 0700 if group or
// others can get in: it is ours and holds only secrets.
func ensurePrivateDir(dir string) error {
	if err := ensureDir(dir); err != nil {
		return err
	}
	if runtime.GOOS == "windows" {
		return nil
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("pki: %s is not a directory", dir)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(dir, privateDirMode); err != nil {
			return fmt.Errorf("pki: %s is open to group or others (mode %04o) and could not be set to 0700: %w", dir, fi.Mode().Perm(), err)
		}
		slog.Warn("pki: tightened directory mode", "path", dir, "was", fmt.Sprintf("%04o", fi.Mode().Perm()), "now", "0700")
	}
	return nil
}

// exists reports whether path exists; errors other than "not found" (e.g. a
// permission problem) are returned, not mistaken for absence, so that we never
// create a new key over one we merely could not see.
func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("pki: %w", err)
	}
}

// readPrivateFile reads a file holding a key or secret. If group or others can
// read it, its mode is fixed to 0600 first (and a warning naming only the path
// is logged); if that is impossible, reading fails rather than carry on with a
// key others can read.
func readPrivateFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("pki: %s is not a regular file", path)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		if err := f.Chmod(privateFileMode); err != nil {
			return nil, fmt.Errorf("pki: %s is readable by group or others (mode %04o) and could not be set to 0600: %w", path, fi.Mode().Perm(), err)
		}
		slog.Warn("pki: tightened key file mode", "path", path, "was", fmt.Sprintf("%04o", fi.Mode().Perm()), "now", "0600")
	}
	return readLimited(f, path)
}

func readPublicFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readLimited(f, path)
}

func readLimited(f *os.File, path string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxFileSize {
		return nil, fmt.Errorf("pki: %s is larger than %d bytes", path, maxFileSize)
	}
	return b, nil
}

// writeTemp writes data to a new temporary file next to path, with mode perm,
// synced to disk, and returns its name.
func writeTemp(path string, data []byte, perm fs.FileMode) (string, error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("pki: %w", err)
	}
	tmp := f.Name()
	fail := func(err error) (string, error) {
		f.Close()
		os.Remove(tmp)
		return "", fmt.Errorf("pki: write %s: %w", path, err)
	}
	// CreateTemp makes the file 0600 already; Chmod states it (and widens it
	// for public files) whatever the umask.
	if err := f.Chmod(perm); err != nil {
		return fail(err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("pki: write %s: %w", path, err)
	}
	return tmp, nil
}

// writeFileAtomic replaces path with data: readers see the old file or the
// new one, never a part.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) error {
	tmp, err := writeTemp(path, data, perm)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	syncDir(filepath.Dir(path))
	return nil
}

// createFileAtomic is writeFileAtomic for files that must only ever be
// created: if path appeared meanwhile (another process starting on the same
// directory), it fails with an error matching fs.ErrExist and leaves the
// existing file alone. A hard link gives that; where links are unsupported it
// falls back to an exclusive create-then-rename check.
func createFileAtomic(path string, data []byte, perm fs.FileMode) error {
	tmp, err := writeTemp(path, data, perm)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	err = os.Link(tmp, path)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("pki: %s appeared while creating it (is another tenantbridge starting on this directory?): %w", path, fs.ErrExist)
	}
	if err != nil {
		// No hard links here: rename, unless the file appeared.
		if ok, serr := exists(path); serr != nil {
			return serr
		} else if ok {
			return fmt.Errorf("pki: %s appeared while creating it: %w", path, fs.ErrExist)
		}
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("pki: write %s: %w", path, err)
		}
	}
	syncDir(filepath.Dir(path))
	return nil
}

// syncDir makes a rename durable. Best effort: not every platform can sync a
// directory, and the file itself is already synced.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// pemBlocks splits data into PEM blocks, failing on anything that is not PEM.
func pemBlocks(data []byte, path string) ([]*pem.Block, error) {
	var blocks []*pem.Block
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		blocks = append(blocks, b)
	}
	if len(blocks) == 0 {
		return nil, fmt.Errorf("pki: %s holds no PEM data", path)
	}
	return blocks, nil
}

// parsePrivateKey parses a PKCS#8 "PRIVATE KEY" block into a signer.
func parsePrivateKey(b *pem.Block, path string) (crypto.Signer, error) {
	if b.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("pki: %s: found a %q block, want a PKCS#8 \"PRIVATE KEY\"", path, b.Type)
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", path, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("pki: %s: key type %T cannot sign", path, k)
	}
	return s, nil
}

func marshalPrivateKey(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func certPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// samePublicKey reports whether priv is the private half of pub.
func samePublicKey(priv crypto.Signer, pub crypto.PublicKey) bool {
	k, ok := priv.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(pub)
}
