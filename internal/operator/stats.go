package operator

import (
	"bufio"
	"bytes"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/httpx"
)

// StatsView is the server process's resource use, for `bench` and for
// operators sizing a deployment.
type StatsView struct {
	// RSSBytes is the resident set size, from /proc/self/status (0 where
	// the platform has no procfs).
	RSSBytes       uint64 `json:"rssBytes"`
	HeapInuseBytes uint64 `json:"heapInuseBytes"`
	HeapSysBytes   uint64 `json:"heapSysBytes"`
	Goroutines     int    `json:"goroutines"`
	GCCycles       uint32 `json:"gcCycles"`
}

func (a *API) stats(w http.ResponseWriter, r *http.Request) {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	httpx.WriteJSON(w, http.StatusOK, StatsView{
		RSSBytes: residentSetSize(), HeapInuseBytes: m.HeapInuse, HeapSysBytes: m.HeapSys,
		Goroutines: runtime.NumGoroutine(), GCCycles: m.NumGC,
	})
}

// residentSetSize reads VmRSS from /proc/self/status, in bytes.
func residentSetSize() uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			fields := strings.Fields(rest) // "12345 kB"
			if len(fields) == 2 && fields[1] == "kB" {
				kb, err := strconv.ParseUint(fields[0], 10, 64)
				if err == nil {
					return kb * 1024
				}
			}
		}
	}
	return 0
}
