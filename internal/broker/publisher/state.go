package publisher

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
)

// Installation is the broker's record of one managed application: where
// its registration stands (each step is recorded as it completes, so that
// a retry resumes where the last attempt stopped), and the last lifecycle
// event applied. It holds no secret: a client secret goes from Graph's
// addPassword answer straight into the customer's vault.
type Installation struct {
	// Key is the normalized (lower-cased, leading "/") application id.
	Key string `json:"key"`
	// ApplicationID is the id as the notification spelled it.
	ApplicationID string `json:"applicationId"`
	DefinitionID  string `json:"definitionId,omitempty"`
	// Status is registering, registered or deleted.
	Status string `json:"status"`
	// LastEventTime is the eventTime of the last notification applied;
	// older ones are stale and ignored.
	LastEventTime time.Time `json:"lastEventTime,omitzero"`

	CredentialMode string `json:"credentialMode,omitempty"`
	// Offer is the key of Config.Offers the installation registered by
	// (empty: by its definition's registration section).
	Offer string `json:"offer,omitempty"`
	// DeliveryIdentityID is the offer's delivery identity in the managed
	// resource group (listTokens' userAssignedIdentities).
	DeliveryIdentityID string `json:"deliveryIdentityId,omitempty"`
	// Vault is the managed application's vault (the spec's
	// registration.vault, its placeholders expanded).
	Vault string `json:"vault,omitempty"`
	// CustomerTenantID and IdentityObjectID are the managed application's
	// system-assigned identity (read from a listTokens token).
	CustomerTenantID string `json:"customerTenantId,omitempty"`
	IdentityObjectID string `json:"identityObjectId,omitempty"`
	// ManagedResourceGroupID is the installation's managed resource
	// group, as the registration call names it.
	ManagedResourceGroupID string `json:"managedResourceGroupId,omitempty"`
	// WorkloadObjectID is the user-assigned identity of the managed
	// resource group the installed software runs as
	// (Config.InstallationIdentity), when there is one.
	WorkloadObjectID string `json:"workloadObjectId,omitempty"`

	// The per-installation application and service principal in the
	// publisher tenant.
	DisplayName     string     `json:"displayName,omitempty"`
	AppObjectID     string     `json:"appObjectId,omitempty"`
	ClientID        string     `json:"clientId,omitempty"`
	SPObjectID      string     `json:"servicePrincipalId,omitempty"`
	GroupID         string     `json:"groupId,omitempty"`
	InGroup         bool       `json:"inGroup,omitempty"`
	FederatedCredID string     `json:"federatedCredentialId,omitempty"`
	ConfigDelivered bool       `json:"configDelivered,omitempty"`
	Passwords       []Password `json:"passwords,omitempty"`
	RegisteredAt    time.Time  `json:"registeredAt,omitzero"`
	UpdatedAt       time.Time  `json:"updatedAt,omitzero"`
}

// Password is a client secret of the per-installation application (its
// metadata only).
type Password struct {
	KeyID   string    `json:"keyId"`
	Expires time.Time `json:"expires"`
	// Delivered: the secret is in the customer's vault (SecretVersion).
	Delivered     bool   `json:"delivered"`
	SecretVersion string `json:"secretVersion,omitempty"`
	// RetireAt, once set, is when the superseded secret is removed.
	RetireAt time.Time `json:"retireAt,omitzero"`
}

// exchangeIdentity is the identity whose token the exchange accepts for
// the installation.
func (in *Installation) exchangeIdentity() string {
	if in.WorkloadObjectID != "" {
		return in.WorkloadObjectID
	}
	return in.IdentityObjectID
}

// current is the delivered password that expires last.
func (in *Installation) current() *Password {
	var cur *Password
	for i := range in.Passwords {
		p := &in.Passwords[i]
		if p.Delivered && p.RetireAt.IsZero() && (cur == nil || p.Expires.After(cur.Expires)) {
			cur = p
		}
	}
	return cur
}

// Store keeps the installations. Get returns nil, nil when there is none.
// Implementations must be safe for concurrent use.
type Store interface {
	Get(ctx context.Context, key string) (*Installation, error)
	Put(ctx context.Context, in *Installation) error
	List(ctx context.Context) ([]*Installation, error)
}

// FileStore keeps the installations in one JSON file, replaced atomically
// on every change (write to a temporary file, sync, rename).
type FileStore struct {
	path string
	mu   sync.Mutex
}

// NewFileStore returns a store in the file path (created when missing).
func NewFileStore(path string) (*FileStore, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	s := &FileStore{path: path}
	if _, err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *FileStore) load() (map[string]*Installation, error) {
	m := map[string]*Installation{}
	b, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("publisher state %s: %w", s.path, err)
	}
	return m, nil
}

// Get implements Store.
func (s *FileStore) Get(_ context.Context, key string) (*Installation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.load()
	if err != nil {
		return nil, err
	}
	return m[key], nil
}

// Put implements Store.
func (s *FileStore) Put(_ context.Context, in *Installation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.load()
	if err != nil {
		return err
	}
	m[in.Key] = in
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(s.path), ".publisher-state-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), s.path)
}

// List implements Store.
func (s *FileStore) List(context.Context) ([]*Installation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.load()
	if err != nil {
		return nil, err
	}
	out := make([]*Installation, 0, len(m))
	for _, in := range m {
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// StateContentType marks the publisher vault's secrets that hold
// installation records.
const StateContentType = "application/vnd.tenantbridge.publisher-installation+json"

// VaultStore keeps each installation as a secret of the publisher's own
// vault (name "inst-" + 32 hex digits of SHA-256 of the key, value the
// record's JSON), so that several broker replicas share it.
type VaultStore struct {
	c *azsecrets.Client
}

// NewVaultStore returns a store in the vault of c.
func NewVaultStore(c *azsecrets.Client) *VaultStore { return &VaultStore{c: c} }

func stateSecretName(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "inst-" + hex.EncodeToString(sum[:16])
}

// Get implements Store.
func (s *VaultStore) Get(ctx context.Context, key string) (*Installation, error) {
	resp, err := s.c.GetSecret(ctx, stateSecretName(key), "", nil)
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var in Installation
	if resp.Value == nil || json.Unmarshal([]byte(*resp.Value), &in) != nil {
		return nil, fmt.Errorf("publisher state %s is not an installation record", stateSecretName(key))
	}
	return &in, nil
}

// Put implements Store.
func (s *VaultStore) Put(ctx context.Context, in *Installation) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	v, ct := string(b), StateContentType
	_, err = s.c.SetSecret(ctx, stateSecretName(in.Key), azsecrets.SetSecretParameters{Value: &v, ContentType: &ct}, nil)
	return err
}

// List implements Store.
func (s *VaultStore) List(ctx context.Context) ([]*Installation, error) {
	var out []*Installation
	pager := s.c.NewListSecretPropertiesPager(nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, p := range page.Value {
			if p.ContentType == nil || *p.ContentType != StateContentType || p.ID == nil {
				continue
			}
			resp, err := s.c.GetSecret(ctx, p.ID.Name(), "", nil)
			if err != nil {
				return nil, err
			}
			var in Installation
			if resp.Value != nil && json.Unmarshal([]byte(*resp.Value), &in) == nil {
				out = append(out, &in)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}
