package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/spf13/cobra"
)

// keyVaultSecretsOfficer is the built-in role `keyvault create` assigns the
// caller on the new vault: Owner of the subscription has no data actions
// (as in Azure), so without it the creator could not use its own vault.
const (
	keyVaultSecretsOfficer     = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"
	keyVaultSecretsOfficerName = "Key Vault Secrets Officer"
	keyVaultProvider           = "/providers/Microsoft.KeyVault/vaults"
	defaultLocation            = "westeurope"
)

// keyVault is ARM's Microsoft.KeyVault/vaults resource, with az's
// resourceGroup added.
type keyVault struct {
	ID            string            `json:"id"`
	Name          string            `json:"name"`
	Type          string            `json:"type"`
	Location      string            `json:"location"`
	ResourceGroup string            `json:"resourceGroup"`
	Tags          map[string]string `json:"tags"`
	Properties    struct {
		TenantID string `json:"tenantId"`
		Sku      struct {
			Family string `json:"family"`
			Name   string `json:"name"`
		} `json:"sku"`
		VaultURI                  string `json:"vaultUri"`
		EnableRbacAuthorization   bool   `json:"enableRbacAuthorization"`
		EnableSoftDelete          bool   `json:"enableSoftDelete"`
		SoftDeleteRetentionInDays int    `json:"softDeleteRetentionInDays"`
		EnablePurgeProtection     bool   `json:"enablePurgeProtection"`
		ProvisioningState         string `json:"provisioningState"`
	} `json:"properties"`
}

func (v keyVault) resourceName() string { return v.Name }
func (v keyVault) resourceID() string   { return v.ID }

// withGroup fills ResourceGroup from the id.
func (v keyVault) withGroup() keyVault {
	v.ResourceGroup = groupOf(v.ID)
	return v
}

var keyVaultHeader = []string{"NAME", "RESOURCE GROUP", "LOCATION", "VAULT URI"}

func keyVaultRow(v keyVault) []string {
	return []string{v.Name, v.ResourceGroup, v.Location, v.Properties.VaultURI}
}

// keyvaultCommand is az keyvault: vaults through Resource Manager, and
// their secrets through the Key Vault data plane with the azsecrets client.
func (c *cli) keyvaultCommand() *cobra.Command {
	var tenant string
	cmd := &cobra.Command{Use: "keyvault", Short: "Manage Key Vaults (through Resource Manager) and their secrets"}
	cmd.PersistentFlags().StringVarP(&tenant, "tenant", "t", "", "tenant name, domain or id (default: the only profile)")
	sess := func() (*roleCtx, error) { return c.roleSession(tenant) }
	secret := &cobra.Command{Use: "secret", Short: "Manage the secrets of a vault"}
	secret.AddCommand(c.secretSet(sess), c.secretShow(sess), c.secretList(sess), c.secretDelete(sess),
		c.secretRecover(sess), c.secretPurge(sess))
	cmd.AddCommand(c.keyvaultCreate(sess), c.keyvaultList(sess), c.keyvaultShow(sess), c.keyvaultDelete(sess), secret)
	return cmd
}

func isARMCode(err error, code string) bool {
	var ae *armCallError
	return errors.As(err, &ae) && ae.Code == code
}

func (c *cli) keyvaultCreate(sess roleSessionFunc) *cobra.Command {
	var days int
	var purgeProtection bool
	cmd := resourceCreate(c, sess, &cobra.Command{
		Use:   "create --name NAME --resource-group RG [--location L] [--retention-days D] [--enable-purge-protection]",
		Short: "Create a vault (and its resource group if missing), and make the caller Key Vault Secrets Officer on it",
		Long: "Create a vault with the Azure RBAC permission model. The resource group is created when it does not exist.\n" +
			"Owner of the subscription holds no data actions (as in Azure), so the caller is also assigned the\n" +
			"Key Vault Secrets Officer role on the new vault, as the Azure portal offers.",
	}, createSpec[keyVault]{kind: "vault", provider: keyVaultProvider,
		nameHelp: "vault name: 3-24 letters, digits and dashes, globally unique (required)",
		roleID:   keyVaultSecretsOfficer, roleName: keyVaultSecretsOfficerName, header: keyVaultHeader, row: keyVaultRow,
		body: func(r *roleCtx, location string) map[string]any {
			props := map[string]any{"tenantId": r.s.profile.TenantID, "sku": map[string]string{"family": "A", "name": "standard"},
				"enableRbacAuthorization": true, "softDeleteRetentionInDays": days}
			if purgeProtection {
				props["enablePurgeProtection"] = true
			}
			return map[string]any{"location": location, "properties": props}
		}})
	cmd.Flags().IntVar(&days, "retention-days", 90, "soft-delete retention of secrets in days, 7-90")
	cmd.Flags().BoolVar(&purgeProtection, "enable-purge-protection", false, "refuse purging deleted secrets before their retention ends")
	return cmd
}

func (c *cli) keyvaultList(sess roleSessionFunc) *cobra.Command {
	return resourceList(c, sess, "List the vaults of a resource group or of the subscription", keyVaultProvider,
		keyVaultHeader, keyVaultRow)
}

func (c *cli) keyvaultShow(sess roleSessionFunc) *cobra.Command {
	return resourceCommand(sess, "show", "Show a vault", keyVaultProvider, "vault",
		func(cmd *cobra.Command, _ *roleCtx, v keyVault) error {
			return c.render(cmd, v, func() table {
				return fields("Name", v.Name, "ResourceGroup", v.ResourceGroup, "Location", v.Location, "VaultUri", v.Properties.VaultURI,
					"TenantId", v.Properties.TenantID, "SoftDeleteRetentionInDays", strconv.Itoa(v.Properties.SoftDeleteRetentionInDays),
					"EnablePurgeProtection", strconv.FormatBool(v.Properties.EnablePurgeProtection), "Id", v.ID)
			})
		})
}

func (c *cli) keyvaultDelete(sess roleSessionFunc) *cobra.Command {
	return resourceCommand(sess, "delete", "Delete a vault: it is kept as a deleted vault, with its secrets, for its retention, until it is recovered (createMode recover) or purged",
		keyVaultProvider, "vault", func(cmd *cobra.Command, r *roleCtx, v keyVault) error {
			return c.resourceDelete(cmd, r, "vault", v.Name, v.ID, "secrets")
		})
}

// ---- secrets ----

// secretClient is an azsecrets client of vault, signed in with the
// profile's client secret and sent to tenantbridge by the Local transport.
func (c *cli) secretClient(sess roleSessionFunc, vault string) (*azsecrets.Client, error) {
	if vault == "" {
		return nil, errors.New("--vault-name is required")
	}
	r, err := sess()
	if err != nil {
		return nil, err
	}
	opts, _, err := c.clientOptions()
	if err != nil {
		return nil, err
	}
	return azsecrets.NewClient("https://"+strings.ToLower(vault)+".vault.azure.net", r.s.cred, &azsecrets.ClientOptions{ClientOptions: opts})
}

// kvError makes a data-plane error one line: its code and message.
func kvError(err error) error {
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return err
	}
	msg := ""
	if re.RawResponse != nil {
		var doc struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if runtime.UnmarshalAsJSON(re.RawResponse, &doc) == nil {
			msg = doc.Error.Message
		}
	}
	if msg == "" {
		return fmt.Errorf("%s (HTTP %d)", re.ErrorCode, re.StatusCode)
	}
	return fmt.Errorf("%s: %s (HTTP %d)", re.ErrorCode, strings.Join(strings.Fields(msg), " "), re.StatusCode)
}

// secretAttributes and secretOut are az's JSON for a secret.
type secretAttributes struct {
	Enabled         bool       `json:"enabled"`
	NotBefore       *time.Time `json:"notBefore"`
	Expires         *time.Time `json:"expires"`
	Created         *time.Time `json:"created"`
	Updated         *time.Time `json:"updated"`
	RecoverableDays *int32     `json:"recoverableDays"`
	RecoveryLevel   string     `json:"recoveryLevel"`
}

type secretOut struct {
	ID                 string            `json:"id"`
	Name               string            `json:"name"`
	Value              *string           `json:"value,omitempty"`
	ContentType        string            `json:"contentType,omitempty"`
	Tags               map[string]string `json:"tags"`
	Attributes         secretAttributes  `json:"attributes"`
	RecoveryID         string            `json:"recoveryId,omitempty"`
	DeletedDate        *time.Time        `json:"deletedDate,omitempty"`
	ScheduledPurgeDate *time.Time        `json:"scheduledPurgeDate,omitempty"`
}

func secretOf(id *azsecrets.ID, value, contentType *string, tags map[string]*string, a *azsecrets.SecretAttributes) secretOut {
	out := secretOut{Value: value, Tags: map[string]string{}}
	if id != nil {
		out.ID, out.Name = string(*id), id.Name()
	}
	if contentType != nil {
		out.ContentType = *contentType
	}
	for k, v := range tags {
		if v != nil {
			out.Tags[k] = *v
		}
	}
	if a != nil {
		out.Attributes = secretAttributes{Enabled: a.Enabled != nil && *a.Enabled, NotBefore: a.NotBefore, Expires: a.Expires,
			Created: a.Created, Updated: a.Updated, RecoverableDays: a.RecoverableDays}
		if a.RecoveryLevel != nil {
			out.Attributes.RecoveryLevel = *a.RecoveryLevel
		}
	}
	return out
}

func deletedSecretOf(d azsecrets.DeletedSecret) secretOut {
	out := secretOf(d.ID, nil, d.ContentType, d.Tags, d.Attributes)
	if d.RecoveryID != nil {
		out.RecoveryID = *d.RecoveryID
	}
	out.DeletedDate, out.ScheduledPurgeDate = d.DeletedDate, d.ScheduledPurgeDate
	return out
}

func (s secretOut) version() string {
	if i := strings.LastIndex(s.ID, "/"); i >= 0 && !strings.HasSuffix(s.ID, "/secrets/"+s.Name) {
		return s.ID[i+1:]
	}
	return ""
}

var secretHeader = []string{"NAME", "VERSION", "ENABLED", "UPDATED"}

func secretRow(s secretOut) []string {
	updated := ""
	if s.Attributes.Updated != nil {
		updated = fmtTime(*s.Attributes.Updated)
	}
	return []string{s.Name, s.version(), strconv.FormatBool(s.Attributes.Enabled), updated}
}

func (c *cli) renderSecret(cmd *cobra.Command, s secretOut) error {
	return c.render(cmd, s, func() table {
		value := ""
		if s.Value != nil {
			value = *s.Value
		}
		t := fields("Name", s.Name, "Id", s.ID, "Value", value, "Enabled", strconv.FormatBool(s.Attributes.Enabled))
		if s.RecoveryID != "" {
			t.rows = append(t.rows, []string{"RecoveryId", s.RecoveryID})
		}
		if s.ScheduledPurgeDate != nil {
			t.rows = append(t.rows, []string{"ScheduledPurgeDate", fmtTime(*s.ScheduledPurgeDate)})
		}
		return t
	})
}

// secretCommand is a `keyvault secret` command on --vault-name and --name.
func (c *cli) secretCommand(sess roleSessionFunc, use, short string, needName bool,
	run func(cmd *cobra.Command, kv *azsecrets.Client, name string) error) *cobra.Command {
	var vault, name string
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			kv, err := c.secretClient(sess, vault)
			if err != nil {
				return err
			}
			return kvError(run(cmd, kv, name))
		},
	}
	requiredFlag(cmd, &vault, "vault-name", "", "vault name (required)")
	if needName {
		requiredFlag(cmd, &name, "name", "n", "secret name (required)")
	}
	return cmd
}

func (c *cli) secretSet(sess roleSessionFunc) *cobra.Command {
	var value, contentType string
	cmd := c.secretCommand(sess, "set --vault-name V --name N --value X", "Set a secret (a new version)", true,
		func(cmd *cobra.Command, kv *azsecrets.Client, name string) error {
			p := azsecrets.SetSecretParameters{Value: &value}
			if contentType != "" {
				p.ContentType = &contentType
			}
			resp, err := kv.SetSecret(cmd.Context(), name, p, nil)
			if err != nil {
				return err
			}
			return c.renderSecret(cmd, secretOf(resp.ID, resp.Value, resp.ContentType, resp.Tags, resp.Attributes))
		})
	cmd.Flags().StringVar(&value, "value", "", "the secret's value (required)")
	_ = cmd.MarkFlagRequired("value")
	cmd.Flags().StringVar(&contentType, "content-type", "", "the value's content type")
	return cmd
}

func (c *cli) secretShow(sess roleSessionFunc) *cobra.Command {
	var version string
	cmd := c.secretCommand(sess, "show --vault-name V --name N [--version VER]", "Show a secret with its value (default: the latest version)", true,
		func(cmd *cobra.Command, kv *azsecrets.Client, name string) error {
			resp, err := kv.GetSecret(cmd.Context(), name, version, nil)
			if err != nil {
				return err
			}
			return c.renderSecret(cmd, secretOf(resp.ID, resp.Value, resp.ContentType, resp.Tags, resp.Attributes))
		})
	cmd.Flags().StringVar(&version, "version", "", "the version (default: the latest)")
	return cmd
}

func (c *cli) secretList(sess roleSessionFunc) *cobra.Command {
	var deleted bool
	cmd := c.secretCommand(sess, "list --vault-name V [--deleted]", "List the secrets of a vault (without values)", false,
		func(cmd *cobra.Command, kv *azsecrets.Client, _ string) error {
			out := []secretOut{}
			if deleted {
				pager := kv.NewListDeletedSecretPropertiesPager(nil)
				for pager.More() {
					page, err := pager.NextPage(cmd.Context())
					if err != nil {
						return err
					}
					for _, p := range page.Value {
						s := secretOf(p.ID, nil, p.ContentType, p.Tags, p.Attributes)
						if p.RecoveryID != nil {
							s.RecoveryID = *p.RecoveryID
						}
						s.DeletedDate, s.ScheduledPurgeDate = p.DeletedDate, p.ScheduledPurgeDate
						out = append(out, s)
					}
				}
			} else {
				pager := kv.NewListSecretPropertiesPager(nil)
				for pager.More() {
					page, err := pager.NextPage(cmd.Context())
					if err != nil {
						return err
					}
					for _, p := range page.Value {
						out = append(out, secretOf(p.ID, nil, p.ContentType, p.Tags, p.Attributes))
					}
				}
			}
			return c.render(cmd, out, func() table {
				t := table{header: secretHeader}
				for _, s := range out {
					t.rows = append(t.rows, secretRow(s))
				}
				return t
			})
		})
	cmd.Flags().BoolVar(&deleted, "deleted", false, "list the deleted (recoverable) secrets instead")
	return cmd
}

func (c *cli) secretDelete(sess roleSessionFunc) *cobra.Command {
	cmd := c.secretCommand(sess, "delete --vault-name V --name N", "Delete a secret (recoverable until purged or its retention ends)", true,
		func(cmd *cobra.Command, kv *azsecrets.Client, name string) error {
			resp, err := kv.DeleteSecret(cmd.Context(), name, nil)
			if err != nil {
				return err
			}
			return c.renderSecret(cmd, deletedSecretOf(resp.DeletedSecret))
		})
	return cmd
}

func (c *cli) secretRecover(sess roleSessionFunc) *cobra.Command {
	cmd := c.secretCommand(sess, "recover --vault-name V --name N", "Recover a deleted secret", true,
		func(cmd *cobra.Command, kv *azsecrets.Client, name string) error {
			resp, err := kv.RecoverDeletedSecret(cmd.Context(), name, nil)
			if err != nil {
				return err
			}
			return c.renderSecret(cmd, secretOf(resp.ID, nil, resp.ContentType, resp.Tags, resp.Attributes))
		})
	return cmd
}

func (c *cli) secretPurge(sess roleSessionFunc) *cobra.Command {
	cmd := c.secretCommand(sess, "purge --vault-name V --name N", "Purge a deleted secret for good", true,
		func(cmd *cobra.Command, kv *azsecrets.Client, name string) error {
			if _, err := kv.PurgeDeletedSecret(cmd.Context(), name, nil); err != nil {
				return err
			}
			c.notef("Purged secret %s.", name)
			return nil
		})
	return cmd
}
