package vault

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/sealed"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// The keys data plane (Key Vault REST "Keys", as the azkeys client calls
// it): keys whose private half is generated or imported here, sealed under
// the KEK bound to tenant, vault, name and version, and used only inside
// the vault (sign, verify, encrypt, decrypt, wrap, unwrap); no operation
// answers it. Authorization, audit, errors and soft delete are the
// secrets'.

// keyAAD binds a sealed private key to its tenant, vault, name and version.
func keyAAD(v store.Vault, name, version string) []byte {
	return []byte("vault/key/" + v.TenantID + "/" + strings.ToLower(v.Name) + "/" + strings.ToLower(name) + "/" + version)
}

// serveKeys dispatches an authenticated request under /keys or /deletedkeys.
func (s *Service) serveKeys(q *request) {
	kr := parseKeyPath(q.r.Method, q.r.URL.Path)
	if routeError(q.w, q.r, kr) {
		return
	}
	q.route = kr
	q.route.version = strings.ToLower(kr.version)
	switch kr.op {
	case opCreate:
		s.keyCreate(q)
	case opImport:
		s.keyImport(q)
	case opGet:
		s.keyGet(q)
	case opList:
		s.keyList(q, false)
	case opListDeleted:
		s.keyList(q, true)
	case opVersions:
		s.keyVersions(q)
	case opUpdate:
		s.keyUpdate(q)
	case opDelete:
		s.keyDelete(q)
	case opGetDeleted:
		s.keyGetDeleted(q)
	case opRecover:
		s.keyRecover(q)
	case opPurge:
		s.keyPurge(q)
	case opBackup:
		s.keyBackup(q)
	case opRestore:
		s.keyRestore(q)
	case opRotate:
		s.keyRotate(q)
	default:
		s.keyCrypto(q, kr.op)
	}
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
		if msg := applyValidity(attrs.Enabled, attrs.NotBefore, attrs.Expires, &k.Enabled, &k.NotBefore, &k.Expires); msg != "" {
			return errKey(msg)
		}
	}
	if msg := applyTags(&k.Tags, tags, "key"); msg != "" {
		return errKey(msg)
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
		stored, err = createVersion(q.r.Context(), tx.CreateKeyVersion, tx.GetDeletedKey, k, k.Vault, k.Name, "create key")
		return "version " + stored.Version, err
	})
	if err != nil {
		s.changeError(q, action, err)
		return
	}
	answer(q, keyBundleOf(q.base, q.vault, stored))
}

func (s *Service) keyCreate(q *request) {
	const action = "key.create"
	if !s.authorize(q, action, ActionKeysCreate, q.scope()) {
		return
	}
	var p createKeyParams
	if !s.readBody(q, action, &p) {
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
	if !s.authorize(q, action, ActionKeysImport, q.scope()) {
		return
	}
	var p importKeyParams
	if !s.readBody(q, action, &p) {
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
	if !s.authorize(q, action, ActionKeysRead, q.scope()) {
		return
	}
	k, err := s.lookupKey(q.r.Context(), q.vault.Name, q.route.name, q.route.version)
	if err != nil {
		s.storeError(q, action, err)
		return
	}
	if !s.usable(q, action, "get", k, false) {
		return
	}
	s.succeed(q, action, "version "+k.Version, keyBundleOf(q.base, q.vault, k))
}

func (s *Service) keyList(q *request, deleted bool) {
	if !deleted {
		listPage(s, q, "key.list", q.vault.ResourceID, "/keys", s.st.ListKeys,
			func(k store.Key) string { return strings.ToLower(k.Name) },
			func(k store.Key) keyItem { return keyItemOf(q.base+"/keys/"+k.Name, q.vault, k) })
		return
	}
	listPage(s, q, "key.listDeleted", q.vault.ResourceID, "/deletedkeys", s.st.ListDeletedKeys,
		func(k store.Key) string { return strings.ToLower(k.Name) },
		func(k store.Key) keyItem { return keyItemOf(q.base+"/keys/"+k.Name, q.vault, k) })
}

func (s *Service) keyVersions(q *request) {
	listPage(s, q, "key.versions", q.scope(), "/keys/"+q.route.name+"/versions",
		func(ctx context.Context, query store.KeyQuery) ([]store.Key, error) {
			query.Name = q.route.name
			return s.st.ListKeyVersions(ctx, query)
		},
		func(k store.Key) string { return k.Version },
		func(k store.Key) keyItem { return keyItemOf(q.base+"/keys/"+k.Name+"/"+k.Version, q.vault, k) })
}

func (s *Service) keyUpdate(q *request) {
	const action = "key.update"
	if !s.authorize(q, action, ActionKeysUpdate, q.scope()) {
		return
	}
	var p updateKeyParams
	if !s.readBody(q, action, &p) {
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
		s.changeError(q, action, err)
		return
	}
	answer(q, keyBundleOf(q.base, q.vault, upd))
}

// keyOp is objectOp for keys, answering the key's bundle.
func (s *Service) keyOp(q *request, action, dataAction string, write bool, op func(ctx context.Context, st store.Store) (store.Key, error)) {
	objectOp(s, q, action, dataAction, write, op, func(k store.Key) any { return keyBundleOf(q.base, q.vault, k) })
}

func (s *Service) keyDelete(q *request) {
	s.keyOp(q, "key.delete", ActionKeysDelete, true, func(ctx context.Context, st store.Store) (store.Key, error) {
		return st.DeleteKey(ctx, q.vault.Name, q.route.name, s.deletion(q))
	})
}

func (s *Service) keyGetDeleted(q *request) {
	s.keyOp(q, "key.getDeleted", ActionKeysRead, false, func(ctx context.Context, st store.Store) (store.Key, error) {
		return st.GetDeletedKey(ctx, q.vault.Name, q.route.name)
	})
}

func (s *Service) keyRecover(q *request) {
	s.keyOp(q, "key.recover", ActionKeysRecover, true, func(ctx context.Context, st store.Store) (store.Key, error) {
		return st.RecoverKey(ctx, q.vault.Name, q.route.name)
	})
}

func (s *Service) keyPurge(q *request) {
	s.purgeObject(q, "key.purge", ActionKeysPurge, store.Store.PurgeKey)
}

// keyRotate makes a new version with the latest version's type, size or
// curve, key_ops and tags (Keys - Rotate Key; the data action's text:
// "Creates a new version of an existing key (with the same parameters)").
func (s *Service) keyRotate(q *request) {
	const action = "key.rotate"
	if !s.authorize(q, action, ActionKeysRotate, q.scope()) {
		return
	}
	cur, err := s.st.GetKey(q.r.Context(), q.vault.Name, q.route.name, "")
	if err != nil {
		s.storeError(q, action, err)
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
var cryptoSpec = map[op]struct{ keyOp, dataAction, action string }{
	opSign:    {"sign", ActionKeysSign, "key.sign"},
	opVerify:  {"verify", ActionKeysVerify, "key.verify"},
	opEncrypt: {"encrypt", ActionKeysEncrypt, "key.encrypt"},
	opDecrypt: {"decrypt", ActionKeysDecrypt, "key.decrypt"},
	opWrap:    {"wrapKey", ActionKeysWrap, "key.wrapKey"},
	opUnwrap:  {"unwrapKey", ActionKeysUnwrap, "key.unwrapKey"},
}

// keyCrypto serves sign, verify, encrypt, decrypt, wrapKey and unwrapKey:
// authorized per data action at the key's scope, then refused (403) when
// the version is disabled, outside nbf/exp or its key_ops lack the
// operation; the private key is unsealed for the operation only.
func (s *Service) keyCrypto(q *request, o op) {
	spec := cryptoSpec[o]
	if !s.authorize(q, spec.action, spec.dataAction, q.scope()) {
		return
	}
	var p keyOpParams
	if !s.readBody(q, spec.action, &p) {
		return
	}
	value, err := decodeBase64URL(p.Value)
	if err != nil {
		s.refuse(q, spec.action, errKey("Property value must be base64url."))
		return
	}
	var digest []byte
	if o == opVerify {
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
		s.storeError(q, spec.action, err)
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
	if o == opSign || o == opVerify {
		d := value
		if o == opVerify {
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
	switch o {
	case opSign:
		out, err = sign(priv, sa, value)
	case opVerify:
		s.succeed(q, spec.action, detail, keyVerifyResult{Value: verify(priv, sa, digest, value)})
		return
	case opEncrypt, opWrap:
		out, err = encrypt(priv, p.Alg, value)
	case opDecrypt, opUnwrap:
		out, err = decrypt(priv, p.Alg, value)
	}
	if err != nil {
		s.refuse(q, spec.action, err)
		return
	}
	s.succeed(q, spec.action, detail, keyOpResult{Kid: kid, Value: base64.RawURLEncoding.EncodeToString(out)})
}
