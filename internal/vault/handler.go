package vault

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/audit"
	"github.com/tenantbridge/tenantbridge/internal/httpx"
	"github.com/tenantbridge/tenantbridge/internal/sealed"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/token"
)

// Limits.
const (
	// MaxValueBytes is Key Vault's limit on a secret value (25 KiB).
	MaxValueBytes = 25 * 1024
	// maxBody bounds request bodies: a value, its JSON escaping, tags; a
	// restore blob of many versions.
	maxBody = 1 << 20
	// maxTags is Key Vault's limit on tags per secret.
	maxTags = 15
	// defaultPage and maxPage bound maxresults (Key Vault allows 1..25).
	defaultPage = 25
	maxPage     = 25
)

// request is what every operation works with once the caller is known.
type request struct {
	r      *http.Request
	w      http.ResponseWriter
	route  route
	vault  store.Vault
	base   string // https://{vault host}
	claims token.Claims
	actor  string // oid
	home   string // actor's home tenant
}

// ServeHTTP serves https://{vault}.vault.{domain}/… .
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	name, suffix, ok := strings.Cut(host, ".")
	if !ok || name == "" || suffix == "" {
		writeError(w, http.StatusNotFound, "VaultNotFound", "The vault could not be found.", "")
		return
	}
	v, err := s.lookupVault(r.Context(), name)
	if errors.Is(err, store.ErrNotFound) {
		// Real Key Vault fails DNS; the nearest HTTP answer is 404.
		writeError(w, http.StatusNotFound, "VaultNotFound", fmt.Sprintf("The vault %s could not be found.", name), "")
		return
	}
	if err != nil {
		s.internal(w, r, "get vault", err)
		return
	}
	resource := "https://" + strings.ToLower(suffix)
	challenge := func() {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer authorization="%s/%s", resource="%s"`,
			strings.TrimRight(s.loginBase(r), "/"), v.TenantID, resource))
	}
	raw, hasBearer := bearer(r)
	if !hasBearer {
		challenge()
		writeError(w, http.StatusUnauthorized, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.", "")
		return
	}
	claims, err := s.verifier.Verify(r.Context(), raw, Resource, AppID, resource)
	if errors.Is(err, token.ErrTrustRevoked) {
		// Continuous access evaluation: the client must get a new token,
		// which the token service will refuse while the trust is gone.
		w.Header().Set("WWW-Authenticate", token.ClaimsChallenge(strings.TrimRight(s.loginBase(r), "/")+"/"+v.TenantID+"/oauth2/authorize", AppID, s.now()))
		writeError(w, http.StatusUnauthorized, "Unauthorized", "AKV10013: The token was issued through a trust that has been revoked (continuous access evaluation).", "")
		return
	}
	if err != nil {
		challenge()
		writeError(w, http.StatusUnauthorized, "Unauthorized", "AKV10022: Invalid audience, issuer or token.", "")
		return
	}
	if !strings.EqualFold(claims.TenantID, v.TenantID) {
		challenge()
		writeError(w, http.StatusUnauthorized, "Unauthorized",
			fmt.Sprintf("AKV10032: Invalid issuer. Expected one of https://sts.windows.net/%s/, found https://sts.windows.net/%s/.", v.TenantID, claims.TenantID), "")
		return
	}
	if r.URL.Query().Get("api-version") == "" {
		writeError(w, http.StatusBadRequest, "BadParameter", "The request is missing the api-version query parameter.", "")
		return
	}
	if isKeyPath(r.URL.Path) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		s.serveKeys(&request{r: r, w: w, vault: v, base: "https://" + host, claims: claims,
			actor: claims.ObjectID, home: homeTenant(claims)})
		return
	}
	rt := parsePath(r.Method, r.URL.Path)
	switch {
	case rt.badMethod:
		writeError(w, http.StatusMethodNotAllowed, "BadParameter", fmt.Sprintf("The method %s is not allowed on %s.", r.Method, r.URL.Path), "")
		return
	case rt.op == opNone:
		writeError(w, http.StatusNotFound, "NotFound", "The requested resource was not found.", "")
		return
	case rt.badName:
		writeError(w, http.StatusBadRequest, "BadParameter", "The request URI contains an invalid name: "+rt.name, "")
		return
	}
	q := &request{r: r, w: w, route: rt, vault: v, base: "https://" + host, claims: claims,
		actor: claims.ObjectID, home: homeTenant(claims)}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	switch rt.op {
	case opSet:
		s.set(q)
	case opGet:
		s.get(q)
	case opList:
		s.list(q, false)
	case opListDeleted:
		s.list(q, true)
	case opVersions:
		s.versions(q)
	case opUpdate:
		s.update(q)
	case opDelete:
		s.delete(q)
	case opGetDeleted:
		s.getDeleted(q)
	case opRecover:
		s.recover(q)
	case opPurge:
		s.purge(q)
	case opBackup:
		s.backup(q)
	case opRestore:
		s.restore(q)
	}
}

// bearer returns the token of an Authorization: Bearer header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// homeTenant is the caller's home tenant: the tenant in idp for a
// principal from another tenant, else tid.
func homeTenant(c token.Claims) string {
	if c.IDP != "" {
		if u, err := url.Parse(c.IDP); err == nil && u.Host != "" {
			if seg := strings.Trim(u.Path, "/"); seg != "" {
				return strings.Split(seg, "/")[0]
			}
		}
		return c.IDP
	}
	return c.TenantID
}

func (s *Service) internal(w http.ResponseWriter, r *http.Request, what string, err error) {
	s.log.ErrorContext(r.Context(), "vault: "+what, "err", err)
	writeError(w, http.StatusInternalServerError, "InternalServerError", "The server encountered an internal error.", "")
}

// secretScope is the resource id a data action on one secret is decided at.
func (q *request) secretScope() string {
	if q.route.name == "" {
		return q.vault.ResourceID
	}
	return q.vault.ResourceID + "/secrets/" + q.route.name
}

// target names what an audit record is about.
func (q *request) target() string {
	if q.route.name == "" {
		return q.vault.Name
	}
	return q.vault.Name + "/" + q.route.name
}

// auditRecord is the audit record of the operation.
func (q *request) auditRecord(action, result, detail string) store.AuditRecord {
	return store.AuditRecord{
		Actor: q.actor, ActorTenant: q.home, TargetTenant: q.vault.TenantID,
		Action: action, Target: q.target(), Result: result, Detail: detail,
	}
}

// record audits the operation through the shared log; it reports whether
// the record was stored.
func (s *Service) record(q *request, action, result, detail string) bool {
	return s.audit.Record(q.r.Context(), q.auditRecord(action, result, detail)) == nil
}

// succeed audits a successful read and answers 200 with body, or 204 when
// body is nil; if the audit record is not stored it answers 500.
func (s *Service) succeed(q *request, action, detail string, body any) {
	if !s.record(q, action, audit.Success, detail) {
		s.internal(q.w, q.r, action, errors.New("audit record not stored"))
		return
	}
	answer(q, body)
}

// answer answers 200 with body, or 204 when body is nil.
func answer(q *request, body any) {
	if body == nil {
		q.w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(q.w, http.StatusOK, body)
}

// auditFailed is the error of a change rolled back because its audit
// record could not be stored.
type auditFailed struct{ err error }

func (e auditFailed) Error() string { return "audit record not stored: " + e.err.Error() }
func (e auditFailed) Unwrap() error { return e.err }

// change runs a write: fn makes its store calls through tx and returns
// the audit detail, and the write's audit record is stored in the same
// transaction, so that a change stands only with its record. The caller
// answers only after change returns, that is after the commit.
func (s *Service) change(q *request, action string, fn func(tx store.Store) (detail string, err error)) error {
	ctx := q.r.Context()
	return s.st.InTx(ctx, func(tx store.Store) error {
		detail, err := fn(tx)
		if err != nil {
			return err
		}
		if err := audit.New(tx, s.log).Record(ctx, q.auditRecord(action, audit.Success, detail)); err != nil {
			return auditFailed{err}
		}
		return nil
	})
}

// changeError answers a write that change failed: 500 when its audit
// record could not be stored (nothing was changed), else as storeError.
func (s *Service) changeError(q *request, action string, err error) {
	var af auditFailed
	if errors.As(err, &af) {
		s.internal(q.w, q.r, action, err)
		return
	}
	s.storeError(q, action, err)
}

// authorize asks the Authorizer and answers 403 (audited) on refusal.
func (s *Service) authorize(q *request, action, dataAction, scope string) bool {
	allowed, reason, err := s.authz.Authorize(q.r.Context(), Access{
		// The principal object (oid) lives in the token's tenant, which is
		// the vault's: a provider's service principal provisioned into the
		// customer tenant is a principal of that tenant, whatever its
		// application's home (idp), which only the audit record keeps.
		PrincipalID: q.actor, PrincipalTenantID: q.claims.TenantID, TenantID: q.vault.TenantID, DataAction: dataAction, Scope: scope,
	})
	if err != nil {
		s.internal(q.w, q.r, "authorize", err)
		return false
	}
	if allowed {
		return true
	}
	if reason == "" {
		reason = "No role assignment grants the action."
	}
	s.record(q, action, "ForbiddenByRbac", dataAction)
	appID := q.claims.AppID
	if appID == "" {
		appID = q.claims.AZP
	}
	msg := fmt.Sprintf("Caller is not authorized to perform action on resource.\r\n"+
		"If role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\n"+
		"Caller: appid=%s;oid=%s;iss=%s\r\nAction: '%s'\r\nResource: '%s'\r\nAssignment: (not found)\r\n"+
		"DecisionReason: %s\r\nVault: %s;location=%s",
		appID, q.actor, q.claims.Issuer, dataAction, strings.ToLower(scope), reason, q.vault.Name, q.vault.Location)
	writeError(q.w, http.StatusForbidden, "Forbidden", msg, "ForbiddenByRbac")
	return false
}

// storeError answers a store failure in Key Vault's terms.
func (s *Service) storeError(q *request, action string, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.record(q, action, "SecretNotFound", "")
		writeError(q.w, http.StatusNotFound, "SecretNotFound", fmt.Sprintf(
			"A secret with (name/id) %s was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182",
			nameVersion(q.route)), "")
	case errors.Is(err, store.ErrConflict):
		s.record(q, action, "Conflict", "")
		writeError(q.w, http.StatusConflict, "Conflict", fmt.Sprintf(
			"Secret %s is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged.",
			q.route.name), "ObjectIsDeletedButRecoverable")
	default:
		s.internal(q.w, q.r, action, err)
	}
}

func nameVersion(r route) string {
	if r.version != "" {
		return r.name + "/" + r.version
	}
	return r.name
}

func badParameter(w http.ResponseWriter, msg string) {
	writeError(w, http.StatusBadRequest, "BadParameter", msg, "")
}

// aad binds a sealed value to its vault, name and version.
func aad(v store.Vault, name, version string) []byte {
	return []byte("vault/secret/" + v.TenantID + "/" + strings.ToLower(v.Name) + "/" + strings.ToLower(name) + "/" + version)
}

func newVersion() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// readBody reads a JSON body into v, answering 400 (or 413) itself.
func readBody(q *request, v any) bool {
	body, err := io.ReadAll(q.r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(q.w, http.StatusRequestEntityTooLarge, "BadParameter", "The request body is too large.", "")
			return false
		}
		badParameter(q.w, "The request body could not be read.")
		return false
	}
	if err := httpx.DecodeJSON(body, v); err != nil {
		badParameter(q.w, "The request body is not valid: "+err.Error())
		return false
	}
	return true
}

// parseSet validates a set body; it returns the secret (without value),
// the plaintext value and an error message for 400.
func parseSet(body []byte) (store.Secret, string, string) {
	var p setParams
	if err := httpx.DecodeJSON(body, &p); err != nil {
		return store.Secret{}, "", "The request body is not valid: " + err.Error()
	}
	if p.Value == nil {
		return store.Secret{}, "", "Property value is required."
	}
	if len(*p.Value) > MaxValueBytes {
		return store.Secret{}, "", fmt.Sprintf("The secret value is too large: %d bytes, the limit is %d.", len(*p.Value), MaxValueBytes)
	}
	sec := store.Secret{Enabled: true}
	if msg := applyProps(&sec, p); msg != "" {
		return store.Secret{}, "", msg
	}
	return sec, *p.Value, ""
}

// applyProps applies contentType, attributes and tags to sec.
func applyProps(sec *store.Secret, p setParams) string {
	if p.ContentType != nil {
		if len(*p.ContentType) > 255 {
			return "Property contentType is too long."
		}
		sec.ContentType = *p.ContentType
	}
	if p.Attributes != nil {
		if p.Attributes.Enabled != nil {
			sec.Enabled = *p.Attributes.Enabled
		}
		if p.Attributes.NotBefore != nil {
			sec.NotBefore = fromUnix(p.Attributes.NotBefore)
		}
		if p.Attributes.Expires != nil {
			sec.Expires = fromUnix(p.Attributes.Expires)
		}
		for _, t := range []time.Time{sec.NotBefore, sec.Expires} {
			if !t.IsZero() && (t.Year() < 1970 || t.Year() > 9999) {
				return "Attributes nbf and exp must be Unix times between 1970 and 9999."
			}
		}
	}
	if p.Tags != nil {
		if len(p.Tags) > maxTags {
			return fmt.Sprintf("A secret can have at most %d tags.", maxTags)
		}
		sec.Tags = map[string]string{}
		for k, v := range p.Tags {
			if k == "" || len(k) > 512 {
				return "Tag names must be 1 to 512 characters."
			}
			val := ""
			if v != nil {
				val = *v
			}
			if len(val) > 256 {
				return "Tag values must be at most 256 characters."
			}
			sec.Tags[k] = val
		}
	}
	return ""
}

func (s *Service) set(q *request) {
	const action = "secret.set"
	if !s.authorize(q, action, ActionSetSecret, q.secretScope()) {
		return
	}
	body, err := io.ReadAll(q.r.Body)
	if err != nil {
		writeError(q.w, http.StatusRequestEntityTooLarge, "BadParameter", "The request body is too large.", "")
		return
	}
	sec, value, msg := parseSet(body)
	if msg != "" {
		s.record(q, action, "BadParameter", "")
		badParameter(q.w, msg)
		return
	}
	sec.Vault, sec.Name, sec.Version = q.vault.Name, q.route.name, newVersion()
	// The store keeps the case of the first version's name; seal with the
	// lower-cased name so both agree.
	sec.Value, err = sealed.Seal(s.kek, []byte(value), aad(q.vault, sec.Name, sec.Version))
	if err != nil {
		s.internal(q.w, q.r, action, err)
		return
	}
	var stored store.Secret
	err = s.change(q, action, func(tx store.Store) (string, error) {
		var err error
		stored, err = createVersion(q.r.Context(), tx, sec)
		return stored.Version, err
	})
	if err != nil {
		s.changeError(q, action, err)
		return
	}
	answer(q, s.bundle(q.base, q.vault, stored, &value, true))
}

// createVersion stores a new version. Concurrent sets of one name race
// for the next sequence number and the loser gets ErrConflict, as does a
// set of a deleted name: only the latter is final.
func createVersion(ctx context.Context, st store.Store, sec store.Secret) (store.Secret, error) {
	for range 5 {
		stored, err := st.CreateSecretVersion(ctx, sec)
		if !errors.Is(err, store.ErrConflict) {
			return stored, err
		}
		if _, derr := st.GetDeletedSecret(ctx, sec.Vault, sec.Name); derr == nil {
			return store.Secret{}, err
		}
	}
	return store.Secret{}, fmt.Errorf("vault: set %s: too many concurrent writers", sec.Name)
}

// open unseals a stored value.
func (s *Service) open(v store.Vault, sec store.Secret) (string, error) {
	pt, err := sealed.Open(s.kek, sec.Value, aad(v, sec.Name, sec.Version))
	return string(pt), err
}

func (s *Service) get(q *request) {
	const action = "secret.get"
	if !s.authorize(q, action, ActionGetSecret, q.secretScope()) {
		return
	}
	if q.route.version != "" && !versionID.MatchString(q.route.version) {
		s.storeError(q, action, store.ErrNotFound)
		return
	}
	sec, err := s.lookupSecret(q.r.Context(), q.vault.Name, q.route.name, strings.ToLower(q.route.version))
	if err != nil {
		s.storeError(q, action, err)
		return
	}
	now := s.now()
	switch {
	case !sec.Enabled:
		s.record(q, action, "SecretDisabled", sec.Version)
		writeError(q.w, http.StatusForbidden, "Forbidden", "Operation get is not allowed on a disabled secret.", "SecretDisabled")
		return
	case !sec.Expires.IsZero() && !now.Before(sec.Expires):
		s.record(q, action, "SecretExpired", sec.Version)
		writeError(q.w, http.StatusForbidden, "Forbidden", "Operation get is not allowed on an expired secret.", "SecretExpired")
		return
	case !sec.NotBefore.IsZero() && now.Before(sec.NotBefore):
		s.record(q, action, "SecretNotYetValid", sec.Version)
		writeError(q.w, http.StatusForbidden, "Forbidden", "Operation get is not allowed on a secret that is not yet valid.", "SecretNotYetValid")
		return
	}
	value, err := s.open(q.vault, sec)
	if err != nil {
		s.internal(q.w, q.r, action, err)
		return
	}
	s.succeed(q, action, sec.Version, s.bundle(q.base, q.vault, sec, &value, true))
}

// pageParams reads maxresults and $skiptoken.
func pageParams(q *request) (int, string, bool) {
	limit := defaultPage
	qs := q.r.URL.Query()
	if m := qs.Get("maxresults"); m != "" {
		n, err := strconv.Atoi(m)
		if err != nil || n < 1 || n > maxPage {
			badParameter(q.w, fmt.Sprintf("Invalid maxresults %q: it must be an integer between 1 and %d.", m, maxPage))
			return 0, "", false
		}
		limit = n
	}
	return limit, qs.Get("$skiptoken"), true
}

// nextLink builds the absolute link to the page after last, with the
// api-version (the SDK does not add it).
func nextLink(q *request, path string, limit int, last string) *string {
	v := url.Values{}
	v.Set("api-version", q.r.URL.Query().Get("api-version"))
	v.Set("maxresults", strconv.Itoa(limit))
	v.Set("$skiptoken", last)
	link := q.base + path + "?" + v.Encode()
	return &link
}

func (s *Service) list(q *request, deleted bool) {
	if !deleted {
		s.listPage(q, "secret.list", q.vault.ResourceID, "/secrets", s.st.ListSecrets,
			func(sec store.Secret) string { return strings.ToLower(sec.Name) },
			func(sec store.Secret) secretBundle { return s.bundle(q.base, q.vault, sec, nil, false) })
		return
	}
	s.listPage(q, "secret.listDeleted", q.vault.ResourceID, "/deletedsecrets", s.st.ListDeletedSecrets,
		func(sec store.Secret) string { return strings.ToLower(sec.Name) },
		func(sec store.Secret) secretBundle {
			b := s.bundle(q.base, q.vault, sec, nil, false)
			b.ID = q.base + "/secrets/" + sec.Name
			return b
		})
}

func (s *Service) versions(q *request) {
	s.listPage(q, "secret.versions", q.secretScope(), "/secrets/"+q.route.name+"/versions",
		func(ctx context.Context, query store.SecretQuery) ([]store.Secret, error) {
			query.Name = q.route.name
			return s.st.ListSecretVersions(ctx, query)
		},
		func(sec store.Secret) string { return sec.Version },
		func(sec store.Secret) secretBundle { return s.bundle(q.base, q.vault, sec, nil, true) })
}

// listPage is the flow of the listing operations: authorize reading at
// scope, fetch a page after the $skiptoken (and one more, to learn whether
// a next page at path follows, its token the cursor of the page's last
// item), answer with each item's bundle.
func (s *Service) listPage(q *request, action, scope, path string, fetch func(context.Context, store.SecretQuery) ([]store.Secret, error),
	cursor func(store.Secret) string, item func(store.Secret) secretBundle) {
	if !s.authorize(q, action, ActionReadMetadata, scope) {
		return
	}
	limit, after, ok := pageParams(q)
	if !ok {
		return
	}
	secs, err := fetch(q.r.Context(), store.SecretQuery{Vault: q.vault.Name, After: strings.ToLower(after), Limit: limit + 1})
	if err != nil {
		s.internal(q.w, q.r, action, err)
		return
	}
	out := listResult{Value: []secretBundle{}}
	if len(secs) > limit {
		secs = secs[:limit]
		out.NextLink = nextLink(q, path, limit, cursor(secs[limit-1]))
	}
	for _, sec := range secs {
		out.Value = append(out.Value, item(sec))
	}
	s.succeed(q, action, "", out)
}

func (s *Service) update(q *request) {
	const action = "secret.update"
	if !s.authorize(q, action, ActionUpdate, q.secretScope()) {
		return
	}
	var p setParams
	if !readBody(q, &p) {
		return
	}
	if p.Value != nil {
		badParameter(q.w, "The value of a secret cannot be updated; set a new version instead.")
		return
	}
	if q.route.version != "" && !versionID.MatchString(q.route.version) {
		s.storeError(q, action, store.ErrNotFound)
		return
	}
	ctx := q.r.Context()
	var upd store.Secret
	var msg string
	err := s.change(q, action, func(tx store.Store) (string, error) {
		sec, err := tx.GetSecret(ctx, q.vault.Name, q.route.name, strings.ToLower(q.route.version))
		if err != nil {
			return "", err
		}
		if msg = applyProps(&sec, p); msg != "" {
			return "", errBadParameter
		}
		sec.Updated = s.now()
		upd, err = tx.UpdateSecret(ctx, sec)
		return upd.Version, err
	})
	if msg != "" {
		badParameter(q.w, msg)
		return
	}
	if err != nil {
		s.changeError(q, action, err)
		return
	}
	answer(q, s.bundle(q.base, q.vault, upd, nil, true))
}

// errBadParameter rolls back a change whose parameters turned out to be
// invalid; the caller answers 400.
var errBadParameter = errors.New("vault: bad parameter")

// secretOp is the flow of the operations on one whole secret: authorize
// dataAction on it, run op with the store to use, answer with the
// secret's bundle. A write runs op and its audit record in one
// transaction (change); a read is audited after it.
func (s *Service) secretOp(q *request, action, dataAction string, write bool, op func(ctx context.Context, st store.Store) (store.Secret, error)) {
	if !s.authorize(q, action, dataAction, q.secretScope()) {
		return
	}
	ctx := q.r.Context()
	if !write {
		sec, err := op(ctx, s.st)
		if err != nil {
			s.storeError(q, action, err)
			return
		}
		s.succeed(q, action, "", s.bundle(q.base, q.vault, sec, nil, true))
		return
	}
	var sec store.Secret
	err := s.change(q, action, func(tx store.Store) (string, error) {
		var err error
		sec, err = op(ctx, tx)
		return "", err
	})
	if err != nil {
		s.changeError(q, action, err)
		return
	}
	answer(q, s.bundle(q.base, q.vault, sec, nil, true))
}

func (s *Service) delete(q *request) {
	s.secretOp(q, "secret.delete", ActionDelete, true, func(ctx context.Context, st store.Store) (store.Secret, error) {
		now := s.now().UTC()
		d := store.SecretDeletion{
			RecoveryID:         q.base + "/deletedsecrets/" + q.route.name,
			DeletedDate:        now,
			ScheduledPurgeDate: now.Add(time.Duration(q.vault.SoftDeleteRetentionDays) * 24 * time.Hour),
		}
		return st.DeleteSecret(ctx, q.vault.Name, q.route.name, d)
	})
}

func (s *Service) getDeleted(q *request) {
	s.secretOp(q, "secret.getDeleted", ActionReadMetadata, false, func(ctx context.Context, st store.Store) (store.Secret, error) {
		return st.GetDeletedSecret(ctx, q.vault.Name, q.route.name)
	})
}

func (s *Service) recover(q *request) {
	s.secretOp(q, "secret.recover", ActionRecover, true, func(ctx context.Context, st store.Store) (store.Secret, error) {
		return st.RecoverSecret(ctx, q.vault.Name, q.route.name)
	})
}

func (s *Service) purge(q *request) {
	const action = "secret.purge"
	if !s.authorize(q, action, ActionPurge, q.secretScope()) {
		return
	}
	if q.vault.EnablePurgeProtection {
		s.record(q, action, "PurgeProtectionEnabled", "")
		writeError(q.w, http.StatusForbidden, "Forbidden",
			fmt.Sprintf("Operation \"purge\" is not allowed because purge protection is enabled for this vault. Key Vault service will automatically purge it after the retention period has passed. Vault: %s", q.vault.Name), "")
		return
	}
	err := s.change(q, action, func(tx store.Store) (string, error) {
		return "", tx.PurgeSecret(q.r.Context(), q.vault.Name, q.route.name)
	})
	if err != nil {
		s.changeError(q, action, err)
		return
	}
	answer(q, nil)
}

// backupBlob is the plaintext inside a backup: bound, by the sealing AAD,
// to the vault's tenant, so it restores only into a vault of that tenant.
type backupBlob struct {
	Format   string          `json:"format"`
	Name     string          `json:"name"`
	Versions []backupVersion `json:"versions"`
}

type backupVersion struct {
	Version     string            `json:"version"`
	Value       string            `json:"value"`
	ContentType string            `json:"contentType,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	Enabled     bool              `json:"enabled"`
	NotBefore   *int64            `json:"nbf,omitempty"`
	Expires     *int64            `json:"exp,omitempty"`
	Created     *int64            `json:"created,omitempty"`
	Updated     *int64            `json:"updated,omitempty"`
}

const backupFormat = "tenantbridge-secret-backup-1"

func backupAAD(tenantID string) []byte { return []byte("vault/backup/" + strings.ToLower(tenantID)) }

func (s *Service) backup(q *request) {
	const action = "secret.backup"
	if !s.authorize(q, action, ActionBackup, q.secretScope()) {
		return
	}
	ctx := q.r.Context()
	secs, err := s.st.ListSecretVersions(ctx, store.SecretQuery{Vault: q.vault.Name, Name: q.route.name})
	if err != nil {
		s.internal(q.w, q.r, action, err)
		return
	}
	if len(secs) == 0 {
		s.storeError(q, action, store.ErrNotFound)
		return
	}
	// Oldest first, so that restore keeps which version is the latest.
	sortBySeq(secs)
	blob := backupBlob{Format: backupFormat, Name: secs[0].Name}
	for _, sec := range secs {
		value, err := s.open(q.vault, sec)
		if err != nil {
			s.internal(q.w, q.r, action, err)
			return
		}
		blob.Versions = append(blob.Versions, backupVersion{Version: sec.Version, Value: value, ContentType: sec.ContentType, Tags: sec.Tags,
			Enabled: sec.Enabled, NotBefore: unix(sec.NotBefore), Expires: unix(sec.Expires), Created: unix(sec.Created), Updated: unix(sec.Updated)})
	}
	plain, err := json.Marshal(blob)
	if err != nil {
		s.internal(q.w, q.r, action, err)
		return
	}
	sealedBlob, err := sealed.Seal(s.kek, plain, backupAAD(q.vault.TenantID))
	if err != nil {
		s.internal(q.w, q.r, action, err)
		return
	}
	s.succeed(q, action, fmt.Sprintf("%d versions", len(secs)), blobParams{Value: base64.RawURLEncoding.EncodeToString(sealedBlob)})
}

func sortBySeq(secs []store.Secret) {
	for i := 1; i < len(secs); i++ {
		for j := i; j > 0 && secs[j].Seq < secs[j-1].Seq; j-- {
			secs[j], secs[j-1] = secs[j-1], secs[j]
		}
	}
}

// decodeBase64URL accepts base64url with or without padding.
func decodeBase64URL(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// openBackup checks and opens a restore body; msg is set for a 400.
func (s *Service) openBackup(tenantID string, body []byte) (backupBlob, string) {
	var p blobParams
	var blob backupBlob
	if err := httpx.DecodeJSON(body, &p); err != nil {
		return blob, "The request body is not valid: " + err.Error()
	}
	raw, err := decodeBase64URL(p.Value)
	if err != nil || len(raw) == 0 {
		return blob, "Property value must be a base64url-encoded backup blob."
	}
	plain, err := sealed.Open(s.kek, raw, backupAAD(tenantID))
	if err != nil {
		return blob, "Backup blob could not be restored: it is malformed, or it was taken from a vault of another tenant."
	}
	if err := json.Unmarshal(plain, &blob); err != nil || blob.Format != backupFormat || !secretName.MatchString(blob.Name) || len(blob.Versions) == 0 {
		return backupBlob{}, "Backup blob is malformed."
	}
	for _, v := range blob.Versions {
		if !versionID.MatchString(v.Version) || len(v.Value) > MaxValueBytes {
			return backupBlob{}, "Backup blob is malformed."
		}
	}
	return blob, ""
}

func (s *Service) restore(q *request) {
	const action = "secret.restore"
	if !s.authorize(q, action, ActionRestore, q.vault.ResourceID) {
		return
	}
	body, err := io.ReadAll(q.r.Body)
	if err != nil {
		writeError(q.w, http.StatusRequestEntityTooLarge, "BadParameter", "The request body is too large.", "")
		return
	}
	blob, msg := s.openBackup(q.vault.TenantID, body)
	if msg != "" {
		s.record(q, action, "BadParameter", "")
		badParameter(q.w, msg)
		return
	}
	q.route.name = blob.Name
	var versions []store.Secret
	for _, v := range blob.Versions {
		sec := store.Secret{Vault: q.vault.Name, Name: blob.Name, Version: strings.ToLower(v.Version), ContentType: v.ContentType, Tags: v.Tags,
			Enabled: v.Enabled, NotBefore: fromUnix(v.NotBefore), Expires: fromUnix(v.Expires), Created: fromUnix(v.Created), Updated: fromUnix(v.Updated)}
		sec.Value, err = sealed.Seal(s.kek, []byte(v.Value), aad(q.vault, sec.Name, sec.Version))
		if err != nil {
			s.internal(q.w, q.r, action, err)
			return
		}
		versions = append(versions, sec)
	}
	var stored []store.Secret
	err = s.change(q, action, func(tx store.Store) (string, error) {
		var err error
		stored, err = tx.RestoreSecret(q.r.Context(), versions)
		return fmt.Sprintf("%d versions", len(stored)), err
	})
	var af auditFailed
	if errors.Is(err, store.ErrConflict) && !errors.As(err, &af) {
		s.record(q, action, "Conflict", "")
		writeError(q.w, http.StatusConflict, "Conflict", fmt.Sprintf("Secret %s already exists in this vault; it cannot be restored.", blob.Name), "")
		return
	}
	if err != nil {
		s.changeError(q, action, err)
		return
	}
	answer(q, s.bundle(q.base, q.vault, stored[len(stored)-1], nil, true))
}
