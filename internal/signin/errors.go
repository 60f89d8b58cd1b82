package signin

import (
	"fmt"
	"net/http"
)

// The AADSTS codes the sign-in surface answers with.
const (
	codeTenantNotFound       = 90002
	codeInvalidRequest       = 90023
	codeMissingParameter     = 900144
	codeClientNotFound       = 700016
	codeRedirectMismatch     = 50011
	codeNoReplyAddress       = 500113
	codeTokenNotEnabled      = 700051
	codeIDTokenNotEnabled    = 700054
	codeInvalidChallenge     = 501491
	codePKCERequired         = 9002325
	codeLoginRequired        = 50058
	codeConsentRequired      = 65001
	codeDeclined             = 65004
	codeMFARequired          = 50076
	codeMFAEnrollment        = 50079
	codeBadPassword          = 50126
	codeAccountLocked        = 50053 // smart lockout (IdsLocked)
	codeTransient            = 90033 // try again: every password-hashing slot was busy
	codeUserNotFound         = 50034
	codeBadTOTP              = 500121
	codeAdminConsentRequired = 90094
	codeInvalidScope         = 70011
	codeFlowExpired          = 50132
)

// authError is a refusal of an authorize or admin-consent request: shown
// on an error page until the redirect URI is verified, sent to the client
// after.
type authError struct {
	status  int    // for the error page
	oauth   string // the OAuth error sent to the client
	code    int
	msg     string
	subcode string
}

func (e *authError) Error() string { return fmt.Sprintf("AADSTS%d: %s", e.code, e.msg) }

func invalidRequest(format string, args ...any) *authError {
	return &authError{status: http.StatusBadRequest, oauth: "invalid_request", code: codeInvalidRequest, msg: fmt.Sprintf(format, args...)}
}

func missingParam(name string) *authError {
	return &authError{status: http.StatusBadRequest, oauth: "invalid_request", code: codeMissingParameter,
		msg: fmt.Sprintf("The request body must contain the following parameter: '%s'.", name)}
}

func clientNotFound(clientID, tenant string) *authError {
	return &authError{status: http.StatusBadRequest, oauth: "unauthorized_client", code: codeClientNotFound,
		msg: fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.", clientID, tenant)}
}

func redirectMismatch(uri, appID string) *authError {
	return &authError{status: http.StatusBadRequest, oauth: "invalid_request", code: codeRedirectMismatch,
		msg: fmt.Sprintf("The redirect URI '%s' specified in the request does not match the redirect URIs configured for the application '%s'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal. Navigate to https://aka.ms/redirectUriMismatchError to learn more about how to fix this.", uri, appID)}
}

func tenantNotFound(tenant string) *authError {
	return &authError{status: http.StatusBadRequest, oauth: "invalid_request", code: codeTenantNotFound,
		msg: fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.", tenant)}
}

func declined() *authError {
	return &authError{status: http.StatusBadRequest, oauth: "access_denied", code: codeDeclined,
		msg: "User declined to consent to access the app.", subcode: "cancel"}
}
