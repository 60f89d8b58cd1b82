package server_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/server"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/testenv"
	"github.com/tenantbridge/tenantbridge/internal/vault"
)

// keysWorld is a server with a tenant, a vault and an azkeys client of the
// tenant's administrator.
type keysWorld struct {
	r       *running
	tc      tenantCreated
	v       store.Vault
	cred    azcore.TokenCredential
	client  *azkeys.Client
	armCred azcore.TokenCredential
}

func newKeysWorld(t *testing.T, purgeProtection bool) *keysWorld {
	t.Helper()
	w := &keysWorld{r: start(t, server.Config{})}
	w.tc = w.r.createTenant(t, "keyco")
	var err error
	w.v, err = w.r.srv.Vaults().CreateVault(context.Background(), vault.VaultSpec{TenantID: w.tc.TenantID, Name: "cmk-kv", ResourceGroup: "rg",
		EnablePurgeProtection: purgeProtection})
	if err != nil {
		t.Fatal(err)
	}
	w.cred = w.credential(t, w.tc.TenantID, w.tc.Admin.ClientID, w.tc.Admin.ClientSecret)
	w.armCred = w.cred
	w.client = w.keysClient(t, w.cred)
	return w
}

func (w *keysWorld) credential(t *testing.T, tenant, clientID, secret string) azcore.TokenCredential {
	t.Helper()
	cred, err := azidentity.NewClientSecretCredential(tenant, clientID, secret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: policy.ClientOptions{Transport: w.r.client()}})
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

func (w *keysWorld) keysClient(t *testing.T, cred azcore.TokenCredential) *azkeys.Client {
	t.Helper()
	c, err := azkeys.NewClient("https://cmk-kv.vault.azure.net", cred, &azkeys.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: w.r.client()}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// arm calls Resource Manager as the tenant's administrator and returns the
// status.
func (w *keysWorld) arm(t *testing.T, method, path, body string) int {
	t.Helper()
	status, raw := armCall(t, w.r, w.armCred, method, path+"?api-version="+testenv.ARMAPIVersion(path), body)
	if status >= 300 {
		t.Logf("%s %s: %d %s", method, path, status, raw)
	}
	return status
}

// grant assigns role to principal at scope through Resource Manager, as the
// vault's administrator would; the assignment's path is returned.
func (w *keysWorld) grant(t *testing.T, scope, role, principal, id string) string {
	t.Helper()
	path := scope + "/providers/Microsoft.Authorization/roleAssignments/" + id
	status := w.arm(t, "PUT", path, `{"properties":{"roleDefinitionId":"/subscriptions/`+w.tc.SubscriptionID+
		`/providers/Microsoft.Authorization/roleDefinitions/`+role+`","principalId":"`+principal+`"}}`)
	if status != http.StatusCreated && status != http.StatusOK {
		t.Fatalf("role assignment at %s: %d", scope, status)
	}
	return path
}

func wantStatus(t *testing.T, what string, err error, status int, code string) {
	t.Helper()
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != status || (code != "" && re.ErrorCode != code) {
		t.Fatalf("%s: %v, want %d %s", what, err, status, code)
	}
}

func digestOf(h crypto.Hash, msg string) []byte {
	d := h.New()
	d.Write([]byte(msg))
	return d.Sum(nil)
}

// Every operation of the keys data plane with the real azkeys client, as
// the vault's administrator holding Key Vault Crypto Officer.
func TestAzkeysOperations(t *testing.T) {
	w := newKeysWorld(t, false)
	ctx := context.Background()
	c := w.client

	// Owner of the subscription has no data actions: refused until a data
	// role is granted, as in Azure.
	_, err := c.CreateKey(ctx, "signer", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSA)}, nil)
	wantStatus(t, "create without a data role", err, http.StatusForbidden, "Forbidden")
	w.grant(t, w.v.ResourceID, rbac.RoleKeyVaultCryptoOfficer, w.tc.Admin.ServicePrincipalID, "0b1c2d3e-4f50-4617-8a9b-0c1d2e3f4a5b")

	// Create: RSA 2048/3072/4096, EC P-256/384/521; HSM types refused on a
	// Standard vault; bad sizes and curves refused.
	for _, size := range []int32{2048, 3072, 4096} {
		k, err := c.CreateKey(ctx, fmt.Sprintf("rsa-%d", size), azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSA), KeySize: to.Ptr(size)}, nil)
		if err != nil {
			t.Fatalf("create RSA %d: %v", size, err)
		}
		if got := new(big.Int).SetBytes(k.Key.N).BitLen(); got != int(size) || k.Key.D != nil || k.Key.P != nil || k.Key.Q != nil || k.Key.DP != nil || k.Key.DQ != nil || k.Key.QI != nil {
			t.Fatalf("RSA %d: modulus %d bits, private parts %v", size, got, k.Key.D != nil)
		}
		if len(k.Key.KeyOps) != 6 || k.Attributes == nil || !*k.Attributes.Enabled {
			t.Fatalf("RSA %d defaults: %+v", size, k.Key.KeyOps)
		}
	}
	for _, crv := range []azkeys.CurveName{azkeys.CurveNameP256, azkeys.CurveNameP384, azkeys.CurveNameP521} {
		k, err := c.CreateKey(ctx, "ec-"+strings.ToLower(string(crv)), azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeEC), Curve: to.Ptr(crv)}, nil)
		if err != nil || *k.Key.Crv != crv || k.Key.D != nil || len(k.Key.X) == 0 {
			t.Fatalf("create EC %s: %v", crv, err)
		}
	}
	_, err = c.CreateKey(ctx, "hsm", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSAHSM)}, nil)
	wantStatus(t, "RSA-HSM in a Standard vault", err, http.StatusBadRequest, "BadParameter")
	_, err = c.CreateKey(ctx, "small", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSA), KeySize: to.Ptr[int32](1024)}, nil)
	wantStatus(t, "RSA 1024", err, http.StatusBadRequest, "BadParameter")
	_, err = c.CreateKey(ctx, "k256", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeEC), Curve: to.Ptr(azkeys.CurveNameP256K)}, nil)
	wantStatus(t, "P-256K", err, http.StatusBadRequest, "BadParameter")
	_, err = c.CreateKey(ctx, "ecwrap", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeEC), KeyOps: []*azkeys.KeyOperation{to.Ptr(azkeys.KeyOperationWrapKey)}}, nil)
	wantStatus(t, "EC key with wrapKey", err, http.StatusBadRequest, "BadParameter")

	// Sign with the vault, verify with the vault and locally.
	rsaKey, err := c.GetKey(ctx, "rsa-2048", "", nil)
	if err != nil || rsaKey.Key.D != nil {
		t.Fatalf("get: %v", err)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(rsaKey.Key.N), E: int(new(big.Int).SetBytes(rsaKey.Key.E).Int64())}
	for _, tc := range []struct {
		alg azkeys.SignatureAlgorithm
		h   crypto.Hash
		pss bool
	}{{"RS256", crypto.SHA256, false}, {"RS384", crypto.SHA384, false}, {"RS512", crypto.SHA512, false},
		{"PS256", crypto.SHA256, true}, {"PS384", crypto.SHA384, true}, {"PS512", crypto.SHA512, true}} {
		d := digestOf(tc.h, "hello "+string(tc.alg))
		sig, err := c.Sign(ctx, "rsa-2048", "", azkeys.SignParameters{Algorithm: to.Ptr(tc.alg), Value: d}, nil)
		if err != nil {
			t.Fatalf("sign %s: %v", tc.alg, err)
		}
		if tc.pss {
			err = rsa.VerifyPSS(pub, tc.h, d, sig.Result, nil)
		} else {
			err = rsa.VerifyPKCS1v15(pub, tc.h, d, sig.Result)
		}
		if err != nil {
			t.Fatalf("%s signature does not verify locally: %v", tc.alg, err)
		}
		ok, err := c.Verify(ctx, "rsa-2048", "", azkeys.VerifyParameters{Algorithm: to.Ptr(tc.alg), Digest: d, Signature: sig.Result}, nil)
		if err != nil || !*ok.Value {
			t.Fatalf("verify %s: %v", tc.alg, err)
		}
		sig.Result[0] ^= 1
		ok, err = c.Verify(ctx, "rsa-2048", "", azkeys.VerifyParameters{Algorithm: to.Ptr(tc.alg), Digest: d, Signature: sig.Result}, nil)
		if err != nil || *ok.Value {
			t.Fatalf("verify a tampered %s signature: %v %v", tc.alg, ok.Value, err)
		}
	}
	_, err = c.Sign(ctx, "rsa-2048", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmRS256), Value: []byte("not a digest")}, nil)
	wantStatus(t, "sign a message of the wrong length", err, http.StatusBadRequest, "BadParameter")
	for _, tc := range []struct {
		name string
		alg  azkeys.SignatureAlgorithm
		h    crypto.Hash
		c    elliptic.Curve
	}{{"ec-p-256", "ES256", crypto.SHA256, elliptic.P256()}, {"ec-p-384", "ES384", crypto.SHA384, elliptic.P384()}, {"ec-p-521", "ES512", crypto.SHA512, elliptic.P521()}} {
		k, err := c.GetKey(ctx, tc.name, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		d := digestOf(tc.h, "hello")
		sig, err := c.Sign(ctx, tc.name, k.Key.KID.Version(), azkeys.SignParameters{Algorithm: to.Ptr(tc.alg), Value: d}, nil)
		if err != nil {
			t.Fatalf("sign %s: %v", tc.alg, err)
		}
		n := len(sig.Result) / 2
		epub, err := ecdsa.ParseUncompressedPublicKey(tc.c, append(append([]byte{4}, k.Key.X...), k.Key.Y...))
		if err != nil {
			t.Fatalf("%s public key: %v", tc.name, err)
		}
		if !ecdsa.Verify(epub, d, new(big.Int).SetBytes(sig.Result[:n]), new(big.Int).SetBytes(sig.Result[n:])) {
			t.Fatalf("%s signature does not verify locally", tc.alg)
		}
		ok, err := c.Verify(ctx, tc.name, "", azkeys.VerifyParameters{Algorithm: to.Ptr(tc.alg), Digest: d, Signature: sig.Result}, nil)
		if err != nil || !*ok.Value {
			t.Fatalf("verify %s: %v", tc.alg, err)
		}
	}
	_, err = c.Sign(ctx, "ec-p-256", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmES384), Value: digestOf(crypto.SHA384, "x")}, nil)
	wantStatus(t, "ES384 with a P-256 key", err, http.StatusBadRequest, "BadParameter")

	// Wrap/unwrap and encrypt/decrypt: RSA-OAEP and RSA-OAEP-256; RSA1_5
	// refused; local encryption with the public key decrypts in the vault.
	cek := []byte("0123456789abcdef0123456789abcdef")
	for _, alg := range []azkeys.EncryptionAlgorithm{azkeys.EncryptionAlgorithmRSAOAEP, azkeys.EncryptionAlgorithmRSAOAEP256} {
		wr, err := c.WrapKey(ctx, "rsa-3072", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(alg), Value: cek}, nil)
		if err != nil {
			t.Fatalf("wrap %s: %v", alg, err)
		}
		un, err := c.UnwrapKey(ctx, "rsa-3072", wr.KID.Version(), azkeys.KeyOperationParameters{Algorithm: to.Ptr(alg), Value: wr.Result}, nil)
		if err != nil || string(un.Result) != string(cek) {
			t.Fatalf("unwrap %s: %v", alg, err)
		}
		enc, err := c.Encrypt(ctx, "rsa-3072", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(alg), Value: []byte("plain")}, nil)
		if err != nil {
			t.Fatalf("encrypt %s: %v", alg, err)
		}
		dec, err := c.Decrypt(ctx, "rsa-3072", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(alg), Value: enc.Result}, nil)
		if err != nil || string(dec.Result) != "plain" {
			t.Fatalf("decrypt %s: %v", alg, err)
		}
	}
	k3072, _ := c.GetKey(ctx, "rsa-3072", "", nil)
	local, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &rsa.PublicKey{N: new(big.Int).SetBytes(k3072.Key.N), E: 65537}, cek, nil)
	if err != nil {
		t.Fatal(err)
	}
	un, err := c.UnwrapKey(ctx, "rsa-3072", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: local}, nil)
	if err != nil || string(un.Result) != string(cek) {
		t.Fatalf("unwrap of a locally wrapped key: %v", err)
	}
	_, err = c.WrapKey(ctx, "rsa-3072", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSA15), Value: cek}, nil)
	wantStatus(t, "RSA1_5", err, http.StatusBadRequest, "BadParameter")
	_, err = c.UnwrapKey(ctx, "rsa-3072", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: []byte("garbage")}, nil)
	wantStatus(t, "unwrap garbage", err, http.StatusBadRequest, "BadParameter")
	_, err = c.WrapKey(ctx, "ec-p-256", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: cek}, nil)
	wantStatus(t, "wrap with an EC key", err, http.StatusForbidden, "Forbidden")
	_, err = c.Sign(ctx, "nosuch", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmRS256), Value: digestOf(crypto.SHA256, "x")}, nil)
	wantStatus(t, "sign with a missing key", err, http.StatusNotFound, "KeyNotFound")

	// Update: key_ops restrict at once; disabled refuses at once; nbf/exp.
	_, err = c.UpdateKey(ctx, "rsa-2048", "", azkeys.UpdateKeyParameters{KeyOps: []*azkeys.KeyOperation{to.Ptr(azkeys.KeyOperationVerify)},
		Tags: map[string]*string{"owner": to.Ptr("payments")}}, nil)
	if err != nil {
		t.Fatalf("update key_ops: %v", err)
	}
	_, err = c.Sign(ctx, "rsa-2048", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmRS256), Value: digestOf(crypto.SHA256, "x")}, nil)
	wantStatus(t, "sign without sign in key_ops", err, http.StatusForbidden, "Forbidden")
	if !strings.Contains(err.Error(), "Operation sign is not permitted on this key") {
		t.Errorf("key_ops refusal: %v", err)
	}
	got, _ := c.GetKey(ctx, "rsa-2048", "", nil)
	if len(got.Key.KeyOps) != 1 || *got.Tags["owner"] != "payments" {
		t.Fatalf("after update: %+v %v", got.Key.KeyOps, got.Tags)
	}
	_, err = c.UpdateKey(ctx, "rsa-3072", "", azkeys.UpdateKeyParameters{KeyAttributes: &azkeys.KeyAttributes{Expires: to.Ptr(time.Now().Add(-time.Minute))}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.WrapKey(ctx, "rsa-3072", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: cek}, nil)
	wantStatus(t, "wrap with an expired key", err, http.StatusForbidden, "Forbidden")
	_, err = c.UpdateKey(ctx, "rsa-3072", "", azkeys.UpdateKeyParameters{KeyAttributes: &azkeys.KeyAttributes{Enabled: to.Ptr(false)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.GetKey(ctx, "rsa-3072", "", nil)
	wantStatus(t, "get a disabled key", err, http.StatusForbidden, "Forbidden")

	// Import: RSA and EC with private parts; public-only refused; the
	// answer and every get carry the public parts only.
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	imp, err := c.ImportKey(ctx, "imported-rsa", azkeys.ImportKeyParameters{Key: &azkeys.JSONWebKey{Kty: to.Ptr(azkeys.KeyTypeRSA),
		N: rk.N.Bytes(), E: big.NewInt(int64(rk.E)).Bytes(), D: rk.D.Bytes(), P: rk.Primes[0].Bytes(), Q: rk.Primes[1].Bytes(),
		DP: rk.Precomputed.Dp.Bytes(), DQ: rk.Precomputed.Dq.Bytes(), QI: rk.Precomputed.Qinv.Bytes()}}, nil)
	if err != nil || imp.Key.D != nil || new(big.Int).SetBytes(imp.Key.N).Cmp(rk.N) != 0 {
		t.Fatalf("import RSA: %v", err)
	}
	d := digestOf(crypto.SHA512, "imported")
	sig, err := c.Sign(ctx, "imported-rsa", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmRS512), Value: d}, nil)
	if err != nil || rsa.VerifyPKCS1v15(&rk.PublicKey, crypto.SHA512, d, sig.Result) != nil {
		t.Fatalf("sign with the imported key: %v", err)
	}
	ek, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	ekRaw, _ := ek.Bytes()
	ekPub, _ := ek.PublicKey.Bytes()
	_, err = c.ImportKey(ctx, "imported-ec", azkeys.ImportKeyParameters{Key: &azkeys.JSONWebKey{Kty: to.Ptr(azkeys.KeyTypeEC), Crv: to.Ptr(azkeys.CurveNameP384),
		D: ekRaw, X: ekPub[1:49], Y: ekPub[49:]}}, nil)
	if err != nil {
		t.Fatalf("import EC: %v", err)
	}
	_, err = c.ImportKey(ctx, "public-only", azkeys.ImportKeyParameters{Key: &azkeys.JSONWebKey{Kty: to.Ptr(azkeys.KeyTypeRSA), N: rk.N.Bytes(), E: []byte{1, 0, 1}}}, nil)
	wantStatus(t, "import a public key only", err, http.StatusBadRequest, "BadParameter")
	_, err = c.ImportKey(ctx, "mismatch", azkeys.ImportKeyParameters{Key: &azkeys.JSONWebKey{Kty: to.Ptr(azkeys.KeyTypeEC), Crv: to.Ptr(azkeys.CurveNameP384),
		D: ekRaw, X: ekPub[49:], Y: ekPub[1:49]}}, nil)
	wantStatus(t, "import an EC key whose x, y do not match d", err, http.StatusBadRequest, "BadParameter")

	// Rotate makes a new version like the last; versions list both; get
	// by version.
	rot, err := c.RotateKey(ctx, "ec-p-384", nil)
	if err != nil || *rot.Key.Crv != azkeys.CurveNameP384 {
		t.Fatalf("rotate: %v", err)
	}
	var versions []string
	for pager := c.NewListKeyPropertiesVersionsPager("ec-p-384", nil); pager.More(); {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Value {
			versions = append(versions, it.KID.Version())
		}
	}
	if len(versions) != 2 {
		t.Fatalf("versions after rotate: %v", versions)
	}
	for _, v := range versions {
		if k, err := c.GetKey(ctx, "ec-p-384", v, nil); err != nil || k.Key.KID.Version() != v {
			t.Fatalf("get version %s: %v", v, err)
		}
	}

	// List with paging: more keys than a page holds.
	for i := range 20 {
		if _, err := c.CreateKey(ctx, fmt.Sprintf("page-%02d", i), azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeEC)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	names, pages := map[string]bool{}, 0
	for pager := c.NewListKeyPropertiesPager(nil); pager.More(); {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, it := range page.Value {
			names[it.KID.Name()] = true
		}
	}
	if pages < 2 || len(names) != 28 {
		t.Fatalf("list: %d keys in %d pages", len(names), pages)
	}

	// Backup, delete (soft), deleted get/list, recover, delete, purge,
	// restore from the backup.
	bk, err := c.BackupKey(ctx, "imported-rsa", nil)
	if err != nil || len(bk.Value) == 0 || strings.Contains(string(bk.Value), "\"d\"") {
		t.Fatalf("backup: %v", err)
	}
	del, err := c.DeleteKey(ctx, "imported-rsa", nil)
	if err != nil || del.RecoveryID == nil || del.DeletedDate == nil || del.Key.D != nil {
		t.Fatalf("delete: %v", err)
	}
	_, err = c.GetKey(ctx, "imported-rsa", "", nil)
	wantStatus(t, "get a deleted key", err, http.StatusNotFound, "KeyNotFound")
	if dk, err := c.GetDeletedKey(ctx, "imported-rsa", nil); err != nil || dk.ScheduledPurgeDate == nil {
		t.Fatalf("get deleted: %v", err)
	}
	deleted := 0
	for pager := c.NewListDeletedKeyPropertiesPager(nil); pager.More(); {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		deleted += len(page.Value)
	}
	if deleted != 1 {
		t.Fatalf("deleted keys listed: %d", deleted)
	}
	_, err = c.CreateKey(ctx, "imported-rsa", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSA)}, nil)
	wantStatus(t, "create over a deleted key", err, http.StatusConflict, "Conflict")
	if _, err := c.RecoverDeletedKey(ctx, "imported-rsa", nil); err != nil {
		t.Fatalf("recover: %v", err)
	}
	if _, err := c.Sign(ctx, "imported-rsa", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmPS256), Value: digestOf(crypto.SHA256, "x")}, nil); err != nil {
		t.Fatalf("sign after recover: %v", err)
	}
	if _, err := c.DeleteKey(ctx, "imported-rsa", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PurgeDeletedKey(ctx, "imported-rsa", nil); err != nil {
		t.Fatalf("purge: %v", err)
	}
	_, err = c.GetDeletedKey(ctx, "imported-rsa", nil)
	wantStatus(t, "get a purged key", err, http.StatusNotFound, "KeyNotFound")
	res, err := c.RestoreKey(ctx, azkeys.RestoreKeyParameters{KeyBackup: bk.Value}, nil)
	if err != nil || new(big.Int).SetBytes(res.Key.N).Cmp(rk.N) != 0 {
		t.Fatalf("restore: %v", err)
	}
	sig, err = c.Sign(ctx, "imported-rsa", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmRS512), Value: d}, nil)
	if err != nil || rsa.VerifyPKCS1v15(&rk.PublicKey, crypto.SHA512, d, sig.Result) != nil {
		t.Fatalf("sign after restore: %v", err)
	}
	_, err = c.RestoreKey(ctx, azkeys.RestoreKeyParameters{KeyBackup: bk.Value}, nil)
	wantStatus(t, "restore over an existing key", err, http.StatusConflict, "Conflict")
	bad := append([]byte{}, bk.Value...)
	bad[len(bad)/2] ^= 1
	_, err = c.RestoreKey(ctx, azkeys.RestoreKeyParameters{KeyBackup: bad}, nil)
	wantStatus(t, "restore a tampered blob", err, http.StatusBadRequest, "BadParameter")

	// A backup does not restore into another tenant's vault.
	other := w.r.createTenant(t, "elsewhere")
	if _, err := w.r.srv.Vaults().CreateVault(ctx, vault.VaultSpec{TenantID: other.TenantID, Name: "other-kv", ResourceGroup: "rg"}); err != nil {
		t.Fatal(err)
	}
	ocred := w.credential(t, other.TenantID, other.Admin.ClientID, other.Admin.ClientSecret)
	ow := &keysWorld{r: w.r, tc: other, armCred: ocred}
	ow.grant(t, "/subscriptions/"+other.SubscriptionID+"/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/other-kv",
		rbac.RoleKeyVaultCryptoOfficer, other.Admin.ServicePrincipalID, "1c2d3e4f-5a6b-4718-9c0d-1e2f3a4b5c6d")
	oc, _ := azkeys.NewClient("https://other-kv.vault.azure.net", ocred, &azkeys.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: w.r.client()}})
	_, err = oc.RestoreKey(ctx, azkeys.RestoreKeyParameters{KeyBackup: bk.Value}, nil)
	wantStatus(t, "restore into another tenant's vault", err, http.StatusBadRequest, "BadParameter")

	// Every operation is audited, without key material.
	recs, err := w.r.srv.Store().ListAudit(ctx, store.AuditQuery{TenantID: w.tc.TenantID})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, rec := range recs {
		if strings.HasPrefix(rec.Action, "key.") {
			seen[rec.Action+" "+rec.Result] = true
			if rec.Actor == "" || rec.TargetTenant != w.tc.TenantID || !strings.HasPrefix(rec.Target, "cmk-kv") {
				t.Errorf("audit record %+v", rec)
			}
		}
	}
	for _, want := range []string{"key.create success", "key.create ForbiddenByRbac", "key.sign success", "key.verify success", "key.wrapKey success",
		"key.unwrapKey success", "key.encrypt success", "key.decrypt success", "key.import success", "key.get success", "key.update success",
		"key.delete success", "key.recover success", "key.purge success", "key.backup success", "key.restore success", "key.rotate success",
		"key.list success", "key.versions success", "key.listDeleted success", "key.getDeleted success", "key.sign KeyOperationForbidden",
		"key.get KeyDisabled", "key.wrapKey KeyExpired", "key.wrapKey BadParameter"} {
		if !seen[want] {
			t.Errorf("no audit record %q", want)
		}
	}
}

// Purge protection, as the vault says: a deleted key cannot be purged.
func TestAzkeysPurgeProtection(t *testing.T) {
	w := newKeysWorld(t, true)
	ctx := context.Background()
	w.grant(t, w.v.ResourceID, rbac.RoleKeyVaultCryptoOfficer, w.tc.Admin.ServicePrincipalID, "2d3e4f5a-6b7c-4829-8d0e-1f2a3b4c5d6e")
	if _, err := w.client.CreateKey(ctx, "kept", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeEC)}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := w.client.DeleteKey(ctx, "kept", nil); err != nil {
		t.Fatal(err)
	}
	_, err := w.client.PurgeDeletedKey(ctx, "kept", nil)
	wantStatus(t, "purge under purge protection", err, http.StatusForbidden, "Forbidden")
}

// Seed 002's customer-managed key: the provider's multi-tenant app,
// provisioned in the customer's tenant and granted Key Vault Crypto
// Service Encryption User on one key, wraps and unwraps with it; it cannot
// use another key of the vault, nor sign; once the customer deletes the
// role assignment, or disables the key, it is refused at once.
func TestAzkeysCrossTenantCustomerManagedKey(t *testing.T) {
	w := newKeysWorld(t, false)
	ctx := context.Background()
	w.grant(t, w.v.ResourceID, rbac.RoleKeyVaultCryptoOfficer, w.tc.Admin.ServicePrincipalID, "3e4f5a6b-7c8d-493a-9e0f-2a3b4c5d6e7f")
	for _, name := range []string{"provider-cmk", "customer-only"} {
		if _, err := w.client.CreateKey(ctx, name, azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSA)}, nil); err != nil {
			t.Fatal(err)
		}
	}

	provider := w.r.createTenant(t, "provider")
	dir := w.r.srv.Directory()
	app, err := dir.CreateApplication(ctx, provider.TenantID, directory.Application{DisplayName: "provider cmk", SignInAudience: directory.AudienceMultipleOrgs})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dir.CreateServicePrincipal(ctx, provider.TenantID, app.AppID); err != nil {
		t.Fatal(err)
	}
	secret, err := dir.AddApplicationPassword(ctx, provider.TenantID, app.ID, "cmk", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	// Provisioned in the customer's tenant, as admin consent would.
	sp, err := dir.CreateServicePrincipal(ctx, w.tc.TenantID, app.AppID)
	if err != nil {
		t.Fatal(err)
	}
	pc := w.keysClient(t, w.credential(t, w.tc.TenantID, app.AppID, secret.SecretText))
	cek := []byte("a 32-byte data encryption key!!!")
	wrap := func(name string) ([]byte, error) {
		r, err := pc.WrapKey(ctx, name, "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: cek}, nil)
		return r.Result, err
	}
	_, err = wrap("provider-cmk")
	wantStatus(t, "wrap before the grant", err, http.StatusForbidden, "Forbidden")

	assignment := w.grant(t, w.v.ResourceID+"/keys/provider-cmk", rbac.RoleKeyVaultCryptoServiceEncryptionUser, sp.ID, "4f5a6b7c-8d9e-4a0b-8f1a-3b4c5d6e7f80")
	wrapped, err := wrap("provider-cmk")
	if err != nil {
		t.Fatalf("wrap with the grant: %v", err)
	}
	un, err := pc.UnwrapKey(ctx, "provider-cmk", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: wrapped}, nil)
	if err != nil || string(un.Result) != string(cek) {
		t.Fatalf("unwrap with the grant: %v", err)
	}
	if k, err := pc.GetKey(ctx, "provider-cmk", "", nil); err != nil || k.Key.D != nil {
		t.Fatalf("get (keys/read) with the grant: %v", err)
	}
	_, err = wrap("customer-only")
	wantStatus(t, "wrap with another key of the vault", err, http.StatusForbidden, "Forbidden")
	_, err = pc.Sign(ctx, "provider-cmk", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmRS256), Value: digestOf(crypto.SHA256, "x")}, nil)
	wantStatus(t, "sign (not in the role)", err, http.StatusForbidden, "Forbidden")

	// The customer disables the key: refused at once; enabled again, it works.
	if _, err := w.client.UpdateKey(ctx, "provider-cmk", "", azkeys.UpdateKeyParameters{KeyAttributes: &azkeys.KeyAttributes{Enabled: to.Ptr(false)}}, nil); err != nil {
		t.Fatal(err)
	}
	_, err = pc.UnwrapKey(ctx, "provider-cmk", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: wrapped}, nil)
	wantStatus(t, "unwrap with a disabled key", err, http.StatusForbidden, "Forbidden")
	if _, err := w.client.UpdateKey(ctx, "provider-cmk", "", azkeys.UpdateKeyParameters{KeyAttributes: &azkeys.KeyAttributes{Enabled: to.Ptr(true)}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := wrap("provider-cmk"); err != nil {
		t.Fatalf("wrap once enabled again: %v", err)
	}

	// The customer deletes the role assignment: refused at once.
	if status := w.arm(t, "DELETE", assignment, ""); status != http.StatusOK && status != http.StatusNoContent {
		t.Fatalf("delete the role assignment: %d", status)
	}
	_, err = pc.UnwrapKey(ctx, "provider-cmk", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: wrapped}, nil)
	wantStatus(t, "unwrap after the role assignment is deleted", err, http.StatusForbidden, "Forbidden")

	// Both tenants see what the provider did in the customer's vault.
	for _, view := range []store.AuditQuery{{TenantID: w.tc.TenantID, ByTenantID: provider.TenantID}, {TenantID: provider.TenantID}} {
		recs, err := w.r.srv.Store().ListAudit(ctx, view)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, rec := range recs {
			if rec.ActorTenant == provider.TenantID && rec.TargetTenant == w.tc.TenantID {
				seen[rec.Action+" "+rec.Result] = true
			}
		}
		for _, want := range []string{"key.wrapKey success", "key.unwrapKey success", "key.wrapKey ForbiddenByRbac", "key.unwrapKey ForbiddenByRbac", "key.unwrapKey KeyDisabled"} {
			if !seen[want] {
				t.Errorf("view %+v: no audit record %q", view, want)
			}
		}
	}
}
