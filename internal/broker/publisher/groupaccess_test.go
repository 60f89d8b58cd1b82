package publisher_test

import (
	"testing"

	"github.com/tenantbridge/tenantbridge/internal/broker/publisher"
)

// TestGroupAccessSubject: the subject is the managed group's id as the
// package's template writes it ([concat('publisher-access:',
// toLower(resourceGroup().id))]), whatever the casing the publisher
// holds the id in, and distinct per group.
func TestGroupAccessSubject(t *testing.T) {
	a := publisher.GroupAccessSubject("/subscriptions/AB-12/resourceGroups/MRG-srb-access")
	if want := "publisher-access:/subscriptions/ab-12/resourcegroups/mrg-srb-access"; a != want {
		t.Fatalf("GroupAccessSubject = %q, want %q", a, want)
	}
	if b := publisher.GroupAccessSubject("subscriptions/ab-12/resourcegroups/mrg-srb-access/"); b != a {
		t.Fatalf("the same group gave %q and %q", a, b)
	}
	if c := publisher.GroupAccessSubject("/subscriptions/ab-12/resourceGroups/mrg-srb-access2"); c == a {
		t.Fatal("two groups share a subject")
	}
}
