package sts

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/httpx"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// The device authorization grant (RFC 8628), as Entra serves it: the device
// asks /devicecode for a user code, shows it with the verification URI,
// and polls the token endpoint with its device code while the user signs
// in and approves on another device (the sign-in pages' deviceauth page).
const (
	grantTypeDeviceCode   = "urn:ietf:params:oauth:grant-type:device_code"
	grantTypeDeviceCodeV1 = "device_code"
	deviceCodeLifetime    = 15 * time.Minute
	deviceCodeInterval    = 5 // seconds
)

// deviceCodeResponse is Entra's answer to /devicecode.
type deviceCodeResponse struct {
	UserCode        string `json:"user_code"`
	DeviceCode      string `json:"device_code"`
	VerificationURI string `json:"verification_uri"`
	ExpiresIn       int    `json:"expires_in"`
	Interval        int    `json:"interval"`
	Message         string `json:"message"`
}

// handleDeviceCode serves POST /{tenant}/oauth2[/v2.0]/devicecode.
func (s *Service) handleDeviceCode(ver endpointVersion) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			s.refuse(w, r, aadError(codePostOnly, safeName(r.Method)))
			return
		}
		req := &tokenRequest{endpoint: ver, tenantRef: r.PathValue("tenant"), baseURL: httpx.BaseURL(r), now: s.now()}
		resp, e := s.deviceCode(r, req)
		if e != nil {
			s.refuse(w, r, e)
			return
		}
		setNoStore(w)
		httpx.WriteJSON(w, http.StatusOK, resp)
	}
}

func (s *Service) deviceCode(r *http.Request, req *tokenRequest) (*deviceCodeResponse, *Error) {
	ctx := r.Context()
	if e := s.readForm(r, req); e != nil {
		return nil, e
	}
	clientID := req.form.get("client_id")
	if clientID == "" {
		return nil, aadError(codeMissingParameter, "client_id")
	}
	app, err := s.dir.ApplicationByAppID(ctx, clientID)
	if errors.Is(err, directory.ErrNotFound) {
		return nil, aadError(codeClientNotFound, safeName(clientID), req.tenantDisplayName())
	}
	if err != nil {
		return nil, serverError(err)
	}
	if !app.IsFallbackPublicClient {
		// Entra: the device code flow is for public clients only.
		return nil, aadError(codeNoClientCredential)
	}
	scope := req.form.get("scope")
	if ver := req.endpoint; ver == v1 {
		scope = req.form.get("resource")
	}
	if scope == "" {
		return nil, aadError(codeMissingParameter, "scope")
	}
	if req.endpoint == v2 {
		if _, e := parseUserScopes(strings.Fields(scope)); e != nil {
			return nil, e
		}
	}
	device := "DAQABAAEAAA" + opaque(96)
	user := newUserCode()
	err = s.dir.Store().CreateDeviceCode(ctx, store.DeviceCode{ID: refreshTokenID(device), UserCode: user, TenantID: req.tenant.ID,
		ClientID: app.AppID, Scope: scope, Created: req.now, Expires: req.now.Add(deviceCodeLifetime), Interval: deviceCodeInterval,
		State: store.DeviceCodePending})
	if err != nil {
		return nil, serverError(err)
	}
	verify := req.baseURL + "/common/oauth2/deviceauth"
	return &deviceCodeResponse{UserCode: user, DeviceCode: device, VerificationURI: verify,
		ExpiresIn: int(deviceCodeLifetime / time.Second), Interval: deviceCodeInterval,
		Message: "To sign in, use a web browser to open the page " + verify + " and enter the code " + user + " to authenticate."}, nil
}

// userCodeAlphabet leaves out letters and digits that read alike (0/O, 1/I/L).
const userCodeAlphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"

// newUserCode returns nine characters from userCodeAlphabet: about 44
// bits, plenty for a code that lives fifteen minutes and is only useful
// to someone who signs in.
func newUserCode() string {
	var b [9]byte
	_, _ = rand.Read(b[:])
	out := make([]byte, len(b))
	for i, v := range b {
		out[i] = userCodeAlphabet[int(v)%len(userCodeAlphabet)]
	}
	return string(out)
}

// deviceCodeGrant is the device's poll.
type deviceCodeGrant struct{ s *Service }

func (deviceCodeGrant) clientCredentialRequired() bool { return false }

func (deviceCodeGrant) prepare(req *tokenRequest) *Error {
	if req.form.get("device_code") == "" && req.form.get("code") == "" {
		return aadError(codeMissingParameter, "device_code")
	}
	return nil
}

func (g deviceCodeGrant) issue(ctx context.Context, req *tokenRequest, c *client) (*issuedToken, *Error) {
	raw := req.form.get("device_code")
	if raw == "" {
		raw = req.form.get("code") // v1's parameter name
	}
	d, err := g.s.dir.Store().PollDeviceCode(ctx, refreshTokenID(raw), req.now)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, aadError(codeDeviceCodeInvalid)
	case errors.Is(err, store.ErrExpired):
		return nil, aadError(codeDeviceCodeExpired)
	case err != nil:
		return nil, serverError(err)
	}
	if !strings.EqualFold(d.ClientID, c.appID) {
		return nil, aadError(codeDeviceCodeInvalid)
	}
	switch d.State {
	case store.DeviceCodePending:
		if !d.LastPoll.IsZero() && req.now.Sub(d.LastPoll) < time.Duration(d.Interval)*time.Second/2 {
			return nil, aadError(codeSlowDown)
		}
		return nil, aadError(codeAuthorizationPending)
	case store.DeviceCodeDenied:
		return nil, aadError(codeAuthorizationDeclined)
	case store.DeviceCodeRedeemed:
		return nil, aadError(codeDeviceCodeInvalid)
	}
	tenantID := d.ApprovedTenantID
	if req.tenant.ID != "" && !strings.EqualFold(req.tenant.ID, tenantID) {
		return nil, aadError(codeDeviceCodeInvalid)
	}
	// c.sp is the client's principal in that tenant (the request named
	// it) or nil (common, organizations): issueUserTokens finds it then.
	u := userSignIn{tenantID: tenantID, userID: d.UserID, authTime: d.AuthTime, amr: d.AMR, offline: true}
	if req.endpoint == v1 {
		u.resource = d.Scope
	} else {
		u.scopes = strings.Fields(d.Scope)
	}
	return g.s.issueUserTokens(ctx, req, c, u)
}
