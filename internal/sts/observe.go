package sts

import (
	"context"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/httpx"
)

// Observer counts the tokens the service issues, for the operator's
// metrics: by grant and by the kind of credential the client proved
// itself with. Both are from the fixed names below, never client text.
type Observer interface {
	TokenIssued(grant, credential string)
}

// The grant names of tokens issued outside the token endpoint.
const (
	grantManagedIdentity = "managed_identity" // the identity endpoint (App Service's)
	grantListTokens      = "list_tokens"      // a managed application's listTokens
)

// issued reports an issued token: to the Observer, and to the front
// door's note of the request (the tenant and principal it was issued
// to, for the request's log line). A nil t reports nothing.
func (s *Service) issued(ctx context.Context, grant, method, credential string, t *issuedToken) {
	if t == nil {
		return
	}
	httpx.NoteFrom(ctx).SetCaller(t.claims.TenantID, t.claims.ObjectID)
	if s.obs != nil {
		s.obs.TokenIssued(grantName(grant), credentialKind(method, credential))
	}
}

// grantName is a grant type as a short label: the URN grants by their
// last part (device_code, jwt-bearer, which is on-behalf-of).
func grantName(grantType string) string {
	if i := strings.LastIndexByte(grantType, ':'); i >= 0 {
		return grantType[i+1:]
	}
	return grantType
}

// credentialKind names what the client authenticated with, from its
// authentication method (client.method) and, for an assertion, the
// credential the audit record names ("certificate:…", "federated:…").
func credentialKind(method, credential string) string {
	switch method {
	case "client_secret_post", "client_secret_basic":
		return "secret"
	case "private_key_jwt":
		if kind, _, ok := strings.Cut(credential, ":"); ok && (kind == "certificate" || kind == "federated") {
			return kind
		}
		return "assertion"
	case "managed_identity":
		return "managed_identity"
	}
	return "none" // a public client
}
