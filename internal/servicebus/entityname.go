package servicebus

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// maxEntityName is the longest entity path Service Bus takes: "Max length
// is 260 chars" (QueueProperties.Name, Azure.Messaging.ServiceBus
// .Administration). Resource Manager creates queues under the same limit.
const maxEntityName = 260

// validEntityName reports whether name is a queue name Service Bus would
// accept in a request path: 1 to 260 letters, digits, '.', '-' and '_'.
// Service Bus answers anything else with 400 and "Entity segments can
// contain only letters, numbers, periods (.), hyphens (-), and underscores
// (_)" (a recorded response in nimbusapi/nimbus#10). A name that passes
// but cannot exist (one starting with '-', which Resource Manager
// refuses) is simply not found, as in Service Bus.
func validEntityName(name string) bool {
	if name == "" || len(name) > maxEntityName {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// refuseEntityName answers a request for an entity whose name Service Bus
// could never have (400, SubCode 40000, in its words), before anyone is
// authenticated or anything is looked up by that name, and audits the
// refusal in the namespace's tenant: a malformed name is a probe worth
// recording, and the audit log stores it sanitized (invalid UTF-8 and all).
func (s *Service) refuseEntityName(w http.ResponseWriter, r *http.Request, ns store.Resource, host string, rt route) {
	action := "servicebus.listen"
	if rt.op == opSend {
		action = "servicebus.send"
	}
	_ = s.audit.Record(r.Context(), store.AuditRecord{TargetTenant: ns.TenantID, Action: action,
		Target: ns.Name + "/" + rt.queue, Result: "BadRequest", Detail: "invalid entity name"})
	where := "https://" + host + clip(r.URL.EscapedPath(), 300) // escaped: ASCII whatever the client sent
	msg := fmt.Sprintf("SubCode=40000. '%s' contains character(s) that is not allowed by Service Bus. "+
		"Entity segments can contain only letters, numbers, periods (.), hyphens (-), and underscores (_).", where)
	if len(rt.queue) > maxEntityName {
		msg = fmt.Sprintf("SubCode=40000. The entity path in '%s' is longer than %d characters.", strings.TrimSuffix(where, "/"), maxEntityName)
	}
	WriteError(w, http.StatusBadRequest, msg)
}
