// Package examples holds the committed example packages as the binary
// carries them (go:embed): the demo and the tests install managed
// applications from these files, the ones a reader opens in examples/.
package examples

import _ "embed"

// SharedResourceBrokerTemplate is shared-resource-broker/mainTemplate.json:
// the S1 package's template (a user-assigned identity, a vault with RBAC
// authorization, and the identity's Key Vault Secrets User role on it).
//
//go:embed shared-resource-broker/mainTemplate.json
var SharedResourceBrokerTemplate []byte

// PublisherAccessTemplate is publisher-access/mainTemplate.json: the S2
// package's template (a vault, and a user-assigned identity whose
// federated credential trusts the publisher's broker as issuer, with
// Key Vault Secrets User on the vault).
//
//go:embed publisher-access/mainTemplate.json
var PublisherAccessTemplate []byte
