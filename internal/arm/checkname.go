package arm

// checkNameAvailability of Key Vault and Service Bus: whether a vault's or
// a namespace's name, unique across every tenant (they are DNS names),
// may be taken. Like Azure, the answer tells any caller whether a name is
// in use anywhere — that much its DNS name tells too — and nothing else.

import (
	"errors"
	"net/http"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/arm/rp"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/vault"
)

const (
	// targetVaultCheckName is POST /subscriptions/{sub}/providers/Microsoft.KeyVault/checkNameAvailability.
	targetVaultCheckName target = 101
	// targetSBCheckName is POST /subscriptions/{sub}/providers/Microsoft.ServiceBus/CheckNameAvailability.
	targetSBCheckName target = 124

	// The actions Azure's operations lists name for the two checks
	// (Microsoft.KeyVault: "checkNameAvailability/read"; Microsoft.ServiceBus:
	// "checkNameAvailability/action"): Reader may ask Key Vault, Service
	// Bus's takes Contributor.
	actionVaultCheckName = "Microsoft.KeyVault/checkNameAvailability/read"
	actionSBCheckName    = "Microsoft.ServiceBus/checkNameAvailability/action"
)

// checkNamePath recognises …/subscriptions/{sub}/providers/{ns}/checkNameAvailability
// for namespace ns, as a path whose scope is the subscription.
func checkNamePath(segs []string, ns string, t target) (rp.Path, bool, error) {
	if len(segs) != 5 || !strings.EqualFold(segs[0], "subscriptions") || segs[1] == "" ||
		!strings.EqualFold(segs[2], "providers") || !strings.EqualFold(segs[3], ns) || !strings.EqualFold(segs[4], "checkNameAvailability") {
		return rp.Path{}, false, nil
	}
	sc, err := rp.ParseScopeText("/subscriptions/" + segs[1])
	if err != nil {
		return rp.Path{}, true, err
	}
	return rp.Path{Target: t, Sub: sc.SubscriptionID(), Scope: sc}, true, nil
}

// vaultCheckName answers Vaults - Check Name Availability (Key Vault REST,
// 2023-07-01): the body {"name", "type": "Microsoft.KeyVault/vaults"};
// 200 {"nameAvailable": true}, or false with reason AccountNameInvalid or
// AlreadyExists and Key Vault's message.
func (h *Handler) vaultCheckName(rq *rp.Request) error {
	if rq.R.Method != http.MethodPost {
		return rp.MethodNotAllowed(rq.R.Method)
	}
	if _, err := rq.AuthorizeAt(actionVaultCheckName); err != nil {
		return err
	}
	var body struct {
		Name *string `json:"name"`
		Type *string `json:"type"`
	}
	if err := rp.ReadBody(rq, &body); err != nil {
		return err
	}
	if body.Name == nil || body.Type == nil {
		return rp.BadRequest("The request body must have 'name' and 'type'.")
	}
	if !strings.EqualFold(*body.Type, vaultType) {
		return rp.BadRequest("The type '%s' is not valid: it must be '%s'.", rp.SafeText(*body.Type), vaultType)
	}
	type answer struct {
		NameAvailable bool   `json:"nameAvailable"`
		Reason        string `json:"reason,omitempty"`
		Message       string `json:"message,omitempty"`
	}
	name := *body.Name
	if !vault.ValidName(name) {
		return rp.WriteJSON(rq, http.StatusOK, answer{Reason: "AccountNameInvalid", Message: "Vault name must only contain alphanumeric characters and dashes and cannot start with a number."})
	}
	switch _, err := h.st.GetVault(rq.Ctx, name); {
	case err == nil:
		return rp.WriteJSON(rq, http.StatusOK, answer{Reason: "AlreadyExists",
			Message: "The vault name '" + name + "' is already in use. Vault names are globally unique so it is possible that the name is already taken."})
	case !errors.Is(err, store.ErrNotFound):
		return rp.InternalError(err)
	}
	return rp.WriteJSON(rq, http.StatusOK, answer{NameAvailable: true})
}

// sbCheckName answers Namespaces - Check Name Availability (Service Bus
// REST, 2021-11-01): the body {"name"}; 200 {"nameAvailable", "reason":
// None, InvalidName or NameInUse, "message"}.
func (h *Handler) sbCheckName(rq *rp.Request) error {
	if rq.R.Method != http.MethodPost {
		return rp.MethodNotAllowed(rq.R.Method)
	}
	if _, err := rq.AuthorizeAt(actionSBCheckName); err != nil {
		return err
	}
	var body struct {
		Name *string `json:"name"`
	}
	if err := rp.ReadBody(rq, &body); err != nil {
		return err
	}
	if body.Name == nil {
		return rp.BadRequest("The request body must have 'name'.")
	}
	type answer struct {
		NameAvailable bool   `json:"nameAvailable"`
		Reason        string `json:"reason"`
		Message       string `json:"message"`
	}
	name := *body.Name
	if !validNamespaceName(name) {
		return rp.WriteJSON(rq, http.StatusOK, answer{Reason: "InvalidName",
			Message: "The specified name is not valid: a namespace name must be 6 to 50 letters, digits or hyphens, start with a letter and end with a letter or digit."})
	}
	taken, err := namespaceNameTaken(rq, h.st, name)
	if err != nil {
		return err
	}
	if taken {
		return rp.WriteJSON(rq, http.StatusOK, answer{Reason: "NameInUse",
			Message: "The specified name is not available. Namespace names are globally unique, so it is possible that the name is already taken."})
	}
	return rp.WriteJSON(rq, http.StatusOK, answer{NameAvailable: true, Reason: "None"})
}
