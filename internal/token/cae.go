package token

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// ErrTrustRevoked means the token was issued through a trust its tenant
// has since withdrawn: the client's service principal was deleted or
// disabled, or the delegated grant no longer covers the token's scopes.
// Resource surfaces answer it with a claims challenge (ClaimsChallenge),
// continuous access evaluation's 401, so that a CAE-capable client (azcore
// declares CP1) asks for a new token at once, and is refused there.
var ErrTrustRevoked = errors.New("token was issued through a trust that has been revoked")

// ClaimsChallenge is the WWW-Authenticate value of a continuous access
// evaluation refusal, as Entra-protected resources send it: error
// "insufficient_claims" and claims, base64, asking for a token issued
// after now. azcore's BearerTokenPolicy recognises it and requests a new
// token with those claims. authorizationURI names the token service, e.g.
// "https://login.microsoftonline.com/{tenant}/oauth2/authorize".
func ClaimsChallenge(authorizationURI, clientID string, now time.Time) string {
	claims := `{"access_token":{"nbf":{"essential":true,"value":"` + strconv.FormatInt(now.Unix(), 10) + `"}}}`
	return fmt.Sprintf(`Bearer realm="", authorization_uri="%s", client_id="%s", error="insufficient_claims", claims="%s"`,
		authorizationURI, clientID, base64.StdEncoding.EncodeToString([]byte(claims)))
}
