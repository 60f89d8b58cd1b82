package sts

import (
	"fmt"
	"net/http"
)

// The token service's answers for requests no endpoint takes. Go's mux
// would answer them with its own text/plain "404 page not found" and
// "Method Not Allowed", which no Entra client can parse; Entra answers
// its JSON error document on the login hosts, and so do we.
//
// What Entra sends for these is not documented code by code. We keep its
// status codes (404 for a path it has no endpoint for: jenkinsci/
// azure-ad-plugin#325 reports login.microsoftonline.com's 404 for a
// malformed //oauth2/v2.0/authorize; 405 with Allow for a method an
// endpoint does not take, as HTTP requires) and its error shape with the
// generic code AADSTS90023, InvalidRequest ("The authentication service
// request isn't valid", reference-error-codes on learn.microsoft.com). The
// wrong method on a token endpoint keeps its own, documented answer,
// AADSTS900561 (see handleToken).

// handleNotFound answers a path the token service has no endpoint for.
func (s *Service) handleNotFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, r, s.now(), &Error{Status: http.StatusNotFound, OAuth: "invalid_request", Code: codeInvalidRequest,
		Description: fmt.Sprintf("The endpoint '%s' does not exist.", clip(r.URL.Path, 200))})
}

// getOnly serves h for GET (and HEAD, which net/http answers without a
// body) and refuses every other method in Entra's shape. The discovery
// documents and key sets are read-only.
func (s *Service) getOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, r, s.now(), &Error{Status: http.StatusMethodNotAllowed, OAuth: "invalid_request", Code: codeInvalidRequest,
				Description: fmt.Sprintf("The endpoint only accepts GET requests. Received a %s request.", safeName(r.Method))})
			return
		}
		h(w, r)
	}
}
