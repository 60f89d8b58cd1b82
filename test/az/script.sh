#!/usr/bin/env bash
# Real `az` commands against a tenantbridge server, through its proxy.
#
# cmd/tenantbridge/az_test.go runs this with nothing but what
# `tenantbridge env --tenant T --app APPID --secret` exports (HTTPS_PROXY,
# REQUESTS_CA_BUNDLE, AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET,
# …), a fresh AZURE_CONFIG_DIR, PATH and HOME, and asserts the JSON every
# step leaves in $TB_AZ_OUT/<step>.json. By hand, against a server started
# with --proxy-listen:
#
#   eval "$(tenantbridge env --tenant contoso --app APPID --secret)"
#   export AZURE_CONFIG_DIR=$(mktemp -d) TB_AZ_OUT=$(mktemp -d)
#   bash test/az/script.sh
#
# Debian's azure-cli 2.45 (`apt-get install azure-cli`) is packaged with a
# newer azure-mgmt-authorization and azure-keyvault than it was written for:
# every `az role …` command fails with "'RoleAssignmentsOperations' object
# has no attribute 'config'", and `az keyvault secret …` with "No module
# named 'azure.keyvault.v7_0'", before a request is sent. Those steps go
# through `az rest` with the requests az would send (Role Assignments -
# Create, Role Definitions - List, Set Secret, Get Secret), so they still
# run az's own login, token cache and transport.
set -euo pipefail

: "${TB_AZ_OUT:?TB_AZ_OUT names the directory for each step\'s JSON}"
export AZURE_CORE_COLLECT_TELEMETRY=false AZURE_CORE_ONLY_SHOW_ERRORS=true AZURE_CORE_NO_COLOR=true

RG=az-rg
VAULT=az-vault-1
NS=az-namespace-1
QUEUE=az-queue
IDENTITY=az-identity
READER=acdd72a7-3385-48ef-bd42-f606fba81ae7       # Reader, a built-in role's id
SECRETS_OFFICER=b86a8fe4-44ce-4948-aee5-eccb2c155cd7 # Key Vault Secrets Officer

# step NAME ARGS… runs `az ARGS… -o json` and keeps its output in
# $TB_AZ_OUT/NAME.json; a failing step stops the script, naming itself.
step() {
  local name=$1
  shift
  if ! az "$@" -o json >"$TB_AZ_OUT/$name.json" 2>"$TB_AZ_OUT/$name.err"; then
    echo "step $name failed: az $*" >&2
    cat "$TB_AZ_OUT/$name.err" >&2
    exit 1
  fi
}

# field NAME PATH prints a value of step NAME's JSON: PATH is keys and list
# indexes separated by dots (value.0.id).
field() {
  python3 - "$TB_AZ_OUT/$1.json" "$2" <<'EOF'
import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."):
    v = v[int(k)] if isinstance(v, list) else v[k]
print(v)
EOF
}

step login login --service-principal --username "$AZURE_CLIENT_ID" --password "$AZURE_CLIENT_SECRET" --tenant "$AZURE_TENANT_ID"
step account-show account show
step account-list account list
SUB=$(field account-show id)
ARM="https://management.azure.com/subscriptions/$SUB"

step group-create group create --name "$RG" --location westeurope
step group-show group show --name "$RG"
step group-list group list

step app-create ad app create --display-name az-app
APP_ID=$(field app-create appId)
step sp-create ad sp create --id "$APP_ID"
step sp-show ad sp show --id "$APP_ID"
step sp-list ad sp list --display-name az-app
step credential-reset ad app credential reset --id "$APP_ID"

# `--assignee APPID` as az resolves it: the service principal whose
# servicePrincipalNames hold the appId, through Graph.
step graph-sp rest --url "https://graph.microsoft.com/v1.0/servicePrincipals?\$filter=servicePrincipalNames/any(c:c eq '$APP_ID')"
SP_OID=$(field graph-sp value.0.id)
# az role assignment create --assignee APPID --role Reader --resource-group RG
step role-assignment-create rest --method put \
  --url "$ARM/resourceGroups/$RG/providers/Microsoft.Authorization/roleAssignments/$(python3 -c 'import uuid; print(uuid.uuid4())')?api-version=2022-04-01" \
  --body "{\"properties\":{\"roleDefinitionId\":\"/subscriptions/$SUB/providers/Microsoft.Authorization/roleDefinitions/$READER\",\"principalId\":\"$SP_OID\",\"principalType\":\"ServicePrincipal\"}}"
# az role assignment list --resource-group RG
step role-assignment-list rest --url "$ARM/resourceGroups/$RG/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01&\$filter=atScope()"
# az role definition list --name Reader
step role-definition-list rest --url "$ARM/providers/Microsoft.Authorization/roleDefinitions?api-version=2022-04-01&\$filter=roleName eq 'Reader'"

step keyvault-create keyvault create --name "$VAULT" --resource-group "$RG" --location westeurope
step keyvault-show keyvault show --name "$VAULT"
# az role assignment create --assignee-object-id ME --role "Key Vault Secrets Officer" --scope VAULT,
# then az keyvault secret set / show.
VAULT_ID=$(field keyvault-show id)
step sp-show-me ad sp show --id "$AZURE_CLIENT_ID"
ME=$(field sp-show-me id)
step vault-role-assignment rest --method put \
  --url "https://management.azure.com$VAULT_ID/providers/Microsoft.Authorization/roleAssignments/$(python3 -c 'import uuid; print(uuid.uuid4())')?api-version=2022-04-01" \
  --body "{\"properties\":{\"roleDefinitionId\":\"/subscriptions/$SUB/providers/Microsoft.Authorization/roleDefinitions/$SECRETS_OFFICER\",\"principalId\":\"$ME\",\"principalType\":\"ServicePrincipal\"}}"
step secret-set rest --method put --resource https://vault.azure.net \
  --url "https://$VAULT.vault.azure.net/secrets/az-secret?api-version=7.4" --body '{"value":"from az"}'
step secret-show rest --resource https://vault.azure.net --url "https://$VAULT.vault.azure.net/secrets/az-secret?api-version=7.4"

step identity-create identity create --name "$IDENTITY" --resource-group "$RG"
step federated-credential-create identity federated-credential create --name az-fic --identity-name "$IDENTITY" \
  --resource-group "$RG" --issuer https://token.actions.githubusercontent.com \
  --subject repo:contoso/app:ref:refs/heads/main --audiences api://AzureADTokenExchange

step namespace-create servicebus namespace create --name "$NS" --resource-group "$RG" --location westeurope
step namespace-show servicebus namespace show --name "$NS" --resource-group "$RG"
step queue-create servicebus queue create --name "$QUEUE" --namespace-name "$NS" --resource-group "$RG" --lock-duration PT30S
step queue-show servicebus queue show --name "$QUEUE" --namespace-name "$NS" --resource-group "$RG"
step queue-update servicebus queue update --name "$QUEUE" --namespace-name "$NS" --resource-group "$RG" --max-delivery-count 5

step resource-list resource list --resource-group "$RG"
step resource-list-type resource list --resource-type Microsoft.ServiceBus/namespaces
echo "az script: every step ran"
