package conformance

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

func newVersion() string { return strings.ReplaceAll(newID(), "-", "") }

// testVaults proves store.Vaults: global case-insensitive vault names,
// secret versions with a latest, paging, soft delete, recover, purge,
// restore, and the cascade from tenant to vault to secret.
func testVaults(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	ctx := f.ctx
	tn, other := f.tenant(), f.tenant()
	name := "kv" + newVersion()[:10]
	v := store.Vault{TenantID: tn.ID, Name: name, ResourceID: "/subscriptions/" + tn.SubscriptionID + "/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/" + name,
		Location: "westeurope", SoftDeleteRetentionDays: 7, EnablePurgeProtection: true, EnableSoftDelete: true}
	must(t, st.CreateVault(ctx, v), "create vault")
	wantErr(t, st.CreateVault(ctx, store.Vault{TenantID: other.ID, Name: strings.ToUpper(name)}), store.ErrConflict, "vault name taken in another tenant")
	wantErr(t, st.CreateVault(ctx, store.Vault{TenantID: newID(), Name: "kv" + newVersion()[:10]}), store.ErrNotFound, "vault in a missing tenant")
	got, err := st.GetVault(ctx, strings.ToUpper(name))
	must(t, err, "get vault")
	if got.Name != name || got.TenantID != tn.ID || got.ResourceID != v.ResourceID || got.Location != "westeurope" ||
		got.SoftDeleteRetentionDays != 7 || !got.EnablePurgeProtection || !got.EnableSoftDelete || got.Created.IsZero() {
		t.Errorf("vault = %+v", got)
	}
	vs, err := st.ListVaults(ctx, tn.ID)
	must(t, err, "list vaults")
	if len(vs) != 1 || vs[0].Name != name {
		t.Errorf("ListVaults = %+v", vs)
	}

	// UpdateVault changes the mutable settings only, found by any case.
	gen := st.Generation()
	vu := got
	vu.Name, vu.SoftDeleteRetentionDays, vu.EnablePurgeProtection = strings.ToUpper(name), 30, false
	vu.TenantID, vu.ResourceID, vu.Location = other.ID, "/elsewhere", "eastus"
	must(t, st.UpdateVault(ctx, vu), "update vault")
	if st.Generation() == gen {
		t.Errorf("UpdateVault left the generation at %d: caches would serve the old vault", gen)
	}
	updated, err := st.GetVault(ctx, name)
	must(t, err, "get updated vault")
	if updated.SoftDeleteRetentionDays != 30 || updated.EnablePurgeProtection || updated.Name != name || updated.TenantID != tn.ID ||
		updated.ResourceID != v.ResourceID || updated.Location != "westeurope" || !updated.Created.Equal(got.Created) {
		t.Errorf("after UpdateVault: %+v, want retention 30, no purge protection, the rest unchanged (%+v)", updated, got)
	}
	vu.Name, vu.EnablePurgeProtection, vu.SoftDeleteRetentionDays = name, true, 7
	must(t, st.UpdateVault(ctx, vu), "update vault back")
	wantErr(t, st.UpdateVault(ctx, store.Vault{Name: "nosuchvault" + newVersion()[:6], SoftDeleteRetentionDays: 7}), store.ErrNotFound, "update a missing vault")
	wantErr(t, st.UpdateVault(ctx, store.Vault{}), store.ErrNotFound, "update a vault with no name")

	// Versions: the latest is the last one set, whatever the version ids.
	nbf := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	v1, err := st.CreateSecretVersion(ctx, store.Secret{Vault: name, Name: "Db-Password", Version: "ff" + newVersion()[2:], Value: []byte("sealed1"),
		ContentType: "text/plain", Tags: map[string]string{"env": "prod"}, Enabled: true, NotBefore: nbf})
	must(t, err, "set v1")
	v2, err := st.CreateSecretVersion(ctx, store.Secret{Vault: name, Name: "DB-PASSWORD", Version: "00" + newVersion()[2:], Value: []byte("sealed2"), Enabled: true})
	must(t, err, "set v2")
	if v2.Name != "Db-Password" || v2.Seq != v1.Seq+1 {
		t.Errorf("second version: name %q seq %d, want the first's name and seq %d", v2.Name, v2.Seq, v1.Seq+1)
	}
	_, err = st.CreateSecretVersion(ctx, store.Secret{Vault: name, Name: "db-password", Version: v2.Version, Value: []byte("x")})
	wantErr(t, err, store.ErrConflict, "same version twice")
	_, err = st.CreateSecretVersion(ctx, store.Secret{Vault: "nosuchvault", Name: "a", Version: newVersion(), Value: []byte("x")})
	wantErr(t, err, store.ErrNotFound, "secret in a missing vault")

	latest, err := st.GetSecret(ctx, strings.ToUpper(name), "db-password", "")
	must(t, err, "get latest")
	if latest.Version != v2.Version || string(latest.Value) != "sealed2" {
		t.Errorf("latest = %s %q, want %s", latest.Version, latest.Value, v2.Version)
	}
	old, err := st.GetSecret(ctx, name, "db-password", v1.Version)
	must(t, err, "get v1")
	if string(old.Value) != "sealed1" || old.ContentType != "text/plain" || old.Tags["env"] != "prod" || !old.NotBefore.Equal(nbf) ||
		!old.Expires.IsZero() || !old.Enabled || old.Deleted != nil {
		t.Errorf("v1 = %+v", old)
	}
	_, err = st.GetSecret(ctx, name, "db-password", newVersion())
	wantErr(t, err, store.ErrNotFound, "unknown version")

	old.Enabled, old.ContentType, old.Tags, old.NotBefore = false, "x", nil, time.Time{}
	old.Expires = nbf
	upd, err := st.UpdateSecret(ctx, old)
	must(t, err, "update")
	if upd.Enabled || upd.ContentType != "x" || len(upd.Tags) != 0 || !upd.NotBefore.IsZero() || !upd.Expires.Equal(nbf) || string(upd.Value) != "sealed1" {
		t.Errorf("updated = %+v", upd)
	}

	versions, err := st.ListSecretVersions(ctx, store.SecretQuery{Vault: name, Name: "DB-password"})
	must(t, err, "versions")
	if len(versions) != 2 || versions[0].Version != v2.Version {
		t.Errorf("versions = %d", len(versions))
	}

	// Paging over names.
	for i := range 5 {
		_, err := st.CreateSecretVersion(ctx, store.Secret{Vault: name, Name: fmt.Sprintf("s%d", i), Version: newVersion(), Value: []byte("v"), Enabled: true})
		must(t, err, "set")
	}
	var names []string
	after := ""
	for {
		page, err := st.ListSecrets(ctx, store.SecretQuery{Vault: name, After: after, Limit: 2})
		must(t, err, "list page")
		for _, s := range page {
			names = append(names, s.Name)
		}
		if len(page) < 2 {
			break
		}
		after = page[len(page)-1].Name
	}
	checkIDs(t, "paged names", names, []string{"Db-Password", "s0", "s1", "s2", "s3", "s4"})

	// Soft delete, recover, delete again, purge.
	del := store.SecretDeletion{RecoveryID: "https://x/deletedsecrets/Db-Password", DeletedDate: nbf, ScheduledPurgeDate: nbf.Add(7 * 24 * time.Hour)}
	d, err := st.DeleteSecret(ctx, name, "DB-PASSWORD", del)
	must(t, err, "delete")
	if d.Deleted == nil || d.Version != v2.Version || !d.Deleted.ScheduledPurgeDate.Equal(del.ScheduledPurgeDate) || d.Deleted.RecoveryID != del.RecoveryID {
		t.Errorf("deleted = %+v", d)
	}
	_, err = st.DeleteSecret(ctx, name, "db-password", del)
	wantErr(t, err, store.ErrNotFound, "delete twice")
	_, err = st.GetSecret(ctx, name, "db-password", "")
	wantErr(t, err, store.ErrNotFound, "get deleted")
	_, err = st.CreateSecretVersion(ctx, store.Secret{Vault: name, Name: "db-password", Version: newVersion(), Value: []byte("x")})
	wantErr(t, err, store.ErrConflict, "set a deleted name")
	ds, err := st.ListDeletedSecrets(ctx, store.SecretQuery{Vault: name})
	must(t, err, "list deleted")
	if len(ds) != 1 || ds[0].Version != v2.Version {
		t.Errorf("deleted list = %+v", ds)
	}
	live, err := st.ListSecrets(ctx, store.SecretQuery{Vault: name})
	must(t, err, "list")
	if len(live) != 5 {
		t.Errorf("%d live secrets, want 5", len(live))
	}
	wantErr(t, st.PurgeSecret(ctx, name, "s0"), store.ErrNotFound, "purge a live secret")
	rec, err := st.RecoverSecret(ctx, name, "db-password")
	must(t, err, "recover")
	if rec.Deleted != nil || rec.Version != v2.Version {
		t.Errorf("recovered = %+v", rec)
	}
	_, err = st.RecoverSecret(ctx, name, "db-password")
	wantErr(t, err, store.ErrNotFound, "recover a live secret")
	_, err = st.DeleteSecret(ctx, name, "db-password", del)
	must(t, err, "delete again")
	must(t, st.PurgeSecret(ctx, name, "db-password"), "purge")
	_, err = st.GetDeletedSecret(ctx, name, "db-password")
	wantErr(t, err, store.ErrNotFound, "get purged")

	// Restore: all versions at once, refused when the name exists.
	restored, err := st.RestoreSecret(ctx, []store.Secret{
		{Vault: name, Name: "Db-Password", Version: v1.Version, Value: []byte("r1"), Enabled: true},
		{Vault: name, Name: "Db-Password", Version: v2.Version, Value: []byte("r2"), Enabled: true},
	})
	must(t, err, "restore")
	if len(restored) != 2 {
		t.Fatalf("restored %d", len(restored))
	}
	latest, err = st.GetSecret(ctx, name, "db-password", "")
	must(t, err, "get restored")
	if string(latest.Value) != "r2" {
		t.Errorf("restored latest = %q", latest.Value)
	}
	_, err = st.RestoreSecret(ctx, []store.Secret{{Vault: name, Name: "s1", Version: newVersion(), Value: []byte("x")}})
	wantErr(t, err, store.ErrConflict, "restore over an existing name")

	// Hostile text finds nothing and stores nothing.
	_, err = st.GetSecret(ctx, name, "a\x00b", "")
	wantErr(t, err, store.ErrNotFound, "get NUL name")
	_, err = st.CreateSecretVersion(ctx, store.Secret{Vault: name, Name: "a\xffb", Version: newVersion(), Value: []byte("x")})
	wantPlainErr(t, err, "set invalid UTF-8 name")

	// Cascades: deleting the tenant removes its vaults and their secrets.
	must(t, st.DeleteTenant(ctx, tn.ID), "delete tenant")
	_, err = st.GetVault(ctx, name)
	wantErr(t, err, store.ErrNotFound, "vault of a deleted tenant")
	_, err = st.GetSecret(ctx, name, "s1", "")
	wantErr(t, err, store.ErrNotFound, "secret of a deleted tenant")
	must(t, st.CreateVault(ctx, store.Vault{TenantID: other.ID, Name: name, SoftDeleteRetentionDays: 90, EnableSoftDelete: true}), "name free again")
	_, err = st.GetSecret(ctx, name, "s1", "")
	wantErr(t, err, store.ErrNotFound, "no secrets carried over")
	must(t, st.DeleteVault(ctx, name), "delete vault")
	wantErr(t, st.DeleteVault(ctx, name), store.ErrNotFound, "delete vault twice")
}
