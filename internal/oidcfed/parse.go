package oidcfed

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/jwtparse"
)

// parseOptions are the rules of jwtparse.Parse, with our size limit and
// algorithms.
var parseOptions = jwtparse.Options{MaxBytes: maxTokenBytes, Algorithm: allowedAlg}

// parseToken reads raw strictly (see jwtparse). The errors are ErrMalformed
// or ErrAlgorithm; those about the claims or the signature name the issuer
// and kid as far as they were read.
func parseToken(raw string) (*jwtparse.Token, error) {
	t, err := jwtparse.Parse(raw, parseOptions)
	if err == nil {
		return t, nil
	}
	var pe *jwtparse.Error
	if !errors.As(err, &pe) {
		return nil, &Error{Kind: ErrMalformed, Err: err}
	}
	e := &Error{Kind: ErrMalformed, Detail: pe.Detail}
	if errors.Is(pe, jwtparse.ErrAlgorithm) {
		e.Kind = ErrAlgorithm
	}
	if pe.Part == jwtparse.PartClaims || pe.Part == jwtparse.PartSignature {
		e.Issuer, e.KeyID = pe.Issuer, pe.KeyID
	}
	return nil, e
}

// checkIssuerURL accepts an absolute https URL with a host and without
// userinfo, query or fragment.
func checkIssuerURL(iss string) error {
	if strings.ContainsAny(iss, "?#") {
		return errors.New("issuer has a query or fragment")
	}
	return checkHTTPSURL(iss, "issuer")
}

// checkHTTPSURL accepts an absolute https URL with a host, without
// userinfo or fragment. what names it in the error.
func checkHTTPSURL(s, what string) error {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] == 0x7f {
			return fmt.Errorf("%s contains whitespace or control characters", what)
		}
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%s is not a URL", what)
	}
	switch {
	case u.Scheme != "https":
		return fmt.Errorf("%s is not an https URL", what)
	case u.Hostname() == "" || u.Opaque != "":
		return fmt.Errorf("%s has no host", what)
	case u.User != nil:
		return fmt.Errorf("%s has userinfo", what)
	case u.Fragment != "" || strings.Contains(s, "#"):
		return fmt.Errorf("%s has a fragment", what)
	}
	return nil
}
