package arm

// The deployment spec of a managed application definition
// (properties.deploymentSpec): tenantbridge's own JSON, in place of an ARM
// template, listing what an installation creates in its managed resource
// group. docs/managed-applications.md documents it; validate checks it
// when the definition is written, naming the path of a bad field, and
// specTemplate turns it into the ARM template it stands for, which an
// install runs by the template deployment path as a package's
// mainTemplate (managedapps_template.go).

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/arm/rp"
	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/servicebus"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/vault"
)

// placeholderSuffix is replaced, in every name of a spec, by the
// installation's unique suffix (uniqueSuffix).
const placeholderSuffix = "{uniqueSuffix}"

// uniqueSuffix is a short, stable hash of an application's resource id
// (lower-cased): 12 lower-case hex digits, unique per installation, so
// that globally named resources (vaults, namespaces) of two installations
// of one definition do not collide.
func uniqueSuffix(appID string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(appID)))
	return hex.EncodeToString(sum[:])[:12]
}

// expand substitutes the placeholders of a name.
func expand(name, suffix string) string {
	return strings.ReplaceAll(name, placeholderSuffix, suffix)
}

type deploymentSpec struct {
	Vaults                 []specVault          `json:"vaults,omitempty"`
	ServiceBusNamespaces   []specNamespace      `json:"serviceBusNamespaces,omitempty"`
	UserAssignedIdentities []specIdentity       `json:"userAssignedIdentities,omitempty"`
	RoleAssignments        []specRoleAssignment `json:"roleAssignments,omitempty"`
	Registration           *specRegistration    `json:"registration,omitempty"`
}

type specVault struct {
	Name                      string `json:"name"`
	Sku                       string `json:"sku,omitempty"`
	SoftDeleteRetentionInDays *int   `json:"softDeleteRetentionInDays,omitempty"`
	EnablePurgeProtection     *bool  `json:"enablePurgeProtection,omitempty"`
}

type specNamespace struct {
	Name   string      `json:"name"`
	Sku    string      `json:"sku,omitempty"`
	Queues []specQueue `json:"queues,omitempty"`
}

type specQueue struct {
	Name       string                `json:"name"`
	Properties *servicebus.QueueBody `json:"properties,omitempty"`
}

type specIdentity struct {
	Name                 string    `json:"name"`
	FederatedCredentials []specFIC `json:"federatedCredentials,omitempty"`
}

type specFIC struct {
	Name      string   `json:"name"`
	Issuer    string   `json:"issuer"`
	Subject   string   `json:"subject"`
	Audiences []string `json:"audiences,omitempty"`
}

type specRoleAssignment struct {
	// Role is a built-in role's name or id (GUID or roleDefinitions id).
	Role string `json:"role"`
	// Principal is "applicationIdentity", "identity:{spec identity name}"
	// or "publisher:{object id in the publisher tenant}".
	Principal string `json:"principal"`
	// Scope is "managedResourceGroup" (the default), "vault:{name}",
	// "namespace:{name}", "queue:{namespace}/{queue}" or
	// "identity:{name}", names as written in the spec.
	Scope string `json:"scope,omitempty"`
}

type specRegistration struct {
	Endpoint       string `json:"endpoint"`
	CredentialMode string `json:"credentialMode"`
	// Vault names the spec's vault the credential is delivered to.
	Vault string `json:"vault,omitempty"`
	// BootstrapSecret is a Key Vault secret URI,
	// https://{vault}.vault.azure.net/secrets/{name}[/{version}], of a
	// vault of the publisher's tenant: the secret the registration call
	// carries as "Authorization: Bootstrap {secret}". Only the reference
	// is stored (with the application and in the outbox); the value is
	// read when the call is sent.
	BootstrapSecret string `json:"bootstrapSecret,omitempty"`
}

// specError is a validation failure at a path of the spec.
func specError(path, format string, args ...any) error {
	return rp.NewError(http.StatusBadRequest, "InvalidDeploymentSpec", "properties.deploymentSpec%s: %s", path, fmt.Sprintf(format, args...))
}

var identityNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._()-]{0,89}$`)

// sampleSuffix stands for the unique suffix when a spec is validated.
const sampleSuffix = "0123456789ab"

// parseSpec decodes and validates a spec. raw may be empty (nothing to
// deploy). publisherKind looks up a publisher principal (nil skips it).
func parseSpec(raw json.RawMessage, publisherKind func(id string) (store.PrincipalType, error)) (*deploymentSpec, error) {
	spec := &deploymentSpec{}
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return spec, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(spec); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, specError("."+te.Field, "must be a JSON %s", te.Type.Kind())
		}
		return nil, specError("", "%s", rp.SafeText(err.Error()))
	}
	return spec, spec.validate(publisherKind)
}

func (s *deploymentSpec) validate(publisherKind func(id string) (store.PrincipalType, error)) error {
	vaults, namespaces, queues, identities := map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
	for i, v := range s.Vaults {
		p := fmt.Sprintf(".vaults[%d]", i)
		if v.Name == "" {
			return specError(p+".name", "is required")
		}
		if !vault.ValidName(expand(v.Name, sampleSuffix)) {
			return specError(p+".name", "'%s' is not a valid vault name: 3 to 24 letters, digits and hyphens once %s is replaced by 12 characters, starting with a letter", rp.SafeText(v.Name), placeholderSuffix)
		}
		if err := listOnce(vaults, strings.ToLower(v.Name), p, v.Name); err != nil {
			return err
		}
		if sku := strings.ToLower(v.Sku); sku != "" && sku != "standard" && sku != "premium" {
			return specError(p+".sku", "must be 'standard' or 'premium'")
		}
		if _, _, err := vault.CreationSettings(v.SoftDeleteRetentionInDays, v.EnablePurgeProtection); err != nil {
			return specError(p, "%s", rp.SafeText(err.Error()))
		}
	}
	for i, n := range s.ServiceBusNamespaces {
		p := fmt.Sprintf(".serviceBusNamespaces[%d]", i)
		if n.Name == "" {
			return specError(p+".name", "is required")
		}
		if !servicebus.ValidNamespaceName(expand(n.Name, sampleSuffix)) {
			return specError(p+".name", "'%s' is not a valid namespace name: 6 to 50 letters, digits and hyphens once %s is replaced by 12 characters, starting with a letter", rp.SafeText(n.Name), placeholderSuffix)
		}
		if err := listOnce(namespaces, strings.ToLower(n.Name), p, n.Name); err != nil {
			return err
		}
		switch strings.ToLower(n.Sku) {
		case "", "basic", "standard", "premium":
		default:
			return specError(p+".sku", "must be 'Basic', 'Standard' or 'Premium'")
		}
		for j, q := range n.Queues {
			qp := fmt.Sprintf("%s.queues[%d]", p, j)
			if !servicebus.ValidQueueName(q.Name) {
				return specError(qp+".name", "'%s' is not a valid queue name", rp.SafeText(q.Name))
			}
			if err := listOnce(queues, strings.ToLower(n.Name+"/"+q.Name), qp, q.Name); err != nil {
				return err
			}
			if err := servicebus.CheckQueueBody(servicebus.SkuTier(n.Sku), q.Properties); err != nil {
				var ae *rp.Error
				if errors.As(err, &ae) {
					return specError(qp, "%s", ae.Message)
				}
				return err
			}
		}
	}
	for i, id := range s.UserAssignedIdentities {
		p := fmt.Sprintf(".userAssignedIdentities[%d]", i)
		if !identityNameRE.MatchString(expand(id.Name, sampleSuffix)) || strings.HasSuffix(id.Name, ".") {
			return specError(p+".name", "'%s' is not a valid identity name: 1 to 90 letters, digits, '.', '_', '-', '(' or ')'", rp.SafeText(id.Name))
		}
		if err := listOnce(identities, strings.ToLower(id.Name), p, id.Name); err != nil {
			return err
		}
		names := map[string]bool{}
		for j, f := range id.FederatedCredentials {
			fp := fmt.Sprintf("%s.federatedCredentials[%d]", p, j)
			if n := len(f.Name); n < 3 || n > 120 || strings.IndexFunc(f.Name, func(r rune) bool {
				return !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
			}) >= 0 {
				return specError(fp+".name", "must be 3 to 120 letters, digits, '-' or '_'")
			}
			if err := listOnce(names, strings.ToLower(f.Name), fp, f.Name); err != nil {
				return err
			}
			if u, err := url.Parse(f.Issuer); err != nil || u.Scheme != "https" || u.Host == "" || len(f.Issuer) > 600 {
				return specError(fp+".issuer", "must be an https URL")
			}
			if f.Subject == "" || len(f.Subject) > 600 {
				return specError(fp+".subject", "is required (at most 600 characters)")
			}
			if len(f.Audiences) > 1 || (len(f.Audiences) == 1 && (f.Audiences[0] == "" || len(f.Audiences[0]) > 600)) {
				return specError(fp+".audiences", "must hold exactly one audience (default api://AzureADTokenExchange)")
			}
		}
		if len(id.FederatedCredentials) > 20 {
			return specError(p+".federatedCredentials", "at most 20 federated credentials")
		}
	}
	// named is, for each kind a role assignment may refer to, the spec's
	// names of that kind (lower-cased) and how an error calls one.
	named := map[string]struct {
		names map[string]bool
		what  string
	}{
		"vault":     {vaults, "vault of vaults"},
		"namespace": {namespaces, "namespace of serviceBusNamespaces"},
		"queue":     {queues, "queue ({namespace}/{queue}) of serviceBusNamespaces"},
		"identity":  {identities, "identity of userAssignedIdentities"},
	}
	refer := func(path, kind, ref string) error {
		if n := named[kind]; !n.names[strings.ToLower(ref)] {
			return specError(path, "'%s' names no %s", rp.SafeText(ref), n.what)
		}
		return nil
	}
	for i, ra := range s.RoleAssignments {
		p := fmt.Sprintf(".roleAssignments[%d]", i)
		if _, ok := builtInRole(ra.Role); !ok {
			return specError(p+".role", "'%s' is not a built-in role name or id", rp.SafeText(ra.Role))
		}
		kind, ref, _ := strings.Cut(ra.Principal, ":")
		switch strings.ToLower(kind) {
		case "applicationidentity":
			if ref != "" {
				return specError(p+".principal", "'applicationIdentity' takes no name")
			}
		case "identity":
			if err := refer(p+".principal", "identity", ref); err != nil {
				return err
			}
		case "publisher":
			if !isGUID(ref) {
				return specError(p+".principal", "'publisher:' must be followed by the object id of a principal of the publisher tenant")
			}
			if publisherKind != nil {
				if _, err := publisherKind(strings.ToLower(ref)); err != nil {
					return err
				}
			}
		default:
			return specError(p+".principal", "must be 'applicationIdentity', 'identity:{name}' or 'publisher:{object id}'")
		}
		skind, sref, _ := strings.Cut(ra.Scope, ":")
		switch skind = strings.ToLower(skind); skind {
		case "", "managedresourcegroup":
			if sref != "" {
				return specError(p+".scope", "'managedResourceGroup' takes no name")
			}
		case "vault", "namespace", "queue", "identity":
			if err := refer(p+".scope", skind, sref); err != nil {
				return err
			}
		default:
			return specError(p+".scope", "must be 'managedResourceGroup', 'vault:{name}', 'namespace:{name}', 'queue:{namespace}/{queue}' or 'identity:{name}'")
		}
	}
	if r := s.Registration; r != nil {
		u, err := url.Parse(r.Endpoint)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(r.Endpoint) > 2048 {
			return specError(".registration.endpoint", "must be an absolute http(s) URL")
		}
		if r.CredentialMode != "secret" && r.CredentialMode != "federated" {
			return specError(".registration.credentialMode", "must be 'secret' or 'federated'")
		}
		if r.Vault != "" {
			if err := refer(".registration.vault", "vault", r.Vault); err != nil {
				return err
			}
		}
		if r.CredentialMode == "secret" && r.Vault == "" {
			return specError(".registration.vault", "is required with credentialMode 'secret': the credential is delivered into that vault")
		}
		if r.BootstrapSecret == "" {
			return specError(".registration.bootstrapSecret", "is required with an endpoint: the URI of a secret in a vault of the publisher's tenant, https://{vault}.vault.azure.net/secrets/{name}")
		}
		if _, err := vault.ParseSecretReference(r.BootstrapSecret); err != nil {
			return specError(".registration.bootstrapSecret", "'%s' is not a Key Vault secret URI: https://{vault}.vault.azure.net/secrets/{name}[/{version}]", rp.SafeText(r.BootstrapSecret))
		}
	}
	return nil
}

// listOnce records key in seen, or fails when it is there already: the
// spec lists the name at path (key lower-cased) twice.
func listOnce(seen map[string]bool, key, path, name string) error {
	if seen[key] {
		return specError(path+".name", "'%s' is listed twice", rp.SafeText(name))
	}
	seen[key] = true
	return nil
}

// builtInRole resolves a built-in role by name, GUID or roleDefinitions id.
func builtInRole(ref string) (store.RoleDefinition, bool) {
	if i := strings.LastIndex(strings.ToLower(ref), "/roledefinitions/"); i >= 0 {
		ref = ref[i+len("/roledefinitions/"):]
	}
	if ref == "" {
		return store.RoleDefinition{}, false
	}
	return rbac.BuiltInRole(ref)
}

// deployError is a failure of one resource of a deployment: the
// application goes Failed with it.
type deployError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *deployError) Error() string { return e.Code + ": " + e.Message }

func deployFailed(code, format string, args ...any) error {
	return &deployError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// installation is what installing a spec needs to know of the
// application.
type installation struct {
	tenantID   string // the customer's
	appID      string
	location   string
	groupID    string // the managed resource group's id
	sub        string // its subscription
	appSP      string // the object id of the application's system-assigned identity, if any
	publisher  string // the publisher's tenant id
	suffix     string
	spec       *deploymentSpec
	createdBy  string
	publishers map[string]store.PrincipalType // publisher principals named by the spec
}

// The api-versions of the template a spec becomes: versions the current
// SDKs send for each type.
const (
	specVaultAPI      = "2023-07-01"
	specIdentityAPI   = "2023-01-31"
	specServiceBusAPI = "2021-11-01"
	specRoleAPI       = "2022-04-01"
)

// literal is s as a template string that stands for itself: a leading
// '[' is doubled, so that it is not read as an expression.
func literal(s string) string {
	if strings.HasPrefix(s, "[") {
		return "[" + s
	}
	return s
}

// assignmentID is the name of the spec's i-th role assignment of the
// application: stable, so that the same grant is not made twice.
func (in installation) assignmentID(i int) string {
	return uuid.NewSHA1(uuid.NameSpaceURL, fmt.Appendf(nil, "%s/roleAssignments/%d", strings.ToLower(in.appID), i)).String()
}

// specTemplate is the ARM template a spec stands for: the same resources,
// created by the same deployment path as a package's mainTemplate
// (managedapps_template.go), in the managed resource group, with the
// placeholders replaced. A federated credential depends on the one before
// it on the same identity (an identity takes one credential write at a
// time); a role assignment depends on its scope's and its principal's
// resource. The spec's assignments of publisher principals are not in
// it: they grant a principal of another tenant, which a role assignment
// PUT does not take; publisherAssignments makes them.
func specTemplate(in installation) (json.RawMessage, error) {
	base := in.groupID + "/providers/"
	ids := specScopes(in)
	var resources []map[string]any
	for _, v := range in.spec.Vaults {
		name := expand(v.Name, in.suffix)
		sku := strings.ToLower(v.Sku)
		if sku == "" {
			sku = "standard"
		}
		props := map[string]any{"tenantId": in.tenantID, "sku": map[string]any{"family": "A", "name": sku}, "enableRbacAuthorization": true}
		if v.SoftDeleteRetentionInDays != nil {
			props["softDeleteRetentionInDays"] = *v.SoftDeleteRetentionInDays
		}
		if v.EnablePurgeProtection != nil {
			props["enablePurgeProtection"] = *v.EnablePurgeProtection
		}
		resources = append(resources, map[string]any{"type": vaultType, "apiVersion": specVaultAPI, "name": literal(name), "location": in.location, "properties": props})
	}
	for _, n := range in.spec.ServiceBusNamespaces {
		name := expand(n.Name, in.suffix)
		tier := servicebus.SkuTier(n.Sku)
		nsID := base + sbNamespaceType + "/" + name
		resources = append(resources, map[string]any{"type": sbNamespaceType, "apiVersion": specServiceBusAPI, "name": literal(name), "location": in.location,
			"sku": map[string]any{"name": tier, "tier": tier}})
		for _, q := range n.Queues {
			r := map[string]any{"type": sbQueueType, "apiVersion": specServiceBusAPI, "name": literal(name + "/" + q.Name), "dependsOn": []string{nsID}}
			if q.Properties != nil {
				r["properties"] = q.Properties
			}
			resources = append(resources, r)
		}
	}
	for _, ui := range in.spec.UserAssignedIdentities {
		name := expand(ui.Name, in.suffix)
		id := base + identityType + "/" + name
		resources = append(resources, map[string]any{"type": identityType, "apiVersion": specIdentityAPI, "name": literal(name), "location": in.location})
		previous := id
		for _, f := range ui.FederatedCredentials {
			aud := f.Audiences
			if len(aud) == 0 {
				aud = []string{"api://AzureADTokenExchange"}
			}
			var auds []string
			for _, a := range aud {
				auds = append(auds, literal(a))
			}
			resources = append(resources, map[string]any{"type": identityType + "/federatedIdentityCredentials", "apiVersion": specIdentityAPI,
				"name": literal(name + "/" + f.Name), "dependsOn": []string{previous},
				"properties": map[string]any{"issuer": literal(expand(f.Issuer, in.suffix)), "subject": literal(expand(f.Subject, in.suffix)), "audiences": auds}})
			previous = id + "/federatedIdentityCredentials/" + f.Name
		}
	}
	for i, ra := range in.spec.RoleAssignments {
		kind, ref, _ := strings.Cut(ra.Principal, ":")
		var principal any
		var depends []string
		switch strings.ToLower(kind) {
		case "applicationidentity":
			if in.appSP == "" {
				return nil, deployFailed("BadRequest", "roleAssignments[%d]: the application has no system-assigned identity (identity.type SystemAssigned).", i)
			}
			principal = in.appSP
		case "identity":
			id := ids["identity:"+strings.ToLower(ref)]
			principal, depends = "[reference('"+strings.ReplaceAll(id, "'", "''")+"', '"+specIdentityAPI+"').principalId]", []string{id}
		default:
			continue // publisher: publisherAssignments
		}
		scope := in.scopeOf(ra, ids)
		role, _ := builtInRole(ra.Role)
		r := map[string]any{"type": "Microsoft.Authorization/roleAssignments", "apiVersion": specRoleAPI, "name": in.assignmentID(i),
			"properties": map[string]any{"roleDefinitionId": "/subscriptions/" + in.sub + "/providers/Microsoft.Authorization/roleDefinitions/" + role.ID,
				"principalId": principal, "principalType": "ServicePrincipal"}}
		if scope != in.groupID {
			r["scope"] = literal(scope)
			depends = append(depends, scope)
		}
		if len(depends) > 0 {
			r["dependsOn"] = depends
		}
		resources = append(resources, r)
	}
	return json.Marshal(map[string]any{"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
		"contentVersion": "1.0.0.0", "resources": rp.NonNil(resources)})
}

// scopeOf is the resource id a spec's role assignment is made at.
func (in installation) scopeOf(ra specRoleAssignment, ids map[string]string) string {
	skind, sref, _ := strings.Cut(ra.Scope, ":")
	key := strings.ToLower(skind)
	if sref != "" {
		key += ":" + strings.ToLower(sref)
	}
	return ids[key]
}

// specScopes are the ids of the managed group and the spec's resources,
// by the name a role assignment's scope gives them ("vault:{name as
// written}", lower-cased; "" and "managedresourcegroup" for the group).
func specScopes(in installation) map[string]string {
	base := in.groupID + "/providers/"
	ids := map[string]string{"": in.groupID, "managedresourcegroup": in.groupID}
	for _, v := range in.spec.Vaults {
		ids["vault:"+strings.ToLower(v.Name)] = base + vaultType + "/" + expand(v.Name, in.suffix)
	}
	for _, n := range in.spec.ServiceBusNamespaces {
		nsID := base + sbNamespaceType + "/" + expand(n.Name, in.suffix)
		ids["namespace:"+strings.ToLower(n.Name)] = nsID
		for _, q := range n.Queues {
			ids["queue:"+strings.ToLower(n.Name+"/"+q.Name)] = nsID + "/queues/" + q.Name
		}
	}
	for _, ui := range in.spec.UserAssignedIdentities {
		ids["identity:"+strings.ToLower(ui.Name)] = base + identityType + "/" + expand(ui.Name, in.suffix)
	}
	return ids
}

// publisherAssignments makes, in tx, the spec's role assignments of the
// publisher's principals: cross-tenant grants (principalTenantId the
// publisher's), which only the platform makes, as it makes the
// definition's authorizations.
func publisherAssignments(ctx context.Context, tx store.Store, in installation, now time.Time) error {
	scopes := specScopes(in)
	for i, ra := range in.spec.RoleAssignments {
		kind, ref, _ := strings.Cut(ra.Principal, ":")
		if !strings.EqualFold(kind, "publisher") {
			continue
		}
		ref = strings.ToLower(ref)
		pt, ok := in.publishers[ref]
		if !ok { // looked up before the install began
			return rp.InternalError(fmt.Errorf("publisher principal %s of %s not looked up", ref, in.appID))
		}
		role, _ := builtInRole(ra.Role)
		a := store.RoleAssignment{TenantID: in.tenantID, ID: in.assignmentID(i), Scope: in.scopeOf(ra, scopes), RoleDefinitionID: role.ID,
			PrincipalID: ref, PrincipalType: pt, PrincipalTenantID: in.publisher, CreatedOn: now, CreatedBy: in.createdBy}
		if err := tx.CreateRoleAssignment(ctx, a); errors.Is(err, store.ErrConflict) {
			continue // the same grant twice in the spec
		} else if err != nil {
			return err
		}
	}
	return nil
}

// checkBootstrapSecret fails the installation when the registration's
// bootstrap secret is not in a vault of the publisher's tenant (the
// definition's): the deliverer reads it as the publisher's, and a
// reference to any other tenant's vault must never be followed. A vault
// that does not exist gets the same answer, so that the error does not
// reveal whether another tenant has a vault of that name. The secret
// itself is not required yet: it is read when the registration is sent.
func checkBootstrapSecret(ctx context.Context, tx store.Store, in installation) error {
	r := in.spec.Registration
	if r == nil || r.Endpoint == "" {
		return nil
	}
	ref, err := vault.ParseSecretReference(r.BootstrapSecret)
	if err != nil {
		return deployFailed("InvalidBootstrapSecret", "The registration's bootstrapSecret '%s' is not a Key Vault secret URI.", rp.SafeText(r.BootstrapSecret))
	}
	v, err := tx.GetVault(ctx, ref.Vault)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !strings.EqualFold(v.TenantID, in.publisher)) {
		return deployFailed("InvalidBootstrapSecret", "The registration's bootstrapSecret refers to the vault '%s', which is not a vault of the publisher's tenant %s: the bootstrap secret must be kept in the publisher's own vault.", rp.SafeText(ref.Vault), in.publisher)
	} else if err != nil {
		return err
	}
	return nil
}
