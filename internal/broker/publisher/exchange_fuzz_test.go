package publisher

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// memSigner signs in memory: for the fuzz target only (the broker signs
// through Key Vault).
type memSigner struct{ k *rsa.PrivateKey }

func (m memSigner) SignDigest(_ context.Context, d []byte) ([]byte, string, error) {
	s, err := rsa.SignPKCS1v15(rand.Reader, m.k, crypto.SHA256, d)
	return s, thumbprint(&m.k.PublicKey), err
}

func (m memSigner) PublicKeys() []PublicKey {
	return []PublicKey{{KeyID: thumbprint(&m.k.PublicKey), Key: &m.k.PublicKey}}
}

type memStore struct {
	mu sync.Mutex
	m  map[string]*Installation
}

func (s *memStore) Get(_ context.Context, k string) (*Installation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[k], nil
}
func (s *memStore) Put(_ context.Context, in *Installation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[in.Key] = in
	return nil
}
func (s *memStore) List(context.Context) ([]*Installation, error) { return nil, nil }

// FuzzExchange drives the exchange endpoint with arbitrary bodies: a
// broker with one federated installation, the customer tenant's metadata
// served from memory. Every body is answered 200 (only for a token the
// customer's key signed for the installation's identity), 400 or 413,
// never a panic or a 5xx; a 200 carries an assertion of the broker.
func FuzzExchange(f *testing.F) {
	const (
		app    = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Solutions/applications/a"
		tenant = "c0ffee00-0000-4000-8000-000000000001"
		oid    = "0b1ec700-0000-4000-8000-000000000002"
	)
	// Fixed test keys: generating keys in every fuzz worker, instrumented,
	// takes longer than the fuzzing.
	cust, brokerKey := testKey(f, customerKeyPEM), testKey(f, brokerKeyPEM)
	iss := DefaultAuthorityHost + "/" + tenant + "/v2.0"
	meta := func(r *http.Request) (*http.Response, error) {
		var body any
		switch r.URL.String() {
		case iss + discoveryPath:
			body = map[string]any{"issuer": iss, "jwks_uri": DefaultAuthorityHost + "/" + tenant + "/discovery/v2.0/keys"}
		case DefaultAuthorityHost + "/" + tenant + "/discovery/v2.0/keys":
			body = map[string]any{"keys": []any{map[string]any{"kty": "RSA", "use": "sig", "kid": "k1", "n": b64(cust.N.Bytes()), "e": b64(big.NewInt(int64(cust.E)).Bytes())}}}
		default:
			return &http.Response{StatusCode: 404, Body: io.NopCloser(strings.NewReader("{}"))}, nil
		}
		raw, _ := json.Marshal(body)
		return &http.Response{StatusCode: 200, Body: io.NopCloser(bytes.NewReader(raw))}, nil
	}
	st := &memStore{m: map[string]*Installation{}}
	st.m[NormalizeID(app)] = &Installation{Key: NormalizeID(app), ApplicationID: app, Status: "registered", CredentialMode: ModeFederated,
		CustomerTenantID: tenant, IdentityObjectID: oid}
	b := &Broker{cfg: Config{State: st, AuthorityHost: DefaultAuthorityHost, Now: time.Now}, log: slog.New(slog.DiscardHandler),
		iss:    &issuer{url: "https://broker.example/oidc", path: "/oidc", signer: memSigner{brokerKey}, lifetime: time.Minute, now: time.Now},
		remote: &remoteKeys{do: meta, now: time.Now, issuers: map[string]*issuerKeys{}}}

	sign := func(claims map[string]any) string {
		h, _ := json.Marshal(map[string]any{"alg": "RS256", "kid": "k1", "typ": "JWT"})
		c, _ := json.Marshal(claims)
		in := b64(h) + "." + b64(c)
		d := sha256.Sum256([]byte(in))
		s, _ := rsa.SignPKCS1v15(rand.Reader, cust, crypto.SHA256, d[:])
		return in + "." + b64(s)
	}
	now := time.Now().Unix()
	good := sign(map[string]any{"iss": iss, "sub": oid, "oid": oid, "tid": tenant, "aud": TokenExchangeAppID, "exp": now + 3600, "nbf": now - 60})
	form := func(tok string) []byte {
		return []byte(url.Values{"grant_type": {grantTokenExchange}, "subject_token": {tok}, "subject_token_type": {tokenTypeJWT}, "installation": {app}}.Encode())
	}
	f.Add(form(good))
	f.Add(form(sign(map[string]any{"iss": iss, "sub": "someone", "tid": tenant, "aud": []string{TokenExchangeAudience}, "exp": now + 3600})))
	f.Add(form(sign(map[string]any{"iss": iss, "sub": oid, "tid": tenant, "aud": "x", "exp": "soon"})))
	f.Add(form("a.b.c"))
	f.Add([]byte("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token=x&subject_token=y"))
	f.Add([]byte("%zz"))
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "https://broker.example/oidc/exchange", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		b.serveExchange(rec, req)
		switch rec.Code {
		case 200:
			var out struct {
				AccessToken string `json:"access_token"`
			}
			if json.Unmarshal(rec.Body.Bytes(), &out) != nil {
				t.Fatalf("200 without JSON: %s", rec.Body)
			}
			h, c, _, _, err := parseJWS(out.AccessToken)
			if err != nil || h.Kid != thumbprint(&brokerKey.PublicKey) || c.Iss != b.iss.url || c.Sub != InstallationSubject(app) {
				t.Fatalf("200 with %s", rec.Body)
			}
			r, err := ParseExchange(body)
			if err != nil {
				t.Fatal("200 for a body ParseExchange refuses")
			}
			if _, err := b.remote.verify(context.Background(), r.SubjectToken, iss); err != nil {
				t.Fatalf("200 for a token that does not verify: %v", err)
			}
		case 400, 413:
		default:
			t.Fatalf("answered %d: %s", rec.Code, rec.Body)
		}
	})
}

func testKey(t testing.TB, p string) *rsa.PrivateKey {
	t.Helper()
	blk, _ := pem.Decode([]byte(p))
	k, err := x509.ParsePKCS1PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Test-only keys (not used anywhere else).
const customerKeyPEM = `-----BEGIN RSA PRIVATE KEY-----
MIIEpAIBAAKCAQEAodR6+7mJLLAvrxvGvmMF9a3v5Wh35TR55ul7KY1HFZXfXraa
Qw7+pTsLqkEsdBiI9FYHXC09TPc2k57zxF72SqBZVKUL7u4gxPz6sdxz6ushLt4u
T7kjzCNJe+PVyjAI6UW/nqFo4VQwTG1nVrGqJxiOa/7KhiOs/o2ZVDmCIQUtG62B
2ZJ2Y2TnzFepMPp9sSk7eiThF6wgQspwdU+4jF88Qs/wbL9TgMfWDhzLGR0NImu8
iCnN1chliGXm+BirRx7+0RIaptnhbNJOiAv0Os49i2HUGukBikYV9muXMjX7+xbG
UKiuA+7MLbPJcYELUYcvUeDbytN+XMJ81IvdGwIDAQABAoIBAC9jD0Ifwa2+x6/A
c/FzAJ9AuBMWhKkutRVrP//aWTrWYIqU8NX7EZDjmdZYcEJsnsnhWRViP+WGLEqM
zHevkPIoQxA4piZoP1s/cs9bLOxYvqZBNBFvNq7DlHR9MjCa4TkhjetO+22j3+K5
VH2714XMOIQiHz6pOrJtVz0k+9hb+qPmkqdnxFN1MGyx2qYbt/e6+yl5Gty1Ph7/
ey9uu5PdG8bfYZmdpZTAxA7NFzeSoPFB7pxPhdaTbUzRYX3CwdTQurBwFTU3a2s5
D2d1cj5e/KNiF/vHngzsb6YLS7kbw1HOVCQBFsoCVCP8NYTyT6d5gGDaLIRqwjI4
mwJ5kH0CgYEA2wksfzBGQ0NFvlREkdYfVOssyNod7sWYn89gJhz45q9uHjn6tIK/
92O+naIlgjIG200pMRg+RRGsupynOnztoDvyvZh/I4J2hmnCFbIzFX4xDKDY722X
bBUFOnNmMgH3CCuJcYmMWgziviLam5MzbsGOGX94qT7oaefvp/+YjY8CgYEAvSPj
w+P7KBICBAuftaWl8EeJnnldTFPgLAaeuHemKK2VJmKztFjV8YCDkfOqGYRd1967
o8JiwFGicweraCHQXtFFI+5SBJrU6O8BzngYmVF1Oy7WuhWVDzlxpbZM7wtr1DG2
Rap1yBucOxm5cYNakDSvjQJuGiPStoe3LmiOSbUCgYEAzCgP1nkLdJRWhGGNDBV1
XLRbKNbMwYphiMtExiGJCZOIYxoNiIS6Iv9QYyMILQMuCugvtbfwCna/9awf3s8k
uY5G4dsq3dEzYnNe2NQg8y6Mz0V5Dimq0q4BEosPPRtBwta5pB7dt+18xlY8Rnf8
n4Y/SZrbv3yIKnZplcAR1BcCgYEAnccooyq1QvHyuIkxy4fJay1iAc7gI2H8qP1E
vkEhXOGggArqOdG5duJr3v7SsMKYvhFRmgP3+NKgnzCQric2+UG9WYHe7XRzk3R9
n0zTyGIJVzt1aHnEhJS41zHB788pPjPSBz9xTWKq6ypEZgrbK1yn7QtP6YJkrlt8
VbxmpdkCgYA4X45TvAY2xqJxpdOFr25W+ymXGnXHF1DvrI82MICsgBjdpTBWmxRV
a2BfrZY3t8mb8gm4bgPtpMODogFJUE6kcRAmTTOYKv2Y6IAGcJXhhDMgaFXY7J2z
MLnTXsu09evftVGk1I/3+jLcO5jlFKdKvGmyl4NXGW3LlPiQYhWjJA==
-----END RSA PRIVATE KEY-----
`

const brokerKeyPEM = `-----BEGIN RSA PRIVATE KEY-----
MIIEowIBAAKCAQEAtjgfSsR3CQ03c8yBdhSEsN6mNoyr2gBRkZ/fGvHoQPxgSl7q
RIsuRQBkqHbTgbe0lp6u/Kj0Zklz4nX7X+OmjyJ3XdOBKTJRy3bYFJYfq5FOh8Co
ZBw8rfmI3Utp2b43MieF/QqkPQHbhuWPxQWq6pcP0O5L2jAg/VQfMph2pyVWkvis
GKiZ35hkeiYY4ALLKMXg9aQ3iDXXva5+NRi7rwz+NBKUBEjlkSdmOsurVtLgS2On
vO4WsRl5EGx026mAra1ZylSxGv/IvyUz42/6bggyF+4kl6+fpoIIxahuUu/ZkEFs
ClQBHN8y7HTt80MshaWQwwEiRTtuwDMZD9wxSQIDAQABAoIBADslwnqJhT4J7TsI
YemLRXsH+pnwVYQg4FlNtKTRaxtVEIhzgMWZC/7X3tSUJZmQoOzXO2PGD/b31sbm
lx8MDS+e93IcSmut6sEJpaAhDsypEP2dusssI0Ixoox6gzRruwzrqWF2x9MJvFFw
SJeifFVDjZ27DCIZx0uTt8C7nqAoQVbzLLvIh2uKdx28jsBdXBnOpjXcNY/nv9Ny
4uR0TLHmMWsJ63l57vmcHs43/iqKRCO5Cs0pcwFC+Qo7gC7s7QhcgjBVp5bcf9/L
0v8erVdMbSpwD0w24nAu6L23lTe3zryRPo2oZKeC66wa6jZNlYBx2KpkqCTgQtL4
wlfH1vUCgYEA2WBcQlQR9y4hsXouzOeRviRLRlZqQZA5QSapFQxytEQ70iIK0kGl
DyiyEzW5MquCwRSZbHtc4e7q+z35zKvrvprv6q0TA/WPL0fFUD5/SszO+bjfnsZG
NkcMlLrD0udRt8ylfMtDL2WYOnnPva9tTbNAxS5EpqyzIxpvA7TN5AcCgYEA1piX
3jvaxQ/DhD7GioAQVvoGPBOUFB/mWkLMY7D0q2ooE//kFPJi2StZK/QIzavTQroB
wyFDzRnQTzxggTDrVNxjRLhjoBIyRDCIqby5LfaerG3eL2kM6QFJzofsNqG48DD/
q9IiX4Obsy376fvNWkdWFpw92q6uo7jI5KvpDC8CgYAAxCUvGqrBi0kVHhAiKsLJ
v8kAI3fWaVK6Vw+LgnK5DfCEChitqwuQ5RzTkoHnmtEoKxFrX3fxV+0+G3bQ8N4w
2szzr858WhY6HW+lm8LJGbW1DaDEJ4DB2jhCIfJkwOn50t/Wc8T12s7RjfJcgczJ
1FLrHwGg8MTk38f6ZF3BawKBgQDCySl4mD3gh4mB3XVbvBiYykOkfmT3y2jM3zsk
9jdv7GDKnogKF2VwGG/NfKoM/f054Rq+YtBnOBokAfra6WuC0LTuaKxNXJbx3FgA
MgSoWuX2P5fg0urcCMZUyH25rRvwMZmw/YEjz5MhlgjGf0ALxRq4VUOz3sE4bP80
yXI1EwKBgCrbSKr7pHL4Nipvy6s9N3qq6grnTJyxHFIBLG6MEnxocEFKPWETPwn/
efkv/sLCjPF53KsHA6rkJkPaDbr4MCWwr/UfH5eNZNra+lGcJMyzKHlB/d/Q0/g9
1QOkwK10tZb3/llFWoeYPA+9XLvsZkiDyJ/pRawOe8+vgSW5vJuC
-----END RSA PRIVATE KEY-----
`
