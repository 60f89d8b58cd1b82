package pki

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

const (
	keysDir       = "keys"
	hashKeyFile   = "secret-hash.key"
	kekFile       = "kek.key"
	secretKeySize = 32

	// envKEK names the environment variable that may carry the KEK (base64 of
	// 32 bytes), for deployments that keep it outside the data directory.
	envKEK = "TENANTBRIDGE_KEK"
)

// Secrets holds the server's symmetric keys, each 32 random bytes in its own
// 0600 file under DIR/keys/ (dir 0700), created on first start and reused
// after, because losing either makes stored data useless. HashKey
// (keys/secret-hash.key) keys the HMAC-SHA256 of client secrets, so a stolen
// database alone does not allow offline guessing; KEK (keys/kek.key) is the
// key-encryption key for values encrypted at rest (see package sealed). The
// KEK may instead come from the environment variable TENANTBRIDGE_KEK (base64
// of 32 bytes), so a deployment can keep it apart from the data it protects.
type Secrets struct {
	HashKey []byte
	KEK     []byte
}

// LoadOrCreateSecrets loads or creates DIR/keys/secret-hash.key and the KEK.
// If TENANTBRIDGE_KEK is set it is the KEK, and it must be valid: a malformed
// value fails rather than fall back to a different key. If it is set and
// DIR/keys/kek.key also exists with a different key, it fails too, since
// values sealed under one do not open under the other. A key file of the wrong
// size is an error and is never replaced.
func LoadOrCreateSecrets(dir string) (*Secrets, error) {
	if err := ensureDir(dir); err != nil {
		return nil, err
	}
	kd := filepath.Join(dir, keysDir)
	if err := ensurePrivateDir(kd); err != nil {
		return nil, err
	}
	hashKey, err := loadOrCreateKeyFile(filepath.Join(kd, hashKeyFile))
	if err != nil {
		return nil, err
	}
	kekPath := filepath.Join(kd, kekFile)
	v, fromEnv := os.LookupEnv(envKEK)
	if !fromEnv {
		kek, err := loadOrCreateKeyFile(kekPath)
		if err != nil {
			return nil, err
		}
		return &Secrets{HashKey: hashKey, KEK: kek}, nil
	}
	kek, err := decodeKEK(v)
	if err != nil {
		return nil, err
	}
	fileKEK, err := loadKeyFile(kekPath)
	if err == nil && subtle.ConstantTimeCompare(fileKEK, kek) != 1 {
		return nil, fmt.Errorf("pki: %s is set but differs from %s; values sealed under one cannot be opened with the other. Unset %s to use the file, or move the file away to use the environment", envKEK, kekPath, envKEK)
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return &Secrets{HashKey: hashKey, KEK: kek}, nil
}

// decodeKEK accepts standard or URL-safe base64, padded or not. The value is a
// secret: errors never include it.
func decodeKEK(v string) ([]byte, error) {
	if strings.TrimSpace(v) == "" {
		return nil, fmt.Errorf("pki: %s is set but empty; set it to the base64 of 32 random bytes (e.g. `openssl rand -base64 32`) or unset it", envKEK)
	}
	b, err := DecodeKey(v)
	if err != nil {
		return nil, fmt.Errorf("pki: %s %w", envKEK, err)
	}
	return b, nil
}

// DecodeKey decodes a 32-byte symmetric key given as base64 (standard or
// URL-safe, padded or not, surrounding space ignored), as `openssl rand
// -base64 32` prints it: the KEK of TENANTBRIDGE_KEK, a fleet's node key.
// The value is a secret: the error, which reads after the name of where
// the value came from ("TENANTBRIDGE_KEK is not valid base64…"), never
// holds it.
func DecodeKey(v string) ([]byte, error) {
	v = strings.TrimSpace(v)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(v); err == nil {
			if len(b) != secretKeySize {
				return nil, fmt.Errorf("decodes to %d bytes, want %d (e.g. `openssl rand -base64 32`)", len(b), secretKeySize)
			}
			return b, nil
		}
	}
	return nil, errors.New("is not valid base64; set it to the base64 of 32 random bytes (e.g. `openssl rand -base64 32`)")
}

func loadOrCreateKeyFile(path string) ([]byte, error) {
	k, err := loadKeyFile(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	k = make([]byte, secretKeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	err = createFileAtomic(path, k, privateFileMode)
	if errors.Is(err, fs.ErrExist) {
		// Another process created it first: use theirs, so both agree.
		return loadKeyFile(path)
	}
	if err != nil {
		return nil, err
	}
	return k, nil
}

// loadKeyFile reads a 32-byte key. Errors match fs.ErrNotExist when the file
// is missing.
func loadKeyFile(path string) ([]byte, error) {
	k, err := readPrivateFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("pki: read %s: %w", path, err)
	}
	if len(k) != secretKeySize {
		return nil, fmt.Errorf("pki: %s holds %d bytes, want %d; it is not replaced automatically, since data protected by it would be lost", path, len(k), secretKeySize)
	}
	return k, nil
}
