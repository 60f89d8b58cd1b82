package arm

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/tenantbridge/tenantbridge/internal/arm/rp"
)

const pkgTemplate = `{"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#", "contentVersion": "1.0.0.0", "resources": []}`
const pkgUI = `{"handler": "Microsoft.Azure.CreateUIDef", "version": "0.1.2-preview", "parameters": {}}`

func zipOf(t testing.TB, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, b := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func codeOf(err error) string {
	var re *rp.Error
	if errors.As(err, &re) {
		return re.Code
	}
	return ""
}

// TestFetchPackage: a package comes over real TLS from an allowed host
// only; loopback only when allowed; no redirects; the download and each
// file are bounded (a zip bomb of a template is refused after the limit,
// not read whole); both files must be at the root.
func TestFetchPackage(t *testing.T) {
	good := zipOf(t, map[string][]byte{"mainTemplate.json": []byte("\xef\xbb\xbf" + pkgTemplate), "createUiDefinition.json": []byte(pkgUI), "nested/other.json": []byte("{}")})
	bomb := zipOf(t, map[string][]byte{"mainTemplate.json": bytes.Repeat([]byte(" "), maxPackageFileBytes+10), "createUiDefinition.json": []byte(pkgUI)})
	if len(bomb) > 1<<20 {
		t.Fatalf("the bomb is not small: %d", len(bomb))
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/good.zip":
			_, _ = w.Write(good)
		case "/bomb.zip":
			_, _ = w.Write(bomb)
		case "/huge.zip":
			chunk := bytes.Repeat([]byte("x"), 1<<20)
			for range MaxPackageBytes>>20 + 2 {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		case "/moved":
			http.Redirect(w, r, "/good.zip", http.StatusFound)
		case "/flat.zip":
			_, _ = w.Write(zipOf(t, map[string][]byte{"pkg/mainTemplate.json": []byte(pkgTemplate), "pkg/createUiDefinition.json": []byte(pkgUI)}))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	tlsConf := &tls.Config{RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
	ctx := context.Background()
	allowed := PackageFetch{AllowedHosts: []string{u.Hostname()}, AllowLoopback: true, TLS: tlsConf}

	mt, ui, err := allowed.fetchPackage(ctx, srv.URL+"/good.zip")
	if err != nil || string(withoutBOM(mt)) != pkgTemplate || string(ui) != pkgUI {
		t.Fatalf("good package: %v %q %q", err, mt, ui)
	}
	for _, c := range []struct {
		name string
		f    PackageFetch
		path string
		code string
	}{
		{"no host allowed", PackageFetch{AllowLoopback: true, TLS: tlsConf}, "/good.zip", "DownloadItemFromBlobFailed"},
		{"loopback not allowed", PackageFetch{AllowedHosts: []string{u.Hostname()}, TLS: tlsConf}, "/good.zip", "DownloadItemFromBlobFailed"},
		{"untrusted certificate", PackageFetch{AllowedHosts: []string{u.Hostname()}, AllowLoopback: true}, "/good.zip", "DownloadItemFromBlobFailed"},
		{"redirect", allowed, "/moved", "DownloadItemFromBlobFailed"},
		{"not found", allowed, "/none.zip", "DownloadItemFromBlobFailed"},
		{"too large", allowed, "/huge.zip", "DownloadItemFromBlobFailed"},
		{"zip bomb", allowed, "/bomb.zip", "InvalidApplicationPackage"},
		{"not at the root", allowed, "/flat.zip", "InvalidApplicationPackage"},
	} {
		if _, _, err := c.f.fetchPackage(ctx, srv.URL+c.path); codeOf(err) != c.code {
			t.Errorf("%s: %v, want %s", c.name, err, c.code)
		} else if strings.Contains(err.Error(), "sig=") {
			t.Errorf("%s: the error shows the query", c.name)
		}
	}
	// Not https, user information: refused before any request.
	for _, bad := range []string{"http://" + u.Host + "/good.zip", "https://user:pw@" + u.Host + "/good.zip", "ftp://x/y"} {
		if _, _, err := allowed.fetchPackage(ctx, bad); codeOf(err) != "BadRequest" {
			t.Errorf("%s: %v", bad, err)
		}
	}
	// The error names the URL without its query (a SAS token).
	_, _, err = PackageFetch{}.fetchPackage(ctx, "https://blob.example/p.zip?sig=SECRET")
	if err == nil || strings.Contains(err.Error(), "SECRET") {
		t.Errorf("the SAS token shows: %v", err)
	}
	if !(PackageFetch{AllowedHosts: []string{"*.blob.core.windows.net"}}).allowedHost("acct.blob.core.windows.net") ||
		(PackageFetch{AllowedHosts: []string{"*.blob.core.windows.net"}}).allowedHost("blob.core.windows.net.evil.example") {
		t.Error("wildcard hosts")
	}
}

// FuzzReadPackage feeds the package reader arbitrary archives: an answer
// or a 400 in ARM's shape, never a panic, never more than the limits.
func FuzzReadPackage(f *testing.F) {
	f.Add(zipOf(f, map[string][]byte{"mainTemplate.json": []byte(pkgTemplate), "createUiDefinition.json": []byte(pkgUI)}))
	f.Add(zipOf(f, map[string][]byte{"MAINTEMPLATE.JSON": []byte("{}"), "mainTemplate.json": []byte("{}")}))
	f.Add([]byte("PK\x03\x04"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		mt, ui, err := readPackage(data)
		if err != nil {
			var re *rp.Error
			if !errors.As(err, &re) || re.Status != http.StatusBadRequest {
				t.Fatalf("error %T %v", err, err)
			}
			return
		}
		if len(mt) > maxPackageFileBytes || len(ui) > maxPackageFileBytes {
			t.Fatalf("read past the limit: %d %d", len(mt), len(ui))
		}
	})
}
