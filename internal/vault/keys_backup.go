package vault

import (
	"encoding/json"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/sealed"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// A key backup is opaque: every version with its private key, sealed as a
// whole under the KEK with additional data naming the vault's tenant and
// subscription. Key Vault restores a backup only "in a Key Vault of same
// subscription" (the backup/action's text) and geography ("Azure Key
// Vault backup": same subscription and geography); here the tenant and
// subscription are bound, so a blob from another tenant's (or another
// subscription's) vault does not open.
type keyBackupBlob struct {
	Format   string             `json:"format"`
	Name     string             `json:"name"`
	Versions []keyBackupVersion `json:"versions"`
}

type keyBackupVersion struct {
	Version   string            `json:"version"`
	KeyType   string            `json:"kty"`
	KeyOps    []string          `json:"key_ops"`
	Private   []byte            `json:"private"` // PKCS #8, inside the sealed blob only
	Tags      map[string]string `json:"tags,omitempty"`
	Enabled   bool              `json:"enabled"`
	NotBefore *int64            `json:"nbf,omitempty"`
	Expires   *int64            `json:"exp,omitempty"`
	Created   *int64            `json:"created,omitempty"`
	Updated   *int64            `json:"updated,omitempty"`
}

const keyBackupFormat = "tenantbridge-key-backup-1"

// keyBackupAAD binds a key backup to the vault's tenant and subscription.
func keyBackupAAD(v store.Vault) []byte {
	return []byte("vault/key-backup/" + strings.ToLower(v.TenantID) + "/" + strings.ToLower(subscriptionOf(v.ResourceID)))
}

// subscriptionOf is the subscription id of a resource id.
func subscriptionOf(resourceID string) string {
	segs := strings.Split(strings.TrimPrefix(resourceID, "/"), "/")
	if len(segs) >= 2 && strings.EqualFold(segs[0], "subscriptions") {
		return segs[1]
	}
	return ""
}

// maxKeyBackupVersions bounds what one restore may write.
const maxKeyBackupVersions = 500

func (s *Service) keyBackup(q *request) {
	const action = "key.backup"
	ks, ok := backupVersions(s, q, action, ActionKeysBackup, s.st.ListKeyVersions, func(k store.Key) int64 { return k.Seq })
	if !ok {
		return
	}
	blob := keyBackupBlob{Format: keyBackupFormat, Name: ks[0].Name}
	defer func() {
		for _, v := range blob.Versions {
			clear(v.Private)
		}
	}()
	for _, k := range ks {
		der, err := sealed.Open(s.kek, k.Private, keyAAD(q.vault, k.Name, k.Version))
		if err != nil {
			s.internal(q.w, q.r, action, err)
			return
		}
		blob.Versions = append(blob.Versions, keyBackupVersion{Version: k.Version, KeyType: k.KeyType, KeyOps: k.KeyOps, Private: der,
			Tags: k.Tags, Enabled: k.Enabled, NotBefore: unix(k.NotBefore), Expires: unix(k.Expires), Created: unix(k.Created), Updated: unix(k.Updated)})
	}
	s.answerBackup(q, action, blob, keyBackupAAD(q.vault), len(ks))
}

// openKeyBackup checks and opens a restore body into store keys sealed for
// vault v; it returns a 400 message on any failure.
func (s *Service) openKeyBackup(v store.Vault, body []byte) ([]store.Key, string) {
	plain, msg := s.openBlob(body, keyBackupAAD(v), "another tenant or subscription")
	if msg != "" {
		return nil, msg
	}
	defer clear(plain)
	var blob keyBackupBlob
	const malformed = "Backup blob is malformed."
	if err := json.Unmarshal(plain, &blob); err != nil || blob.Format != keyBackupFormat || !secretName.MatchString(blob.Name) ||
		len(blob.Versions) == 0 || len(blob.Versions) > maxKeyBackupVersions {
		return nil, malformed
	}
	var out []store.Key
	for _, bv := range blob.Versions {
		if !versionID.MatchString(bv.Version) {
			return nil, malformed
		}
		priv, err := parsePrivate(bv.Private)
		if err != nil {
			return nil, malformed
		}
		pub, err := publicJWK(priv)
		if err != nil || pub.Kty != bv.KeyType {
			return nil, malformed
		}
		pubJSON, err := json.Marshal(pub)
		if err != nil {
			return nil, malformed
		}
		version := strings.ToLower(bv.Version)
		sealedKey, err := sealed.Seal(s.kek, bv.Private, keyAAD(v, blob.Name, version))
		clear(bv.Private)
		if err != nil {
			return nil, malformed
		}
		out = append(out, store.Key{Vault: v.Name, Name: blob.Name, Version: version, KeyType: bv.KeyType, KeyOps: bv.KeyOps,
			Public: pubJSON, Private: sealedKey, Tags: bv.Tags, Enabled: bv.Enabled,
			NotBefore: fromUnix(bv.NotBefore), Expires: fromUnix(bv.Expires), Created: fromUnix(bv.Created), Updated: fromUnix(bv.Updated)})
	}
	return out, ""
}

func (s *Service) keyRestore(q *request) {
	const action = "key.restore"
	body, ok := s.restoreBody(q, action, ActionKeysRestore)
	if !ok {
		return
	}
	versions, msg := s.openKeyBackup(q.vault, body)
	if msg != "" {
		s.badRequest(q, action, msg)
		return
	}
	q.route.name = versions[0].Name
	restoreVersions(s, q, action, store.Store.RestoreKey, versions, func(k store.Key) any { return keyBundleOf(q.base, q.vault, k) })
}
