package vault

import (
	"cmp"
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
	"slices"
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
	kind   kind // secrets or keys
	vault  store.Vault
	base   string // https://{vault host}
	claims token.Claims
	actor  string // oid
	home   string // actor's home tenant
}

// kind is what the secrets and the keys surfaces differ in where their
// flows are one.
type kind struct {
	noun, title string // "secret", "Secret": in messages
	collection  string // "/secrets/": the path of one, and its scope under the vault
	deleted     string // "/deletedsecrets/": the path of a deleted one
	notFound    string // the error code of a missing one
	// notFoundVersion: a missing key is audited with the version asked
	// for (as all of a key's audit records name the version), a missing
	// secret without.
	notFoundVersion bool
	// readMetadata is the data action of listing, listing versions and
	// reading a deleted one.
	readMetadata string
}

var (
	secretKind = kind{noun: "secret", title: "Secret", collection: "/secrets/", deleted: "/deletedsecrets/",
		notFound: "SecretNotFound", readMetadata: ActionReadMetadata}
	keyKind = kind{noun: "key", title: "Key", collection: "/keys/", deleted: "/deletedkeys/",
		notFound: "KeyNotFound", notFoundVersion: true, readMetadata: ActionKeysRead}
)

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
		s.serveKeys(&request{r: r, w: w, kind: keyKind, vault: v, base: "https://" + host, claims: claims,
			actor: claims.ObjectID, home: claims.HomeTenant()})
		return
	}
	rt := parsePath(r.Method, r.URL.Path)
	if routeError(w, r, rt) {
		return
	}
	q := &request{r: r, w: w, route: rt, kind: secretKind, vault: v, base: "https://" + host, claims: claims,
		actor: claims.ObjectID, home: claims.HomeTenant()}
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

// internal answers an unexpected error: a 500 that hides it, or, when it
// is store contention (store.ErrBusy), Key Vault's throttling answer, 429
// Throttled with Retry-After. Key Vault "returns HTTP status code 429 (Too
// many requests)" when it limits requests and clients "retry the request
// until it succeeds" (https://learn.microsoft.com/azure/key-vault/general/overview-throttling);
// azcore's retry policy retries a 429 after its Retry-After.
func (s *Service) internal(w http.ResponseWriter, r *http.Request, what string, err error) {
	if errors.Is(err, store.ErrBusy) {
		s.log.WarnContext(r.Context(), "vault: "+what+": store busy", "err", err)
		w.Header().Set("Retry-After", store.BusyRetryAfter)
		writeError(w, http.StatusTooManyRequests, "Throttled", "Request was not processed because too many requests were received. Reason: the service is busy; retry after the interval in the Retry-After header.", "")
		return
	}
	s.log.ErrorContext(r.Context(), "vault: "+what, "err", err)
	writeError(w, http.StatusInternalServerError, "InternalServerError", "The server encountered an internal error.", "")
}

// scope is the resource id a data action on one secret or key is decided
// at: a role assigned at .../vaults/{v}/keys/{name} grants that key only.
func (q *request) scope() string {
	if q.route.name == "" {
		return q.vault.ResourceID
	}
	return q.vault.ResourceID + q.kind.collection + q.route.name
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
	k := q.kind
	switch {
	case errors.Is(err, store.ErrNotFound):
		detail := ""
		if k.notFoundVersion {
			detail = q.route.version
		}
		s.record(q, action, k.notFound, detail)
		writeError(q.w, http.StatusNotFound, k.notFound, fmt.Sprintf(
			"A %s with (name/id) %s was not found in this key vault. If you recently deleted this %s you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182",
			k.noun, nameVersion(q.route), k.noun), "")
	case errors.Is(err, store.ErrConflict):
		s.record(q, action, "Conflict", "")
		writeError(q.w, http.StatusConflict, "Conflict", fmt.Sprintf(
			"%s %s is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the %s can only be recovered or purged.",
			k.title, q.route.name, k.noun), "ObjectIsDeletedButRecoverable")
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

// badRequest audits a refused request body and answers 400.
func (s *Service) badRequest(q *request, action, msg string) {
	s.record(q, action, "BadParameter", "")
	badParameter(q.w, msg)
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

// readBody reads a JSON body into v, answering 400 (or 413) itself. The
// refusal is audited as action's unless action is "" (a secret's update
// does not audit it; every body parser of the keys surface does).
func (s *Service) readBody(q *request, action string, v any) bool {
	body, err := io.ReadAll(q.r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			if action != "" {
				s.record(q, action, "BadParameter", "body too large")
			}
			writeError(q.w, http.StatusRequestEntityTooLarge, "BadParameter", "The request body is too large.", "")
			return false
		}
		badParameter(q.w, "The request body could not be read.")
		return false
	}
	if err := httpx.DecodeJSON(body, v); err != nil {
		if action != "" {
			s.record(q, action, "BadParameter", "")
		}
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
	return newSecret(p)
}

// newSecret checks the parameters of a new secret version (the data
// plane's set, Resource Manager's Secrets - Create Or Update): the value
// within Key Vault's limit and its properties; it returns the secret
// (without value), the plaintext value and an error message for 400.
func newSecret(p setParams) (store.Secret, string, string) {
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
		if msg := applyValidity(p.Attributes.Enabled, p.Attributes.NotBefore, p.Attributes.Expires, &sec.Enabled, &sec.NotBefore, &sec.Expires); msg != "" {
			return msg
		}
	}
	return applyTags(&sec.Tags, p.Tags, "secret")
}

// applyValidity applies the attributes enabled, nbf and exp given (nil:
// unchanged) to a secret's or key's; it returns a message for 400 when nbf
// or exp is out of range.
func applyValidity(enabled *bool, nbf, exp *int64, toEnabled *bool, toNbf, toExp *time.Time) string {
	if enabled != nil {
		*toEnabled = *enabled
	}
	if nbf != nil {
		*toNbf = fromUnix(nbf)
	}
	if exp != nil {
		*toExp = fromUnix(exp)
	}
	for _, t := range []time.Time{*toNbf, *toExp} {
		if !t.IsZero() && (t.Year() < 1970 || t.Year() > 9999) {
			return "Attributes nbf and exp must be Unix times between 1970 and 9999."
		}
	}
	return ""
}

// applyTags replaces *to with tags (nil: unchanged) within Key Vault's
// limits; it returns a message for 400 naming noun when they are exceeded.
func applyTags(to *map[string]string, tags map[string]*string, noun string) string {
	if tags == nil {
		return ""
	}
	if len(tags) > maxTags {
		return fmt.Sprintf("A %s can have at most %d tags.", noun, maxTags)
	}
	*to = map[string]string{}
	for k, v := range tags {
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
		(*to)[k] = val
	}
	return ""
}

func (s *Service) set(q *request) {
	const action = "secret.set"
	if !s.authorize(q, action, ActionSetSecret, q.scope()) {
		return
	}
	body, err := io.ReadAll(q.r.Body)
	if err != nil {
		writeError(q.w, http.StatusRequestEntityTooLarge, "BadParameter", "The request body is too large.", "")
		return
	}
	sec, value, msg := parseSet(body)
	if msg != "" {
		s.badRequest(q, action, msg)
		return
	}
	sec.Name = q.route.name
	var stored store.Secret
	err = s.change(q, action, func(tx store.Store) (string, error) {
		var err error
		stored, err = writeSecretVersion(q.r.Context(), tx, s.kek, q.vault, sec, value)
		return stored.Version, err
	})
	if err != nil {
		s.changeError(q, action, err)
		return
	}
	answer(q, s.bundle(q.base, q.vault, stored, &value, true))
}

// writeSecretVersion is the one way a secret's value is written, by the
// data plane's set and by Resource Manager's Secrets - Create Or Update
// and Update alike: value sealed under kek, bound to the vault, the name
// and a new version id (aad), stored through tx as the newest version of
// sec.Name in vault v with sec's properties. A deleted secret of that
// name is store.ErrConflict (it must be recovered or purged first).
func writeSecretVersion(ctx context.Context, tx store.Store, kek []byte, v store.Vault, sec store.Secret, value string) (store.Secret, error) {
	sec.Vault, sec.Version = v.Name, newVersion()
	// The store keeps the case of the first version's name; aad lower-cases
	// the name so both agree.
	var err error
	if sec.Value, err = sealed.Seal(kek, []byte(value), aad(v, sec.Name, sec.Version)); err != nil {
		return store.Secret{}, err
	}
	return createVersion(ctx, tx.CreateSecretVersion, tx.GetDeletedSecret, sec, sec.Vault, sec.Name, "set")
}

// createVersion stores v, a new version of a secret or key, with create.
// Concurrent writers of one name race for the next sequence number and
// the loser gets ErrConflict, as does a write of a deleted name (which
// getDeleted finds): only the latter is final.
func createVersion[T any](ctx context.Context, create func(context.Context, T) (T, error),
	getDeleted func(ctx context.Context, vault, name string) (T, error), v T, vault, name, what string) (T, error) {
	var zero T
	for range 5 {
		stored, err := create(ctx, v)
		if !errors.Is(err, store.ErrConflict) {
			return stored, err
		}
		if _, derr := getDeleted(ctx, vault, name); derr == nil {
			return zero, err
		}
	}
	return zero, fmt.Errorf("vault: %s %s: too many concurrent writers", what, name)
}

// open unseals a stored value.
func (s *Service) open(v store.Vault, sec store.Secret) (string, error) {
	pt, err := sealed.Open(s.kek, sec.Value, aad(v, sec.Name, sec.Version))
	return string(pt), err
}

func (s *Service) get(q *request) {
	const action = "secret.get"
	if !s.authorize(q, action, ActionGetSecret, q.scope()) {
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
	// A disabled secret is refused. An expired or not-yet-valid one is not:
	// "About Azure Key Vault secrets", date-time controlled operations: "A
	// secret's get operation will work for not-yet-valid and expired
	// secrets, outside the nbf / exp window" (for tests, and for recovery).
	if !sec.Enabled {
		s.record(q, action, "SecretDisabled", sec.Version)
		writeError(q.w, http.StatusForbidden, "Forbidden", "Operation get is not allowed on a disabled secret.", "SecretDisabled")
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
		listPage(s, q, "secret.list", q.vault.ResourceID, "/secrets", s.st.ListSecrets,
			func(sec store.Secret) string { return strings.ToLower(sec.Name) },
			func(sec store.Secret) secretBundle { return s.bundle(q.base, q.vault, sec, nil, false) })
		return
	}
	listPage(s, q, "secret.listDeleted", q.vault.ResourceID, "/deletedsecrets", s.st.ListDeletedSecrets,
		func(sec store.Secret) string { return strings.ToLower(sec.Name) },
		func(sec store.Secret) secretBundle {
			b := s.bundle(q.base, q.vault, sec, nil, false)
			b.ID = q.base + "/secrets/" + sec.Name
			return b
		})
}

func (s *Service) versions(q *request) {
	listPage(s, q, "secret.versions", q.scope(), "/secrets/"+q.route.name+"/versions",
		func(ctx context.Context, query store.SecretQuery) ([]store.Secret, error) {
			query.Name = q.route.name
			return s.st.ListSecretVersions(ctx, query)
		},
		func(sec store.Secret) string { return sec.Version },
		func(sec store.Secret) secretBundle { return s.bundle(q.base, q.vault, sec, nil, true) })
}

// listPage is the flow of the listing operations of secrets and keys:
// authorize reading at scope, fetch a page after the $skiptoken (and one
// more, to learn whether a next page at path follows, its token the cursor
// of the page's last item), answer with each item.
func listPage[T, I any](s *Service, q *request, action, scope, path string, fetch func(context.Context, store.SecretQuery) ([]T, error),
	cursor func(T) string, item func(T) I) {
	if !s.authorize(q, action, q.kind.readMetadata, scope) {
		return
	}
	limit, after, ok := pageParams(q)
	if !ok {
		return
	}
	objs, err := fetch(q.r.Context(), store.SecretQuery{Vault: q.vault.Name, After: strings.ToLower(after), Limit: limit + 1})
	if err != nil {
		s.internal(q.w, q.r, action, err)
		return
	}
	out := listResult[I]{Value: []I{}}
	if len(objs) > limit {
		objs = objs[:limit]
		out.NextLink = nextLink(q, path, limit, cursor(objs[limit-1]))
	}
	for _, o := range objs {
		out.Value = append(out.Value, item(o))
	}
	s.succeed(q, action, "", out)
}

func (s *Service) update(q *request) {
	const action = "secret.update"
	if !s.authorize(q, action, ActionUpdate, q.scope()) {
		return
	}
	var p setParams
	if !s.readBody(q, "", &p) {
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

// objectOp is the flow of the operations on one whole secret or key:
// authorize dataAction on it, run op with the store to use, answer with
// the object rendered. A write runs op and its audit record in one
// transaction (change); a read is audited after it.
func objectOp[T any](s *Service, q *request, action, dataAction string, write bool, op func(ctx context.Context, st store.Store) (T, error), render func(T) any) {
	if !s.authorize(q, action, dataAction, q.scope()) {
		return
	}
	ctx := q.r.Context()
	if !write {
		obj, err := op(ctx, s.st)
		if err != nil {
			s.storeError(q, action, err)
			return
		}
		s.succeed(q, action, "", render(obj))
		return
	}
	var obj T
	err := s.change(q, action, func(tx store.Store) (string, error) {
		var err error
		obj, err = op(ctx, tx)
		return "", err
	})
	if err != nil {
		s.changeError(q, action, err)
		return
	}
	answer(q, render(obj))
}

// secretOp is objectOp for secrets, answering the secret's bundle.
func (s *Service) secretOp(q *request, action, dataAction string, write bool, op func(ctx context.Context, st store.Store) (store.Secret, error)) {
	objectOp(s, q, action, dataAction, write, op, func(sec store.Secret) any { return s.bundle(q.base, q.vault, sec, nil, true) })
}

// deletion is the deleted state of the route's secret or key deleted now.
func (s *Service) deletion(q *request) store.SecretDeletion {
	now := s.now().UTC()
	return store.SecretDeletion{
		RecoveryID:         q.base + q.kind.deleted + q.route.name,
		DeletedDate:        now,
		ScheduledPurgeDate: now.Add(time.Duration(q.vault.SoftDeleteRetentionDays) * 24 * time.Hour),
	}
}

func (s *Service) delete(q *request) {
	s.secretOp(q, "secret.delete", ActionDelete, true, func(ctx context.Context, st store.Store) (store.Secret, error) {
		return st.DeleteSecret(ctx, q.vault.Name, q.route.name, s.deletion(q))
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
	s.purgeObject(q, "secret.purge", ActionPurge, store.Store.PurgeSecret)
}

// purgeObject purges the route's deleted secret or key with purge (a
// store method), unless the vault has purge protection: a deleted object
// stays until its retention ends (Key Vault soft-delete overview, "Purge
// protection").
func (s *Service) purgeObject(q *request, action, dataAction string, purge func(st store.Store, ctx context.Context, vault, name string) error) {
	if !s.authorize(q, action, dataAction, q.scope()) {
		return
	}
	if q.vault.EnablePurgeProtection {
		s.record(q, action, "PurgeProtectionEnabled", "")
		writeError(q.w, http.StatusForbidden, "Forbidden",
			fmt.Sprintf("Operation \"purge\" is not allowed because purge protection is enabled for this vault. Key Vault service will automatically purge it after the retention period has passed. Vault: %s", q.vault.Name), "")
		return
	}
	err := s.change(q, action, func(tx store.Store) (string, error) {
		return "", purge(tx, q.r.Context(), q.vault.Name, q.route.name)
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
	secs, ok := backupVersions(s, q, action, ActionBackup, s.st.ListSecretVersions, func(sec store.Secret) int64 { return sec.Seq })
	if !ok {
		return
	}
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
	s.answerBackup(q, action, blob, backupAAD(q.vault.TenantID), len(secs))
}

// backupVersions authorizes a backup of the route's secret or key
// (dataAction) and lists every version of it with list, oldest first (by
// seq), so that a restore keeps which version is the latest; it answers a
// failure itself.
func backupVersions[T any](s *Service, q *request, action, dataAction string, list func(context.Context, store.SecretQuery) ([]T, error),
	seq func(T) int64) ([]T, bool) {
	if !s.authorize(q, action, dataAction, q.scope()) {
		return nil, false
	}
	objs, err := list(q.r.Context(), store.SecretQuery{Vault: q.vault.Name, Name: q.route.name})
	if err != nil {
		s.internal(q.w, q.r, action, err)
		return nil, false
	}
	if len(objs) == 0 {
		s.storeError(q, action, store.ErrNotFound)
		return nil, false
	}
	slices.SortStableFunc(objs, func(a, b T) int { return cmp.Compare(seq(a), seq(b)) })
	return objs, true
}

// answerBackup answers a backup of n versions: blob as JSON, sealed under
// the KEK with aad, base64url.
func (s *Service) answerBackup(q *request, action string, blob any, aad []byte, n int) {
	plain, err := json.Marshal(blob)
	if err != nil {
		s.internal(q.w, q.r, action, err)
		return
	}
	out, err := sealed.Seal(s.kek, plain, aad)
	clear(plain)
	if err != nil {
		s.internal(q.w, q.r, action, err)
		return
	}
	s.succeed(q, action, fmt.Sprintf("%d versions", n), blobParams{Value: base64.RawURLEncoding.EncodeToString(out)})
}

// decodeBase64URL accepts base64url with or without padding.
func decodeBase64URL(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// openBlob opens the backup blob of a restore body, sealed with aad; msg
// is set for a 400, naming from as where else the blob may have been
// taken.
func (s *Service) openBlob(body, aad []byte, from string) (plain []byte, msg string) {
	var p blobParams
	if err := httpx.DecodeJSON(body, &p); err != nil {
		return nil, "The request body is not valid: " + err.Error()
	}
	raw, err := decodeBase64URL(p.Value)
	if err != nil || len(raw) == 0 {
		return nil, "Property value must be a base64url-encoded backup blob."
	}
	plain, err = sealed.Open(s.kek, raw, aad)
	if err != nil {
		return nil, "Backup blob could not be restored: it is malformed, or it was taken from a vault of " + from + "."
	}
	return plain, ""
}

// openBackup checks and opens a restore body; msg is set for a 400.
func (s *Service) openBackup(tenantID string, body []byte) (backupBlob, string) {
	var blob backupBlob
	plain, msg := s.openBlob(body, backupAAD(tenantID), "another tenant")
	if msg != "" {
		return blob, msg
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
	body, ok := s.restoreBody(q, action, ActionRestore)
	if !ok {
		return
	}
	blob, msg := s.openBackup(q.vault.TenantID, body)
	if msg != "" {
		s.badRequest(q, action, msg)
		return
	}
	q.route.name = blob.Name
	var versions []store.Secret
	var err error
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
	restoreVersions(s, q, action, store.Store.RestoreSecret, versions,
		func(sec store.Secret) any { return s.bundle(q.base, q.vault, sec, nil, true) })
}

// restoreBody authorizes a restore of a secret or key (dataAction at the
// vault) and reads its body; it answers a failure itself.
func (s *Service) restoreBody(q *request, action, dataAction string) ([]byte, bool) {
	if !s.authorize(q, action, dataAction, q.vault.ResourceID) {
		return nil, false
	}
	body, err := io.ReadAll(q.r.Body)
	if err != nil {
		writeError(q.w, http.StatusRequestEntityTooLarge, "BadParameter", "The request body is too large.", "")
		return nil, false
	}
	return body, true
}

// restoreVersions stores versions, every version of the route's secret or
// key, as a new one with restore (a store method) and answers the latest
// rendered; a name taken in any state is a 409.
func restoreVersions[T any](s *Service, q *request, action string, restore func(st store.Store, ctx context.Context, versions []T) ([]T, error),
	versions []T, render func(T) any) {
	var stored []T
	err := s.change(q, action, func(tx store.Store) (string, error) {
		var err error
		stored, err = restore(tx, q.r.Context(), versions)
		return fmt.Sprintf("%d versions", len(stored)), err
	})
	var af auditFailed
	if errors.Is(err, store.ErrConflict) && !errors.As(err, &af) {
		s.record(q, action, "Conflict", "")
		writeError(q.w, http.StatusConflict, "Conflict", fmt.Sprintf("%s %s already exists in this vault; it cannot be restored.", q.kind.title, q.route.name), "")
		return
	}
	if err != nil {
		s.changeError(q, action, err)
		return
	}
	answer(q, render(stored[len(stored)-1]))
}
