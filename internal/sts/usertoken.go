package sts

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/token"
)

// DefaultRefreshTokenInactivity is how long a refresh token may go unused
// before it expires: Entra's 90 days. Each redemption issues a new token
// with a new 90 days.
const DefaultRefreshTokenInactivity = 90 * 24 * time.Hour

// The OpenID Connect scopes: they ask for an id token, a refresh token and
// profile claims, not for access to a resource.
var oidcScopeNames = map[string]bool{"openid": true, "profile": true, "email": true, "offline_access": true}

// userScopes is a parsed scope parameter of a user grant (v2 endpoint).
type userScopes struct {
	oidc map[string]bool // the OpenID Connect scopes asked for
	// resource is the resource the other scopes name, as named
	// ("https://graph.microsoft.com", "api://…", an appId); Graph when
	// they name none, as Entra does for "User.Read".
	resource string
	values   []string // scope values on the resource ("User.Read")
	all      bool     // "{resource}/.default": every consented scope
	// asked maps each lower-cased value to the form the client wrote it
	// in ("User.Read" or "https://graph.microsoft.com/User.Read"), and
	// ".default" to "{resource}/.default": the response's scope repeats
	// them, since MSAL treats a requested scope missing from it as declined.
	asked map[string]string
}

// parseUserScopes reads scopes as Entra does: a value with a resource
// prefix names that resource, a bare value is Microsoft Graph's, and one
// access token is for one resource (AADSTS28000 otherwise).
func parseUserScopes(scopes []string) (userScopes, *Error) {
	us := userScopes{oidc: map[string]bool{}, asked: map[string]string{}}
	for _, sc := range scopes {
		if oidcScopeNames[strings.ToLower(sc)] {
			us.oidc[strings.ToLower(sc)] = true
			continue
		}
		resource, value := directory.GraphResource, sc
		if i := strings.LastIndex(sc, "/"); i > 0 {
			resource, value = sc[:i], sc[i+1:]
		}
		if value == "" || len(sc) > 512 {
			return us, aadError(codeInvalidScope, clip(sc, 256))
		}
		if us.resource != "" && !strings.EqualFold(strings.TrimRight(us.resource, "/"), strings.TrimRight(resource, "/")) {
			return us, aadError(codeMultipleResources, clip(strings.Join(scopes, " "), 256))
		}
		us.resource = resource
		us.asked[strings.ToLower(value)] = sc
		if strings.EqualFold(value, ".default") {
			us.all = true
			continue
		}
		if !slices.Contains(us.values, value) {
			us.values = append(us.values, value)
		}
	}
	if us.resource == "" {
		us.resource, us.all = directory.GraphResource, true
	}
	return us, nil
}

// userSignIn is what a user grant knows of the sign-in it continues: from
// an authorization code, a refresh token, an approved device code or the
// assertion of an on-behalf-of request.
type userSignIn struct {
	tenantID string
	userID   string
	scopes   []string // v2: as asked; v1: empty, see resource
	resource string   // v1
	nonce    string
	authTime time.Time
	amr      []string
	// familyID continues a refresh token family; empty starts one.
	familyID string
	// refresh is the refresh token to hand out, already stored by the
	// grant (a refresh token grant rotates in one transaction); empty
	// means issue and store a new one if the grant asks for one.
	refresh string
	// offline says a refresh token goes with the response: v2 asks with
	// offline_access, v1 always gets one.
	offline bool
	// spa says the sign-in was a single-page application's: its refresh
	// tokens end 24 hours after it (spa.go).
	spa bool
}

// userExtras are the parts of a user token response beyond the access token.
type userExtras struct {
	scope        string
	refreshToken string
	idToken      string
	clientInfo   string
}

// issueUserTokens issues the tokens of a signed-in user for client c: an
// access token for the one resource the scopes name, carrying the scopes
// the tenant consented for this client and user (scp) and the user's app
// roles on the resource; an id token when openid was asked; a refresh
// token when offline access was; client_info when asked. Every check is
// made now, not when the user signed in: a deleted or disabled user, a
// removed service principal or a revoked grant stop new tokens at once.
func (s *Service) issueUserTokens(ctx context.Context, req *tokenRequest, c *client, u userSignIn) (*issuedToken, *Error) {
	user, err := s.dir.GetUser(ctx, u.tenantID, u.userID)
	if errors.Is(err, directory.ErrNotFound) {
		return nil, aadError(codeUserNotFound, safeName(u.userID))
	}
	if err != nil {
		return nil, serverError(err)
	}
	if !user.AccountEnabled {
		return nil, aadError(codeUserDisabled)
	}
	clientSP := c.sp
	if clientSP == nil {
		clientSP, err = s.dir.ServicePrincipalByAppID(ctx, u.tenantID, c.appID)
		if errors.Is(err, directory.ErrNotFound) {
			return nil, aadError(codeConsentRequired, c.appID, c.displayName())
		}
		if err != nil {
			return nil, serverError(err)
		}
	}
	if !clientSP.AccountEnabled {
		return nil, aadError(codeClientDisabled, c.appID, c.displayName())
	}

	var us userScopes
	if req.endpoint == v1 && u.resource != "" {
		us = userScopes{oidc: map[string]bool{"openid": true}, resource: u.resource, all: true}
	} else {
		var e *Error
		if us, e = parseUserScopes(u.scopes); e != nil {
			return nil, e
		}
	}
	resourceName := us.resource
	if target, ok := s.aliases[strings.ToLower(strings.TrimSuffix(resourceName, "/"))]; ok {
		resourceName = target
	}
	resource, err := s.dir.ServicePrincipalByName(ctx, u.tenantID, resourceName)
	if errors.Is(err, directory.ErrNotFound) {
		return nil, aadError(codeResourceNotFound, clip(us.resource, 256), u.tenantID)
	}
	if err != nil {
		return nil, serverError(err)
	}
	consented, err := s.dir.ConsentedScopes(ctx, u.tenantID, clientSP.ID, user.ID, resource.ID)
	if err != nil {
		return nil, serverError(err)
	}
	granted := consented
	if !us.all {
		for _, v := range us.values {
			if !slices.ContainsFunc(consented, func(c string) bool { return strings.EqualFold(c, v) }) {
				return nil, aadError(codeConsentRequired, c.appID, c.displayName())
			}
		}
		granted = us.values
	}
	if len(granted) == 0 {
		return nil, aadError(codeConsentRequired, c.appID, c.displayName())
	}
	roles, err := s.dir.GrantedRoles(ctx, u.tenantID, user.ID, store.KindUser, resource)
	if err != nil {
		return nil, serverError(err)
	}

	now := req.now
	version := tokenVersion(resource)
	iat := now.Unix()
	claims := token.Claims{
		IssuedAt: iat, NotBefore: iat, Expires: now.Add(tokenLifetime()).Unix(),
		TenantID: u.tenantID, ObjectID: user.ID, Subject: pairwiseSubject(u.tenantID, user.ID, c.appID),
		Scope: strings.Join(granted, " "), Roles: roles, Name: user.DisplayName, AMR: u.amr,
		AIO: opaque(48), RH: "0." + opaque(64), UTI: opaque(16),
		ClientCapabilities: clientCapabilities(req.form.get("claims")),
	}
	if version == 2 {
		claims.Audience, claims.Issuer, claims.Version = resource.AppID, issuerV2(req.baseURL, u.tenantID), "2.0"
		claims.AZP, claims.AZPACR = c.appID, c.acr
		claims.PreferredUsername = user.UserPrincipalName
	} else {
		claims.Audience, claims.Issuer, claims.Version = us.resource, issuerV1(req.baseURL, u.tenantID), "1.0"
		claims.AppID, claims.AppIDACR = c.appID, c.acr
		claims.UPN, claims.UniqueName = user.UserPrincipalName, user.UserPrincipalName
	}
	signed, err := token.Mint(s.keys.Current(), claims)
	if err != nil {
		return nil, serverError(err)
	}
	req.resource = us.resource
	extras := &userExtras{scope: responseScope(us, granted)}

	if us.oidc["openid"] || req.endpoint == v1 {
		id := token.Claims{
			Audience: c.appID, IssuedAt: iat, NotBefore: iat, Expires: now.Add(time.Hour).Unix(),
			TenantID: u.tenantID, ObjectID: user.ID, Subject: claims.Subject, Name: user.DisplayName,
			PreferredUsername: user.UserPrincipalName, Nonce: u.nonce, AIO: opaque(48), RH: "0." + opaque(64), UTI: opaque(16),
		}
		if req.endpoint == v2 {
			id.Issuer, id.Version = issuerV2(req.baseURL, u.tenantID), "2.0"
		} else {
			id.Issuer, id.Version, id.UPN, id.UniqueName, id.AMR = issuerV1(req.baseURL, u.tenantID), "1.0", user.UserPrincipalName, user.UserPrincipalName, u.amr
		}
		if extras.idToken, err = token.Mint(s.keys.Current(), id); err != nil {
			return nil, serverError(err)
		}
	}
	if req.form.get("client_info") == "1" {
		ci, _ := json.Marshal(map[string]string{"uid": user.ID, "utid": u.tenantID})
		extras.clientInfo = base64.RawURLEncoding.EncodeToString(ci)
	}
	if u.refresh != "" {
		extras.refreshToken = u.refresh
	} else if u.offline || us.oidc["offline_access"] || req.endpoint == v1 {
		rec, value := refreshFor(u, c.appID, now, s.refreshInactivity), newRefreshTokenValue()
		if u.spa {
			issued := now.Truncate(time.Second)
			rec.Expires, value = issued.Add(spaRefreshLifetime), newSPARefreshValue(issued)
		}
		if e := s.newRefreshToken(ctx, rec, value); e != nil {
			return nil, e
		}
		extras.refreshToken = value
	}
	return &issuedToken{accessToken: signed, claims: claims, user: extras}, nil
}

// responseScope is the scope parameter of the response: what the access
// token grants, each in the form the client asked for it (MSAL compares
// them with its request), a value that came with ".default" with its
// resource prefix (Graph's bare, as Entra answers), then ".default" as
// asked and the OpenID scopes asked for.
func responseScope(us userScopes, granted []string) string {
	out := make([]string, 0, len(granted)+5)
	for _, g := range granted {
		switch asked, ok := us.asked[strings.ToLower(g)]; {
		case ok:
			out = append(out, asked)
		case strings.EqualFold(us.resource, directory.GraphResource):
			out = append(out, g)
		default:
			out = append(out, strings.TrimRight(us.resource, "/")+"/"+g)
		}
	}
	if d, ok := us.asked[".default"]; ok {
		out = append(out, d)
	}
	for _, o := range []string{"openid", "profile", "email", "offline_access"} {
		if us.oidc[o] {
			out = append(out, o)
		}
	}
	return strings.Join(out, " ")
}

// pairwiseSubject is the sub claim of a user's tokens: stable for one
// user and one application, different for every other application, so
// that applications cannot correlate users by it (Entra's sub is pairwise).
func pairwiseSubject(tenantID, userID, appID string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(tenantID) + "/" + strings.ToLower(userID) + "/" + strings.ToLower(appID)))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// refreshTokenID is how a refresh token is found in the store: the hex
// SHA-256 of its value. The value itself is never stored.
func refreshTokenID(value string) string {
	sum := sha256.Sum256([]byte(value))
	return hex.EncodeToString(sum[:])
}

// newRefreshTokenValue returns a new refresh token's value: 512 random
// bits, opaque to clients as Entra's are.
func newRefreshTokenValue() string { return "1." + opaque(64) }

// refreshFor is the stored record of a new refresh token continuing u.
func refreshFor(u userSignIn, clientID string, now time.Time, inactivity time.Duration) store.RefreshToken {
	family := u.familyID
	if family == "" {
		family = opaque(16)
	}
	scope := strings.Join(u.scopes, " ")
	if scope == "" && u.resource != "" {
		scope = u.resource
	}
	return store.RefreshToken{FamilyID: family, TenantID: u.tenantID, ClientID: clientID, UserID: u.userID,
		Scope: scope, AuthTime: u.authTime, AMR: u.amr, Created: now, Expires: now.Add(inactivity)}
}

// newRefreshToken stores a new refresh token of the given value.
func (s *Service) newRefreshToken(ctx context.Context, rec store.RefreshToken, value string) *Error {
	rec.ID = refreshTokenID(value)
	if err := s.dir.Store().CreateRefreshToken(ctx, rec); err != nil {
		return serverError(err)
	}
	return nil
}
