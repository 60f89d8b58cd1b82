package signin

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzParseAuthorize feeds arbitrary query strings to the authorize
// parser and validator: they must never panic, and every refusal must
// carry an AADSTS code, an OAuth error and a message.
func FuzzParseAuthorize(f *testing.F) {
	for _, s := range []string{
		"client_id=6c3b4e0e-0000-4000-8000-000000000001&response_type=code&scope=openid&redirect_uri=https%3A%2F%2Fa.example%2Fcb",
		"client_id=x&response_type=code+id_token&response_mode=form_post",
		"client_id=x&response_type=code&code_challenge=abc&code_challenge_method=plain",
		"client_id=x&client_id=y",
		"response_type=token",
		"client_id=%00&scope=%ff",
		"client_id=x&response_type=code&prompt=none&scope=a+b+c&code_challenge=" + strings.Repeat("A", 43) + "&code_challenge_method=S256",
		"",
		"%zz",
	} {
		f.Add(s, 2, false)
	}
	f.Fuzz(func(t *testing.T, raw string, version int, public bool) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		req, aerr := parseAuthorize(q, version)
		if aerr != nil {
			checkAuthError(t, aerr)
			return
		}
		if req.ClientID == "" {
			t.Fatal("accepted without client_id")
		}
		if aerr := req.validate(public); aerr != nil {
			checkAuthError(t, aerr)
			return
		}
		if req.ResponseType != "code" || (req.ResponseMode != "query" && req.ResponseMode != "fragment" && req.ResponseMode != "form_post") {
			t.Fatalf("validated %+v", req)
		}
		if req.CodeChallenge != "" && req.CodeChallengeMethod != "S256" {
			t.Fatalf("validated a non-S256 challenge: %+v", req)
		}
		if public && req.CodeChallenge == "" {
			t.Fatal("public client without PKCE validated")
		}
	})
}

func checkAuthError(t *testing.T, e *authError) {
	t.Helper()
	if e.code == 0 || e.oauth == "" || e.msg == "" || e.status < 400 {
		t.Fatalf("unclear error %+v", e)
	}
}
