package vault_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
	"github.com/tenantbridge/tenantbridge/internal/vault"
)

// failingSecretAudit is the real store whose audit log, once failing is
// set, refuses the records of secret operations ("secret.*"), also
// through the Store a transaction hands out.
type failingSecretAudit struct {
	store.Store
	failing *atomic.Bool
}

func (f failingSecretAudit) AppendAudit(ctx context.Context, r store.AuditRecord) (int64, error) {
	if f.failing.Load() && strings.HasPrefix(r.Action, "secret.") {
		return 0, errors.New("audit log unavailable")
	}
	return f.Store.AppendAudit(ctx, r)
}

func (f failingSecretAudit) InTx(ctx context.Context, fn func(tx store.Store) error) error {
	return f.Store.InTx(ctx, func(tx store.Store) error {
		return fn(failingSecretAudit{Store: tx, failing: f.failing})
	})
}

// TestNoChangeWithoutAudit: a secret write whose audit record cannot be
// stored answers 500 in Key Vault's error shape and changes nothing.
func TestNoChangeWithoutAudit(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		failing := new(atomic.Bool)
		e := newEnv(t, failingSecretAudit{Store: st, failing: failing})
		ctx := t.Context()
		tid := e.contoso.Tenant.ID
		v, err := e.vaults.CreateVault(ctx, vault.VaultSpec{TenantID: tid, Name: "myvault"})
		must(t, err)
		owner := e.newApp(t, tid, "owner", false)
		e.grantAll(t, v, owner.spID)
		cred := e.credential(t, tid, owner)
		_, err = e.secrets(t, "https://myvault.vault.azure.net", cred).
			SetSecret(ctx, "kept", azsecrets.SetSecretParameters{Value: to.Ptr("v1")}, nil)
		must(t, err)
		tok, err := cred.GetToken(ctx, policyScope("https://vault.azure.net/.default"))
		must(t, err)
		failing.Store(true)

		send := func(method, path, body string) {
			t.Helper()
			req, err := http.NewRequest(method, "https://myvault.vault.azure.net"+path+"?api-version=7.5", strings.NewReader(body))
			must(t, err)
			req.Header.Set("Authorization", "Bearer "+tok.Token)
			req.Header.Set("Content-Type", "application/json")
			resp, err := e.client.Do(req)
			must(t, err)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var doc struct {
				Error struct{ Code, Message string }
			}
			if resp.StatusCode != http.StatusInternalServerError || json.Unmarshal(b, &doc) != nil ||
				doc.Error.Code != "InternalServerError" || doc.Error.Message == "" ||
				resp.Header.Get("x-ms-error-code") != "InternalServerError" {
				t.Errorf("%s %s: %d %s, want 500 InternalServerError", method, path, resp.StatusCode, b)
			}
		}

		// A set of a new secret: nothing stored.
		send("PUT", "/secrets/unaudited", `{"value":"x"}`)
		if _, err := st.GetSecret(ctx, "myvault", "unaudited", ""); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unaudited set stored a secret: %v", err)
		}
		if vs, err := st.ListSecretVersions(ctx, store.SecretQuery{Vault: "myvault", Name: "unaudited"}); err != nil || len(vs) != 0 {
			t.Errorf("unaudited set: versions %d, %v", len(vs), err)
		}
		// A new version of an existing secret, an update, a delete: the
		// secret stays as it was.
		send("PUT", "/secrets/kept", `{"value":"v2"}`)
		send("PATCH", "/secrets/kept", `{"contentType":"text/plain"}`)
		send("DELETE", "/secrets/kept", ``)
		vs, err := st.ListSecretVersions(ctx, store.SecretQuery{Vault: "myvault", Name: "kept"})
		must(t, err)
		if len(vs) != 1 || vs[0].ContentType != "" || vs[0].Deleted != nil {
			t.Errorf("kept after unaudited writes: %+v", vs)
		}
		if _, err := st.GetDeletedSecret(ctx, "myvault", "kept"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unaudited delete: %v", err)
		}
	})
}
