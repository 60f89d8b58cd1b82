package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
)

// ad app federated-credential: an application's federated identity
// credentials through Graph's /applications/{id}/federatedIdentityCredentials
// (https://learn.microsoft.com/graph/api/resources/federatedidentitycredential),
// with az's flags: --id for the application, --parameters (JSON or @FILE)
// for the credential, --federated-credential-id for its id or name.

func (c *cli) adAppFederatedCredential(sess sessionFunc) *cobra.Command {
	cmd := &cobra.Command{Use: "federated-credential", Short: "Federated identity credentials of an application (workload identity federation)"}
	cmd.AddCommand(c.adFedCredCreate(sess), c.adFedCredList(sess), c.adFedCredShow(sess), c.adFedCredDelete(sess))
	return cmd
}

var fedCredHeader = []string{"NAME", "ISSUER", "SUBJECT", "AUDIENCES", "ID"}

func fedCredRow(f azclient.FederatedCredential) []string {
	return []string{f.Name, f.Issuer, f.Subject, strings.Join(f.Audiences, " "), f.ID}
}

func fedCredFields(f *azclient.FederatedCredential) table {
	return fields("name", f.Name, "id", f.ID, "issuer", f.Issuer, "subject", f.Subject,
		"audiences", strings.Join(f.Audiences, " "), "description", f.Description)
}

// parseFederatedCredential reads --parameters: Graph's
// federatedIdentityCredential JSON (name, issuer, subject, audiences,
// description). Unknown properties are refused here, so that a misspelt
// one ("subjects") is not silently dropped; audiences default to
// api://AzureADTokenExchange, Entra's recommended value.
func parseFederatedCredential(value string) (azclient.FederatedCredential, error) {
	var f azclient.FederatedCredential
	data, err := readJSONArg("parameters", value)
	if err != nil {
		return f, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return f, fmt.Errorf("--parameters is not a federated credential ({\"name\",\"issuer\",\"subject\",\"audiences\",\"description\"}): %w", err)
	}
	if f.Name == "" || f.Issuer == "" || f.Subject == "" {
		return f, fmt.Errorf("--parameters needs name, issuer and subject")
	}
	if len(f.Audiences) == 0 {
		f.Audiences = []string{azclient.TokenExchangeAudience}
	}
	f.ID = ""
	return f, nil
}

// appObject finds the application --id names and returns its object id.
func appObject(ctx context.Context, g *azclient.Graph, id string) (string, error) {
	a, err := g.GetApplication(ctx, id)
	if err != nil {
		return "", err
	}
	return a.ID, nil
}

func (c *cli) adFedCredCreate(sess sessionFunc) *cobra.Command {
	var id, params string
	cmd := showCommand(c, "create --id ID|APPID --parameters JSON|@FILE", "Create a federated identity credential", cobra.NoArgs,
		withGraph(sess, func(ctx context.Context, g *azclient.Graph) (*azclient.FederatedCredential, error) {
			f, err := parseFederatedCredential(params)
			if err != nil {
				return nil, err
			}
			obj, err := appObject(ctx, g, id)
			if err != nil {
				return nil, err
			}
			return g.AddFederatedCredential(ctx, obj, f)
		}), fedCredFields)
	objectOrAppID.add(cmd, &id)
	requiredFlag(cmd, &params, "parameters", "p", `the credential as JSON or @FILE: {"name":"…","issuer":"https://…","subject":"…","audiences":["api://AzureADTokenExchange"]} (required)`)
	return cmd
}

func (c *cli) adFedCredList(sess sessionFunc) *cobra.Command {
	var id string
	cmd := listCommand(c, "List an application's federated identity credentials",
		withGraph(sess, func(ctx context.Context, g *azclient.Graph) ([]azclient.FederatedCredential, error) {
			obj, err := appObject(ctx, g, id)
			if err != nil {
				return nil, err
			}
			return g.ListFederatedCredentials(ctx, obj)
		}), fedCredHeader, fedCredRow)
	objectOrAppID.add(cmd, &id)
	return cmd
}

var fedCredFlag = idFlag{"federated-credential-id", "", "id or name of the federated identity credential (required)"}

func (c *cli) adFedCredShow(sess sessionFunc) *cobra.Command {
	var id, cred string
	cmd := showCommand(c, "show --id ID|APPID --federated-credential-id ID|NAME", "Show a federated identity credential", cobra.NoArgs,
		withGraph(sess, func(ctx context.Context, g *azclient.Graph) (*azclient.FederatedCredential, error) {
			obj, err := appObject(ctx, g, id)
			if err != nil {
				return nil, err
			}
			return g.GetFederatedCredential(ctx, obj, cred)
		}), fedCredFields)
	objectOrAppID.add(cmd, &id)
	fedCredFlag.add(cmd, &cred)
	return cmd
}

func (c *cli) adFedCredDelete(sess sessionFunc) *cobra.Command {
	var id, cred string
	cmd := deleteCommand(c, "delete --id ID|APPID --federated-credential-id ID|NAME", "Delete a federated identity credential", cobra.NoArgs,
		withGraph(sess, func(ctx context.Context, g *azclient.Graph) (*azclient.FederatedCredential, error) {
			obj, err := appObject(ctx, g, id)
			if err != nil {
				return nil, err
			}
			f, err := g.GetFederatedCredential(ctx, obj, cred)
			if err != nil {
				return nil, err
			}
			return f, g.DeleteFederatedCredential(ctx, obj, f.ID)
		}),
		func(f *azclient.FederatedCredential) string {
			return fmt.Sprintf("Deleted federated credential %s (issuer %s, subject %s).", f.Name, f.Issuer, f.Subject)
		})
	objectOrAppID.add(cmd, &id)
	fedCredFlag.add(cmd, &cred)
	return cmd
}
