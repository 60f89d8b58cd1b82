package rp

// What several providers share.

import (
	"net/http"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/directory"
)

// TrackedCapabilities are what the provider registry says of a tracked
// type that tenantbridge serves: tags and a location (no moves between
// groups).
const TrackedCapabilities = "SupportsTags, SupportsLocation"

// ParseCheckNamePath recognises
// …/subscriptions/{sub}/providers/{ns}/checkNameAvailability for
// namespace ns (Key Vault's and Service Bus's name checks), as a path of
// target t whose scope is the subscription.
func ParseCheckNamePath(segs []string, ns string, t Target) (Path, bool, error) {
	if len(segs) != 5 || !strings.EqualFold(segs[0], "subscriptions") || segs[1] == "" ||
		!strings.EqualFold(segs[2], "providers") || !strings.EqualFold(segs[3], ns) || !strings.EqualFold(segs[4], "checkNameAvailability") {
		return Path{}, false, nil
	}
	sc, err := ParseScopeText("/subscriptions/" + segs[1])
	if err != nil {
		return Path{}, true, err
	}
	return Path{Target: t, Sub: sc.SubscriptionID(), Scope: sc}, true, nil
}

// DirectoryError turns a directory refusal into ARM's shape: an invalid
// request is 400, a conflict 409, anything else a 500.
func DirectoryError(err error) error {
	if msg, ok := directory.IsInvalid(err); ok {
		return BadRequest("%s", SafeText(msg))
	}
	if msg, ok := directory.ConflictMessage(err); ok {
		return NewError(http.StatusConflict, "Conflict", "%s", SafeText(msg))
	}
	return InternalError(err)
}
