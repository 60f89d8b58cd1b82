package directory

import (
	"context"
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/gencache"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

var zeroTime time.Time

// Query selects directory objects for the list operations. Empty fields do
// not filter; results are ordered by object id, After is the last id of the
// previous page.
type Query struct {
	AppID             string
	DisplayName       string
	DisplayNamePrefix string
	IDs               []string
	After             string
	Limit             int
}

func (q Query) store(tenantID string, kind store.ObjectKind) store.ObjectQuery {
	return store.ObjectQuery{TenantID: tenantID, Kind: kind, AppID: q.AppID, DisplayName: q.DisplayName,
		DisplayNamePrefix: q.DisplayNamePrefix, IDs: q.IDs, After: q.After, Limit: q.Limit}
}

// CreateApplication registers an application in its home tenant. The caller
// sets the registration's properties; ids, publisher domain and creation
// time are assigned here.
func (s *Service) CreateApplication(ctx context.Context, tenantID string, app Application) (*Application, error) {
	t, err := s.st.GetTenant(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	app.ID, app.AppID, app.TenantID = newID(), newID(), tenantID
	app.PublisherDomain = t.Domain
	app.CreatedDateTime = s.Now()
	app.PasswordCredentials, app.KeyCredentials, app.FederatedCredentials = nil, nil, nil
	if app.SignInAudience == "" {
		app.SignInAudience = AudienceMyOrg
	}
	if err := s.validateApplication(&app, t, nil); err != nil {
		return nil, err
	}
	if err := create(ctx, s.st, tenantID, &app); err != nil {
		return nil, identifierConflict(err)
	}
	return &app, nil
}

func identifierConflict(err error) error {
	if errors.Is(err, store.ErrConflict) {
		return conflictf("Another object with the same value for property identifierUris already exists")
	}
	return err
}

// validateApplication applies Entra's rules to the editable properties of
// an application whose home tenant is owner. Identifier URIs are checked
// when they are new (not in before): Entra validates "new applications or
// when an existing application updates identifier URIs or adds a new one"
// (https://learn.microsoft.com/entra/identity-platform/reference-breaking-changes,
// "AppId Uri in single tenant applications will require use of default
// scheme or verified domains"), so an old value does not block other edits.
func (s *Service) validateApplication(a *Application, owner store.Tenant, before []string) error {
	a.DisplayName = strings.TrimSpace(a.DisplayName)
	if a.DisplayName == "" {
		return invalidf("Property 'displayName' is required.")
	}
	if len(a.DisplayName) > 256 {
		return invalidf("Property 'displayName' is too long: at most 256 characters.")
	}
	if a.SignInAudience != AudienceMyOrg && a.SignInAudience != AudienceMultipleOrgs {
		return invalidf("Property 'signInAudience' must be %s or %s.", AudienceMyOrg, AudienceMultipleOrgs)
	}
	if len(a.IdentifierURIs) > maxIdentifierURIs {
		return invalidf("An application may have at most %d identifierUris.", maxIdentifierURIs)
	}
	for _, u := range a.IdentifierURIs {
		if slices.Contains(before, u) {
			continue
		}
		if err := CheckIdentifierURI(u, owner, a.AppID, s.reservedHosts); err != nil {
			return err
		}
	}
	// A trailing slash does not make another resource name: token
	// requests find "https://x/y" and "https://x/y/" alike, so one
	// application may not hold both.
	if dup := duplicate(a.IdentifierURIs, func(u string) string { return strings.ToLower(strings.TrimRight(u, "/")) }); dup != "" {
		return invalidf("identifierUris contains %q twice.", dup)
	}
	roleIDs, values := map[string]bool{}, map[string]bool{}
	for i := range a.AppRoles {
		r := &a.AppRoles[i]
		if _, err := uuid.Parse(r.ID); err != nil {
			return invalidf("appRoles[%d].id must be a GUID.", i)
		}
		if roleIDs[r.ID] {
			return invalidf("appRoles contains id %s twice.", r.ID)
		}
		roleIDs[r.ID] = true
		if r.Value != "" {
			if strings.ContainsAny(r.Value, " \t\r\n") || strings.HasPrefix(r.Value, ".") {
				return invalidf("appRoles[%d].value %q must not contain whitespace or begin with a dot.", i, r.Value)
			}
			if values[r.Value] {
				return invalidf("appRoles contains value %q twice.", r.Value)
			}
			values[r.Value] = true
		}
		if len(r.AllowedMemberTypes) == 0 {
			return invalidf("appRoles[%d].allowedMemberTypes must not be empty.", i)
		}
		for _, t := range r.AllowedMemberTypes {
			if t != "User" && t != "Application" {
				return invalidf("appRoles[%d].allowedMemberTypes may hold only User and Application.", i)
			}
		}
	}
	scopeValues := map[string]bool{}
	for i, sc := range a.OAuth2PermissionScopes {
		if _, err := uuid.Parse(sc.ID); err != nil || roleIDs[sc.ID] {
			return invalidf("oauth2PermissionScopes[%d].id must be a GUID not used by an app role.", i)
		}
		if sc.Value == "" || strings.ContainsAny(sc.Value, " \t\r\n") || scopeValues[sc.Value] {
			return invalidf("oauth2PermissionScopes[%d].value must be unique and without whitespace.", i)
		}
		scopeValues[sc.Value] = true
		if sc.Type != "User" && sc.Type != "Admin" {
			return invalidf("oauth2PermissionScopes[%d].type must be User or Admin.", i)
		}
	}
	for _, rra := range a.RequiredResourceAccess {
		if _, err := uuid.Parse(rra.ResourceAppID); err != nil {
			return invalidf("requiredResourceAccess.resourceAppId must be a GUID.")
		}
		for _, ra := range rra.ResourceAccess {
			if _, err := uuid.Parse(ra.ID); err != nil || (ra.Type != "Role" && ra.Type != "Scope") {
				return invalidf("requiredResourceAccess.resourceAccess needs a GUID id and type Role or Scope.")
			}
		}
	}
	if v := a.AccessTokenAcceptedVersion; v != nil && *v != 1 && *v != 2 {
		return invalidf("Property 'requestedAccessTokenVersion' must be 1 or 2.")
	}
	if len(a.WebRedirectURIs)+len(a.PublicClientRedirectURIs)+len(a.SPARedirectURIs) > maxRedirectURIs {
		return invalidf("An application may have at most %d redirect URIs.", maxRedirectURIs)
	}
	for _, u := range a.WebRedirectURIs {
		if err := CheckRedirectURI(u, false); err != nil {
			return err
		}
	}
	for _, u := range a.SPARedirectURIs { // held to the web rules: https, or http on localhost
		if err := CheckRedirectURI(u, false); err != nil {
			return err
		}
	}
	for _, u := range a.PublicClientRedirectURIs {
		if err := CheckRedirectURI(u, true); err != nil {
			return err
		}
	}
	return nil
}

func duplicate(xs []string, norm func(string) string) string {
	seen := map[string]bool{}
	for _, x := range xs {
		k := norm(x)
		if seen[k] {
			return x
		}
		seen[k] = true
	}
	return ""
}

// GetApplication finds an application by object id in its home tenant.
func (s *Service) GetApplication(ctx context.Context, tenantID, id string) (*Application, error) {
	return get[Application](ctx, s.st, tenantID, store.KindApplication, id)
}

// ApplicationByAppID finds an application by its appId, in whichever tenant is its home.
func (s *Service) ApplicationByAppID(ctx context.Context, appID string) (*Application, error) {
	if _, err := uuid.Parse(appID); err != nil {
		return nil, ErrNotFound
	}
	appID = strings.ToLower(appID)
	return cachedWith(s, lookupKey{lookupApplication, "", appID}, func(d *gencache.Deps) (*Application, error) {
		apps, err := list[Application](ctx, s.st, store.ObjectQuery{Kind: store.KindApplication, AppID: appID, Limit: 1})
		if err != nil {
			return nil, err
		}
		if len(apps) == 0 {
			return nil, ErrNotFound // not cached
		}
		// An appId is unique across tenants (the store's unique index), so
		// while the application exists only a write to its home tenant's
		// rows can change what this finds.
		d.Part(store.TenantPart(apps[0].TenantID))
		return s.shared.application(apps[0]), nil
	})
}

// ListApplications lists the applications registered in a tenant.
func (s *Service) ListApplications(ctx context.Context, tenantID string, q Query) ([]*Application, error) {
	return list[Application](ctx, s.st, q.store(tenantID, store.KindApplication))
}

// UpdateApplication changes an application through mutate and keeps every
// tenant's service principal of it in step (names, roles, scopes), as Entra
// does. mutate may change the editable properties only; ids and credentials
// are restored if it touches them.
func (s *Service) UpdateApplication(ctx context.Context, tenantID, id string, mutate func(*Application) error) (*Application, error) {
	var out *Application
	err := s.inTx(ctx, func(tx *Service) error {
		owner, err := tx.st.GetTenant(ctx, tenantID)
		if err != nil {
			return err
		}
		app, err := update[Application](ctx, tx.st, tenantID, store.KindApplication, id, func(a *Application) error {
			keep := *a
			if err := mutate(a); err != nil {
				return err
			}
			a.ID, a.AppID, a.TenantID, a.PublisherDomain, a.CreatedDateTime = keep.ID, keep.AppID, keep.TenantID, keep.PublisherDomain, keep.CreatedDateTime
			return tx.validateApplication(a, owner, keep.IdentifierURIs)
		})
		if err != nil {
			return identifierConflict(err)
		}
		out = app
		return tx.syncServicePrincipals(ctx, app)
	})
	return out, err
}

// updateCredentials changes only an application's credentials.
func (s *Service) updateCredentials(ctx context.Context, tenantID, id string, mutate func(*Application) error) (*Application, error) {
	return update[Application](ctx, s.st, tenantID, store.KindApplication, id, mutate)
}

// DeleteApplication deletes an application and its service principal in its
// home tenant. Service principals elsewhere remain until their tenants
// remove them, but can no longer get tokens.
func (s *Service) DeleteApplication(ctx context.Context, tenantID, id string) error {
	return s.inTx(ctx, func(tx *Service) error {
		app, err := tx.GetApplication(ctx, tenantID, id)
		if err != nil {
			return err
		}
		if sp, err := tx.ServicePrincipalByAppID(ctx, tenantID, app.AppID); err == nil {
			if err := tx.st.DeleteObject(ctx, tenantID, store.KindServicePrincipal, sp.ID); err != nil {
				return err
			}
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		return tx.st.DeleteObject(ctx, tenantID, store.KindApplication, id)
	})
}

// AddApplicationPassword adds a client secret and returns it, with its text,
// this one time.
func (s *Service) AddApplicationPassword(ctx context.Context, tenantID, id, displayName string, start, end time.Time) (PasswordCredential, error) {
	cred, err := s.newPasswordCredential(displayName, start, end)
	if err != nil {
		return cred, err
	}
	_, err = s.updateCredentials(ctx, tenantID, id, func(a *Application) error {
		if len(a.PasswordCredentials) >= 100 {
			return invalidf("An application may hold at most 100 password credentials.")
		}
		a.PasswordCredentials = append(a.PasswordCredentials, cred)
		return nil
	})
	return cred, err
}

// RemoveApplicationPassword removes a client secret by key id.
func (s *Service) RemoveApplicationPassword(ctx context.Context, tenantID, id, keyID string) error {
	_, err := s.updateCredentials(ctx, tenantID, id, func(a *Application) error {
		n := len(a.PasswordCredentials)
		a.PasswordCredentials = slices.DeleteFunc(a.PasswordCredentials, func(c PasswordCredential) bool { return strings.EqualFold(c.KeyID, keyID) })
		if len(a.PasswordCredentials) == n {
			return invalidf("No password credential found with keyId %s.", keyID)
		}
		return nil
	})
	return err
}

// NewKeyCredential checks a certificate and describes it as a key credential.
// The validity window is the certificate's unless start or end narrow it.
func NewKeyCredential(certDER []byte, displayName string, start, end time.Time) (KeyCredential, error) {
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return KeyCredential{}, invalidf("Key credential is not a valid X.509 certificate: %v.", err)
	}
	if start.IsZero() || start.Before(cert.NotBefore) {
		start = cert.NotBefore
	}
	if end.IsZero() || end.After(cert.NotAfter) {
		end = cert.NotAfter
	}
	thumb := sha1.Sum(certDER)
	if displayName == "" {
		displayName = cert.Subject.String()
	}
	return KeyCredential{KeyID: newID(), DisplayName: displayName, Type: "AsymmetricX509Cert", Usage: "Verify",
		Key: certDER, CustomKeyIdentifier: strings.ToUpper(hex.EncodeToString(thumb[:])),
		StartDateTime: start.UTC(), EndDateTime: end.UTC()}, nil
}

// AddApplicationKey adds a certificate credential.
func (s *Service) AddApplicationKey(ctx context.Context, tenantID, id string, kc KeyCredential) (KeyCredential, error) {
	if kc.KeyID == "" {
		kc.KeyID = newID()
	}
	_, err := s.updateCredentials(ctx, tenantID, id, func(a *Application) error {
		for _, k := range a.KeyCredentials {
			if k.CustomKeyIdentifier == kc.CustomKeyIdentifier {
				return conflictf("A key credential with this certificate already exists")
			}
		}
		if len(a.KeyCredentials) >= 100 {
			return invalidf("An application may hold at most 100 key credentials.")
		}
		a.KeyCredentials = append(a.KeyCredentials, kc)
		return nil
	})
	return kc, err
}

// RemoveApplicationKey removes a certificate credential by key id.
func (s *Service) RemoveApplicationKey(ctx context.Context, tenantID, id, keyID string) error {
	_, err := s.updateCredentials(ctx, tenantID, id, func(a *Application) error {
		n := len(a.KeyCredentials)
		a.KeyCredentials = slices.DeleteFunc(a.KeyCredentials, func(c KeyCredential) bool { return strings.EqualFold(c.KeyID, keyID) })
		if len(a.KeyCredentials) == n {
			return invalidf("No key credential found with keyId %s.", keyID)
		}
		return nil
	})
	return err
}

// validateFederatedCredential applies Entra's rules: a name of letters,
// digits, '-' and '_' (3 to 120 characters), an https issuer, a subject, and
// exactly one audience.
func validateFederatedCredential(f *FederatedIdentityCredential) error {
	if n := len(f.Name); n < 3 || n > 120 || strings.IndexFunc(f.Name, func(r rune) bool {
		return !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}) >= 0 {
		return invalidf("Federated identity credential name must be 3 to 120 letters, digits, '-' or '_'.")
	}
	if u, err := url.Parse(f.Issuer); err != nil || u.Scheme != "https" || u.Host == "" || len(f.Issuer) > 600 {
		return invalidf("Federated identity credential issuer must be an https URL.")
	}
	if f.Subject == "" || len(f.Subject) > 600 {
		return invalidf("Federated identity credential subject is required (at most 600 characters).")
	}
	if len(f.Audiences) != 1 || f.Audiences[0] == "" || len(f.Audiences[0]) > 600 {
		return invalidf("Federated identity credential must have exactly one audience.")
	}
	return nil
}

// AddFederatedCredential adds a federated identity credential (at most 20
// per application; names and issuer+subject pairs unique).
func (s *Service) AddFederatedCredential(ctx context.Context, tenantID, id string, f FederatedIdentityCredential) (FederatedIdentityCredential, error) {
	f.ID = newID()
	if err := validateFederatedCredential(&f); err != nil {
		return f, err
	}
	_, err := s.updateCredentials(ctx, tenantID, id, func(a *Application) error {
		return addFederated(&a.FederatedCredentials, f)
	})
	return f, err
}

// UpdateFederatedCredential changes issuer, subject, audiences and description of the credential named or with id ref.
func (s *Service) UpdateFederatedCredential(ctx context.Context, tenantID, id, ref string, mutate func(*FederatedIdentityCredential)) (FederatedIdentityCredential, error) {
	var out FederatedIdentityCredential
	_, err := s.updateCredentials(ctx, tenantID, id, func(a *Application) (err error) {
		out, err = updateFederated(a.FederatedCredentials, ref, mutate)
		return err
	})
	return out, err
}

// RemoveFederatedCredential deletes the credential named or with id ref.
func (s *Service) RemoveFederatedCredential(ctx context.Context, tenantID, id, ref string) error {
	_, err := s.updateCredentials(ctx, tenantID, id, func(a *Application) error {
		return removeFederated(&a.FederatedCredentials, ref)
	})
	return err
}

// The federated-credential list rules, shared by applications and
// user-assigned managed identities, which Entra limits alike.

func addFederated(list *[]FederatedIdentityCredential, f FederatedIdentityCredential) error {
	if len(*list) >= MaxFederatedCredential {
		return invalidf("At most %d federated identity credentials are allowed.", MaxFederatedCredential)
	}
	for _, e := range *list {
		if strings.EqualFold(e.Name, f.Name) {
			return conflictf("A federated identity credential named %q already exists", f.Name)
		}
		if e.Issuer == f.Issuer && e.Subject == f.Subject {
			return conflictf("A federated identity credential with this issuer and subject already exists")
		}
	}
	*list = append(*list, f)
	return nil
}

func matchesFederated(ref string) func(FederatedIdentityCredential) bool {
	return func(f FederatedIdentityCredential) bool {
		return strings.EqualFold(f.ID, ref) || strings.EqualFold(f.Name, ref)
	}
}

func updateFederated(list []FederatedIdentityCredential, ref string, mutate func(*FederatedIdentityCredential)) (FederatedIdentityCredential, error) {
	i := slices.IndexFunc(list, matchesFederated(ref))
	if i < 0 {
		return FederatedIdentityCredential{}, ErrNotFound
	}
	f := list[i]
	keepID, keepName := f.ID, f.Name
	mutate(&f)
	f.ID, f.Name = keepID, keepName
	if err := validateFederatedCredential(&f); err != nil {
		return f, err
	}
	list[i] = f
	return f, nil
}

func removeFederated(list *[]FederatedIdentityCredential, ref string) error {
	n := len(*list)
	*list = slices.DeleteFunc(*list, matchesFederated(ref))
	if len(*list) == n {
		return ErrNotFound
	}
	return nil
}

// MatchFederatedCredential finds the credential that trusts an assertion's
// issuer and subject for the audience, compared exactly and
// case-sensitively, as Entra now does.
func MatchFederatedCredential(list []FederatedIdentityCredential, issuer, subject string, audiences []string) (FederatedIdentityCredential, bool) {
	for _, f := range list {
		if f.Issuer != issuer || f.Subject != subject {
			continue
		}
		for _, a := range audiences {
			if slices.Contains(f.Audiences, a) {
				return f, true
			}
		}
	}
	return FederatedIdentityCredential{}, false
}

// AuthenticateClientSecret checks a client secret presented for app: the
// application's own secrets and, when sp is given, the secrets of its
// service principal in the tenant the token is asked for.
func (s *Service) AuthenticateClientSecret(app *Application, sp *ServicePrincipal, secret string) error {
	creds := slices.Clone(app.PasswordCredentials)
	if sp != nil {
		creds = append(creds, sp.PasswordCredentials...)
	}
	_, err := s.checkSecret(creds, secret)
	return err
}
