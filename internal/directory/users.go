package directory

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/sealed"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// NewUser is what creating a user takes.
type NewUser struct {
	UserPrincipalName string
	DisplayName       string
	GivenName         string
	Surname           string
	MailNickname      string
	Password          string
	AccountEnabled    bool
}

// CreateUser adds a user. The sign-in name must end in the tenant's domain
// and the password must meet the complexity rules; the password is kept only
// as an argon2id hash.
func (s *Service) CreateUser(ctx context.Context, tenantID string, nu NewUser) (*User, error) {
	t, err := s.st.GetTenant(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	upn := strings.TrimSpace(nu.UserPrincipalName)
	local, domain, ok := strings.Cut(upn, "@")
	if !ok || local == "" || strings.ContainsAny(local, " @\"\\<>()[],;:") || len(upn) > 113 {
		return nil, invalidf("Property userPrincipalName %q is not a valid sign-in name.", upn)
	}
	if !strings.EqualFold(domain, t.Domain) {
		return nil, invalidf("The domain portion of the userPrincipalName property is invalid. You must use one of the verified domain names in your organization: %s.", t.Domain)
	}
	if strings.TrimSpace(nu.DisplayName) == "" {
		return nil, invalidf("Property 'displayName' is required.")
	}
	if err := checkPasswordPolicy(nu.Password); err != nil {
		return nil, err
	}
	hash, err := s.newPasswordHash(ctx, nu.Password)
	if err != nil {
		return nil, err
	}
	u := &User{
		ID: newID(), UserPrincipalName: local + "@" + strings.ToLower(domain), DisplayName: strings.TrimSpace(nu.DisplayName),
		GivenName: nu.GivenName, Surname: nu.Surname, MailNickname: nu.MailNickname, AccountEnabled: nu.AccountEnabled,
		PasswordHash: hash, CreatedDateTime: s.Now(),
	}
	if u.MailNickname == "" {
		u.MailNickname = local
	}
	if err := create(ctx, s.st, tenantID, u); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, conflictf("Another object with the same value for property userPrincipalName already exists")
		}
		return nil, err
	}
	return u, nil
}

// GetUser finds a user by object id.
func (s *Service) GetUser(ctx context.Context, tenantID, id string) (*User, error) {
	return get[User](ctx, s.st, tenantID, store.KindUser, id)
}

// UserByName finds a user by sign-in name (case-insensitive).
func (s *Service) UserByName(ctx context.Context, tenantID, upn string) (*User, error) {
	users, err := list[User](ctx, s.st, store.ObjectQuery{TenantID: tenantID, Kind: store.KindUser, Name: upn, Limit: 1})
	if err != nil {
		return nil, err
	}
	if len(users) == 0 {
		return nil, ErrNotFound
	}
	return users[0], nil
}

// ListUsers lists a tenant's users.
func (s *Service) ListUsers(ctx context.Context, tenantID string, q Query) ([]*User, error) {
	return list[User](ctx, s.st, q.store(tenantID, store.KindUser))
}

// UserChanges are the properties UpdateUser may change; nil leaves a property as it is.
type UserChanges struct {
	DisplayName    *string
	GivenName      *string
	Surname        *string
	AccountEnabled *bool
	Password       *string
}

// UpdateUser changes a user's profile or password. A new password is
// hashed once, before the update (which may start over), and clears the
// account's smart-lockout history: Entra resets the lockout duration when
// the password is changed or reset.
func (s *Service) UpdateUser(ctx context.Context, tenantID, id string, c UserChanges) (*User, error) {
	var hash string
	if c.Password != nil {
		if err := checkPasswordPolicy(*c.Password); err != nil {
			return nil, err
		}
		var err error
		if hash, err = s.newPasswordHash(ctx, *c.Password); err != nil {
			return nil, err
		}
	}
	u, err := update[User](ctx, s.st, tenantID, store.KindUser, id, func(u *User) error {
		if c.DisplayName != nil {
			if strings.TrimSpace(*c.DisplayName) == "" {
				return invalidf("Property 'displayName' is required.")
			}
			u.DisplayName = strings.TrimSpace(*c.DisplayName)
		}
		if c.GivenName != nil {
			u.GivenName = *c.GivenName
		}
		if c.Surname != nil {
			u.Surname = *c.Surname
		}
		if c.AccountEnabled != nil {
			u.AccountEnabled = *c.AccountEnabled
		}
		if c.Password != nil {
			u.PasswordHash = hash
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if c.Password != nil {
		if err := s.clearLockout(ctx, u); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// DeleteUser removes a user with their memberships and role assignments,
// and, as Entra does, the delegated permission grants made for that user
// alone (consentType Principal), all in one transaction: a grant never
// outlives its principal.
func (s *Service) DeleteUser(ctx context.Context, tenantID, id string) error {
	return s.inTx(ctx, func(tx *Service) error {
		grants, err := list[OAuth2PermissionGrant](ctx, tx.st, store.ObjectQuery{TenantID: tenantID, Kind: store.KindOAuth2PermissionGrant})
		if err != nil {
			return err
		}
		for _, g := range grants {
			if g.ConsentType == ConsentPrincipal && strings.EqualFold(g.PrincipalID, id) {
				if err := tx.st.DeleteObject(ctx, tenantID, store.KindOAuth2PermissionGrant, g.ID); err != nil && !errors.Is(err, ErrNotFound) {
					return err
				}
			}
		}
		return tx.st.DeleteObject(ctx, tenantID, store.KindUser, id)
	})
}

// CheckUserPassword reports whether password is the user's, and the
// account is enabled. It neither consults nor counts towards smart lockout:
// sign-ins use CheckPasswordSignIn. It hashes in a slot like every password
// check, and reports false when none frees up in time.
func (s *Service) CheckUserPassword(u *User, password string) bool {
	if !u.AccountEnabled || len(password) > maxPasswordLength {
		return false
	}
	ok, err := s.verifyPassword(context.Background(), u.PasswordHash, password)
	return err == nil && ok
}

// EnrollTOTP gives the user a new authenticator secret, sealed at rest,
// replacing any it had, and returns the otpauth:// URL to show once (as a
// QR code or text).
func (s *Service) EnrollTOTP(ctx context.Context, tenantID, id string) (otpauthURL, base32Secret string, err error) {
	return s.EnrollAuthenticator(ctx, tenantID, id, true)
}

// EnrollAuthenticator is EnrollTOTP that, unless replace, refuses with
// ErrConflict a user who has an authenticator already. The check is made
// in the update, against the version it writes over, so that of two
// enrolments at once only one succeeds: otherwise the first's secret,
// already handed out, would silently stop working.
func (s *Service) EnrollAuthenticator(ctx context.Context, tenantID, id string, replace bool) (otpauthURL, base32Secret string, err error) {
	secret := make([]byte, 20)
	if _, err := rand.Read(secret); err != nil {
		return "", "", err
	}
	u, err := update[User](ctx, s.st, tenantID, store.KindUser, id, func(u *User) error {
		if u.HasTOTP() && !replace {
			return ErrConflict
		}
		sealedSecret, err := sealed.Seal(s.kek, secret, []byte("totp/"+tenantID+"/"+u.ID))
		if err != nil {
			return err
		}
		u.TOTPSealed = sealedSecret
		return nil
	})
	if err != nil {
		return "", "", err
	}
	b32 := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(secret)
	label := url.PathEscape("tenantbridge:" + u.UserPrincipalName)
	return fmt.Sprintf("otpauth://totp/%s?secret=%s&issuer=tenantbridge&algorithm=SHA1&digits=6&period=30", label, b32), b32, nil
}

// CheckTOTP verifies a code from the user's authenticator.
func (s *Service) CheckTOTP(u *User, code string) bool {
	if !u.HasTOTP() {
		return false
	}
	secret, err := sealed.Open(s.kek, u.TOTPSealed, []byte("totp/"+u.TenantID+"/"+u.ID))
	if err != nil {
		return false
	}
	return totpValid(secret, strings.TrimSpace(code), s.now())
}
