package vault_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
	"github.com/tenantbridge/tenantbridge/internal/vault"
)

func wantStatus(t *testing.T, err error, status int, code string) {
	t.Helper()
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("got %v, want HTTP %d %s", err, status, code)
	}
	if re.StatusCode != status || (code != "" && re.ErrorCode != code) {
		t.Fatalf("got %d %s, want %d %s", re.StatusCode, re.ErrorCode, status, code)
	}
}

// TestSecretsThroughAzsecrets drives every operation through the real
// azsecrets client, on SQLite and PostgreSQL.
func TestSecretsThroughAzsecrets(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		ctx := t.Context()
		tid := e.contoso.Tenant.ID
		v, err := e.vaults.CreateVault(ctx, vault.VaultSpec{TenantID: tid, Name: "myvault", SoftDeleteRetentionDays: 7})
		must(t, err)
		owner := e.newApp(t, tid, "owner", false)
		e.grantAll(t, v, owner.spID)
		c := e.secrets(t, "https://myvault.vault.azure.net", e.credential(t, tid, owner))

		// Set and get, latest and by version.
		set1, err := c.SetSecret(ctx, "Db-Password", azsecrets.SetSecretParameters{Value: to.Ptr("s3cret-1"), ContentType: to.Ptr("text/plain"),
			Tags: map[string]*string{"env": to.Ptr("prod")}}, nil)
		must(t, err)
		if set1.ID.Name() != "Db-Password" || len(set1.ID.Version()) != 32 || *set1.Value != "s3cret-1" || set1.Attributes.Created == nil ||
			*set1.Attributes.RecoveryLevel != "Recoverable+Purgeable" || *set1.Attributes.RecoverableDays != 7 {
			t.Fatalf("set = %+v", set1.Secret)
		}
		if got := string(*set1.ID); got != "https://myvault.vault.azure.net/secrets/Db-Password/"+set1.ID.Version() {
			t.Errorf("id = %s", got)
		}
		set2, err := c.SetSecret(ctx, "db-password", azsecrets.SetSecretParameters{Value: to.Ptr("s3cret-2")}, nil)
		must(t, err)
		latest, err := c.GetSecret(ctx, "DB-PASSWORD", "", nil)
		must(t, err)
		if *latest.Value != "s3cret-2" || latest.ID.Version() != set2.ID.Version() {
			t.Errorf("latest = %s %s", *latest.Value, latest.ID.Version())
		}
		old, err := c.GetSecret(ctx, "db-password", set1.ID.Version(), nil)
		must(t, err)
		if *old.Value != "s3cret-1" || *old.ContentType != "text/plain" || *old.Tags["env"] != "prod" {
			t.Errorf("v1 = %+v", old.Secret)
		}
		_, err = c.GetSecret(ctx, "nope", "", nil)
		wantStatus(t, err, 404, "SecretNotFound")

		// The store holds only ciphertext.
		raw, err := st.GetSecret(ctx, "myvault", "db-password", "")
		must(t, err)
		if strings.Contains(string(raw.Value), "s3cret") {
			t.Fatal("value stored in the clear")
		}

		// List across pages (the page is 25), and versions.
		for i := range 27 {
			_, err := c.SetSecret(ctx, fmt.Sprintf("bulk-%02d", i), azsecrets.SetSecretParameters{Value: to.Ptr("x")}, nil)
			must(t, err)
		}
		pages, n := 0, 0
		for p := c.NewListSecretPropertiesPager(nil); p.More(); {
			page, err := p.NextPage(ctx)
			must(t, err)
			pages++
			for _, item := range page.Value {
				n++
				if item.ID.Version() != "" {
					t.Errorf("list item id with a version: %s", *item.ID)
				}
			}
		}
		if n != 28 || pages != 2 {
			t.Errorf("listed %d secrets in %d pages, want 28 in 2", n, pages)
		}
		n = 0
		for p := c.NewListSecretPropertiesVersionsPager("db-password", nil); p.More(); {
			page, err := p.NextPage(ctx)
			must(t, err)
			n += len(page.Value)
		}
		if n != 2 {
			t.Errorf("%d versions, want 2", n)
		}

		// Update attributes; a disabled secret cannot be read, a
		// not-yet-valid or expired one can (Key Vault's date-time
		// controlled operations: get works outside the nbf / exp window).
		upd, err := c.UpdateSecretProperties(ctx, "db-password", "", azsecrets.UpdateSecretPropertiesParameters{
			ContentType: to.Ptr("application/x"), SecretAttributes: &azsecrets.SecretAttributes{Enabled: to.Ptr(false)}}, nil)
		must(t, err)
		if *upd.Attributes.Enabled || *upd.ContentType != "application/x" || upd.ID.Version() != set2.ID.Version() {
			t.Errorf("update = %+v", upd.Secret)
		}
		_, err = c.GetSecret(ctx, "db-password", "", nil)
		wantStatus(t, err, 403, "Forbidden")
		_, err = c.UpdateSecretProperties(ctx, "db-password", set2.ID.Version(), azsecrets.UpdateSecretPropertiesParameters{
			SecretAttributes: &azsecrets.SecretAttributes{Enabled: to.Ptr(true), NotBefore: to.Ptr(time.Now().Add(time.Hour))}}, nil)
		must(t, err)
		if got, err := c.GetSecret(ctx, "db-password", "", nil); err != nil || got.Value == nil || got.Attributes.NotBefore == nil {
			t.Errorf("a not-yet-valid secret: %+v, %v; want it returned with its nbf", got, err)
		}
		_, err = c.SetSecret(ctx, "expired", azsecrets.SetSecretParameters{Value: to.Ptr("x"),
			SecretAttributes: &azsecrets.SecretAttributes{Expires: to.Ptr(time.Now().Add(-time.Hour))}}, nil)
		must(t, err)
		if got, err := c.GetSecret(ctx, "expired", "", nil); err != nil || got.Value == nil || *got.Value != "x" {
			t.Errorf("an expired secret: %+v, %v; want it returned", got, err)
		}
		// The older version is still readable.
		_, err = c.GetSecret(ctx, "db-password", set1.ID.Version(), nil)
		must(t, err)

		// Backup, delete, list/get deleted, recover, delete, purge, restore.
		bk, err := c.BackupSecret(ctx, "db-password", nil)
		must(t, err)
		if strings.Contains(string(bk.Value), "s3cret") {
			t.Fatal("backup is not sealed")
		}
		del, err := c.DeleteSecret(ctx, "db-password", nil)
		must(t, err)
		if del.RecoveryID == nil || del.ScheduledPurgeDate == nil || del.DeletedDate == nil ||
			del.ScheduledPurgeDate.Sub(*del.DeletedDate) != 7*24*time.Hour {
			t.Errorf("deleted = %+v", del.DeletedSecret)
		}
		_, err = c.GetSecret(ctx, "db-password", "", nil)
		wantStatus(t, err, 404, "SecretNotFound")
		_, err = c.SetSecret(ctx, "db-password", azsecrets.SetSecretParameters{Value: to.Ptr("x")}, nil)
		wantStatus(t, err, 409, "Conflict")
		n = 0
		for p := c.NewListDeletedSecretPropertiesPager(nil); p.More(); {
			page, err := p.NextPage(ctx)
			must(t, err)
			n += len(page.Value)
		}
		if n != 1 {
			t.Errorf("%d deleted secrets, want 1", n)
		}
		gd, err := c.GetDeletedSecret(ctx, "db-password", nil)
		must(t, err)
		if gd.ID.Name() != "Db-Password" {
			t.Errorf("deleted id %s", *gd.ID)
		}
		_, err = c.RecoverDeletedSecret(ctx, "db-password", nil)
		must(t, err)
		_, err = c.GetSecret(ctx, "db-password", set1.ID.Version(), nil)
		must(t, err)
		_, err = c.DeleteSecret(ctx, "db-password", nil)
		must(t, err)
		_, err = c.PurgeDeletedSecret(ctx, "db-password", nil)
		must(t, err)
		_, err = c.GetDeletedSecret(ctx, "db-password", nil)
		wantStatus(t, err, 404, "SecretNotFound")
		rs, err := c.RestoreSecret(ctx, azsecrets.RestoreSecretParameters{SecretBackup: bk.Value}, nil)
		must(t, err)
		if rs.ID.Version() != set2.ID.Version() {
			t.Errorf("restored latest %s, want %s", rs.ID.Version(), set2.ID.Version())
		}
		got, err := c.GetSecret(ctx, "db-password", set1.ID.Version(), nil)
		must(t, err)
		if *got.Value != "s3cret-1" {
			t.Errorf("restored v1 = %q", *got.Value)
		}
		_, err = c.RestoreSecret(ctx, azsecrets.RestoreSecretParameters{SecretBackup: bk.Value}, nil)
		wantStatus(t, err, 409, "Conflict")
		_, err = c.RestoreSecret(ctx, azsecrets.RestoreSecretParameters{SecretBackup: []byte("garbage")}, nil)
		wantStatus(t, err, 400, "BadParameter")

		// Purge protection refuses purge.
		pv, err := e.vaults.CreateVault(ctx, vault.VaultSpec{TenantID: tid, Name: "protected", EnablePurgeProtection: true})
		must(t, err)
		e.grantAll(t, pv, owner.spID)
		pc := e.secrets(t, "https://protected.vault.azure.net", e.credential(t, tid, owner))
		ps, err := pc.SetSecret(ctx, "a", azsecrets.SetSecretParameters{Value: to.Ptr("x")}, nil)
		must(t, err)
		if *ps.Attributes.RecoveryLevel != "Recoverable" || *ps.Attributes.RecoverableDays != 90 {
			t.Errorf("protected attributes = %+v", ps.Attributes)
		}
		_, err = pc.DeleteSecret(ctx, "a", nil)
		must(t, err)
		_, err = pc.PurgeDeletedSecret(ctx, "a", nil)
		wantStatus(t, err, 403, "Forbidden")

		// A backup of another tenant's vault does not restore here.
		fv, err := e.vaults.CreateVault(ctx, vault.VaultSpec{TenantID: e.fabrikam.Tenant.ID, Name: "fabvault"})
		must(t, err)
		fo := e.newApp(t, e.fabrikam.Tenant.ID, "fab-owner", false)
		e.grantAll(t, fv, fo.spID)
		fc := e.secrets(t, "https://fabvault.vault.azure.net", e.credential(t, e.fabrikam.Tenant.ID, fo))
		_, err = fc.RestoreSecret(ctx, azsecrets.RestoreSecretParameters{SecretBackup: bk.Value}, nil)
		wantStatus(t, err, 400, "BadParameter")

		// Audit: reads and writes recorded against the vault's tenant, never the value.
		recs, err := st.ListAudit(ctx, store.AuditQuery{TenantID: tid})
		must(t, err)
		actions := map[string]int{}
		for _, r := range recs {
			if strings.HasPrefix(r.Action, "secret.") {
				actions[r.Action]++
				if r.TargetTenant != tid || r.Actor != owner.spID || r.ActorTenant != tid {
					t.Errorf("audit %+v", r)
				}
				if strings.Contains(r.Detail, "s3cret") || strings.Contains(r.Target, "s3cret") {
					t.Error("value in the audit log")
				}
			}
		}
		for _, a := range []string{"secret.set", "secret.get", "secret.list", "secret.versions", "secret.update", "secret.delete",
			"secret.listDeleted", "secret.getDeleted", "secret.recover", "secret.purge", "secret.backup", "secret.restore"} {
			if actions[a] == 0 {
				t.Errorf("no audit record of %s", a)
			}
		}
	})
}

// TestAccess: the challenge, the vault's tenant, the audience, RBAC, and a
// provider's service principal provisioned into the customer tenant.
func TestAccess(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		ctx := t.Context()
		tid := e.contoso.Tenant.ID
		v, err := e.vaults.CreateVault(ctx, vault.VaultSpec{TenantID: tid, Name: "myvault"})
		must(t, err)
		other, err := e.vaults.CreateVault(ctx, vault.VaultSpec{TenantID: tid, Name: "othervault"})
		must(t, err)
		owner := e.newApp(t, tid, "owner", false)
		e.grantAll(t, v, owner.spID)
		e.grantAll(t, other, owner.spID)
		oc := e.secrets(t, "https://myvault.vault.azure.net", e.credential(t, tid, owner))
		_, err = oc.SetSecret(ctx, "shared", azsecrets.SetSecretParameters{Value: to.Ptr("for-provider")}, nil)
		must(t, err)
		_, err = e.secrets(t, "https://othervault.vault.azure.net", e.credential(t, tid, owner)).
			SetSecret(ctx, "private", azsecrets.SetSecretParameters{Value: to.Ptr("x")}, nil)
		must(t, err)

		// The challenge.
		resp, err := e.client.Get("https://myvault.vault.azure.net/secrets/shared/?api-version=2026-04-01")
		must(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		wantChallenge := fmt.Sprintf(`Bearer authorization="%s/%s", resource="https://vault.azure.net"`, e.srv.URL, tid)
		if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != wantChallenge ||
			string(body) != `{"error":{"code":"Unauthorized","message":"AKV10000: Request is missing a Bearer or PoP token."}}` {
			t.Errorf("challenge: %d %q %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
		}
		// A custom domain with a port: the resource is the vault host's suffix, port included.
		req, _ := http.NewRequest("GET", "https://myvault.vault.contoso.test:8443/secrets?api-version=1", nil)
		resp, err = e.client.Do(req)
		must(t, err)
		resp.Body.Close()
		if got := resp.Header.Get("WWW-Authenticate"); !strings.HasSuffix(got, `resource="https://vault.contoso.test:8443"`) {
			t.Errorf("custom domain challenge %q", got)
		}

		// A token of another tenant: 401 naming the vault's tenant.
		fab := e.newApp(t, e.fabrikam.Tenant.ID, "fab", false)
		tok, err := e.credential(t, e.fabrikam.Tenant.ID, fab).GetToken(ctx, policyScope("https://vault.azure.net/.default"))
		must(t, err)
		status, hdr := e.raw(t, "GET", "https://myvault.vault.azure.net/secrets/shared?api-version=7.5", tok.Token)
		if status != 401 || !strings.Contains(hdr.Get("WWW-Authenticate"), tid) {
			t.Errorf("other tenant: %d %q", status, hdr.Get("WWW-Authenticate"))
		}
		// A token for another audience (Graph).
		tok, err = e.credential(t, tid, owner).GetToken(ctx, policyScope("https://graph.microsoft.com/.default"))
		must(t, err)
		status, _ = e.raw(t, "GET", "https://myvault.vault.azure.net/secrets/shared?api-version=7.5", tok.Token)
		if status != 401 {
			t.Errorf("graph token: %d", status)
		}
		// No api-version.
		tok, err = e.credential(t, tid, owner).GetToken(ctx, policyScope("https://vault.azure.net/.default"))
		must(t, err)
		if status, _ = e.raw(t, "GET", "https://myvault.vault.azure.net/secrets/shared", tok.Token); status != 400 {
			t.Errorf("no api-version: %d", status)
		}

		// No grant: 403 ForbiddenByRbac.
		nobody := e.newApp(t, tid, "nobody", false)
		_, err = e.secrets(t, "https://myvault.vault.azure.net", e.credential(t, tid, nobody)).GetSecret(ctx, "shared", "", nil)
		wantStatus(t, err, 403, "Forbidden")
		var re *azcore.ResponseError
		errors.As(err, &re)
		b, _ := io.ReadAll(re.RawResponse.Body)
		var doc struct {
			Error struct {
				Message    string
				InnerError struct{ Code string } `json:"innererror"`
			}
		}
		_ = json.Unmarshal(b, &doc)
		if doc.Error.InnerError.Code != "ForbiddenByRbac" || !strings.Contains(doc.Error.Message, "Action: '"+vault.ActionGetSecret+"'") {
			t.Errorf("403 body %s", b)
		}

		// A provider's multi-tenant app, provisioned into contoso and
		// granted getSecret on one secret of one vault, reads only that.
		provider := e.newApp(t, e.fabrikam.Tenant.ID, "provider", true)
		psp, err := e.dir.CreateServicePrincipal(ctx, tid, provider.appID)
		must(t, err)
		e.assign(t, tid, psp.ID, rbac.RoleKeyVaultSecretsUser, v.ResourceID+"/secrets/shared")
		pcred := e.credential(t, tid, provider)
		pc := e.secrets(t, "https://myvault.vault.azure.net", pcred)
		got, err := pc.GetSecret(ctx, "shared", "", nil)
		must(t, err)
		if *got.Value != "for-provider" {
			t.Errorf("provider read %q", *got.Value)
		}
		_, err = pc.SetSecret(ctx, "shared", azsecrets.SetSecretParameters{Value: to.Ptr("x")}, nil)
		wantStatus(t, err, 403, "Forbidden")
		_, err = e.secrets(t, "https://othervault.vault.azure.net", pcred).GetSecret(ctx, "private", "", nil)
		wantStatus(t, err, 403, "Forbidden")
		// Its home-tenant identity gets nothing from contoso's vault.
		_, err = e.secrets(t, "https://myvault.vault.azure.net", e.credential(t, e.fabrikam.Tenant.ID, provider)).GetSecret(ctx, "shared", "", nil)
		if err == nil {
			t.Error("a home-tenant token read another tenant's vault")
		}
	})
}

// raw sends a request with a bearer token and returns the status.
func (e *env) raw(t *testing.T, method, url, tok string) (int, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	must(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := e.client.Do(req)
	must(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

// TestBadInput: malformed requests get Key Vault's 4xx, never a 500.
func TestBadInput(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t))
	ctx := t.Context()
	tid := e.contoso.Tenant.ID
	v, err := e.vaults.CreateVault(ctx, vault.VaultSpec{TenantID: tid, Name: "myvault"})
	must(t, err)
	owner := e.newApp(t, tid, "owner", false)
	e.grantAll(t, v, owner.spID)
	tok, err := e.credential(t, tid, owner).GetToken(ctx, policyScope("https://vault.azure.net/.default"))
	must(t, err)
	big := strings.Repeat("a", vault.MaxValueBytes+1)
	for _, tc := range []struct {
		method, path, body string
		want               int
	}{
		{"PUT", "/secrets/a", `{"value":"` + big + `"}`, 400},
		{"PUT", "/secrets/a", `{"value":`, 400},
		{"PUT", "/secrets/a", `{}`, 400},
		{"PUT", "/secrets/a", `{"value":"x","bogus":1}`, 400},
		{"PUT", "/secrets/a", `{"value":"x","attributes":{"nbf":1.5}}`, 400},
		{"PUT", "/secrets/a", strings.Repeat("x", 2<<20), 413},
		{"PUT", "/secrets/a_b", `{"value":"x"}`, 400},
		{"GET", "/secrets/a/notaversion", ``, 404},
		{"GET", "/secrets?maxresults=0", ``, 400},
		{"GET", "/secrets?maxresults=abc", ``, 400},
		{"POST", "/secrets/a", ``, 405},
		{"GET", "/nothing", ``, 404},
		{"POST", "/secrets/restore", `{"value":"!!"}`, 400},
		{"PATCH", "/secrets/a/", `{"value":"x"}`, 400},
	} {
		sep := "?"
		if strings.Contains(tc.path, "?") {
			sep = "&"
		}
		req, err := http.NewRequest(tc.method, "https://myvault.vault.azure.net"+tc.path+sep+"api-version=7.5", strings.NewReader(tc.body))
		must(t, err)
		req.Header.Set("Authorization", "Bearer "+tok.Token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := e.client.Do(req)
		must(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want || !strings.Contains(string(b), `"error"`) {
			t.Errorf("%s %s: %d %.200s, want %d", tc.method, tc.path, resp.StatusCode, b, tc.want)
		}
	}
	// Unknown vault.
	status, _ := e.raw(t, "GET", "https://novault.vault.azure.net/secrets?api-version=7.5", tok.Token)
	if status != 404 {
		t.Errorf("unknown vault: %d", status)
	}
}

// TestVaultManagement covers CreateVault/GetVault/DeleteVault.
func TestVaultManagement(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t))
	ctx := t.Context()
	tid := e.contoso.Tenant.ID
	for _, bad := range []vault.VaultSpec{{TenantID: tid, Name: "ab"}, {TenantID: tid, Name: "a--b"}, {TenantID: tid, Name: "1abc"},
		{TenantID: tid, Name: "okname", SoftDeleteRetentionDays: 6}, {TenantID: tid, Name: "okname", SoftDeleteRetentionDays: 91}} {
		if _, err := e.vaults.CreateVault(ctx, bad); !errors.Is(err, vault.ErrInvalid) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
	v, err := e.vaults.CreateVault(ctx, vault.VaultSpec{TenantID: tid, Name: "MyVault", ResourceGroup: "rg1"})
	must(t, err)
	if v.SoftDeleteRetentionDays != 90 || !v.EnableSoftDelete || !strings.HasSuffix(v.ResourceID, "/resourceGroups/rg1/providers/Microsoft.KeyVault/vaults/MyVault") {
		t.Errorf("vault %+v", v)
	}
	if _, err := e.vaults.CreateVault(ctx, vault.VaultSpec{TenantID: e.fabrikam.Tenant.ID, Name: "myvault"}); !errors.Is(err, vault.ErrConflict) {
		t.Errorf("duplicate: %v", err)
	}
	if _, err := e.vaults.GetVault(ctx, e.fabrikam.Tenant.ID, "myvault"); !errors.Is(err, vault.ErrNotFound) {
		t.Errorf("other tenant's get: %v", err)
	}
	if err := e.vaults.DeleteVault(ctx, e.fabrikam.Tenant.ID, "myvault"); !errors.Is(err, vault.ErrNotFound) {
		t.Errorf("other tenant's delete: %v", err)
	}
	must(t, e.vaults.DeleteVault(ctx, tid, "myvault"))
}
