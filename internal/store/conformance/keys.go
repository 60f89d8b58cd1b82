package conformance

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// testKeys proves store.Keys: key versions with a latest, the public and
// sealed private halves kept byte for byte, updates, paging, soft delete,
// recover, purge, restore, and the cascade from vault to key.
func testKeys(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	ctx := f.ctx
	tn := f.tenant()
	name := "kv" + newVersion()[:10]
	must(t, st.CreateVault(ctx, store.Vault{TenantID: tn.ID, Name: name, ResourceID: "/subscriptions/" + tn.SubscriptionID + "/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/" + name,
		Location: "westeurope", SoftDeleteRetentionDays: 7, EnableSoftDelete: true}), "create vault")

	mk := func(keyName, version string) store.Key {
		return store.Key{Vault: strings.ToUpper(name), Name: keyName, Version: version, KeyType: "RSA", KeyOps: []string{"sign", "verify"},
			Public: []byte(`{"kty":"RSA","n":"AQAB","e":"AQAB"}`), Private: []byte{1, 2, 3, 0, 255}, Tags: map[string]string{"env": "test"}, Enabled: true}
	}
	_, err := st.CreateKeyVersion(ctx, store.Key{Vault: "nosuchvault" + newVersion()[:6], Name: "k", Version: newVersion(), KeyType: "RSA"})
	wantErr(t, err, store.ErrNotFound, "key in a missing vault")

	v1, v2 := newVersion(), newVersion()
	first, err := st.CreateKeyVersion(ctx, mk("Signer", v1))
	must(t, err, "create key v1")
	if first.Seq != 1 || first.Created.IsZero() || first.Name != "Signer" {
		t.Errorf("first version = %+v", first)
	}
	second := mk("SIGNER", v2)
	second.KeyType, second.KeyOps, second.Private = "EC", []string{"sign"}, []byte("sealed-2")
	if _, err := st.CreateKeyVersion(ctx, second); err != nil {
		t.Fatal(err)
	}
	_, err = st.CreateKeyVersion(ctx, mk("signer", v2))
	wantErr(t, err, store.ErrConflict, "the same version twice")

	latest, err := st.GetKey(ctx, name, "signer", "")
	must(t, err, "get latest")
	if latest.Version != v2 || latest.Name != "Signer" || latest.KeyType != "EC" || !slices.Equal(latest.KeyOps, []string{"sign"}) ||
		!bytes.Equal(latest.Private, []byte("sealed-2")) || latest.Seq != 2 {
		t.Errorf("latest = %+v", latest)
	}
	got, err := st.GetKey(ctx, name, "Signer", v1)
	must(t, err, "get v1")
	if !bytes.Equal(got.Private, []byte{1, 2, 3, 0, 255}) || string(got.Public) != `{"kty":"RSA","n":"AQAB","e":"AQAB"}` || got.Tags["env"] != "test" || !got.Enabled {
		t.Errorf("v1 = %+v", got)
	}
	_, err = st.GetKey(ctx, name, "nosuch", "")
	wantErr(t, err, store.ErrNotFound, "get a missing key")

	// Update replaces the mutable fields only.
	nbf := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	got.KeyOps, got.Tags, got.Enabled, got.NotBefore, got.KeyType, got.Private = []string{"verify"}, nil, false, nbf, "oct", []byte("x")
	upd, err := st.UpdateKey(ctx, got)
	must(t, err, "update key")
	if !slices.Equal(upd.KeyOps, []string{"verify"}) || len(upd.Tags) != 0 || upd.Enabled || !upd.NotBefore.Equal(nbf) ||
		upd.KeyType != "RSA" || !bytes.Equal(upd.Private, []byte{1, 2, 3, 0, 255}) {
		t.Errorf("updated = %+v", upd)
	}

	// Paging: names in lower-cased order, after a cursor.
	for _, n := range []string{"b-key", "A-key", "c-key"} {
		_, err := st.CreateKeyVersion(ctx, mk(n, newVersion()))
		must(t, err, "create "+n)
	}
	page, err := st.ListKeys(ctx, store.KeyQuery{Vault: name, Limit: 2})
	must(t, err, "list keys")
	if len(page) != 2 || page[0].Name != "A-key" || page[1].Name != "b-key" {
		t.Errorf("first page = %v", keyNames(page))
	}
	page, err = st.ListKeys(ctx, store.KeyQuery{Vault: name, After: "b-key"})
	must(t, err, "list keys after")
	if len(page) != 2 || page[0].Name != "c-key" || page[1].Name != "Signer" || page[1].Version != v2 {
		t.Errorf("second page = %v", keyNames(page))
	}
	vers, err := st.ListKeyVersions(ctx, store.KeyQuery{Vault: name, Name: "signer"})
	must(t, err, "list versions")
	if len(vers) != 2 || vers[0].Version > vers[1].Version {
		t.Errorf("versions = %+v", vers)
	}

	// Soft delete: gone from reads, listed as deleted; a new version of a
	// deleted name conflicts; recover brings every version back.
	del, err := st.DeleteKey(ctx, name, "SIGNER", store.SecretDeletion{RecoveryID: "https://x/deletedkeys/Signer", DeletedDate: nbf, ScheduledPurgeDate: nbf.Add(time.Hour)})
	must(t, err, "delete key")
	if del.Deleted == nil || del.Deleted.RecoveryID != "https://x/deletedkeys/Signer" || del.Version != v2 {
		t.Errorf("deleted = %+v", del)
	}
	_, err = st.GetKey(ctx, name, "signer", v1)
	wantErr(t, err, store.ErrNotFound, "get a deleted key")
	_, err = st.DeleteKey(ctx, name, "signer", store.SecretDeletion{RecoveryID: "r"})
	wantErr(t, err, store.ErrNotFound, "delete twice")
	_, err = st.CreateKeyVersion(ctx, mk("signer", newVersion()))
	wantErr(t, err, store.ErrConflict, "new version of a deleted key")
	dk, err := st.GetDeletedKey(ctx, name, "signer")
	must(t, err, "get deleted")
	if dk.Deleted == nil || !dk.Deleted.ScheduledPurgeDate.Equal(nbf.Add(time.Hour)) {
		t.Errorf("deleted key = %+v", dk)
	}
	dl, err := st.ListDeletedKeys(ctx, store.KeyQuery{Vault: name})
	must(t, err, "list deleted")
	if len(dl) != 1 || dl[0].Name != "Signer" {
		t.Errorf("deleted list = %v", keyNames(dl))
	}
	rec, err := st.RecoverKey(ctx, name, "signer")
	must(t, err, "recover")
	if rec.Deleted != nil || rec.Version != v2 {
		t.Errorf("recovered = %+v", rec)
	}
	wantErr(t, st.PurgeKey(ctx, name, "signer"), store.ErrNotFound, "purge a key that is not deleted")

	// Purge removes every version; restore puts them back, once.
	all, err := st.ListKeyVersions(ctx, store.KeyQuery{Vault: name, Name: "signer"})
	must(t, err, "versions before purge")
	_, err = st.DeleteKey(ctx, name, "signer", store.SecretDeletion{RecoveryID: "r"})
	must(t, err, "delete again")
	must(t, st.PurgeKey(ctx, name, "signer"), "purge")
	_, err = st.GetDeletedKey(ctx, name, "signer")
	wantErr(t, err, store.ErrNotFound, "get a purged key")
	slices.SortFunc(all, func(a, b store.Key) int { return int(a.Seq - b.Seq) })
	restored, err := st.RestoreKey(ctx, all)
	must(t, err, "restore")
	if len(restored) != 2 || restored[1].Version != all[1].Version {
		t.Errorf("restored = %+v", restored)
	}
	back, err := st.GetKey(ctx, name, "signer", "")
	must(t, err, "get restored")
	if back.Version != all[1].Version || !bytes.Equal(back.Private, all[1].Private) {
		t.Errorf("restored latest = %+v", back)
	}
	_, err = st.RestoreKey(ctx, all)
	wantErr(t, err, store.ErrConflict, "restore over an existing key")

	// Hostile text is refused or not found, never a crash.
	_, err = st.GetKey(ctx, name, "bad\x00name", "")
	wantErr(t, err, store.ErrNotFound, "NUL in a key name")

	// The keys go with their vault.
	gen := st.Generation()
	must(t, st.DeleteVault(ctx, name), "delete vault")
	if st.Generation() == gen {
		t.Error("DeleteVault left the generation")
	}
	must(t, st.CreateVault(ctx, store.Vault{TenantID: tn.ID, Name: name, ResourceID: "/x", Location: "westeurope", SoftDeleteRetentionDays: 7}), "recreate vault")
	left, err := st.ListKeys(ctx, store.KeyQuery{Vault: name})
	must(t, err, "list keys of a new vault")
	if len(left) != 0 {
		t.Errorf("a vault made again under the same name has the old vault's keys: %v", keyNames(left))
	}
}

func keyNames(ks []store.Key) []string {
	var out []string
	for _, k := range ks {
		out = append(out, k.Name)
	}
	return out
}
