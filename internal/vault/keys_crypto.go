package vault

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // RSA-OAEP is OAEP with SHA-1 by definition (RFC 7518 §4.3)
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"math/big"
	"slices"
)

// The key types, sizes, curves and algorithms of a vault, after Key Vault's
// "Key types, algorithms, and operations"
// (learn.microsoft.com/azure/key-vault/keys/about-keys-details): RSA 2048,
// 3072 and 4096 bits; EC P-256, P-384 and P-521 (P-256K is not offered:
// the standard library has no secp256k1); sign RS/PS/ES 256/384/512;
// encrypt and wrap RSA-OAEP and RSA-OAEP-256.
const (
	ktyRSA    = "RSA"
	ktyEC     = "EC"
	ktyRSAHSM = "RSA-HSM"
	ktyECHSM  = "EC-HSM"
)

var (
	rsaSizes = []int{2048, 3072, 4096}
	curves   = map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-521": elliptic.P521()}
	// allKeyOps are the JWK key_ops Key Vault knows (JsonWebKeyOperation).
	allKeyOps = []string{"encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey", "import", "export"}
	// defaultOps are what a key created or imported without key_ops
	// permits: every operation of its type.
	defaultOps = map[string][]string{
		ktyRSA: {"encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"},
		ktyEC:  {"sign", "verify"},
	}
)

// errKey is a refusal of key material or of an operation's parameters;
// its text is the 400 BadParameter message.
type errKey string

func (e errKey) Error() string { return string(e) }

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// jwk is a JSON Web Key as Key Vault reads (import) and writes it (every
// key bundle, public parts only). Binary members are base64url.
type jwk struct {
	Kid    string   `json:"kid,omitempty"`
	Kty    string   `json:"kty,omitempty"`
	KeyOps []string `json:"key_ops,omitempty"`
	N      string   `json:"n,omitempty"`
	E      string   `json:"e,omitempty"`
	D      string   `json:"d,omitempty"`
	DP     string   `json:"dp,omitempty"`
	DQ     string   `json:"dq,omitempty"`
	QI     string   `json:"qi,omitempty"`
	P      string   `json:"p,omitempty"`
	Q      string   `json:"q,omitempty"`
	K      string   `json:"k,omitempty"`
	T      string   `json:"key_hsm,omitempty"`
	Crv    string   `json:"crv,omitempty"`
	X      string   `json:"x,omitempty"`
	Y      string   `json:"y,omitempty"`
}

// publicJWK is the public half of priv, as stored and answered.
func publicJWK(priv crypto.Signer) (jwk, error) {
	switch k := priv.(type) {
	case *rsa.PrivateKey:
		return jwk{Kty: ktyRSA, N: b64(k.N.Bytes()), E: b64(big.NewInt(int64(k.E)).Bytes())}, nil
	case *ecdsa.PrivateKey:
		pub, err := k.PublicKey.Bytes() // 0x04 || X || Y
		if err != nil {
			return jwk{}, err
		}
		n := (len(pub) - 1) / 2
		return jwk{Kty: ktyEC, Crv: k.Curve.Params().Name, X: b64(pub[1 : 1+n]), Y: b64(pub[1+n:])}, nil
	}
	return jwk{}, errors.New("vault: unsupported key")
}

// baseKty is the key type of the material: Key Vault's -HSM types name the
// protection, not the material.
func baseKty(kty string) string {
	switch kty {
	case ktyRSAHSM:
		return ktyRSA
	case ktyECHSM:
		return ktyEC
	}
	return kty
}

// checkKty refuses what a Standard vault cannot hold. tenantbridge's
// vaults are Standard-tier: HSM-protected keys (RSA-HSM, EC-HSM, or
// import with "Hsm": true) are Premium-only ("About keys": Standard
// vaults hold software-protected keys), and Key Vault answers a Standard
// vault's HSM key with "Hardware key operation not allowed on standard
// vault" (Azure/azure-sdk-for-net#6551). oct keys are Managed HSM only.
func checkKty(kty string, hsm bool) error {
	switch {
	case kty == ktyRSAHSM || kty == ktyECHSM || hsm:
		return errKey("Hardware key operation not allowed on standard vault.")
	case kty == ktyRSA || kty == ktyEC:
		return nil
	case kty == "":
		return errKey("Property kty is required.")
	}
	return errKey(fmt.Sprintf("The key type %q is not supported by this vault: use RSA or EC.", truncate(kty)))
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// checkOps validates key_ops for a key type; nil gives the default.
func checkOps(kty string, ops []string) ([]string, error) {
	if ops == nil {
		return slices.Clone(defaultOps[kty]), nil
	}
	if len(ops) > len(allKeyOps) {
		return nil, errKey("Property key_ops lists an operation more than once.")
	}
	out := []string{}
	for _, o := range ops {
		if !slices.Contains(allKeyOps, o) {
			return nil, errKey(fmt.Sprintf("Invalid key operation %q.", truncate(o)))
		}
		// An EC key neither encrypts nor wraps (about-keys-details: EC
		// keys support sign and verify only).
		if kty == ktyEC && o != "sign" && o != "verify" {
			return nil, errKey(fmt.Sprintf("Key operation %q is not valid for an EC key.", o))
		}
		if slices.Contains(out, o) {
			return nil, errKey("Property key_ops lists an operation more than once.")
		}
		out = append(out, o)
	}
	return out, nil
}

// generate makes a new private key of kty with the size or curve given
// (Key Vault's defaults: RSA 2048, EC P-256).
func generate(kty string, size *int, exponent *int, crv *string) (crypto.Signer, error) {
	switch kty {
	case ktyRSA:
		if crv != nil {
			return nil, errKey("Property crv is not valid for an RSA key.")
		}
		bits := 2048
		if size != nil {
			bits = *size
		}
		if !slices.Contains(rsaSizes, bits) {
			return nil, errKey(fmt.Sprintf("Invalid key size %d: RSA keys are 2048, 3072 or 4096 bits.", bits))
		}
		// Go generates with e = 65537 only; Key Vault's default too.
		if exponent != nil && *exponent != 65537 {
			return nil, errKey("Property public_exponent must be 65537.")
		}
		return rsa.GenerateKey(rand.Reader, bits)
	case ktyEC:
		if size != nil || exponent != nil {
			return nil, errKey("Properties key_size and public_exponent are not valid for an EC key.")
		}
		name := "P-256"
		if crv != nil {
			name = *crv
		}
		c, ok := curves[name]
		if !ok {
			return nil, errKey(fmt.Sprintf("Invalid curve %q: use P-256, P-384 or P-521.", truncate(name)))
		}
		return ecdsa.GenerateKey(c, rand.Reader)
	}
	return nil, errKey("Invalid key type.")
}

func decodeInt(field, s string) (*big.Int, error) {
	b, err := decodeBase64URL(s)
	if err != nil || len(b) == 0 {
		return nil, errKey(fmt.Sprintf("JSON Web Key member %s is missing or not base64url.", field))
	}
	return new(big.Int).SetBytes(b), nil
}

// importJWK turns an imported JSON Web Key into a private key. Key Vault
// imports key material with its private part (Keys - Import Key: "Imports
// an externally created key"); a public-only key is refused, as is
// anything that does not check out.
func importJWK(k jwk) (crypto.Signer, error) {
	switch baseKty(k.Kty) {
	case ktyRSA:
		if k.Crv != "" || k.X != "" || k.Y != "" || k.K != "" {
			return nil, errKey("The JSON Web Key has members of another key type.")
		}
		if k.D == "" || k.P == "" || k.Q == "" {
			return nil, errKey("The JSON Web Key must hold the private key (d, p and q).")
		}
		// Bound the work before any arithmetic: at most a 4096-bit modulus.
		for _, f := range []string{k.N, k.D, k.P, k.Q, k.DP, k.DQ, k.QI} {
			if len(f) > 700 {
				return nil, errKey("Invalid key size: RSA keys are 2048, 3072 or 4096 bits.")
			}
		}
		var ints [5]*big.Int
		for i, f := range [][2]string{{"n", k.N}, {"e", k.E}, {"d", k.D}, {"p", k.P}, {"q", k.Q}} {
			v, err := decodeInt(f[0], f[1])
			if err != nil {
				return nil, err
			}
			ints[i] = v
		}
		if !slices.Contains(rsaSizes, ints[0].BitLen()) {
			return nil, errKey(fmt.Sprintf("Invalid key size %d: RSA keys are 2048, 3072 or 4096 bits.", ints[0].BitLen()))
		}
		if !ints[1].IsInt64() || ints[1].Int64() < 3 || ints[1].Int64() > 1<<31-1 {
			return nil, errKey("Invalid public exponent.")
		}
		priv := &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: ints[0], E: int(ints[1].Int64())}, D: ints[2], Primes: []*big.Int{ints[3], ints[4]}}
		if err := priv.Validate(); err != nil {
			return nil, errKey("The RSA private key is not valid.")
		}
		// Round-trip through PKCS #8, which recomputes the CRT values
		// (dp, dq, qi given in the JWK are not trusted).
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return nil, errKey("The RSA private key is not valid.")
		}
		parsed, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			return nil, errKey("The RSA private key is not valid.")
		}
		return parsed.(*rsa.PrivateKey), nil
	case ktyEC:
		if k.N != "" || k.E != "" || k.P != "" || k.Q != "" || k.K != "" {
			return nil, errKey("The JSON Web Key has members of another key type.")
		}
		c, ok := curves[k.Crv]
		if !ok {
			return nil, errKey(fmt.Sprintf("Invalid curve %q: use P-256, P-384 or P-521.", truncate(k.Crv)))
		}
		if k.D == "" {
			return nil, errKey("The JSON Web Key must hold the private key (d).")
		}
		size := (c.Params().BitSize + 7) / 8
		d, errD := decodeBase64URL(k.D)
		x, errX := decodeBase64URL(k.X)
		y, errY := decodeBase64URL(k.Y)
		if errD != nil || errX != nil || errY != nil || len(d) != size || len(x) != size || len(y) != size {
			return nil, errKey(fmt.Sprintf("JSON Web Key members d, x and y must be %d bytes, base64url.", size))
		}
		priv, err := ecdsa.ParseRawPrivateKey(c, d)
		if err != nil {
			return nil, errKey("The EC private key is not valid.")
		}
		pub, err := priv.PublicKey.Bytes()
		if err != nil {
			return nil, errKey("The EC private key is not valid.")
		}
		want := append(append([]byte{4}, x...), y...)
		if subtle.ConstantTimeCompare(pub, want) != 1 {
			return nil, errKey("The EC public key (x, y) does not match the private key (d).")
		}
		return priv, nil
	case "":
		return nil, errKey("Property key.kty is required.")
	}
	return nil, errKey(fmt.Sprintf("The key type %q is not supported by this vault: use RSA or EC.", truncate(k.Kty)))
}

// signAlg is one signature algorithm (JsonWebKeySignatureAlgorithm).
type signAlg struct {
	hash crypto.Hash
	kty  string
	pss  bool
	crv  string // for ES*: the curve the algorithm requires
}

var signAlgs = map[string]signAlg{
	"RS256": {crypto.SHA256, ktyRSA, false, ""}, "RS384": {crypto.SHA384, ktyRSA, false, ""}, "RS512": {crypto.SHA512, ktyRSA, false, ""},
	"PS256": {crypto.SHA256, ktyRSA, true, ""}, "PS384": {crypto.SHA384, ktyRSA, true, ""}, "PS512": {crypto.SHA512, ktyRSA, true, ""},
	"ES256": {crypto.SHA256, ktyEC, false, "P-256"}, "ES384": {crypto.SHA384, ktyEC, false, "P-384"}, "ES512": {crypto.SHA512, ktyEC, false, "P-521"},
}

// checkSign finds alg for a key of kty (and curve crv) and checks that
// digest has the algorithm's length: Key Vault signs a digest, not a
// message (Keys - Sign: "value: the digest").
func checkSign(alg, kty, crv string, digest []byte) (signAlg, error) {
	a, ok := signAlgs[alg]
	if !ok {
		return a, errKey(fmt.Sprintf("Invalid algorithm %q.", truncate(alg)))
	}
	if a.kty != kty || (a.crv != "" && a.crv != crv) {
		return a, errKey(fmt.Sprintf("Algorithm %s is not valid for this key.", alg))
	}
	if len(digest) != a.hash.Size() {
		return a, errKey(fmt.Sprintf("Invalid digest length %d for algorithm %s: it must be %d bytes.", len(digest), alg, a.hash.Size()))
	}
	return a, nil
}

// sign signs digest. ES* signatures are r || s, each the curve's size
// (RFC 7518 §3.4), as Key Vault answers them.
func sign(priv crypto.Signer, a signAlg, digest []byte) ([]byte, error) {
	switch k := priv.(type) {
	case *rsa.PrivateKey:
		if a.pss {
			return rsa.SignPSS(rand.Reader, k, a.hash, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		}
		return rsa.SignPKCS1v15(rand.Reader, k, a.hash, digest)
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, k, digest)
		if err != nil {
			return nil, err
		}
		size := (k.Curve.Params().BitSize + 7) / 8
		out := make([]byte, 2*size)
		r.FillBytes(out[:size])
		s.FillBytes(out[size:])
		return out, nil
	}
	return nil, errors.New("vault: unsupported key")
}

// verify checks sig over digest with the public half of priv.
func verify(priv crypto.Signer, a signAlg, digest, sig []byte) bool {
	switch k := priv.(type) {
	case *rsa.PrivateKey:
		if a.pss {
			return rsa.VerifyPSS(&k.PublicKey, a.hash, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}) == nil
		}
		return rsa.VerifyPKCS1v15(&k.PublicKey, a.hash, digest, sig) == nil
	case *ecdsa.PrivateKey:
		size := (k.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*size {
			return false
		}
		r, s := new(big.Int).SetBytes(sig[:size]), new(big.Int).SetBytes(sig[size:])
		return ecdsa.Verify(&k.PublicKey, digest, r, s)
	}
	return false
}

// oaepHash is the hash of an encryption algorithm
// (JsonWebKeyEncryptionAlgorithm). RSA1_5 is refused: Key Vault lists it as
// "[Not recommended]" (about-keys-details), PKCS #1 v1.5 decryption is a
// padding oracle (Bleichenbacher), and a shared vault must not offer one
// to other tenants' principals. RSA-OAEP (SHA-1, RFC 7518 §4.3) and
// RSA-OAEP-256 are served.
func oaepHash(alg string) (func() hash.Hash, error) {
	switch alg {
	case "RSA-OAEP":
		return sha1.New, nil
	case "RSA-OAEP-256":
		return sha256.New, nil
	case "RSA1_5":
		return nil, errKey("Algorithm RSA1_5 is not supported by this vault: use RSA-OAEP-256 (Key Vault does not recommend RSA1_5).")
	}
	return nil, errKey(fmt.Sprintf("Invalid algorithm %q.", truncate(alg)))
}

// encrypt and decrypt are RSA-OAEP with the algorithm's hash (and MGF1 with
// the same hash). A wrong key or ciphertext is one opaque error.
func encrypt(priv crypto.Signer, alg string, plain []byte) ([]byte, error) {
	h, err := oaepHash(alg)
	if err != nil {
		return nil, err
	}
	k, ok := priv.(*rsa.PrivateKey)
	if !ok {
		return nil, errKey(fmt.Sprintf("Algorithm %s is not valid for this key.", alg))
	}
	if len(plain) > k.Size()-2*h().Size()-2 {
		return nil, errKey("The value is too long for the key and algorithm.")
	}
	return rsa.EncryptOAEP(h(), rand.Reader, &k.PublicKey, plain, nil)
}

func decrypt(priv crypto.Signer, alg string, ct []byte) ([]byte, error) {
	h, err := oaepHash(alg)
	if err != nil {
		return nil, err
	}
	k, ok := priv.(*rsa.PrivateKey)
	if !ok {
		return nil, errKey(fmt.Sprintf("Algorithm %s is not valid for this key.", alg))
	}
	out, err := rsa.DecryptOAEP(h(), nil, k, ct, nil)
	if err != nil {
		return nil, errKey("The value could not be decrypted with this key and algorithm.")
	}
	return out, nil
}

// marshalPrivate and parsePrivate are the private key's form under the
// seal: PKCS #8.
func marshalPrivate(priv crypto.Signer) ([]byte, error) { return x509.MarshalPKCS8PrivateKey(priv) }

func parsePrivate(der []byte) (crypto.Signer, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, err
	}
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return k, nil
	case *ecdsa.PrivateKey:
		return k, nil
	}
	return nil, errors.New("vault: unsupported stored key")
}

// curveOf is the JWK curve name of a public JWK ("" for RSA).
func curveOf(public []byte) string {
	var k jwk
	_ = json.Unmarshal(public, &k)
	return k.Crv
}
