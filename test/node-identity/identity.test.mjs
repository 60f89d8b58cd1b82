// The real @azure/identity, @azure/keyvault-secrets and @azure/arm-resources,
// unmodified, configured by nothing but what `tenantbridge env` prints.
// cmd/tenantbridge/node_identity_test.go starts a server with a proxy, sets
// up a vault and a resource group, and for each credential kind runs
// `node --test` here with exactly the variables `tenantbridge env` exported
// (HTTPS_PROXY, NODE_EXTRA_CA_CERTS, AZURE_TOKEN_CREDENTIALS=prod,
// AZURE_TENANT_ID, AZURE_CLIENT_ID and the credential's own: AZURE_CLIENT_SECRET,
// AZURE_CLIENT_CERTIFICATE_PATH, IDENTITY_ENDPOINT + IDENTITY_HEADER or
// AZURE_FEDERATED_TOKEN_FILE), plus PATH, HOME and what the program is
// about, as a program's own configuration would name it:
//
//   TB_KIND            secret | certificate | managed-identity | workload-identity
//   TB_VAULT_NAME      a vault the principal may read and write secrets of
//   TB_SUBSCRIPTION_ID the tenant's subscription
//   TB_RESOURCE_GROUP  a resource group in it the principal can see
//   TB_EXPECT_OID      the principal's object id, which the tokens must carry
//
// Every request goes to Azure's own names (login.microsoftonline.com,
// {vault}.vault.azure.net, management.azure.com) through HTTPS_PROXY, which
// @azure/core-rest-pipeline honours by itself; the managed-identity
// endpoint is reached directly (NO_PROXY).

import { test } from "node:test";
import assert from "node:assert/strict";
import {
  ClientCertificateCredential,
  ClientSecretCredential,
  DefaultAzureCredential,
  EnvironmentCredential,
  ManagedIdentityCredential,
  WorkloadIdentityCredential,
} from "@azure/identity";
import { SecretClient } from "@azure/keyvault-secrets";
import { ResourceManagementClient } from "@azure/arm-resources";

function env(name) {
  const v = process.env[name];
  if (!v) {
    throw new Error(`${name} is not set: run this through cmd/tenantbridge/node_identity_test.go`);
  }
  return v;
}

const kind = env("TB_KIND");
const vaultURL = `https://${env("TB_VAULT_NAME")}.vault.azure.net`;
const tenantID = env("AZURE_TENANT_ID");
const expectOID = env("TB_EXPECT_OID");

// The credential class of this kind, built the way its documentation
// shows, from the same environment.
function specificCredential() {
  switch (kind) {
    case "secret":
      return new ClientSecretCredential(tenantID, env("AZURE_CLIENT_ID"), env("AZURE_CLIENT_SECRET"));
    case "certificate":
      return new ClientCertificateCredential(tenantID, env("AZURE_CLIENT_ID"), {
        certificatePath: env("AZURE_CLIENT_CERTIFICATE_PATH"),
      });
    case "managed-identity":
      return new ManagedIdentityCredential({ clientId: env("AZURE_CLIENT_ID") });
    case "workload-identity":
      return new WorkloadIdentityCredential();
    default:
      throw new Error(`unknown TB_KIND ${kind}`);
  }
}

const credentials = {
  DefaultAzureCredential: () => new DefaultAzureCredential(),
  [specificCredential().constructor.name]: specificCredential,
};
if (kind === "secret" || kind === "certificate") {
  credentials.EnvironmentCredential = () => new EnvironmentCredential();
}

function claims(token) {
  const [, payload] = token.split(".");
  return JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
}

for (const [name, newCredential] of Object.entries(credentials)) {
  test(`${kind}: ${name} gets tokens of the principal`, { timeout: 60000 }, async () => {
    const cred = newCredential();
    for (const scope of ["https://management.azure.com/.default", "https://vault.azure.net/.default"]) {
      const tok = await cred.getToken(scope);
      assert.ok(tok?.token, `a token for ${scope}`);
      assert.ok(tok.expiresOnTimestamp > Date.now(), "expiresOnTimestamp is in the future");
      const c = claims(tok.token);
      assert.equal(c.tid, tenantID, "tid");
      assert.equal(c.oid, expectOID, "oid");
      assert.equal(c.aud.replace(/\/$/, ""), scope.replace(/\/\.default$/, ""), "aud");
    }
  });

  test(`${kind}: ${name} sets and gets a Key Vault secret`, { timeout: 60000 }, async () => {
    const client = new SecretClient(vaultURL, newCredential());
    const secretName = `node-${kind}-${name}`.replace(/[^A-Za-z0-9-]/g, "-");
    const value = `value of ${secretName} ${Date.now()}`;
    const set = await client.setSecret(secretName, value, { contentType: "text/plain", tags: { by: "node" } });
    assert.equal(set.name, secretName);
    assert.equal(set.value, value);
    assert.ok(set.properties.version, "a version");
    const got = await client.getSecret(secretName);
    assert.equal(got.value, value);
    assert.equal(got.properties.contentType, "text/plain");
    assert.equal(got.properties.tags?.by, "node");
    assert.equal(got.properties.version, set.properties.version);
    const byVersion = await client.getSecret(secretName, { version: set.properties.version });
    assert.equal(byVersion.value, value);
    const names = [];
    for await (const p of client.listPropertiesOfSecrets()) {
      names.push(p.name);
    }
    assert.ok(names.includes(secretName), `listPropertiesOfSecrets has ${secretName}: ${names}`);
  });

  test(`${kind}: ${name} lists resource groups`, { timeout: 60000 }, async () => {
    const client = new ResourceManagementClient(newCredential(), env("TB_SUBSCRIPTION_ID"));
    const groups = [];
    for await (const g of client.resourceGroups.list()) {
      groups.push(g.name);
    }
    assert.ok(groups.includes(env("TB_RESOURCE_GROUP")), `resourceGroups.list has ${env("TB_RESOURCE_GROUP")}: ${groups}`);
    const rg = await client.resourceGroups.get(env("TB_RESOURCE_GROUP"));
    assert.equal(rg.name, env("TB_RESOURCE_GROUP"));
    assert.equal(rg.properties?.provisioningState, "Succeeded");
  });
}
