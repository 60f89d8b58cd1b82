package bench

import (
	"strings"
	"testing"
)

// A fleet larger than the process can hold connections for is refused
// before anything is set up, saying how many customers would fit; one
// that fits passes.
func TestCheckOpenFiles(t *testing.T) {
	limit, ok := openFileLimit()
	if !ok {
		t.Skip("the open-file limit is not known on this platform")
	}
	err := checkOpenFiles(int(limit))
	if err == nil || !strings.Contains(err.Error(), "ulimit -n") || !strings.Contains(err.Error(), "at most") {
		t.Errorf("checkOpenFiles(%d) with a limit of %d = %v, want a refusal", limit, limit, err)
	}
	if limit < fanoutSpareFiles+fanoutFilesPerCustomer {
		t.Skipf("the open-file limit %d leaves no room for one customer", limit)
	}
	fits := int((limit - fanoutSpareFiles) / fanoutFilesPerCustomer)
	if err := checkOpenFiles(fits); err != nil {
		t.Errorf("checkOpenFiles(%d) with a limit of %d: %v", fits, limit, err)
	}
	if err := checkOpenFiles(fits + 1); err == nil {
		t.Errorf("checkOpenFiles(%d) with a limit of %d passed", fits+1, limit)
	}
}
