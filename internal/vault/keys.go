package vault

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/httpx"
	"github.com/tenantbridge/tenantbridge/internal/sealed"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// The keys data plane (Key Vault REST "Keys", as the azkeys client calls
// it): keys whose private half is generated or imported here, sealed under
// the KEK bound to tenant, vault, name and version, and used only inside
// the vault (sign, verify, encrypt, decrypt, wrap, unwrap); no operation
// answers it. Authorization, audit, errors and soft delete are the
// secrets'.

// keyScope is the resource id a data action on one key is decided at:
// a role assigned at .../vaults/{v}/keys/{name} grants that key only.
func (q *request) keyScope() string {
	if q.route.name == "" {
		return q.vault.ResourceID
	}
	return q.vault.ResourceID + "/keys/" + q.route.name
}

// keyAAD binds a sealed private key to its tenant, vault, name and version.
func keyAAD(v store.Vault, name, version string) []byte {
	return []byte("vault/key/" + v.TenantID + "/" + strings.ToLower(v.Name) + "/" + strings.ToLower(name) + "/" + version)
}

// serveKeys dispatches an authenticated request under /keys or /deletedkeys.
func (s *Service) serveKeys(q *request) {
	kr := parseKeyPath(q.r.Method, q.r.URL.Path)
	switch {
	case kr.badMethod:
		writeError(q.w, http.StatusMethodNotAllowed, "BadParameter", fmt.Sprintf("The method %s is not allowed on %s.", q.r.Method, q.r.URL.Path), "")
		return
	case kr.op == kopNone:
		writeError(q.w, http.StatusNotFound, "NotFound", "The requested resource was not found.", "")
		return
	case kr.badName:
		writeError(q.w, http.StatusBadRequest, "BadParameter", "The request URI contains an invalid name: "+kr.name, "")
		return
	}
	q.route = route{name: kr.name, version: strings.ToLower(kr.version)}
	switch kr.op {
	case kopCreate:
		s.keyCreate(q)
	case kopImport:
		s.keyImport(q)
	case kopGet:
		s.keyGet(q)
	case kopList:
		s.keyList(q, false)
	case kopListDeleted:
		s.keyList(q, true)
	case kopVersions:
		s.keyVersions(q)
	case kopUpdate:
		s.keyUpdate(q)
	case kopDelete:
		s.keyDelete(q)
	case kopGetDeleted:
		s.keyGetDeleted(q)
	case kopRecover:
		s.keyRecover(q)
	case kopPurge:
		s.keyPurge(q)
	case kopBackup:
		s.keyBackup(q)
	case kopRestore:
		s.keyRestore(q)
	case kopRotate:
		s.keyRotate(q)
	default:
		s.keyCrypto(q, kr.op)
	}
}

// keyStoreError answers a store failure in Key Vault's terms for keys.
func (s *Service) keyStoreError(q *request, action string, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.record(q, action, "KeyNotFound", q.route.version)
		writeError(q.w, http.StatusNotFound, "KeyNotFound", fmt.Sprintf(
			"A key with (name/id) %s was not found in this key vault. If you recently deleted this key you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182",
			nameVersion(q.route)), "")
	case errors.Is(err, store.ErrConflict):
		s.record(q, action, "Conflict", "")
		writeError(q.w, http.StatusConflict, "Conflict", fmt.Sprintf(
			"Key %s is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the key can only be recovered or purged.",
			q.route.name), "ObjectIsDeletedButRecoverable")
	default:
		s.internal(q.w, q.r, action, err)
	}
}

func (s *Service) keyChangeError(q *request, action string, err error) {
	var af auditFailed
	if errors.As(err, &af) {
		s.internal(q.w, q.r, action, err)
		return
	}
	s.keyStoreError(q, action, err)
}

// refuse audits a refusal and answers it: 400 BadParameter for errKey.
func (s *Service) refuse(q *request, action string, err error) {
	var ek errKey
	if errors.As(err, &ek) {
		s.record(q, action, "BadParameter", q.route.version)
		badParameter(q.w, string(ek))
		return
	}
	s.internal(q.w, q.r, action, err)
}

// readKeyBody reads a JSON body into v; it audits and answers a 400 or
// 413 itself. Every body parser of the keys surface is behind it.
func (s *Service) readKeyBody(q *request, action string, v any) bool {
	body, err := io.ReadAll(q.r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.record(q, action, "BadParameter", "body too large")
			writeError(q.w, http.StatusRequestEntityTooLarge, "BadParameter", "The request body is too large.", "")
			return false
		}
		badParameter(q.w, "The request body could not be read.")
		return false
	}
	if err := httpx.DecodeJSON(body, v); err != nil {
		s.record(q, action, "BadParameter", "")
		badParameter(q.w, "The request body is not valid: "+err.Error())
		return false
	}
	return true
}

// applyKeyProps applies attributes, tags and key_ops (nil: unchanged).
func applyKeyProps(k *store.Key, attrs *keyAttributes, tags map[string]*string, ops []string, release json.RawMessage) error {
	// Exportable keys and release policies (secure key release) are
	// Premium/Managed HSM features (Keys - Create Key: "release_policy …
	// exportable"); a Standard vault refuses them.
	if len(release) > 0 && string(release) != "null" {
		return errKey("Property release_policy is not supported: exportable keys need a Premium vault or a Managed HSM.")
	}
	if ops != nil {
		checked, err := checkOps(baseKty(k.KeyType), ops)
		if err != nil {
			return err
		}
		k.KeyOps = checked
	}
	if attrs != nil {
		if attrs.Exportable != nil && *attrs.Exportable {
			return errKey("Attribute exportable is not supported: exportable keys need a Premium vault or a Managed HSM.")
		}
		if attrs.Enabled != nil {
			k.Enabled = *attrs.Enabled
		}
		if attrs.NotBefore != nil {
			k.NotBefore = fromUnix(attrs.NotBefore)
		}
		if attrs.Expires != nil {
			k.Expires = fromUnix(attrs.Expires)
		}
		for _, t := range []time.Time{k.NotBefore, k.Expires} {
			if !t.IsZero() && (t.Year() < 1970 || t.Year() > 9999) {
				return errKey("Attributes nbf and exp must be Unix times between 1970 and 9999.")
			}
		}
	}
	if tags != nil {
		if len(tags) > maxTags {
			return errKey(fmt.Sprintf("A key can have at most %d tags.", maxTags))
		}
		k.Tags = map[string]string{}
		for name, v := range tags {
			if name == "" || len(name) > 512 {
				return errKey("Tag names must be 1 to 512 characters.")
			}
			val := ""
			if v != nil {
				val = *v
			}
			if len(val) > 256 {
				return errKey("Tag values must be at most 256 characters.")
			}
			k.Tags[name] = val
		}
	}
	return nil
}

// newKeyVersion seals priv as a new version of the route's key, with
// props from k (type, ops, attributes, tags) and stores it.
func (s *Service) newKeyVersion(q *request, action string, priv crypto.Signer, k store.Key) {
	pub, err := publicJWK(priv)
	if err != nil {
		s.internal(q.w, q.r, action, err)
		return
	}
	k.Public, err = json.Marshal(pub)
	if err != nil {
		s.internal(q.w, q.r, action, err)
		return
	}
	k.Vault, k.Name, k.Version, k.KeyType = q.vault.Name, q.route.name, newVersion(), pub.Kty
	der, err := marshalPrivate(priv)
	if err != nil {
		s.internal(q.w, q.r, action, err)
		return
	}
	k.Private, err = sealed.Seal(s.kek, der, keyAAD(q.vault, k.Name, k.Version))
	clear(der)
	if err != nil {
		s.internal(q.w, q.r, action, err)
		return
	}
	var stored store.Key
	err = s.change(q, action, func(tx store.Store) (string, error) {
		var err error
		stored, err = createKeyVersion(q.r.Context(), tx, k)
		return "version " + stored.Version, err
	})
	if err != nil {
		s.keyChangeError(q, action, err)
		return
	}
	answer(q, keyBundleOf(q.base, q.vault, stored))
}

// createKeyVersion stores a new version; concurrent creators of one name
// race for the next sequence number and the loser retries, unless the
// name is deleted.
func createKeyVersion(ctx context.Context, st store.Store, k store.Key) (store.Key, error) {
	for range 5 {
		stored, err := st.CreateKeyVersion(ctx, k)
		if !errors.Is(err, store.ErrConflict) {
			return stored, err
		}
		if _, derr := st.GetDeletedKey(ctx, k.Vault, k.Name); derr == nil {
			return store.Key{}, err
		}
	}
	return store.Key{}, fmt.Errorf("vault: create key %s: too many concurrent writers", k.Name)
}

func (s *Service) keyCreate(q *request) {
	const action = "key.create"
	if !s.authorize(q, action, ActionKeysCreate, q.keyScope()) {
		return
	}
	var p createKeyParams
	if !s.readKeyBody(q, action, &p) {
		return
	}
	kty := ""
	if p.Kty != nil {
		kty = *p.Kty
	}
	if err := checkKty(kty, false); err != nil {
		s.refuse(q, action, err)
		return
	}
	k := store.Key{KeyType: kty, Enabled: true}
	if err := applyKeyProps(&k, p.Attributes, p.Tags, p.KeyOps, p.ReleasePolicy); err != nil {
		s.refuse(q, action, err)
		return
	}
	if k.KeyOps == nil {
		k.KeyOps, _ = checkOps(kty, nil)
	}
	priv, err := generate(kty, p.KeySize, p.PublicExponent, p.Crv)
	if err != nil {
		s.refuse(q, action, err)
		return
	}
	s.newKeyVersion(q, action, priv, k)
}

func (s *Service) keyImport(q *request) {
	const action = "key.import"
	if !s.authorize(q, action, ActionKeysImport, q.keyScope()) {
		return
	}
	var p importKeyParams
	if !s.readKeyBody(q, action, &p) {
		return
	}
	priv, k, err := parseImport(p)
	if err != nil {
		s.refuse(q, action, err)
		return
	}
	s.newKeyVersion(q, action, priv, k)
}

// parseImport checks an import body: the key with its private part and
// the key's properties (key_ops from the JWK).
func parseImport(p importKeyParams) (crypto.Signer, store.Key, error) {
	if p.Key == nil {
		return nil, store.Key{}, errKey("Property key is required.")
	}
	if err := checkKty(p.Key.Kty, p.HSM != nil && *p.HSM); err != nil {
		return nil, store.Key{}, err
	}
	priv, err := importJWK(*p.Key)
	if err != nil {
		return nil, store.Key{}, err
	}
	k := store.Key{KeyType: baseKty(p.Key.Kty), Enabled: true}
	if err := applyKeyProps(&k, p.Attributes, p.Tags, p.Key.KeyOps, p.ReleasePolicy); err != nil {
		return nil, store.Key{}, err
	}
	if k.KeyOps == nil {
		k.KeyOps, _ = checkOps(k.KeyType, nil)
	}
	return priv, k, nil
}

// lookupKey is GetKey, cached (sealed, as stored); the result's slices and
// maps are shared and must not be modified.
func (s *Service) lookupKey(ctx context.Context, vault, name, version string) (store.Key, error) {
	k := secretKey{"k/" + strings.ToLower(vault), strings.ToLower(name), version}
	return s.keyByKey.Get(k, func() (store.Key, error) { return s.st.GetKey(ctx, vault, name, version) })
}

// usable refuses an operation on a key version that is disabled, expired
// or not yet valid (key attributes enabled, exp, nbf: "Key types,
// algorithms, and operations", key attributes), answering 403 Forbidden.
func (s *Service) usable(q *request, action, op string, k store.Key, crypto bool) bool {
	now := s.now()
	var inner, msg string
	switch {
	case !k.Enabled:
		inner, msg = "KeyDisabled", fmt.Sprintf("Operation %s is not allowed on a disabled key.", op)
	case crypto && !k.Expires.IsZero() && !now.Before(k.Expires):
		inner, msg = "KeyExpired", fmt.Sprintf("Operation %s is not allowed on an expired key.", op)
	case crypto && !k.NotBefore.IsZero() && now.Before(k.NotBefore):
		inner, msg = "KeyNotYetValid", fmt.Sprintf("Operation %s is not allowed on a key that is not yet valid.", op)
	default:
		return true
	}
	s.record(q, action, inner, k.Version)
	writeError(q.w, http.StatusForbidden, "Forbidden", msg, inner)
	return false
}

func (s *Service) keyGet(q *request) {
	const action = "key.get"
	if !s.authorize(q, action, ActionKeysRead, q.keyScope()) {
		return
	}
	k, err := s.lookupKey(q.r.Context(), q.vault.Name, q.route.name, q.route.version)
	if err != nil {
		s.keyStoreError(q, action, err)
		return
	}
	if !s.usable(q, action, "get", k, false) {
		return
	}
	s.succeed(q, action, "version "+k.Version, keyBundleOf(q.base, q.vault, k))
}

func (s *Service) keyList(q *request, deleted bool) {
	if !deleted {
		s.keyListPage(q, "key.list", q.vault.ResourceID, "/keys", s.st.ListKeys,
			func(k store.Key) string { return strings.ToLower(k.Name) },
			func(k store.Key) keyItem { return keyItemOf(q.base+"/keys/"+k.Name, q.vault, k) })
		return
	}
	s.keyListPage(q, "key.listDeleted", q.vault.ResourceID, "/deletedkeys", s.st.ListDeletedKeys,
		func(k store.Key) string { return strings.ToLower(k.Name) },
		func(k store.Key) keyItem { return keyItemOf(q.base+"/keys/"+k.Name, q.vault, k) })
}

func (s *Service) keyVersions(q *request) {
	s.keyListPage(q, "key.versions", q.keyScope(), "/keys/"+q.route.name+"/versions",
		func(ctx context.Context, query store.KeyQuery) ([]store.Key, error) {
			query.Name = q.route.name
			return s.st.ListKeyVersions(ctx, query)
		},
		func(k store.Key) string { return k.Version },
		func(k store.Key) keyItem { return keyItemOf(q.base+"/keys/"+k.Name+"/"+k.Version, q.vault, k) })
}

// keyListPage is listPage for keys: authorize reading at scope, fetch a
// page after the $skiptoken (and one more, to learn whether a next page
// follows), answer with each item.
func (s *Service) keyListPage(q *request, action, scope, path string, fetch func(context.Context, store.KeyQuery) ([]store.Key, error),
	cursor func(store.Key) string, item func(store.Key) keyItem) {
	if !s.authorize(q, action, ActionKeysRead, scope) {
		return
	}
	limit, after, ok := pageParams(q)
	if !ok {
		return
	}
	ks, err := fetch(q.r.Context(), store.KeyQuery{Vault: q.vault.Name, After: strings.ToLower(after), Limit: limit + 1})
	if err != nil {
		s.internal(q.w, q.r, action, err)
		return
	}
	out := keyListResult{Value: []keyItem{}}
	if len(ks) > limit {
		ks = ks[:limit]
		out.NextLink = nextLink(q, path, limit, cursor(ks[limit-1]))
	}
	for _, k := range ks {
		out.Value = append(out.Value, item(k))
	}
	s.succeed(q, action, "", out)
}

func (s *Service) keyUpdate(q *request) {
	const action = "key.update"
	if !s.authorize(q, action, ActionKeysUpdate, q.keyScope()) {
		return
	}
	var p updateKeyParams
	if !s.readKeyBody(q, action, &p) {
		return
	}
	ctx := q.r.Context()
	var upd store.Key
	var bad error
	err := s.change(q, action, func(tx store.Store) (string, error) {
		k, err := tx.GetKey(ctx, q.vault.Name, q.route.name, q.route.version)
		if err != nil {
			return "", err
		}
		if bad = applyKeyProps(&k, p.Attributes, p.Tags, p.KeyOps, p.ReleasePolicy); bad != nil {
			return "", errBadParameter
		}
		k.Updated = s.now()
		upd, err = tx.UpdateKey(ctx, k)
		return "version " + upd.Version, err
	})
	if bad != nil {
		s.refuse(q, action, bad)
		return
	}
	if err != nil {
		s.keyChangeError(q, action, err)
		return
	}
	answer(q, keyBundleOf(q.base, q.vault, upd))
}

// keyOp is the flow of the operations on one whole key: authorize
// dataAction on it, run op, answer the key's bundle. A write runs op and
// its audit record in one transaction.
func (s *Service) keyOpFlow(q *request, action, dataAction string, write bool, op func(ctx context.Context, st store.Store) (store.Key, error)) {
	if !s.authorize(q, action, dataAction, q.keyScope()) {
		return
	}
	ctx := q.r.Context()
	if !write {
		k, err := op(ctx, s.st)
		if err != nil {
			s.keyStoreError(q, action, err)
			return
		}
		s.succeed(q, action, "", keyBundleOf(q.base, q.vault, k))
		return
	}
	var k store.Key
	err := s.change(q, action, func(tx store.Store) (string, error) {
		var err error
		k, err = op(ctx, tx)
		return "", err
	})
	if err != nil {
		s.keyChangeError(q, action, err)
		return
	}
	answer(q, keyBundleOf(q.base, q.vault, k))
}

func (s *Service) keyDelete(q *request) {
	s.keyOpFlow(q, "key.delete", ActionKeysDelete, true, func(ctx context.Context, st store.Store) (store.Key, error) {
		now := s.now().UTC()
		return st.DeleteKey(ctx, q.vault.Name, q.route.name, store.SecretDeletion{
			RecoveryID:         q.base + "/deletedkeys/" + q.route.name,
			DeletedDate:        now,
			ScheduledPurgeDate: now.Add(time.Duration(q.vault.SoftDeleteRetentionDays) * 24 * time.Hour),
		})
	})
}

func (s *Service) keyGetDeleted(q *request) {
	s.keyOpFlow(q, "key.getDeleted", ActionKeysRead, false, func(ctx context.Context, st store.Store) (store.Key, error) {
		return st.GetDeletedKey(ctx, q.vault.Name, q.route.name)
	})
}

func (s *Service) keyRecover(q *request) {
	s.keyOpFlow(q, "key.recover", ActionKeysRecover, true, func(ctx context.Context, st store.Store) (store.Key, error) {
		return st.RecoverKey(ctx, q.vault.Name, q.route.name)
	})
}

func (s *Service) keyPurge(q *request) {
	const action = "key.purge"
	if !s.authorize(q, action, ActionKeysPurge, q.keyScope()) {
		return
	}
	// Purge protection: a deleted key stays until its retention ends
	// (Key Vault soft-delete overview, "Purge protection").
	if q.vault.EnablePurgeProtection {
		s.record(q, action, "PurgeProtectionEnabled", "")
		writeError(q.w, http.StatusForbidden, "Forbidden",
			fmt.Sprintf("Operation \"purge\" is not allowed because purge protection is enabled for this vault. Key Vault service will automatically purge it after the retention period has passed. Vault: %s", q.vault.Name), "")
		return
	}
	err := s.change(q, action, func(tx store.Store) (string, error) {
		return "", tx.PurgeKey(q.r.Context(), q.vault.Name, q.route.name)
	})
	if err != nil {
		s.keyChangeError(q, action, err)
		return
	}
	answer(q, nil)
}

// keyRotate makes a new version with the latest version's type, size or
// curve, key_ops and tags (Keys - Rotate Key; the data action's text:
// "Creates a new version of an existing key (with the same parameters)").
func (s *Service) keyRotate(q *request) {
	const action = "key.rotate"
	if !s.authorize(q, action, ActionKeysRotate, q.keyScope()) {
		return
	}
	cur, err := s.st.GetKey(q.r.Context(), q.vault.Name, q.route.name, "")
	if err != nil {
		s.keyStoreError(q, action, err)
		return
	}
	var pub jwk
	if err := json.Unmarshal(cur.Public, &pub); err != nil {
		s.internal(q.w, q.r, action, err)
		return
	}
	var priv crypto.Signer
	switch cur.KeyType {
	case ktyRSA:
		n, err := decodeBase64URL(pub.N)
		if err != nil {
			s.internal(q.w, q.r, action, err)
			return
		}
		bits := len(n) * 8
		priv, err = generate(ktyRSA, &bits, nil, nil)
		if err != nil {
			s.refuse(q, action, err)
			return
		}
	default:
		crv := pub.Crv
		priv, err = generate(ktyEC, nil, nil, &crv)
		if err != nil {
			s.refuse(q, action, err)
			return
		}
	}
	q.route.name = cur.Name
	s.newKeyVersion(q, action, priv, store.Key{KeyOps: slices.Clone(cur.KeyOps), Tags: cur.Tags, Enabled: true})
}

// The key_ops entry each cryptographic operation needs, its data action
// and its audit action.
var cryptoSpec = map[keyOp]struct{ keyOp, dataAction, action string }{
	kopSign:    {"sign", ActionKeysSign, "key.sign"},
	kopVerify:  {"verify", ActionKeysVerify, "key.verify"},
	kopEncrypt: {"encrypt", ActionKeysEncrypt, "key.encrypt"},
	kopDecrypt: {"decrypt", ActionKeysDecrypt, "key.decrypt"},
	kopWrap:    {"wrapKey", ActionKeysWrap, "key.wrapKey"},
	kopUnwrap:  {"unwrapKey", ActionKeysUnwrap, "key.unwrapKey"},
}

// keyCrypto serves sign, verify, encrypt, decrypt, wrapKey and unwrapKey:
// authorized per data action at the key's scope, then refused (403) when
// the version is disabled, outside nbf/exp or its key_ops lack the
// operation; the private key is unsealed for the operation only.
func (s *Service) keyCrypto(q *request, op keyOp) {
	spec := cryptoSpec[op]
	if !s.authorize(q, spec.action, spec.dataAction, q.keyScope()) {
		return
	}
	var p keyOpParams
	if !s.readKeyBody(q, spec.action, &p) {
		return
	}
	value, err := decodeBase64URL(p.Value)
	if err != nil {
		s.refuse(q, spec.action, errKey("Property value must be base64url."))
		return
	}
	var digest []byte
	if op == kopVerify {
		if digest, err = decodeBase64URL(p.Digest); err != nil {
			s.refuse(q, spec.action, errKey("Property digest must be base64url."))
			return
		}
	} else if p.Digest != "" {
		s.refuse(q, spec.action, errKey("Property digest is valid for verify only."))
		return
	}
	// aad, iv and tag belong to the symmetric algorithms of Managed HSM.
	if p.AAD != "" || p.IV != "" || p.Tag != "" {
		s.refuse(q, spec.action, errKey("Properties aad, iv and tag are not valid for RSA algorithms."))
		return
	}
	if p.Alg == "" {
		s.refuse(q, spec.action, errKey("Property alg is required."))
		return
	}
	k, err := s.lookupKey(q.r.Context(), q.vault.Name, q.route.name, q.route.version)
	if err != nil {
		s.keyStoreError(q, spec.action, err)
		return
	}
	if !s.usable(q, spec.action, spec.keyOp, k, true) {
		return
	}
	if !slices.Contains(k.KeyOps, spec.keyOp) {
		s.record(q, spec.action, "KeyOperationForbidden", k.Version)
		writeError(q.w, http.StatusForbidden, "Forbidden", fmt.Sprintf("Operation %s is not permitted on this key.", spec.keyOp), "KeyOperationForbidden")
		return
	}
	var sa signAlg
	if op == kopSign || op == kopVerify {
		d := value
		if op == kopVerify {
			d = digest
		}
		if sa, err = checkSign(p.Alg, k.KeyType, curveOf(k.Public), d); err != nil {
			s.refuse(q, spec.action, err)
			return
		}
	}
	der, err := sealed.Open(s.kek, k.Private, keyAAD(q.vault, k.Name, k.Version))
	if err != nil {
		s.internal(q.w, q.r, spec.action, err)
		return
	}
	priv, err := parsePrivate(der)
	clear(der)
	if err != nil {
		s.internal(q.w, q.r, spec.action, err)
		return
	}
	kid := q.base + "/keys/" + k.Name + "/" + k.Version
	detail := "version " + k.Version + " alg " + p.Alg
	var out []byte
	switch op {
	case kopSign:
		out, err = sign(priv, sa, value)
	case kopVerify:
		s.succeed(q, spec.action, detail, keyVerifyResult{Value: verify(priv, sa, digest, value)})
		return
	case kopEncrypt, kopWrap:
		out, err = encrypt(priv, p.Alg, value)
	case kopDecrypt, kopUnwrap:
		out, err = decrypt(priv, p.Alg, value)
	}
	if err != nil {
		s.refuse(q, spec.action, err)
		return
	}
	s.succeed(q, spec.action, detail, keyOpResult{Kid: kid, Value: base64.RawURLEncoding.EncodeToString(out)})
}
