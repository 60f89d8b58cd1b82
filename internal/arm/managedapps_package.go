package arm

// A definition's packageFileUri: an https URL of a .zip that holds
// mainTemplate.json and createUiDefinition.json at its root, which Azure
// downloads once, when the definition is written
// (learn.microsoft.com/azure/azure-resource-manager/managed-applications/publish-service-catalog-app).
// Fetching a URL a tenant names is a server-side request the tenant
// steers, so it is bounded and fenced: only https, only the hosts the
// operator allows (none by default), no redirects, never an address of
// this machine or its private networks unless the operator allows
// loopback (tests), checked on the address actually dialed (no DNS
// rebinding); at most MaxPackageBytes downloaded within a time limit, and
// of the archive only the two files read, each through a limit on its
// decompressed bytes, so no archive can make the server read more than
// it allows (zip bombs).

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/arm/rp"
	"github.com/tenantbridge/tenantbridge/internal/armtemplate"
)

const (
	// MaxPackageBytes bounds the download: far less than the 120 MB Azure
	// takes, as only the two files are used here.
	MaxPackageBytes = 16 << 20
	// maxPackageFileBytes bounds each file once decompressed.
	maxPackageFileBytes = armtemplate.MaxTemplateBytes
	// maxPackageEntries bounds the archive's directory.
	maxPackageEntries = 1000
	packageTimeout    = 30 * time.Second
)

// PackageFetch says where a definition's packageFileUri may point.
type PackageFetch struct {
	// AllowedHosts are the host names a package may be fetched from:
	// exact names, or "*.example.com" for the subdomains of one. Empty
	// allows none, and every packageFileUri is refused.
	AllowedHosts []string
	// AllowLoopback allows addresses of this machine and of private
	// networks (tests with a local TLS server). Off, they are refused.
	AllowLoopback bool
	// TLS, if set, is the client's TLS configuration (a test's CA);
	// nil trusts the system's roots.
	TLS *tls.Config
}

// packageError is a failed download, with Azure's code for it
// ("DownloadItemFromBlobFailed: Download of the item from blob at … failed").
func packageError(uri, why string) error {
	return rp.NewError(http.StatusBadRequest, "DownloadItemFromBlobFailed",
		"Download of the item from blob at '%s' failed: %s.", rp.SafeText(redactURL(uri)), why)
}

// allowedHost reports whether host matches the allow list.
func (f PackageFetch) allowedHost(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, h := range f.AllowedHosts {
		h = strings.ToLower(strings.TrimSpace(h))
		if suffix, ok := strings.CutPrefix(h, "*."); ok {
			if strings.HasSuffix(host, "."+suffix) {
				return true
			}
		} else if h != "" && host == h {
			return true
		}
	}
	return false
}

// internalAddress: loopback, private, link-local, unspecified or
// multicast — what a request steered by a tenant must not reach.
func internalAddress(ip net.IP) bool {
	return ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsUnspecified() || ip.IsMulticast() || ip.IsInterfaceLocalMulticast()
}

// fetchPackage downloads and reads the package at uri: the text of its
// mainTemplate.json and createUiDefinition.json.
func (f PackageFetch) fetchPackage(ctx context.Context, uri string) (mainTemplate, createUI []byte, err error) {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || len(uri) > 2048 {
		return nil, nil, rp.BadRequest("properties.packageFileUri must be an absolute https URL without user information.")
	}
	if !f.allowedHost(u.Hostname()) {
		return nil, nil, packageError(uri, "the host '"+rp.SafeText(u.Hostname())+"' is not one this server fetches packages from (serve --managed-app-package-host)")
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second, Control: func(_, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return err
		}
		if ip := net.ParseIP(host); ip == nil || (internalAddress(ip) && !f.AllowLoopback) {
			return fmt.Errorf("the address %s is internal", host)
		}
		return nil
	}}
	client := &http.Client{Timeout: packageTimeout,
		Transport: &http.Transport{DialContext: dialer.DialContext, TLSClientConfig: f.TLS, TLSHandshakeTimeout: 10 * time.Second,
			ResponseHeaderTimeout: 15 * time.Second, MaxResponseHeaderBytes: 64 << 10, DisableCompression: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return errors.New("redirects are not followed") }}
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, nil, packageError(uri, "the request could not be made")
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, packageError(uri, "due to a failed connection")
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, packageError(uri, fmt.Sprintf("the server answered %d", resp.StatusCode))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxPackageBytes+1))
	if err != nil {
		return nil, nil, packageError(uri, "the download was cut off")
	}
	if len(body) > MaxPackageBytes {
		return nil, nil, packageError(uri, fmt.Sprintf("the package is larger than %d bytes", MaxPackageBytes))
	}
	return readPackage(body)
}

// readPackage reads mainTemplate.json and createUiDefinition.json (names
// in any letter case, at the archive's root) from a zip archive, each
// through a limit on its decompressed size.
func readPackage(data []byte) (mainTemplate, createUI []byte, err error) {
	invalid := func(why string) error {
		return rp.NewError(http.StatusBadRequest, "InvalidApplicationPackage", "The application package is not valid: %s.", why)
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, nil, invalid("it is not a zip archive")
	}
	if len(zr.File) > maxPackageEntries {
		return nil, nil, invalid(fmt.Sprintf("it has more than %d entries", maxPackageEntries))
	}
	read := func(zf *zip.File) ([]byte, error) {
		rc, err := zf.Open()
		if err != nil {
			return nil, invalid("the file '" + rp.SafeText(zf.Name) + "' cannot be read")
		}
		defer rc.Close()
		b, err := io.ReadAll(io.LimitReader(rc, maxPackageFileBytes+1))
		if err != nil {
			return nil, invalid("the file '" + rp.SafeText(zf.Name) + "' cannot be read")
		}
		if len(b) > maxPackageFileBytes {
			return nil, invalid(fmt.Sprintf("the file '%s' is larger than %d bytes", rp.SafeText(zf.Name), maxPackageFileBytes))
		}
		return b, nil
	}
	for _, zf := range zr.File {
		var dst *[]byte
		switch strings.ToLower(zf.Name) {
		case "maintemplate.json":
			dst = &mainTemplate
		case "createuidefinition.json":
			dst = &createUI
		default:
			continue
		}
		if *dst != nil {
			return nil, nil, invalid("it holds '" + rp.SafeText(zf.Name) + "' twice")
		}
		b, err := read(zf)
		if err != nil {
			return nil, nil, err
		}
		*dst = b
	}
	if mainTemplate == nil || createUI == nil {
		return nil, nil, invalid("mainTemplate.json and createUiDefinition.json must be at the root of the archive")
	}
	return mainTemplate, createUI, nil
}

// withoutBOM drops a UTF-8 byte order mark, which editors on Windows put
// at the start of JSON files and JSON does not allow.
func withoutBOM(b []byte) json.RawMessage {
	return json.RawMessage(bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")))
}
