package publisher_test

import (
	"testing"

	"github.com/tenantbridge/tenantbridge/internal/broker/publisher"
)

// FuzzParseNotification: any body is parsed or refused, never a panic; a
// parsed one has a managed application id and a known event type.
func FuzzParseNotification(f *testing.F) {
	f.Add([]byte(`{"eventType":"PUT","applicationId":"/subscriptions/s/resourceGroups/g/providers/Microsoft.Solutions/applications/a","eventTime":"2026-11-22T05:43:52.1234567Z","provisioningState":"Succeeded","applicationDefinitionId":"/x"}`))
	f.Add([]byte(`{"eventType":"DELETE","applicationId":"subscriptions/s/resourceGroups/g/providers/Microsoft.Solutions/applications/a","eventTime":"2026-11-22T05:43:52Z","provisioningState":"Deleted","plan":{"name":"n","publisher":"p","product":"x","version":"1"},"billingDetails":{"resourceUsageId":"u"}}`))
	f.Add([]byte(`{"eventType":"PUT"} {}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		n, _, err := publisher.ParseNotification(body)
		if err != nil {
			return
		}
		if n.EventType != "PUT" && n.EventType != "PATCH" && n.EventType != "DELETE" || n.ApplicationID == "" || n.ApplicationID[0] != '/' {
			t.Fatalf("parsed %+v", n)
		}
	})
}

// FuzzParseRegistration: any body is parsed or refused, never a panic; a
// parsed one names a managed application and its definition.
func FuzzParseRegistration(f *testing.F) {
	f.Add([]byte(`{"applicationId":"/subscriptions/s/resourceGroups/g/providers/Microsoft.Solutions/applications/a","applicationDefinitionId":"/subscriptions/s/resourceGroups/o/providers/Microsoft.Solutions/applicationDefinitions/d","customerTenantId":"t","managedResourceGroupId":"/subscriptions/s/resourceGroups/m","identityPrincipalId":"p","eventTime":"2026-11-22T05:43:52.1234567Z"}`))
	f.Add([]byte(`{"applicationId":"subscriptions/s/resourceGroups/g/providers/Microsoft.Solutions/applications/a","plan":{"name":"n","publisher":"p","product":"x","version":"1"}}`))
	f.Add([]byte(`{"applicationId":"x"} {}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, _, err := publisher.ParseRegistration(body)
		if err != nil {
			return
		}
		if r.ApplicationID == "" || r.ApplicationID[0] != '/' || r.ApplicationDefinitionID == "" && (r.Plan == nil || r.Plan.Product == "") {
			t.Fatalf("parsed %+v", r)
		}
	})
}
