package pki

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
)

// SharedFile is one file of a data directory's key material that every
// server of a fleet (several servers on one store) must hold alike. Name is
// its path relative to the data directory, with forward slashes.
type SharedFile struct {
	Name string
	Data []byte
}

// The shared files: the CA, the symmetric keys and the signing keys. The
// server certificate is not among them: each node issues its own from the
// shared CA for the names it answers to.
var sharedSingletons = []string{caCertFile, caKeyFile, keysDir + "/" + hashKeyFile, keysDir + "/" + kekFile}

// signingName is a signing key's shared name: its kid (base64url SHA-1
// thumbprint) under signing/.
var signingName = regexp.MustCompile(`^signing/[A-Za-z0-9_-]{1,64}\.pem$`)

// SharedFileName reports whether name is the name of a shared file: the
// one test between a name read from the store and a path in the data
// directory.
func SharedFileName(name string) bool {
	return slices.Contains(sharedSingletons, name) || signingName.MatchString(name)
}

// SigningFileName is the shared name of the signing key kid.
func SigningFileName(kid string) string { return signingDir + "/" + kid + ".pem" }

// IsSigningFileName reports whether a shared name is a signing key's.
func IsSigningFileName(name string) bool { return signingName.MatchString(name) }

// ReadSharedFiles returns the shared files that dir holds (a KEK taken from
// TENANTBRIDGE_KEK has no file and is not among them).
func ReadSharedFiles(dir string) ([]SharedFile, error) {
	names := slices.Clone(sharedSingletons)
	entries, err := os.ReadDir(filepath.Join(dir, signingDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("pki: %w", err)
	}
	for _, e := range entries {
		if n := signingDir + "/" + e.Name(); e.Type().IsRegular() && signingName.MatchString(n) {
			names = append(names, n)
		}
	}
	var out []SharedFile
	for _, n := range names {
		data, err := readSharedFile(dir, n)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("pki: read %s: %w", n, err)
		}
		out = append(out, SharedFile{Name: n, Data: data})
	}
	return out, nil
}

// readSharedFile reads the shared file name of dir: as a key (private,
// its mode checked), but the CA certificate, which is public.
func readSharedFile(dir, name string) ([]byte, error) {
	path := filepath.Join(dir, filepath.FromSlash(name))
	if name != caCertFile {
		return readPrivateFile(path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readLimited(f, path)
}

// ErrSharedFileDiffers is the error of PlaceSharedFile when the data
// directory holds a different file of the name.
var ErrSharedFileDiffers = errors.New("pki: the data directory holds a different file")

// PlaceSharedFile writes f into dir (creating keys/ or signing/, 0700) unless
// a file of its name is there; the file is 0600 (ca.pem 0644), written
// atomically. It reports whether it wrote. A file already there with other
// content is left alone and reported as ErrSharedFileDiffers: nothing here
// replaces key material.
func PlaceSharedFile(dir string, f SharedFile) (bool, error) {
	if !SharedFileName(f.Name) {
		return false, fmt.Errorf("pki: %q is not a shared key file", f.Name)
	}
	path := filepath.Join(dir, filepath.FromSlash(f.Name))
	have, err := readSharedFile(dir, f.Name)
	switch {
	case err == nil && bytes.Equal(have, f.Data):
		return false, nil
	case err == nil:
		return false, fmt.Errorf("%w: %s", ErrSharedFileDiffers, path)
	case !errors.Is(err, fs.ErrNotExist):
		return false, err
	}
	if sub := filepath.Dir(path); sub != filepath.Clean(dir) {
		if err := ensurePrivateDir(sub); err != nil {
			return false, err
		}
	}
	mode := fs.FileMode(privateFileMode)
	if f.Name == caCertFile {
		mode = publicFileMode
	}
	err = createFileAtomic(path, f.Data, mode)
	if errors.Is(err, fs.ErrExist) {
		return PlaceSharedFile(dir, f) // written meanwhile: compare with it
	}
	return err == nil, err
}

// RemoveSharedFile removes a shared file that dir holds, if it does.
func RemoveSharedFile(dir, name string) error {
	if !SharedFileName(name) {
		return fmt.Errorf("pki: %q is not a shared key file", name)
	}
	err := os.Remove(filepath.Join(dir, filepath.FromSlash(name)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// KeyPublisher is told of a signing key before the key set writes it:
// a fleet's shared store of keys (package fleet), which must hold a key
// before any node can sign with it. An error stops the rotation.
type KeyPublisher func(f SharedFile) error

// SetPublisher makes Rotate tell p of every new key before writing it.
func (ks *KeySet) SetPublisher(p KeyPublisher) {
	ks.wmu.Lock()
	ks.publish = p
	ks.wmu.Unlock()
}

// sharedFileOf is the shared form of a signing key: its file's content.
func sharedFileOf(k SigningKey, keyPEM []byte) SharedFile {
	return SharedFile{Name: SigningFileName(k.KeyID), Data: append(slices.Clone(keyPEM), certPEM(k.Cert.Raw)...)}
}
