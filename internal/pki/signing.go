package pki

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

const (
	signingDir      = "signing"
	signingKeyBits  = 2048
	signingValidity = 5 * 365 * 24 * time.Hour // as Entra's token-signing certificates
)

// SigningKey is one token-signing key: RSA 2048 (RS256 is what every Entra
// client expects), with a self-signed certificate so that JWKS can publish
// x5c as Entra does. KeyID is the base64url (no padding) SHA-1 thumbprint of
// the certificate DER, which Entra uses as both kid and x5t.
type SigningKey struct {
	KeyID string
	Key   *rsa.PrivateKey
	Cert  *x509.Certificate
	// Created is the certificate's NotBefore, the same as Activates.
	//
	// Deprecated: use Activates. Since keys can be rotated in ahead of
	// use, a key's certificate is dated when it starts signing, which
	// may be later than when it was made.
	Created time.Time
	// Activates is when the key starts signing new tokens (if no newer key
	// has activated by then). It is the certificate's NotBefore, so it is
	// kept in the key file itself and has whole-second precision.
	Activates time.Time
}

// X5T returns the base64url SHA-1 thumbprint of the certificate, the JWS
// "x5t" header; it equals KeyID.
func (k SigningKey) X5T() string {
	sum := sha1.Sum(k.Cert.Raw)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// X5TS256 returns the base64url SHA-256 thumbprint of the certificate, the
// JWS "x5t#S256" header.
func (k SigningKey) X5TS256() string {
	sum := sha256.Sum256(k.Cert.Raw)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// PruneMargin is how long Prune keeps a retired key beyond the longest
// lifetime of a token it can have signed: room for clock skew between
// instances and for verifiers that allow some leeway on exp.
const PruneMargin = 5 * time.Minute

// KeySet holds the token-signing keys. It is safe for concurrent use, because
// the token service reads it on every request while rotation changes it.
//
// Keys live under DIR/signing/, one PEM file (0600) each holding the PKCS#8
// private key and its self-signed certificate. The certificate's NotBefore is
// the key's activation time: when it starts signing. That keeps the whole
// life of a key in the one file a rotation writes, readable with
// `openssl x509 -noout -startdate`, and keeps files written before rotation
// existed valid (they activated when they were made).
//
// A key's life:
//
//   - pending: written and published (JWKS, Lookup) but not yet signing, so
//     that clients which cache JWKS learn it before they meet a token it
//     signed (Rotate's publishAhead);
//   - active: the newest key whose activation time has come; Current returns
//     it and it signs every new token;
//   - retired: a newer key has activated. It stays published, so tokens it
//     signed still verify, until Prune removes it once the longest-lived of
//     those tokens has expired.
//
// Every instance sharing the directory (and the CLI) derives the same states
// from the same files and the time, so rotation needs no coordination beyond
// Reload picking up files written elsewhere.
type KeySet struct {
	dir string
	now func() time.Time

	// wmu serialises the changes (Rotate, Prune, Reload), so that a
	// Reload cannot drop a key that a concurrent Rotate just added; mu
	// guards keys and files for the readers on the hot path.
	wmu   sync.Mutex
	mu    sync.RWMutex
	keys  []SigningKey      // newest activation first
	files map[string]string // kid -> path of its file
	// publish, if set, is told of a new key before it is written (a
	// fleet's shared keys, fleet.go); guarded by wmu.
	publish KeyPublisher
}

// LoadOrCreateKeySet loads DIR/signing/*.pem, creating one key, active at
// once, if there are none. The directory is 0700. A file that cannot be
// parsed is an error, not skipped: a signing key that silently disappears
// breaks token validation. The set reads the time from time.Now.
func LoadOrCreateKeySet(dir string) (*KeySet, error) {
	return LoadOrCreateKeySetWithClock(dir, time.Now)
}

// LoadOrCreateKeySetWithClock is LoadOrCreateKeySet with the clock that
// Current (and the first key's activation) use, for tests that move time.
func LoadOrCreateKeySetWithClock(dir string, now func() time.Time) (*KeySet, error) {
	if now == nil {
		return nil, errors.New("pki: nil clock")
	}
	if err := ensureDir(dir); err != nil {
		return nil, err
	}
	ks := &KeySet{dir: filepath.Join(dir, signingDir), now: now}
	if err := ensurePrivateDir(ks.dir); err != nil {
		return nil, err
	}
	keys, files, err := loadSigningKeys(ks.dir)
	if err != nil {
		return nil, err
	}
	ks.keys, ks.files = keys, files
	if len(ks.keys) == 0 {
		k, err := newSigningKey(ks.now())
		if err != nil {
			return nil, err
		}
		if err := ks.add(k); err != nil {
			return nil, err
		}
	}
	return ks, nil
}

// loadSigningKeys reads every key file of dir, newest activation first, and
// where each came from.
func loadSigningKeys(dir string) ([]SigningKey, map[string]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: %w", err)
	}
	var keys []SigningKey
	files := map[string]string{}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".pem") || e.IsDir() {
			continue // temporary files and anything that is not a key
		}
		path := filepath.Join(dir, name)
		k, err := readSigningKey(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue // pruned by another process since ReadDir
		}
		if err != nil {
			return nil, nil, err
		}
		if other, dup := files[k.KeyID]; dup {
			return nil, nil, fmt.Errorf("pki: signing key %s is in both %s and %s; remove one", k.KeyID, other, path)
		}
		files[k.KeyID] = path
		keys = append(keys, k)
	}
	sortNewestFirst(keys)
	return keys, files, nil
}

func readSigningKey(path string) (SigningKey, error) {
	data, err := readPrivateFile(path)
	if err != nil {
		return SigningKey{}, fmt.Errorf("pki: read signing key: %w", err)
	}
	blocks, err := pemBlocks(data, path)
	if err != nil {
		return SigningKey{}, err
	}
	var k SigningKey
	for _, b := range blocks {
		switch b.Type {
		case "PRIVATE KEY":
			if k.Key != nil {
				return SigningKey{}, fmt.Errorf("pki: %s holds more than one private key", path)
			}
			s, err := parsePrivateKey(b, path)
			if err != nil {
				return SigningKey{}, err
			}
			rk, ok := s.(*rsa.PrivateKey)
			if !ok {
				return SigningKey{}, fmt.Errorf("pki: %s: signing key is %T, want RSA", path, s)
			}
			k.Key = rk
		case "CERTIFICATE":
			if k.Cert != nil {
				return SigningKey{}, fmt.Errorf("pki: %s holds more than one certificate", path)
			}
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return SigningKey{}, fmt.Errorf("pki: %s: %w", path, err)
			}
			k.Cert = c
		default:
			return SigningKey{}, fmt.Errorf("pki: %s: unexpected %q block", path, b.Type)
		}
	}
	if k.Key == nil || k.Cert == nil {
		return SigningKey{}, fmt.Errorf("pki: %s must hold a PRIVATE KEY and its CERTIFICATE", path)
	}
	if k.Key.N.BitLen() < signingKeyBits {
		return SigningKey{}, fmt.Errorf("pki: %s: RSA key is %d bits, want at least %d", path, k.Key.N.BitLen(), signingKeyBits)
	}
	if !samePublicKey(k.Key, k.Cert.PublicKey) {
		return SigningKey{}, fmt.Errorf("pki: %s: the certificate is not for this key", path)
	}
	k.KeyID = k.X5T()
	k.Activates = k.Cert.NotBefore
	k.Created = k.Activates
	return k, nil
}

// newSigningKey makes a key and its self-signed certificate, dated (and so
// activating at) activates, truncated to the second.
func newSigningKey(activates time.Time) (SigningKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, signingKeyBits)
	if err != nil {
		return SigningKey{}, fmt.Errorf("pki: generate signing key: %w", err)
	}
	// Certificates carry whole seconds; Activates is read back from NotBefore.
	activates = activates.UTC().Truncate(time.Second)
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{Organization: []string{"tenantbridge"}, CommonName: "tenantbridge token signing"},
		NotBefore:             activates,
		NotAfter:              activates.Add(signingValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return SigningKey{}, fmt.Errorf("pki: create signing certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return SigningKey{}, fmt.Errorf("pki: create signing certificate: %w", err)
	}
	k := SigningKey{Key: key, Cert: cert, Activates: cert.NotBefore, Created: cert.NotBefore}
	k.KeyID = k.X5T()
	return k, nil
}

// add writes k to disk as DIR/signing/<kid>.pem and then publishes it: a key is
// never in use before it is durable. This is the step rotation builds on.
func (ks *KeySet) add(k SigningKey) error {
	keyPEM, err := marshalPrivateKey(k.Key)
	if err != nil {
		return err
	}
	shared := sharedFileOf(k, keyPEM)
	data := shared.Data
	path := filepath.Join(ks.dir, k.KeyID+".pem")
	ks.wmu.Lock()
	defer ks.wmu.Unlock()
	if ks.publish != nil {
		// Every node of the fleet can fetch the key before this one
		// publishes it, let alone signs with it.
		if err := ks.publish(shared); err != nil {
			return fmt.Errorf("pki: publish signing key %s to the fleet: %w", k.KeyID, err)
		}
	}
	if err := createFileAtomic(path, data, privateFileMode); err != nil {
		return err
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	keys := append(slices.Clone(ks.keys), k)
	sortNewestFirst(keys)
	files := maps.Clone(ks.files)
	if files == nil {
		files = map[string]string{}
	}
	files[k.KeyID] = path
	ks.keys, ks.files = keys, files
	return nil
}

func sortNewestFirst(keys []SigningKey) {
	slices.SortFunc(keys, func(a, b SigningKey) int {
		if c := b.Activates.Compare(a.Activates); c != 0 {
			return c
		}
		return strings.Compare(a.KeyID, b.KeyID) // deterministic tie-break
	})
}

// currentIndex is the index in keys (newest activation first) of the key
// that signs at now: the newest that has activated. If none has (a set
// holding only keys rotated in ahead, or another instance's clock running
// ahead of ours), it is the one that activates first: it is published
// already, and signing with it beats failing every token request.
func currentIndex(keys []SigningKey, now time.Time) int {
	for i, k := range keys {
		if !k.Activates.After(now) {
			return i
		}
	}
	return len(keys) - 1
}

// Rotate makes a new signing key that activates publishAhead after now,
// writes it (0600, atomically) and publishes it at once. publishAhead gives
// clients that cache JWKS time to fetch the new key before the first token
// it signs: make it longer than the longest cache of the JWKS document (a
// day is a common choice; go-oidc and MSAL refetch on an unknown kid, but
// not every resource server does). 0 activates the key at once.
//
// A positive publishAhead is rounded up to the next whole second (the
// activation time is a certificate's NotBefore), so the key is never
// published for less than that.
//
// The key that was current keeps signing until the new one activates, and is
// then retired: see Prune. Other processes sharing the directory see the new
// key when they Reload.
func (ks *KeySet) Rotate(now time.Time, publishAhead time.Duration) (SigningKey, error) {
	if publishAhead < 0 {
		return SigningKey{}, fmt.Errorf("pki: rotate: negative publish-ahead %v", publishAhead)
	}
	activates := now.Add(publishAhead)
	if publishAhead > 0 {
		if t := activates.Truncate(time.Second); !t.Equal(activates) {
			activates = t.Add(time.Second)
		}
	}
	k, err := newSigningKey(activates)
	if err != nil {
		return SigningKey{}, err
	}
	if err := ks.add(k); err != nil {
		return SigningKey{}, err
	}
	return k, nil
}

// Prune removes the retired keys that no unexpired token can need any more,
// deleting their files, and returns their key ids. A key retires when the
// next newer key activates; from then on it signs nothing, so it may go once
// that activation + maxTokenLifetime + PruneMargin has passed.
// maxTokenLifetime is the longest lifetime of any token the set signs
// (access, ID and other signed tokens alike).
//
// The current key and pending keys are never removed, nor is any key while a
// newer one is still pending. A key file that is already gone (pruned by
// another process) counts as removed. On an error, the keys removed so far
// are returned with it and are gone from the set.
func (ks *KeySet) Prune(now time.Time, maxTokenLifetime time.Duration) (removed []string, err error) {
	if maxTokenLifetime < 0 {
		return nil, fmt.Errorf("pki: prune: negative token lifetime %v", maxTokenLifetime)
	}
	ks.wmu.Lock()
	defer ks.wmu.Unlock()
	ks.mu.RLock()
	keys, files := ks.keys, ks.files // replaced, never modified in place
	ks.mu.RUnlock()

	cur := currentIndex(keys, now)
	gone := map[string]bool{}
	for i := cur + 1; i < len(keys); i++ {
		retired := keys[i-1].Activates // the next newer key's activation
		if now.Before(retired.Add(maxTokenLifetime).Add(PruneMargin)) {
			continue
		}
		kid := keys[i].KeyID
		if rerr := os.Remove(files[kid]); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = fmt.Errorf("pki: prune signing key %s: %w", kid, rerr)
			break
		}
		gone[kid] = true
		removed = append(removed, kid)
	}
	if len(gone) == 0 {
		return nil, err
	}
	syncDir(ks.dir)
	kept := make([]SigningKey, 0, len(keys)-len(gone))
	keptFiles := make(map[string]string, len(keys)-len(gone))
	for _, k := range keys {
		if !gone[k.KeyID] {
			kept = append(kept, k)
			keptFiles[k.KeyID] = files[k.KeyID]
		}
	}
	ks.mu.Lock()
	ks.keys, ks.files = kept, keptFiles
	ks.mu.Unlock()
	return removed, err
}

// Reload re-reads DIR/signing, so that a rotation or prune done by another
// process (the CLI, another instance sharing the directory) takes effect
// here. It is safe to call while the set is in use: readers see the old keys
// or the new ones, never a mixture. If a file cannot be read or parsed, or no
// key is left, Reload fails and the set keeps the keys it had.
func (ks *KeySet) Reload() error {
	ks.wmu.Lock()
	defer ks.wmu.Unlock()
	keys, files, err := loadSigningKeys(ks.dir)
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		return fmt.Errorf("pki: reload: %s holds no signing key; keeping the keys loaded before", ks.dir)
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ks.keys, ks.files = keys, files
	return nil
}

// Current returns the key that signs new tokens: the newest key whose
// activation time has come, by the set's clock. Should none have come yet
// (only when every key was rotated in ahead, or clocks disagree), it is the
// key that activates first.
func (ks *KeySet) Current() SigningKey {
	now := ks.now()
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	if len(ks.keys) == 0 {
		return SigningKey{}
	}
	return ks.keys[currentIndex(ks.keys, now)]
}

// Published returns every key that verifiers should accept, newest
// activation first: pending keys (so that clients learn them before they
// sign), the current key, and retired keys until Prune removes them.
func (ks *KeySet) Published() []SigningKey {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	return slices.Clone(ks.keys)
}

// Lookup finds a published key by kid, for verifying a token we issued.
func (ks *KeySet) Lookup(kid string) (SigningKey, bool) {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	for _, k := range ks.keys {
		if k.KeyID == kid {
			return k, true
		}
	}
	return SigningKey{}, false
}

// KeyState is where a signing key is in its life.
type KeyState string

// The states of a signing key; see KeySet.
const (
	KeyPending KeyState = "pending" // published, not yet signing
	KeyActive  KeyState = "active"  // signs new tokens
	KeyRetired KeyState = "retired" // signs nothing; published until pruned
)

// KeyStatus is a signing key and its state at some time, as `tenantbridge
// keys list` shows it.
type KeyStatus struct {
	SigningKey
	State KeyState
	// Retires is when the next newer key activates and this one stops
	// signing (in the past for a retired key); zero for the newest key.
	Retires time.Time
}

// RemovableAfter is when Prune may remove the key, given the longest token
// lifetime; zero while the key has no newer key to retire it.
func (s KeyStatus) RemovableAfter(maxTokenLifetime time.Duration) time.Time {
	if s.Retires.IsZero() {
		return time.Time{}
	}
	return s.Retires.Add(maxTokenLifetime).Add(PruneMargin)
}

// Status returns every key of the set with its state at now, newest
// activation first. Exactly one key is active.
func (ks *KeySet) Status(now time.Time) []KeyStatus {
	ks.mu.RLock()
	keys := ks.keys
	ks.mu.RUnlock()
	cur := currentIndex(keys, now)
	out := make([]KeyStatus, len(keys))
	for i, k := range keys {
		out[i].SigningKey = k
		switch {
		case i < cur:
			out[i].State = KeyPending
		case i == cur:
			out[i].State = KeyActive
		default:
			out[i].State = KeyRetired
		}
		if i > 0 {
			out[i].Retires = keys[i-1].Activates
		}
	}
	return out
}

type jwk struct {
	Kty    string   `json:"kty"`
	Use    string   `json:"use"`
	Kid    string   `json:"kid"`
	X5t    string   `json:"x5t"`
	N      string   `json:"n"`
	E      string   `json:"e"`
	X5c    []string `json:"x5c"`
	Issuer string   `json:"issuer,omitempty"`
}

// JWKS returns the JSON Web Key Set document as Entra publishes it, so that
// MSAL, Microsoft.IdentityModel and go-oidc accept it unchanged:
// {"keys":[{"kty":"RSA","use":"sig","kid":..,"x5t":..,"n":..,"e":"AQAB",
// "x5c":["<std base64 DER>"],"issuer":<issuer>}]}, newest key first. issuer
// may be empty, and then the field is omitted.
func (ks *KeySet) JWKS(issuer string) []byte {
	keys := ks.Published()
	doc := struct {
		Keys []jwk `json:"keys"`
	}{Keys: make([]jwk, 0, len(keys))}
	for _, k := range keys {
		doc.Keys = append(doc.Keys, jwk{
			Kty:    "RSA",
			Use:    "sig",
			Kid:    k.KeyID,
			X5t:    k.X5T(),
			N:      base64.RawURLEncoding.EncodeToString(k.Key.N.Bytes()),
			E:      base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.Key.E)).Bytes()),
			X5c:    []string{base64.StdEncoding.EncodeToString(k.Cert.Raw)},
			Issuer: issuer,
		})
	}
	// Only strings and slices of strings: Marshal cannot fail.
	b, _ := json.Marshal(doc)
	return b
}
