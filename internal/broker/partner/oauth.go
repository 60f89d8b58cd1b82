package partner

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Entra's error codes the custody acts on.
const (
	codeRefreshRevoked   = 50173   // spent (reused) or revoked refresh token
	codeRefreshExpired   = 700082  // expired after inactivity
	codeConsentMissing   = 65001   // the grant was removed
	codeRefreshMalformed = 9002313 // not a refresh token the cloud knows
)

// TokenError is a refusal of the token endpoint, in Entra's terms. It
// never holds the token that was refused.
type TokenError struct {
	Status      int
	Code        string // OAuth error, e.g. invalid_grant
	AADSTS      int    // first of error_codes, 0 if none
	Description string
}

func (e *TokenError) Error() string {
	d := e.Description
	if i := strings.Index(d, "\r\n"); i >= 0 {
		d = d[:i]
	}
	if d == "" {
		d = http.StatusText(e.Status)
	}
	return fmt.Sprintf("token endpoint: %s: %s", e.Code, d)
}

// tokenResponse is the token endpoint's answer.
type tokenResponse struct {
	AccessToken  string          `json:"access_token"`
	RefreshToken string          `json:"refresh_token"`
	IDToken      string          `json:"id_token"`
	Scope        string          `json:"scope"`
	ExpiresIn    json.RawMessage `json:"expires_in"`
	TokenType    string          `json:"token_type"`
}

func (t tokenResponse) expiresIn() time.Duration {
	s := strings.Trim(string(t.ExpiresIn), `"`)
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return time.Hour
	}
	return time.Duration(n) * time.Second
}

const maxTokenResponse = 1 << 20

// redeem posts form to tokenURL with the client's credential.
func (c *Custodian) redeem(ctx context.Context, tokenURL string, form url.Values) (*tokenResponse, error) {
	form.Set("client_id", c.cfg.ClientID)
	if err := c.cfg.Credential.apply(ctx, tokenURL, form); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("token endpoint: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenResponse))
	if err != nil {
		return nil, fmt.Errorf("token endpoint: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var doc struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
			Codes       []int  `json:"error_codes"`
		}
		_ = json.Unmarshal(body, &doc)
		te := &TokenError{Status: resp.StatusCode, Code: doc.Error, Description: doc.Description}
		if te.Code == "" {
			te.Code = "HTTP " + strconv.Itoa(resp.StatusCode)
		}
		if len(doc.Codes) > 0 {
			te.AADSTS = doc.Codes[0]
		}
		return nil, te
	}
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" {
		return nil, errors.New("token endpoint: the response is not a token response")
	}
	return &tr, nil
}

// idClaims are the id_token claims the consent callback checks.
type idClaims struct {
	Audience          audience `json:"aud"`
	Issuer            string   `json:"iss"`
	Nonce             string   `json:"nonce"`
	TenantID          string   `json:"tid"`
	ObjectID          string   `json:"oid"`
	PreferredUsername string   `json:"preferred_username"`
	UPN               string   `json:"upn"`
	AMR               []string `json:"amr"`
	Expires           int64    `json:"exp"`
}

type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*a = many
	return nil
}

// parseIDToken decodes the id_token's claims (or an access token's). The token came straight from
// the token endpoint over TLS to this confidential client, so OpenID
// Connect Core §3.1.3.7 lets the TLS server check stand for the signature
// check; the claims are still checked by the caller.
func parseIDToken(raw string) (*idClaims, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil, errors.New("the id_token is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil, errors.New("the id_token's payload is not base64url")
	}
	var c idClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, errors.New("the id_token's payload is not a JSON object of the expected claims")
	}
	return &c, nil
}

func (c *idClaims) user() string {
	if c.PreferredUsername != "" {
		return c.PreferredUsername
	}
	return c.UPN
}
