package vault

// Microsoft.KeyVault/vaults/secrets: a vault's secrets as Resource
// Manager resources (Key Vault management REST, Secrets - Create Or
// Update, Update, Get, List; armkeyvault's SecretsClient), what a template
// declares to put a secret into a vault it deploys. Microsoft documents the
// operations as "intended for internal use in ARM deployments. Users
// should use the data-plane REST service for interaction with vault
// secrets", and the model's value as one that "will never be returned from
// the service" (SecretProperties.value in the spec and in armkeyvault): a
// value goes in through the control plane, and comes out only through the
// data plane.
//
// A write makes a new version through the data plane's own path
// (writeSecretVersion: sealed under the KEK, bound to tenant, vault, name
// and version), in the transaction of the request's audit record; the
// record names the version, never the value.
//
// Authorization is the control plane's: Microsoft.KeyVault/vaults/secrets/
// write and /read. Azure's list of resource provider operations
// (learn.microsoft.com/azure/role-based-access-control/
// resource-provider-operations, Microsoft.KeyVault) describes them as
// "Create a new secret or update the value of an existing secret" and
// "View the properties of a secret, but not its value": control-plane
// actions, which Contributor's "*" holds (and Reader's "*/read" the
// second), while reading a value takes the data action
// secrets/getSecret/action, which neither holds. So a Contributor sets a
// secret through Resource Manager, as in Azure, and never reads it back
// there.

import (
	"errors"
	"net/http"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/arm/rp"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

const (
	secretType        = "Microsoft.KeyVault/vaults/secrets"
	actionSecretRead  = "Microsoft.KeyVault/vaults/secrets/read"
	actionSecretWrite = "Microsoft.KeyVault/vaults/secrets/write"
)

// The targets of the secrets' paths (rp.Path.Target): the list of a
// vault's secrets, and one secret.
const (
	targetSecrets rp.Target = 110
)

// secretAttributes is SecretAttributes of the management spec: enabled and
// the times in Unix seconds (as the data plane's).
type secretAttributes = attributes

// armSecretBody is SecretCreateOrUpdateParameters and
// SecretPatchParameters: tags, and the properties value, contentType and
// attributes. Read-only members a client echoes back (secretUri,
// secretUriWithVersion, created, updated) are accepted and ignored.
type armSecretBody struct {
	Tags       map[string]*string `json:"tags"`
	Properties *struct {
		Value                *string           `json:"value"`
		ContentType          *string           `json:"contentType"`
		Attributes           *secretAttributes `json:"attributes"`
		SecretURI            *string           `json:"secretUri"`
		SecretURIWithVersion *string           `json:"secretUriWithVersion"`
	} `json:"properties"`
}

// params is the body as the data plane's parameters.
func (b armSecretBody) params() setParams {
	p := setParams{Tags: b.Tags}
	if b.Properties != nil {
		p.Value, p.ContentType, p.Attributes = b.Properties.Value, b.Properties.ContentType, b.Properties.Attributes
	}
	if p.Attributes != nil {
		// Only enabled, nbf and exp are the caller's to set.
		p.Attributes = &attributes{Enabled: p.Attributes.Enabled, NotBefore: p.Attributes.NotBefore, Expires: p.Attributes.Expires}
	}
	return p
}

type secretViewProps struct {
	ContentType          string           `json:"contentType,omitempty"`
	Attributes           secretAttributes `json:"attributes"`
	SecretURI            string           `json:"secretUri"`
	SecretURIWithVersion string           `json:"secretUriWithVersion"`
}

// secretView is the Secret model: never a value.
type secretView struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Type       string            `json:"type"`
	Location   string            `json:"location"`
	Tags       map[string]string `json:"tags"`
	Properties secretViewProps   `json:"properties"`
}

func secretViewOf(rq *rp.Request, v store.Vault, sec store.Secret) secretView {
	enabled := sec.Enabled
	uri := vaultURI(rq.R, v.Name) + "secrets/" + sec.Name
	tags := sec.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	return secretView{ID: v.ResourceID + "/secrets/" + sec.Name, Name: sec.Name, Type: secretType, Location: v.Location, Tags: tags,
		Properties: secretViewProps{ContentType: sec.ContentType, SecretURI: uri, SecretURIWithVersion: uri + "/" + sec.Version,
			Attributes: attributes{Enabled: &enabled, NotBefore: unix(sec.NotBefore), Expires: unix(sec.Expires),
				Created: unix(sec.Created), Updated: unix(sec.Updated)}}}
}

// secrets serves a vault's secrets with the provider's KEK.
func secrets(rq *rp.Request, kek []byte) error {
	if rq.Path.Child != "" && !secretName.MatchString(rq.Path.Child) {
		return rp.BadRequest("The secret name '%s' is invalid: it must be 1-127 letters, digits and dashes.", rp.SafeText(rq.Path.Child))
	}
	return rp.ServeType(rq, rq.Path.Child == "", rp.TypeHandlers{List: listSecrets, Get: getSecret,
		Put:    func(rq *rp.Request) error { return putSecret(rq, kek) },
		Patch:  func(rq *rp.Request) error { return patchSecret(rq, kek) },
		Delete: func(rq *rp.Request) error { return rp.MethodNotAllowed(rq.R.Method) }})
}

// secretNotFound is Resource Manager's 404 of a secret (or of a secret in
// a vault that is not there, live, in the group).
func secretNotFound(rq *rp.Request) error {
	return rp.ResourceNotFound(secretType, rq.Path.RG, rq.Path.Name+"/"+rq.Path.Child)
}

// secretVault is the vault the path names, for a secret's operation: as
// findVault, with a missing vault answered as Resource Manager answers a
// child of a missing parent (ParentResourceNotFound).
func secretVault(rq *rp.Request, st store.Store, tenantID string) (store.Vault, error) {
	v, _, err := findVault(rq, st, tenantID)
	var re *rp.Error
	if errors.As(err, &re) && re.Code == "ResourceNotFound" {
		// Resource Manager's words for a nested resource whose parent is
		// not there (a soft-deleted vault is not there either).
		return store.Vault{}, rp.NewError(http.StatusNotFound, "ParentResourceNotFound",
			"Can not perform requested operation on nested resource. Parent resource '%s' not found.", rp.SafeText(rq.Path.Name))
	}
	return v, err
}

// readableVault is the vault of a read (a secret, or the list), once the
// caller may read secrets' properties at the path's scope.
func readableVault(rq *rp.Request) (store.Vault, error) {
	tenantID, err := rq.AuthorizeAt(actionSecretRead)
	if err != nil {
		return store.Vault{}, err
	}
	return secretVault(rq, rq.Store(), tenantID)
}

func getSecret(rq *rp.Request) error {
	v, err := readableVault(rq)
	if err != nil {
		return err
	}
	sec, err := rq.Store().GetSecret(rq.Ctx, v.Name, rq.Path.Child, "")
	if errors.Is(err, store.ErrNotFound) {
		return secretNotFound(rq)
	} else if err != nil {
		return rp.InternalError(err)
	}
	return rp.WriteJSON(rq, http.StatusOK, secretViewOf(rq, v, sec))
}

// listSecrets is Secrets - List: the vault's live secrets, a page of at
// most $top (bounded by rp.MaxPageSize) by lower-cased name, with an
// absolute nextLink. Reading the list takes secrets/read at the vault.
func listSecrets(rq *rp.Request) error {
	v, err := readableVault(rq)
	if err != nil {
		return err
	}
	p, err := rq.PageOf("$skiptoken", true)
	if err != nil {
		return err
	}
	secs, err := rq.Store().ListSecrets(rq.Ctx, store.SecretQuery{Vault: v.Name, After: strings.ToLower(p.After), Limit: p.Size + 1})
	if err != nil {
		return rp.InternalError(err)
	}
	out := rp.List[secretView]{Value: []secretView{}}
	if len(secs) > p.Size {
		secs = secs[:p.Size]
		out.NextLink = rp.NextLink(rq, p, strings.ToLower(secs[p.Size-1].Name))
	}
	for _, sec := range secs {
		out.Value = append(out.Value, secretViewOf(rq, v, sec))
	}
	return rp.WriteJSON(rq, http.StatusOK, out)
}

// putSecret is Secrets - Create Or Update: a new version with the body's
// value, contentType, attributes and tags; 201 when the secret is new, 200
// when it has versions already (the spec's two answers, both of which
// armkeyvault accepts).
func putSecret(rq *rp.Request, kek []byte) error {
	return writeSecret(rq, kek, func(body armSecretBody, _ *store.Secret) (store.Secret, *string, error) {
		if body.Properties == nil {
			return store.Secret{}, nil, rp.BadRequest("The parameter properties is required.")
		}
		sec, value, msg := newSecret(body.params())
		if msg != "" {
			return store.Secret{}, nil, rp.BadRequest("%s", msg)
		}
		sec.Name = rq.Path.Child
		return sec, &value, nil
	})
}

// patchSecret is Secrets - Update: the patch's contentType, attributes
// and tags over the latest version's; with a value, as a new version
// (201), else on the latest version (200). A secret that is not there is
// not created.
func patchSecret(rq *rp.Request, kek []byte) error {
	return writeSecret(rq, kek, func(body armSecretBody, current *store.Secret) (store.Secret, *string, error) {
		if current == nil {
			return store.Secret{}, nil, secretNotFound(rq)
		}
		p := body.params()
		next := *current
		next.Value, next.Deleted = nil, nil
		if p.Value != nil {
			if len(*p.Value) > MaxValueBytes {
				return store.Secret{}, nil, rp.BadRequest("The secret value is too large: %d bytes, the limit is %d.", len(*p.Value), MaxValueBytes)
			}
			next.Version, next.Seq = "", 0
		}
		if msg := applyProps(&next, p); msg != "" {
			return store.Secret{}, nil, rp.BadRequest("%s", msg)
		}
		next.Updated = rq.Now().UTC()
		return next, p.Value, nil
	})
}

// writeSecret runs a secret's write, once the caller may write it, in one
// transaction with its audit record: next gets the request's body and the
// latest version (nil when there is none) and returns the secret to write
// and the value of a new version (nil: the latest version's properties
// are updated in place). It answers the secret as written: 201 for a new
// secret or a patch's new version.
func writeSecret(rq *rp.Request, kek []byte, next func(body armSecretBody, current *store.Secret) (store.Secret, *string, error)) error {
	tenantID, err := rq.AuthorizeAt(actionSecretWrite)
	if err != nil {
		return err
	}
	var body armSecretBody
	if err := rp.ReadBody(rq, &body); err != nil {
		return err
	}
	if len(kek) != 32 {
		return rp.InternalError(errors.New("vault: the provider has no key-encryption key"))
	}
	status := http.StatusOK
	var v store.Vault
	var out store.Secret
	err = rq.Change(tenantID, func(tx store.Store, _ *directory.Service) error {
		var err error
		if v, err = secretVault(rq, tx, tenantID); err != nil {
			return err
		}
		var current *store.Secret
		switch sec, err := tx.GetSecret(rq.Ctx, v.Name, rq.Path.Child, ""); {
		case err == nil:
			current = &sec
		case !errors.Is(err, store.ErrNotFound):
			return rp.InternalError(err)
		}
		sec, value, err := next(body, current)
		if err != nil {
			return err
		}
		rq.Target = v.ResourceID + "/secrets/" + rq.Path.Child
		if value == nil {
			out, err = tx.UpdateSecret(rq.Ctx, sec)
		} else {
			if current == nil || rq.IsPatch() {
				status = http.StatusCreated
			}
			out, err = writeSecretVersion(rq.Ctx, tx, kek, v, sec, *value)
		}
		switch {
		case errors.Is(err, store.ErrConflict):
			// The data plane's refusal of a deleted secret's name.
			return rp.NewError(http.StatusConflict, "Conflict",
				"Secret %s is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged.", rp.SafeText(rq.Path.Child))
		case err != nil:
			return rp.InternalError(err)
		}
		rq.Detail = "version " + out.Version
		return nil
	})
	if err != nil {
		return err
	}
	return rp.WriteJSON(rq, status, secretViewOf(rq, v, out))
}
