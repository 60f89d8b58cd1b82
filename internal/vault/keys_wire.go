package vault

import (
	"encoding/json"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// The data actions of the keys data plane, as Azure RBAC names them
// (learn.microsoft.com/azure/role-based-access-control/permissions/security,
// Microsoft.KeyVault DataActions).
const (
	ActionKeysRead    = "Microsoft.KeyVault/vaults/keys/read"
	ActionKeysCreate  = "Microsoft.KeyVault/vaults/keys/create/action"
	ActionKeysImport  = "Microsoft.KeyVault/vaults/keys/import/action"
	ActionKeysUpdate  = "Microsoft.KeyVault/vaults/keys/update/action"
	ActionKeysDelete  = "Microsoft.KeyVault/vaults/keys/delete"
	ActionKeysRecover = "Microsoft.KeyVault/vaults/keys/recover/action"
	ActionKeysPurge   = "Microsoft.KeyVault/vaults/keys/purge/action"
	ActionKeysBackup  = "Microsoft.KeyVault/vaults/keys/backup/action"
	ActionKeysRestore = "Microsoft.KeyVault/vaults/keys/restore/action"
	ActionKeysRotate  = "Microsoft.KeyVault/vaults/keys/rotate/action"
	ActionKeysEncrypt = "Microsoft.KeyVault/vaults/keys/encrypt/action"
	ActionKeysDecrypt = "Microsoft.KeyVault/vaults/keys/decrypt/action"
	ActionKeysWrap    = "Microsoft.KeyVault/vaults/keys/wrap/action"
	ActionKeysUnwrap  = "Microsoft.KeyVault/vaults/keys/unwrap/action"
	ActionKeysSign    = "Microsoft.KeyVault/vaults/keys/sign/action"
	ActionKeysVerify  = "Microsoft.KeyVault/vaults/keys/verify/action"
)

// keyAttributes is KeyAttributes on the wire (integer Unix seconds). The
// read-only members a client may echo back are accepted and ignored. It
// repeats attributes' members rather than embed it: a decoding error
// names the member's path, which an embedded struct would lengthen.
type keyAttributes struct {
	Enabled         *bool           `json:"enabled,omitempty"`
	NotBefore       *int64          `json:"nbf,omitempty"`
	Expires         *int64          `json:"exp,omitempty"`
	Created         *int64          `json:"created,omitempty"`
	Updated         *int64          `json:"updated,omitempty"`
	RecoverableDays *int32          `json:"recoverableDays,omitempty"`
	RecoveryLevel   string          `json:"recoveryLevel,omitempty"`
	Exportable      *bool           `json:"exportable,omitempty"`
	Attestation     json.RawMessage `json:"attestation,omitempty"`
	HSMPlatform     *string         `json:"hsmPlatform,omitempty"`
	KeySize         *int32          `json:"key_size,omitempty"`
	ExternalKey     *bool           `json:"external_key,omitempty"`
}

// keyBundle is KeyBundle and DeletedKeyBundle.
type keyBundle struct {
	Key        jwk               `json:"key"`
	Attributes keyAttributes     `json:"attributes"`
	Tags       map[string]string `json:"tags,omitempty"`
	deletedState
}

// keyItem is KeyItem and DeletedKeyItem (a list's entries: no key
// material, kid without a version for the lists of keys).
type keyItem struct {
	Kid        string            `json:"kid"`
	Attributes keyAttributes     `json:"attributes"`
	Tags       map[string]string `json:"tags,omitempty"`
	deletedState
}

// createKeyParams is KeyCreateParameters.
type createKeyParams struct {
	Kty            *string            `json:"kty"`
	KeySize        *int               `json:"key_size"`
	PublicExponent *int               `json:"public_exponent"`
	KeyOps         []string           `json:"key_ops"`
	Attributes     *keyAttributes     `json:"attributes"`
	Tags           map[string]*string `json:"tags"`
	Crv            *string            `json:"crv"`
	ReleasePolicy  json.RawMessage    `json:"release_policy"`
}

// importKeyParams is KeyImportParameters.
type importKeyParams struct {
	HSM           *bool              `json:"Hsm"`
	Key           *jwk               `json:"key"`
	Attributes    *keyAttributes     `json:"attributes"`
	Tags          map[string]*string `json:"tags"`
	ReleasePolicy json.RawMessage    `json:"release_policy"`
}

// updateKeyParams is KeyUpdateParameters.
type updateKeyParams struct {
	KeyOps        []string           `json:"key_ops"`
	Attributes    *keyAttributes     `json:"attributes"`
	Tags          map[string]*string `json:"tags"`
	ReleasePolicy json.RawMessage    `json:"release_policy"`
}

// keyOpParams is KeyOperationsParameters (encrypt, decrypt, wrap,
// unwrap), KeySignParameters and KeyVerifyParameters (digest).
type keyOpParams struct {
	Alg    string `json:"alg"`
	Value  string `json:"value"`
	Digest string `json:"digest"`
	AAD    string `json:"aad"`
	IV     string `json:"iv"`
	Tag    string `json:"tag"`
}

// keyOpResult is KeyOperationResult.
type keyOpResult struct {
	Kid   string `json:"kid"`
	Value string `json:"value"`
}

type keyVerifyResult struct {
	Value bool `json:"value"`
}

// keyAttrs renders a key's attributes.
func keyAttrs(v store.Vault, k store.Key) keyAttributes {
	enabled := k.Enabled
	days := int32(v.SoftDeleteRetentionDays)
	exportable := false
	return keyAttributes{Enabled: &enabled, NotBefore: unix(k.NotBefore), Expires: unix(k.Expires),
		Created: unix(k.Created), Updated: unix(k.Updated), RecoverableDays: &days, RecoveryLevel: recoveryLevel(v),
		Exportable: &exportable}
}

// keyBundleOf renders a key version: its public JWK only — the private key
// is never in a bundle (it is not even unsealed to make one).
func keyBundleOf(base string, v store.Vault, k store.Key) keyBundle {
	var pub jwk
	_ = json.Unmarshal(k.Public, &pub)
	// Only the public members, whatever was stored.
	out := jwk{Kid: base + "/keys/" + k.Name + "/" + k.Version, Kty: k.KeyType, KeyOps: k.KeyOps,
		N: pub.N, E: pub.E, Crv: pub.Crv, X: pub.X, Y: pub.Y}
	if out.KeyOps == nil {
		out.KeyOps = []string{}
	}
	return keyBundle{Key: out, Attributes: keyAttrs(v, k), Tags: k.Tags, deletedState: deletedStateOf(k.Deleted)}
}

func keyItemOf(kid string, v store.Vault, k store.Key) keyItem {
	return keyItem{Kid: kid, Attributes: keyAttrs(v, k), Tags: k.Tags, deletedState: deletedStateOf(k.Deleted)}
}
