package main

import (
	"testing"

	"github.com/tenantbridge/tenantbridge/internal/broker/publisher"
)

// TestParseOffers: --publisher-offer PRODUCT=MODE; anything else is refused
// with the flag's name, before the broker starts.
func TestParseOffers(t *testing.T) {
	got, err := parseOffers([]string{"srb=secret", " srb-secretless=federated"}, "publisher-delivery", "installation")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]publisher.Offer{
		"srb":            {CredentialMode: publisher.ModeSecret, DeliveryIdentity: "publisher-delivery"},
		"srb-secretless": {CredentialMode: publisher.ModeFederated, DeliveryIdentity: "publisher-delivery", InstallationIdentity: "installation"},
	}
	if len(got) != len(want) || got["srb"] != want["srb"] || got["srb-secretless"] != want["srb-secretless"] {
		t.Fatalf("offers %+v", got)
	}
	for _, bad := range []string{"srb", "=secret", "srb=Secret", "srb=", "srb=password"} {
		if _, err := parseOffers([]string{bad}, "d", "i"); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
