package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
)

// Managed identities and workloads, through the operator API. A workload is
// what runs as identities; its identity header is what a program presents
// at the managed-identity endpoint (IDENTITY_ENDPOINT, IDENTITY_HEADER).

// operatorTenant resolves --tenant (or the only CLI profile's tenant) for a
// command acting through the operator API.
func (c *cli) operatorTenant(ctx context.Context, op *azclient.Operator, ref string) (*azclient.Tenant, error) {
	if strings.TrimSpace(ref) == "" {
		p, err := c.findProfile("")
		if err != nil {
			return nil, fmt.Errorf("name the tenant with --tenant (%v)", err)
		}
		ref = p.TenantID
	}
	return op.GetTenant(ctx, ref)
}

func (c *cli) identityCommand() *cobra.Command {
	return tenantGroupCommand("identity", "User-assigned managed identities of a tenant, and the environment to run as one (operator)",
		c.identityCreate, c.identityList, c.identityShow, c.identityDelete, c.identityEnv)
}

// tenantGroupCommand is a command group whose subcommands act in the tenant
// its --tenant flag names.
func tenantGroupCommand(use, short string, subcommands ...func(tenant func() string) *cobra.Command) *cobra.Command {
	var tenant string
	cmd := &cobra.Command{Use: use, Short: short}
	cmd.PersistentFlags().StringVarP(&tenant, "tenant", "t", "", "tenant name, domain or id (default: the only profile's tenant)")
	tenantRef := func() string { return tenant }
	for _, sub := range subcommands {
		cmd.AddCommand(sub(tenantRef))
	}
	return cmd
}

func identityFields(id *azclient.Identity) table {
	return fields("name", id.Name, "resourceGroup", id.ResourceGroup, "clientId", id.ClientID, "principalId", id.PrincipalID,
		"tenantId", id.TenantID, "resourceId", id.ResourceID, "created", fmtTime(id.Created))
}

func (c *cli) identityCreate(tenant func() string) *cobra.Command {
	var group string
	cmd := showCommand(c, "create NAME [--resource-group RG]", "Create a user-assigned managed identity", exactArgs(1, "NAME"),
		withTenantOperator(c, tenant, func(ctx context.Context, op *azclient.Operator, tenantID string, args []string) (*azclient.Identity, error) {
			return op.CreateIdentity(ctx, tenantID, args[0], group)
		}), identityFields)
	cmd.Flags().StringVarP(&group, "resource-group", "g", "", "resource group (default: the server's, \"identities\")")
	return cmd
}

func (c *cli) identityList(tenant func() string) *cobra.Command {
	return listCommand(c, "List user-assigned managed identities",
		withTenantOperator(c, tenant, func(ctx context.Context, op *azclient.Operator, tenantID string, _ []string) ([]azclient.Identity, error) {
			return op.ListIdentities(ctx, tenantID)
		}),
		[]string{"NAME", "RESOURCE GROUP", "CLIENT ID", "PRINCIPAL ID"},
		func(id azclient.Identity) []string {
			return []string{id.Name, id.ResourceGroup, id.ClientID, id.PrincipalID}
		})
}

// identityRef is the argument that names a user-assigned identity.
const identityRef = "NAME|CLIENT_ID|PRINCIPAL_ID|RESOURCE_ID"

func (c *cli) identityShow(tenant func() string) *cobra.Command {
	return showCommand(c, "show "+identityRef, "Show a user-assigned managed identity", exactArgs(1, identityRef),
		withTenantOperator(c, tenant, func(ctx context.Context, op *azclient.Operator, tenantID string, args []string) (*azclient.Identity, error) {
			return op.GetIdentity(ctx, tenantID, args[0])
		}), identityFields)
}

func (c *cli) identityDelete(tenant func() string) *cobra.Command {
	return deleteCommand(c, "delete "+identityRef, "Delete a user-assigned managed identity; workloads can no longer get tokens as it",
		exactArgs(1, identityRef),
		withTenantOperator(c, tenant, func(ctx context.Context, op *azclient.Operator, tenantID string, args []string) (*azclient.Identity, error) {
			id, err := op.GetIdentity(ctx, tenantID, args[0])
			if err != nil {
				return nil, err
			}
			return id, op.DeleteIdentity(ctx, tenantID, id.PrincipalID)
		}),
		func(id *azclient.Identity) string {
			return fmt.Sprintf("Deleted identity %s (client id %s).", id.Name, id.ClientID)
		})
}

func (c *cli) identityEnv(tenant func() string) *cobra.Command {
	return &cobra.Command{
		Use:   "env NAME",
		Short: "Print the environment a program needs to run as a user-assigned identity (eval \"$(tenantbridge identity env NAME)\")",
		Long: `env creates a workload bound to just this identity (its name derived from the
identity's) and prints, as shell exports, what an unmodified program needs to
get tokens as the identity with DefaultAzureCredential or
ManagedIdentityCredential: IDENTITY_ENDPOINT and IDENTITY_HEADER (the
managed-identity endpoint and the workload's header), AZURE_CLIENT_ID (the
identity's client id, which selects it), AZURE_TENANT_ID and SSL_CERT_FILE (a
bundle of the system's roots and tenantbridge's CA). When the server runs a
proxy it also sets HTTPS_PROXY, so that the program reaches Azure's names.
The header is shown only here; delete the workload to revoke it.`,
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := c.identityEnvironment(cmd.Context(), tenant(), args[0], false, false)
			if err != nil {
				return err
			}
			return e.write(c.stdout)
		},
	}
}

// identityEnvironment creates a workload bound to the user-assigned
// identity ref alone (with reuse, takes the one an earlier env made; see
// envWorkload) and returns the environment to run as it. With needProxy, a
// server without a proxy is an error; otherwise the proxy is set when there
// is one.
func (c *cli) identityEnvironment(ctx context.Context, tenantRef, ref string, needProxy, reuse bool) (*shellEnv, error) {
	cred, err := c.serverInfo()
	if err != nil {
		return nil, err
	}
	if needProxy && cred.ProxyURL == "" {
		return nil, errNoProxy(c.dataDir)
	}
	op, err := c.operator()
	if err != nil {
		return nil, err
	}
	t, err := c.operatorTenant(ctx, op, tenantRef)
	if err != nil {
		return nil, err
	}
	id, err := op.GetIdentity(ctx, t.TenantID, ref)
	if err != nil {
		return nil, err
	}
	endpoint, err := cred.IdentityEndpoint(t.TenantID)
	if err != nil {
		return nil, err
	}
	e := &shellEnv{}
	if cred.ProxyURL != "" {
		proxyEnv(e, cred)
	}
	if err := c.trustEnv(e, cred.CAFile); err != nil {
		return nil, err
	}
	wl, err := c.envWorkload(ctx, op, t, id, reuse)
	if err != nil {
		return nil, err
	}
	if wl.IdentityHeader == "" {
		return nil, fmt.Errorf("workload %s was created but the server returned no identity header", wl.Name)
	}
	e.comment("tenantbridge: run as user-assigned identity %s (client id %s) of tenant %s, through workload %s", id.Name, id.ClientID, t.Name, wl.Name)
	e.export("AZURE_TENANT_ID", t.TenantID)
	e.export("AZURE_CLIENT_ID", id.ClientID)
	e.export("IDENTITY_ENDPOINT", endpoint)
	e.export("IDENTITY_HEADER", wl.IdentityHeader)
	e.unsetUnused(divertingVars)
	return e, nil
}

// envWorkloadName is the name of a workload `identity env` creates: the
// identity's name, "-env-" and a random suffix, within Azure's 90 characters.
func envWorkloadName(identity string) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	suffix := "-env-" + hex.EncodeToString(b)
	if max := 90 - len(suffix); len(identity) > max {
		identity = identity[:max]
	}
	return identity + suffix
}

// --- workloads ---

func (c *cli) workloadCommand() *cobra.Command {
	return tenantGroupCommand("workload", "Workloads (what runs as managed identities) of a tenant, and their environment (operator)",
		c.workloadCreate, c.workloadList, c.workloadShow, c.workloadDelete, c.workloadEnv)
}

func workloadIdentities(w *azclient.Workload) (system, user string) {
	if w.SystemAssignedIdentity != nil {
		system = w.SystemAssignedIdentity.PrincipalID
	}
	var names []string
	for _, id := range w.UserAssignedIdentities {
		names = append(names, id.Name)
	}
	return system, strings.Join(names, ", ")
}

func workloadFields(w *azclient.Workload) table {
	system, user := workloadIdentities(w)
	systemClient := ""
	if w.SystemAssignedIdentity != nil {
		systemClient = w.SystemAssignedIdentity.ClientID
	}
	t := fields("name", w.Name, "id", w.ID, "resourceGroup", w.ResourceGroup, "tenantId", w.TenantID, "resourceId", w.ResourceID,
		"systemAssigned.principalId", system, "systemAssigned.clientId", systemClient, "userAssignedIdentities", user,
		"created", fmtTime(w.Created))
	if w.IdentityHeader != "" {
		t.rows = append(t.rows, []string{"identityHeader", w.IdentityHeader})
	}
	return t
}

func (c *cli) workloadCreate(tenant func() string) *cobra.Command {
	var group string
	var system bool
	var identities []string
	create := withTenantOperator(c, tenant, func(ctx context.Context, op *azclient.Operator, tenantID string, args []string) (*azclient.Workload, error) {
		return op.CreateWorkload(ctx, tenantID, azclient.NewWorkload{Name: args[0], ResourceGroup: group,
			SystemAssigned: system, Identities: identities})
	})
	cmd := &cobra.Command{
		Use:   "create NAME [--system-assigned] [--identity REF ...]",
		Short: "Create a workload running as its own system-assigned identity and/or user-assigned identities",
		Args:  exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !system && len(identities) == 0 {
				return errors.New("a workload runs as --system-assigned, or as user-assigned identities given with --identity, or both")
			}
			w, err := create(cmd, args)
			if err != nil {
				return err
			}
			err = c.render(cmd, w, func() table { return workloadFields(w) })
			if err == nil {
				c.notef("The identity header is shown only now; tenantbridge workload env %s prints a new one.", w.Name)
			}
			return err
		},
	}
	cmd.Flags().StringVarP(&group, "resource-group", "g", "", "resource group (default: the server's, \"identities\")")
	cmd.Flags().BoolVar(&system, "system-assigned", false, "give the workload a system-assigned identity of its own")
	cmd.Flags().StringArrayVar(&identities, "identity", nil, "a user-assigned identity the workload runs as (name, client id, principal id or resource id); repeatable")
	return cmd
}

func (c *cli) workloadList(tenant func() string) *cobra.Command {
	return listCommand(c, "List workloads",
		withTenantOperator(c, tenant, func(ctx context.Context, op *azclient.Operator, tenantID string, _ []string) ([]azclient.Workload, error) {
			return op.ListWorkloads(ctx, tenantID)
		}),
		[]string{"NAME", "RESOURCE GROUP", "SYSTEM-ASSIGNED PRINCIPAL", "USER-ASSIGNED IDENTITIES", "ID"},
		func(w azclient.Workload) []string {
			system, user := workloadIdentities(&w)
			return []string{w.Name, w.ResourceGroup, system, user, w.ID}
		})
}

func (c *cli) workloadShow(tenant func() string) *cobra.Command {
	return showCommand(c, "show NAME|ID", "Show a workload", exactArgs(1, "NAME|ID"),
		withTenantOperator(c, tenant, func(ctx context.Context, op *azclient.Operator, tenantID string, args []string) (*azclient.Workload, error) {
			return op.GetWorkload(ctx, tenantID, args[0])
		}), workloadFields)
}

func (c *cli) workloadDelete(tenant func() string) *cobra.Command {
	return deleteCommand(c, "delete NAME|ID", "Delete a workload and its system-assigned identity; its identity header stops working",
		exactArgs(1, "NAME|ID"),
		withTenantOperator(c, tenant, func(ctx context.Context, op *azclient.Operator, tenantID string, args []string) (*azclient.Workload, error) {
			w, err := op.GetWorkload(ctx, tenantID, args[0])
			if err != nil {
				return nil, err
			}
			return w, op.DeleteWorkload(ctx, tenantID, w.ID)
		}),
		func(w *azclient.Workload) string { return fmt.Sprintf("Deleted workload %s.", w.Name) })
}

func (c *cli) workloadEnv(tenant func() string) *cobra.Command {
	var identity string
	cmd := &cobra.Command{
		Use:   "env NAME [--identity REF]",
		Short: "Give a workload a new identity header and print the environment to run as it (eval \"$(tenantbridge workload env NAME)\")",
		Long: `env rotates the workload's identity header (the old one stops working: it is
not stored, so it cannot be shown again) and prints, as shell exports,
IDENTITY_ENDPOINT, IDENTITY_HEADER, AZURE_TENANT_ID and SSL_CERT_FILE, and
HTTPS_PROXY when the server runs a proxy. AZURE_CLIENT_ID selects the
identity: unset for the workload's system-assigned identity; otherwise the
--identity given, or the workload's only user-assigned identity.`,
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cred, err := c.serverInfo()
			if err != nil {
				return err
			}
			op, err := c.operator()
			if err != nil {
				return err
			}
			t, err := c.operatorTenant(ctx, op, tenant())
			if err != nil {
				return err
			}
			w, err := op.GetWorkload(ctx, t.TenantID, args[0])
			if err != nil {
				return err
			}
			clientID, what, err := pickWorkloadIdentity(w, identity)
			if err != nil {
				return err
			}
			endpoint, err := cred.IdentityEndpoint(t.TenantID)
			if err != nil {
				return err
			}
			e := &shellEnv{}
			if cred.ProxyURL != "" {
				proxyEnv(e, cred)
			}
			if err := c.trustEnv(e, cred.CAFile); err != nil {
				return err
			}
			header, err := op.RotateWorkloadHeader(ctx, t.TenantID, w.ID)
			if err != nil {
				return err
			}
			e.comment("tenantbridge: run as workload %s of tenant %s, %s", w.Name, t.Name, what)
			e.export("AZURE_TENANT_ID", t.TenantID)
			if clientID != "" {
				e.export("AZURE_CLIENT_ID", clientID)
			}
			e.export("IDENTITY_ENDPOINT", endpoint)
			e.export("IDENTITY_HEADER", header)
			e.unsetUnused(divertingVars)
			c.notef("Workload %s has a new identity header; the previous one no longer works.", w.Name)
			return e.write(c.stdout)
		},
	}
	cmd.Flags().StringVar(&identity, "identity", "", "the user-assigned identity to run as (name, client id, principal id or resource id)")
	return cmd
}

// pickWorkloadIdentity chooses which of w's identities a program runs as:
// the client id for AZURE_CLIENT_ID ("" for the system-assigned identity)
// and a description.
func pickWorkloadIdentity(w *azclient.Workload, ref string) (clientID, what string, err error) {
	if ref != "" {
		for _, id := range w.UserAssignedIdentities {
			if strings.EqualFold(ref, id.Name) || strings.EqualFold(ref, id.ClientID) || strings.EqualFold(ref, id.PrincipalID) || strings.EqualFold(ref, id.ResourceID) {
				return id.ClientID, "as user-assigned identity " + id.Name + " (client id " + id.ClientID + ")", nil
			}
		}
		if s := w.SystemAssignedIdentity; s != nil && (strings.EqualFold(ref, s.ClientID) || strings.EqualFold(ref, s.PrincipalID)) {
			return "", "as its system-assigned identity (principal id " + s.PrincipalID + ")", nil
		}
		return "", "", fmt.Errorf("workload %s does not run as identity %q", w.Name, ref)
	}
	switch {
	case w.SystemAssignedIdentity != nil:
		return "", "as its system-assigned identity (principal id " + w.SystemAssignedIdentity.PrincipalID + ")", nil
	case len(w.UserAssignedIdentities) == 1:
		id := w.UserAssignedIdentities[0]
		return id.ClientID, "as user-assigned identity " + id.Name + " (client id " + id.ClientID + ")", nil
	case len(w.UserAssignedIdentities) == 0:
		return "", "", fmt.Errorf("workload %s has no identity left to run as (its identities were deleted)", w.Name)
	}
	names := make([]string, len(w.UserAssignedIdentities))
	for i, id := range w.UserAssignedIdentities {
		names[i] = id.Name
	}
	return "", "", fmt.Errorf("workload %s runs as %d user-assigned identities (%s): choose one with --identity", w.Name, len(names), strings.Join(names, ", "))
}
