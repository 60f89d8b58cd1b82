package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
)

// maxTokenFile bounds the federated token file `env` reads to find the
// application that trusts it.
const maxTokenFile = 64 << 10

func (c *cli) envCommand() *cobra.Command {
	var tenant, app, identity, tokenFile, certFile string
	var secret, reuse bool
	cmd := &cobra.Command{
		Use:   "env --tenant T (--app APPID --secret | --app APPID --certificate FILE | --identity NAME | --federated-token FILE [--app APPID]) [--reuse]",
		Short: "Print the environment an unmodified Azure SDK program needs to get its tokens from tenantbridge",
		Long: `env prints shell exports so that, after

    eval "$(tenantbridge env --tenant contoso --app APPID --secret)"

an unmodified program using DefaultAzureCredential gets its tokens from
tenantbridge and reaches Microsoft Graph and the other Azure names it serves.
It needs a server started with --proxy-listen. It sets:

  HTTPS_PROXY      the server's proxy, whose tunnels to Azure's names end in tenantbridge
  SSL_CERT_FILE    DIR/ca-bundle.pem: the system's trusted roots and tenantbridge's CA
                   (Go, OpenSSL); REQUESTS_CA_BUNDLE the same file (Python's requests,
                   the Azure SDK for Python, az); NODE_EXTRA_CA_CERTS tenantbridge's CA,
                   which Node adds to its own roots
  AZURE_TOKEN_CREDENTIALS=prod  DefaultAzureCredential tries only the deployed-service
                   credentials, never a developer's own az or IDE sign-in
  AZURE_TENANT_ID  the tenant
  and, for the credential:
    --app APPID --secret        AZURE_CLIENT_ID and AZURE_CLIENT_SECRET: a NEW client secret
                                of the application (added with the tenant's CLI profile,
                                shown only in this output)
    --app APPID --certificate FILE
                                AZURE_CLIENT_ID and AZURE_CLIENT_CERTIFICATE_PATH: FILE holds a
                                certificate of the application and its private key (PEM, or
                                PKCS#12 without a password); register the certificate first
                                (Graph: Update application's keyCredentials, then addKey)
    --identity NAME             AZURE_CLIENT_ID, IDENTITY_ENDPOINT and IDENTITY_HEADER: a new
                                workload bound to the user-assigned identity
    --federated-token FILE      AZURE_CLIENT_ID and AZURE_FEDERATED_TOKEN_FILE; without --app,
                                the application whose federated credential matches the
                                token's issuer and subject

and unsets the variables that would send DefaultAzureCredential elsewhere.

Each call with --secret or --identity makes a credential: a new client
secret, or a new workload. With --reuse it binds to the one an earlier env
made instead: --identity takes the workload an earlier env created for the
identity (named IDENTITY-env-…, running as that identity alone) and gives it
a new header; --secret removes the secrets earlier env calls added to the
application (named "tenantbridge env …") before adding the new one. Either
way the earlier environment's credential stops working, and one workload or
secret is left, not one per call.

In a container, a program can reach tenantbridge by DNS instead of the proxy
(the convention LocalStack uses): serve with --listen ADDR:443 and
--dns-listen ADDR:53 (--dns-answer IP when ADDR is 0.0.0.0), and give the
container that resolver, e.g. docker run --dns IP. The Azure names
tenantbridge serves resolve to it and every other name is refused (list a
second resolver for them); SSL_CERT_FILE and the credential variables above
still apply, HTTPS_PROXY is then not needed.

Service Bus SDKs speak AMQP, which HTTPS_PROXY does not carry: over the
proxy, configure the SDK for AMQP over WebSockets (Go: ClientOptions
NewWebSocketConn; JavaScript: webSocketOptions; .NET:
TransportType.AmqpWebSockets), which reaches
wss://{namespace}.servicebus.windows.net/$servicebus/websocket. On the host
without the proxy, point the SDK's custom endpoint at serve's AMQPS listener
(--amqp-listen, default 127.0.0.1:5671) and keep the namespace's name for
TLS: Go ClientOptions.CustomEndpoint "127.0.0.1:5671" with
TLSConfig.ServerName "{namespace}.servicebus.windows.net"; JavaScript
customEndpointAddress "amqps://127.0.0.1:5671"; .NET
ServiceBusClientOptions.CustomEndpointAddress. Behind the DNS responder,
port 5671 of the answered address is the AMQPS listener: serve with
--amqp-listen ADDR:5671. Connection strings from listKeys work unchanged.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			modes := 0
			for _, on := range []bool{secret, certFile != "", identity != "", tokenFile != ""} {
				if on {
					modes++
				}
			}
			switch {
			case modes == 0:
				return errors.New("choose the credential: --app APPID --secret, --app APPID --certificate FILE, --identity NAME, or --federated-token FILE")
			case modes > 1:
				return errors.New("choose one credential: --secret, --certificate, --identity or --federated-token")
			case secret && app == "":
				return errors.New("--secret needs the application: --app APPID")
			case certFile != "" && app == "":
				return errors.New("--certificate needs the application: --app APPID")
			case identity != "" && app != "":
				return errors.New("--identity runs as the identity, not an application: drop --app")
			case reuse && !secret && identity == "":
				return errors.New("--reuse binds --secret or --identity to what an earlier env made; --certificate and --federated-token make nothing")
			}
			ctx := cmd.Context()
			var e *shellEnv
			var err error
			switch {
			case identity != "":
				e, err = c.identityEnvironment(ctx, tenant, identity, true, reuse)
			case secret:
				e, err = c.secretEnvironment(ctx, tenant, app, reuse)
			case certFile != "":
				e, err = c.certificateEnvironment(ctx, tenant, app, certFile)
			default:
				e, err = c.federatedEnvironment(ctx, tenant, app, tokenFile)
			}
			if err != nil {
				return err
			}
			return e.write(c.stdout)
		},
	}
	cmd.Flags().StringVarP(&tenant, "tenant", "t", "", "tenant name, domain or id (default: the only profile)")
	cmd.Flags().StringVar(&app, "app", "", "application (client) id")
	cmd.Flags().BoolVar(&secret, "secret", false, "add a new client secret to --app and export it")
	cmd.Flags().StringVar(&certFile, "certificate", "", "file holding a certificate of --app and its private key (PEM or PKCS#12) to export")
	cmd.Flags().StringVar(&identity, "identity", "", "user-assigned identity (name, client id, principal id or resource id) to run as")
	cmd.Flags().StringVar(&tokenFile, "federated-token", "", "file holding a federated token (assertion) an application trusts")
	cmd.Flags().BoolVar(&reuse, "reuse", false, "bind to the workload (--identity) or replace the secret (--secret) an earlier env made, instead of adding another")
	return cmd
}

// proxiedEnvironment starts an environment that reaches tenantbridge through
// its proxy and trusts its CA; the server must run a proxy.
func (c *cli) proxiedEnvironment() (*shellEnv, azclient.OperatorCredential, error) {
	cred, err := c.serverInfo()
	if err != nil {
		return nil, cred, err
	}
	if cred.ProxyURL == "" {
		return nil, cred, errNoProxy(c.dataDir)
	}
	e := &shellEnv{}
	proxyEnv(e, cred)
	if err := c.trustEnv(e, cred.CAFile); err != nil {
		return nil, cred, err
	}
	// DefaultAzureCredential's deployed-service chain only (environment,
	// workload identity, managed identity), so that it never falls through
	// to a developer's real az, azd or Visual Studio Code sign-in
	// (azidentity and @azure/identity: AZURE_TOKEN_CREDENTIALS=prod).
	e.export("AZURE_TOKEN_CREDENTIALS", "prod")
	return e, cred, nil
}

// envSecretName starts the display name of every client secret env adds,
// which is how --reuse knows them.
const envSecretName = "tenantbridge env "

// secretEnvironment adds a client secret to the application appID of the
// tenant (through Graph, as the tenant's CLI profile) and returns the
// environment of an EnvironmentCredential with it. With reuse, the secrets
// earlier env calls added to the application are removed first.
func (c *cli) secretEnvironment(ctx context.Context, tenantRef, appID string, reuse bool) (*shellEnv, error) {
	e, _, err := c.proxiedEnvironment()
	if err != nil {
		return nil, err
	}
	s, a, err := c.appWithPrincipal(ctx, tenantRef, appID, "a secret is added")
	if err != nil {
		return nil, err
	}
	if reuse {
		for _, p := range a.PasswordCredentials {
			if !strings.HasPrefix(p.DisplayName, envSecretName) {
				continue
			}
			if err := s.graph.RemovePassword(ctx, a.ID, p.KeyID); err != nil {
				return nil, fmt.Errorf("removing the secret %s an earlier env added to %s: %w", p.KeyID, a.AppID, err)
			}
			c.notef("Removed client secret %s, which an earlier env added to application %s.", p.KeyID, a.AppID)
		}
	}
	pc, err := s.graph.AddPassword(ctx, a.ID, azclient.PasswordCredential{DisplayName: envSecretName + time.Now().UTC().Format(time.DateOnly)})
	if err != nil {
		return nil, fmt.Errorf("adding a client secret to %s: %w", a.AppID, err)
	}
	if pc.SecretText == "" {
		return nil, errors.New("the server returned no secret text")
	}
	e.comment("tenantbridge: application %s (%s) in tenant %s, with a new client secret (key id %s, expires %s) shown only here",
		a.DisplayName, a.AppID, s.profile.name(), pc.KeyID, fmtTime(pc.EndDateTime))
	e.export("AZURE_TENANT_ID", s.profile.TenantID)
	e.export("AZURE_CLIENT_ID", a.AppID)
	e.export("AZURE_CLIENT_SECRET", pc.SecretText)
	e.unsetUnused(divertingVars)
	c.notef("Added client secret %s to application %s; remove it with Graph removePassword (or tenantbridge ad app credential reset) when done.", pc.KeyID, a.AppID)
	return e, nil
}

// appWithPrincipal signs in to the tenant and finds the application appID
// registered there, which must have a service principal in it.
func (c *cli) appWithPrincipal(ctx context.Context, tenantRef, appID, why string) (*session, *azclient.Application, error) {
	s, err := c.session(tenantRef)
	if err != nil {
		return nil, nil, err
	}
	a, err := s.graph.GetApplication(ctx, appID)
	if azclient.IsNotFound(err) {
		return nil, nil, fmt.Errorf("application %s is not registered in tenant %s (%s where the application is registered)", appID, s.profile.name(), why)
	}
	if err != nil {
		return nil, nil, err
	}
	// Without a service principal in the tenant the credential would only
	// earn AADSTS700016 later, in the program; say so now.
	if _, err := s.graph.GetServicePrincipal(ctx, a.AppID); azclient.IsNotFound(err) {
		return nil, nil, fmt.Errorf("application %s has no service principal in tenant %s, so it cannot get tokens there: create one with tenantbridge ad sp create --id %s --tenant %s",
			a.AppID, s.profile.name(), a.AppID, s.profile.name())
	} else if err != nil {
		return nil, nil, err
	}
	return s, a, nil
}

// certificateEnvironment returns the environment of an EnvironmentCredential
// (ClientCertificateCredential) of the application appID with the
// certificate and private key in file. AZURE_CLIENT_CERTIFICATE_PATH is
// "a PEM or PKCS #12 certificate file including private key" (the
// EnvironmentCredential documentation of azidentity and @azure/identity);
// a PEM file without both is refused here rather than in the program.
func (c *cli) certificateEnvironment(ctx context.Context, tenantRef, appID, file string) (*shellEnv, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(abs)
	if err != nil {
		return nil, fmt.Errorf("certificate file: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxTokenFile))
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("certificate file: %w", err)
	}
	if text := string(data); strings.Contains(text, "-----BEGIN ") &&
		(!strings.Contains(text, "-----BEGIN CERTIFICATE-----") || !strings.Contains(text, "PRIVATE KEY-----")) {
		return nil, fmt.Errorf("certificate file %s must hold the certificate and its private key (PEM CERTIFICATE and PRIVATE KEY blocks)", abs)
	}
	e, _, err := c.proxiedEnvironment()
	if err != nil {
		return nil, err
	}
	s, a, err := c.appWithPrincipal(ctx, tenantRef, appID, "its certificate is registered")
	if err != nil {
		return nil, err
	}
	e.comment("tenantbridge: application %s (%s) in tenant %s, with the certificate in %s", a.DisplayName, a.AppID, s.profile.name(), abs)
	e.export("AZURE_TENANT_ID", s.profile.TenantID)
	e.export("AZURE_CLIENT_ID", a.AppID)
	e.export("AZURE_CLIENT_CERTIFICATE_PATH", abs)
	e.unsetUnused(divertingVars)
	return e, nil
}

// federatedEnvironment returns the environment of a
// WorkloadIdentityCredential presenting the token in file as the
// application appID, or, without appID, as the application of the tenant
// whose federated credential trusts the token's issuer and subject.
func (c *cli) federatedEnvironment(ctx context.Context, tenantRef, appID, file string) (*shellEnv, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("federated token file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("federated token file %s is not a regular file", abs)
	}
	e, _, err := c.proxiedEnvironment()
	if err != nil {
		return nil, err
	}
	tenantID, tenantName, err := c.tenantIDOf(ctx, tenantRef)
	if err != nil {
		return nil, err
	}
	how := "application " + appID
	if appID == "" {
		if appID, how, err = c.appTrusting(ctx, tenantRef, abs); err != nil {
			return nil, err
		}
	}
	e.comment("tenantbridge: %s in tenant %s, presenting the federated token in %s", how, tenantName, abs)
	e.export("AZURE_TENANT_ID", tenantID)
	e.export("AZURE_CLIENT_ID", appID)
	e.export("AZURE_FEDERATED_TOKEN_FILE", abs)
	e.unsetUnused(divertingVars)
	return e, nil
}

// tenantIDOf resolves a tenant reference to its id and name: from the CLI
// profiles, or else through the operator API.
func (c *cli) tenantIDOf(ctx context.Context, ref string) (id, name string, err error) {
	p, perr := c.findProfile(ref)
	if perr == nil {
		return p.TenantID, p.name(), nil
	}
	if strings.TrimSpace(ref) == "" {
		return "", "", perr
	}
	op, err := c.operator()
	if err != nil {
		return "", "", perr
	}
	t, err := op.GetTenant(ctx, ref)
	if err != nil {
		return "", "", err
	}
	return t.TenantID, t.Name, nil
}

// appTrusting finds the application of the tenant with a federated
// credential for the issuer and subject of the token in file.
func (c *cli) appTrusting(ctx context.Context, tenantRef, file string) (appID, how string, err error) {
	f, err := os.Open(file)
	if err != nil {
		return "", "", fmt.Errorf("federated token file: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxTokenFile))
	f.Close()
	if err != nil {
		return "", "", fmt.Errorf("federated token file: %w", err)
	}
	claims, err := azclient.UnverifiedClaims(strings.TrimSpace(string(data)))
	if err != nil {
		return "", "", fmt.Errorf("federated token file %s does not hold a JWT (%v): name the application with --app", file, err)
	}
	iss, _ := claims["iss"].(string)
	sub, _ := claims["sub"].(string)
	if iss == "" || sub == "" {
		return "", "", fmt.Errorf("the token in %s has no iss or sub claim: name the application with --app", file)
	}
	s, err := c.session(tenantRef)
	if err != nil {
		return "", "", fmt.Errorf("finding the application that trusts the token needs the tenant's CLI profile (%w); or name it with --app", err)
	}
	apps, err := s.graph.ListApplications(ctx, "")
	if err != nil {
		return "", "", err
	}
	var found []azclient.Application
	var fic string
	for _, a := range apps {
		fics, err := s.graph.ListFederatedCredentials(ctx, a.ID)
		if err != nil {
			return "", "", err
		}
		for _, f := range fics {
			if f.Issuer == iss && f.Subject == sub {
				found = append(found, a)
				fic = f.Name
				break
			}
		}
	}
	switch len(found) {
	case 0:
		return "", "", fmt.Errorf("no application in tenant %s has a federated credential for issuer %q and subject %q: add one, or name the application with --app", s.profile.name(), iss, sub)
	case 1:
		return found[0].AppID, fmt.Sprintf("application %s (%s), trusting the token through its federated credential %s", found[0].DisplayName, found[0].AppID, fic), nil
	}
	ids := make([]string, len(found))
	for i, a := range found {
		ids[i] = a.AppID
	}
	return "", "", fmt.Errorf("%d applications trust tokens of issuer %q for subject %q (%s): choose one with --app", len(found), iss, sub, strings.Join(ids, ", "))
}

// envWorkload returns the workload through which an environment runs as
// the user-assigned identity id, with its identity header: a new workload
// bound to the identity alone or, with reuse, the one an earlier env made
// for it, with a new header (the server keeps no header it could show
// again). A workload is taken only when it is bound to exactly this
// identity (its principal id) and nothing else and bears the name env
// gives (envWorkloadName); the newest one when there are several.
func (c *cli) envWorkload(ctx context.Context, op *azclient.Operator, t *azclient.Tenant, id *azclient.Identity, reuse bool) (*azclient.Workload, error) {
	if reuse {
		ws, err := op.ListWorkloads(ctx, t.TenantID)
		if err != nil {
			return nil, err
		}
		var found *azclient.Workload
		for i := range ws {
			w := &ws[i]
			if isEnvWorkloadOf(w, id) && (found == nil || w.Created.After(found.Created)) {
				found = w
			}
		}
		if found != nil {
			header, err := op.RotateWorkloadHeader(ctx, t.TenantID, found.ID)
			if err != nil {
				return nil, fmt.Errorf("renewing the header of workload %s: %w", found.Name, err)
			}
			found.IdentityHeader = header
			c.notef("Reusing workload %s, bound to identity %s, with a new identity header (shown only here; the previous one no longer works).",
				found.Name, id.Name)
			return found, nil
		}
	}
	wl, err := op.CreateWorkload(ctx, t.TenantID, azclient.NewWorkload{Name: envWorkloadName(id.Name), ResourceGroup: id.ResourceGroup,
		Identities: []string{id.PrincipalID}})
	if err != nil {
		return nil, fmt.Errorf("creating a workload for identity %s: %w", id.Name, err)
	}
	c.notef("Created workload %s, bound to identity %s; the identity header is shown only here. Revoke it with: tenantbridge workload delete %s --tenant %s",
		wl.Name, id.Name, wl.Name, t.Name)
	return wl, nil
}

// isEnvWorkloadOf reports whether w is a workload env made for id: named
// as envWorkloadName names them (a workload a person made for something
// else keeps its header), and running as id alone.
func isEnvWorkloadOf(w *azclient.Workload, id *azclient.Identity) bool {
	made := envWorkloadName(id.Name) // the identity's part, "-env-" and 6 random hex digits
	prefix := made[:len(made)-6]
	suffix, ok := strings.CutPrefix(w.Name, prefix)
	if !ok || len(suffix) != 6 || strings.Trim(suffix, "0123456789abcdef") != "" {
		return false
	}
	return w.SystemAssignedIdentity == nil && len(w.UserAssignedIdentities) == 1 &&
		strings.EqualFold(w.UserAssignedIdentities[0].PrincipalID, id.PrincipalID)
}
