// Package sealed is the envelope tenantbridge uses for values it keeps at rest
// (vault secrets, refresh tokens held in custody): AES-256-GCM under a
// key-encryption key, with additional data that binds each value to the place
// it is stored, so a sealed value copied from one row to another no longer
// opens.
//
// The format is one version byte (1), the 96-bit random nonce, then the
// ciphertext and the 128-bit tag. The version byte is authenticated too (it is
// prepended to the additional data), so a later format can never be confused
// with this one.
//
// Random 96-bit nonces are safe for about 2^32 seals under one key; rotate the
// KEK well before that.
package sealed

import (
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
)

// ErrSealed is the only error Open returns for data it cannot authenticate:
// tampering, truncation, the wrong key and the wrong additional data all look
// the same to a caller, and must, so that Open is no oracle.
var ErrSealed = errors.New("sealed: cannot open value: wrong key, wrong context or tampered data")

const (
	version1 = 1
	keySize  = 32 // AES-256
	// overhead is what Seal adds to the plaintext: version, nonce and tag.
	overhead = 1 + 12 + 16
)

// Seal encrypts plaintext under kek (32 bytes) with a fresh random 96-bit
// nonce and additional data aad, which binds the value to where it is stored
// (e.g. "vault/secret/<id>"): the same aad must be given to Open. The output
// is version byte 1 || nonce || ciphertext+tag.
func Seal(kek, plaintext, aad []byte) ([]byte, error) {
	aead, err := newAEAD(kek)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1, overhead+len(plaintext))
	out[0] = version1
	// The AEAD draws the nonce from crypto/rand and writes it before the
	// ciphertext, so no caller can ever reuse one.
	return aead.Seal(out, nil, plaintext, additionalData(version1, aad)), nil
}

// Open reverses Seal. Any tampering, the wrong key or the wrong aad fails with
// ErrSealed; it never panics, whatever the input. A kek that is not 32 bytes
// is a configuration error and is reported as such, not as ErrSealed.
func Open(kek, sealed, aad []byte) ([]byte, error) {
	aead, err := newAEAD(kek)
	if err != nil {
		return nil, err
	}
	if len(sealed) < overhead || sealed[0] != version1 {
		return nil, ErrSealed
	}
	pt, err := aead.Open(nil, nil, sealed[1:], additionalData(sealed[0], aad))
	if err != nil {
		return nil, ErrSealed
	}
	if pt == nil {
		pt = []byte{}
	}
	return pt, nil
}

func newAEAD(kek []byte) (cipher.AEAD, error) {
	if len(kek) != keySize {
		return nil, fmt.Errorf("sealed: key-encryption key is %d bytes, want %d", len(kek), keySize)
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("sealed: %w", err)
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, fmt.Errorf("sealed: %w", err)
	}
	return aead, nil
}

// additionalData authenticates the version byte along with the caller's aad.
func additionalData(version byte, aad []byte) []byte {
	ad := make([]byte, 0, 1+len(aad))
	ad = append(ad, version)
	return append(ad, aad...)
}
