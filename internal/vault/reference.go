package vault

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/audit"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// SecretReference is a parsed Key Vault secret URI,
// https://{vault}.vault.{domain}/secrets/{name}[/{version}].
type SecretReference struct {
	Vault   string // the vault's name, as written
	Name    string // the secret's name
	Version string // "" for the latest usable version
}

// ParseSecretReference parses a Key Vault secret URI:
// https://{vault}.vault.{domain}/secrets/{name}[/{version}] (domain
// azure.net or a custom one), with a valid vault name, secret name and, if
// given, version id; no port, user info, query or fragment.
func ParseSecretReference(uri string) (SecretReference, error) {
	bad := func(why string) (SecretReference, error) {
		return SecretReference{}, fmt.Errorf("%w: a secret reference must be https://{vault}.vault.azure.net/secrets/{name}[/{version}]: %s", ErrInvalid, why)
	}
	if len(uri) > 2048 {
		return bad("too long")
	}
	u, err := url.Parse(uri)
	if err != nil {
		return bad("not a URL")
	}
	if u.Scheme != "https" || u.User != nil || u.Port() != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Opaque != "" {
		return bad("an https URL without port, user, query or fragment is expected")
	}
	name, rest, ok := strings.Cut(u.Hostname(), ".")
	if !ok || !ValidName(name) || !strings.HasPrefix(strings.ToLower(rest), "vault.") || len(rest) <= len("vault.") {
		return bad("the host must be {vault}.vault.{domain} with a valid vault name")
	}
	segs := strings.Split(strings.TrimPrefix(u.EscapedPath(), "/"), "/")
	if len(segs) < 2 || len(segs) > 3 || !strings.EqualFold(segs[0], "secrets") || !secretName.MatchString(segs[1]) {
		return bad("the path must be /secrets/{name}[/{version}] with a valid secret name")
	}
	ref := SecretReference{Vault: name, Name: segs[1]}
	if len(segs) == 3 {
		if !versionID.MatchString(segs[2]) {
			return bad("the version must be 32 hexadecimal digits")
		}
		ref.Version = strings.ToLower(segs[2])
	}
	return ref, nil
}

// ResolveReference is the platform's own read of a secret that a tenant
// refers to by URI (e.g. the bootstrap secret of a managed application's
// registration, kept in the publisher's vault): no token and no RBAC
// check, since no principal calls it; the caller vouches that tenantID
// owns the reference. The vault must exist and belong to tenantID (else
// ErrNotFound, the same answer as for a missing vault, so that a reference
// never reveals another tenant's vault). Without a version it returns the
// latest version that is enabled, not expired and already valid (as a
// client's get of the latest would have to); with one, that version, when
// it is usable. The read is audited as the platform (actor
// "Microsoft.Solutions", action "secret.reference") without the value; an
// audit that cannot be stored fails the read. Errors never carry the value.
func (s *Service) ResolveReference(ctx context.Context, tenantID, uri string) (string, error) {
	const action = "secret.reference"
	ref, err := ParseSecretReference(uri)
	if err != nil {
		return "", err
	}
	v, err := s.st.GetVault(ctx, ref.Vault)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !strings.EqualFold(v.TenantID, tenantID)) {
		return "", fmt.Errorf("%w: vault %s in tenant %s", ErrNotFound, ref.Vault, tenantID)
	} else if err != nil {
		return "", err
	}
	rec := store.AuditRecord{Actor: "Microsoft.Solutions", ActorTenant: tenantID, TargetTenant: v.TenantID, Action: action,
		Target: v.Name + "/" + ref.Name}
	fail := func(result string, err error) (string, error) {
		rec.Result = result
		_ = s.audit.Record(ctx, rec)
		return "", err
	}
	now := s.now()
	usable := func(sec store.Secret) bool {
		return sec.Enabled && (sec.Expires.IsZero() || now.Before(sec.Expires)) && (sec.NotBefore.IsZero() || !now.Before(sec.NotBefore))
	}
	var sec store.Secret
	if ref.Version != "" {
		sec, err = s.st.GetSecret(ctx, v.Name, ref.Name, ref.Version)
		if err == nil && !usable(sec) {
			err = fmt.Errorf("%w: version %s of secret %s is disabled, expired or not yet valid", ErrNotFound, ref.Version, ref.Name)
		}
	} else {
		var versions []store.Secret
		versions, err = s.st.ListSecretVersions(ctx, store.SecretQuery{Vault: v.Name, Name: ref.Name})
		found := false
		for _, c := range versions {
			if usable(c) && (!found || c.Seq > sec.Seq) {
				sec, found = c, true
			}
		}
		if err == nil && !found {
			err = fmt.Errorf("%w: secret %s of vault %s has no enabled, unexpired version", ErrNotFound, ref.Name, v.Name)
		}
	}
	if errors.Is(err, store.ErrNotFound) {
		return fail("SecretNotFound", fmt.Errorf("%w: secret %s of vault %s", ErrNotFound, ref.Name, v.Name))
	}
	if err != nil {
		return fail("Failed", err)
	}
	if sec.Value == nil && ref.Version == "" {
		// ListSecretVersions may leave values out: read the chosen version.
		if sec, err = s.st.GetSecret(ctx, v.Name, ref.Name, sec.Version); err != nil {
			return fail("Failed", err)
		}
	}
	value, err := s.open(v, sec)
	if err != nil {
		return fail("Failed", fmt.Errorf("vault: opening secret %s of vault %s failed", ref.Name, v.Name))
	}
	rec.Result, rec.Detail = audit.Success, sec.Version
	if err := s.audit.Record(ctx, rec); err != nil {
		return "", fmt.Errorf("vault: audit record not stored: %w", err)
	}
	return value, nil
}
