package corpus

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// BenchDir is the directory under the corpus root that holds the bench
// crash, one subdirectory per kernel release and key
// (bench/<release>-<key12>/). It is apart from manifest.json on purpose:
// the bench dump is as big as the guest's memory (6 GiB), and the tests
// that iterate the manifest's dumps must not meet it.
const BenchDir = "bench"

// BenchRecord is the name of the bench crash's record in its directory.
const BenchRecord = "bench.json"

// Bench describes the bench crash: a 6 GiB lab guest whose memory was
// filled with anonymous data and page cache before a sysrq crash, made by
// `salvage lab build --bench` (`make bench`) for the collector's
// benchmarks on a big machine.
type Bench struct {
	Key      string `json:"key"`
	ID       string `json:"id"` // release/bench
	Release  string `json:"release"`
	MemMiB   int    `json:"mem_mib"`   // the guest's memory
	CPUs     int    `json:"cpus"`      // its virtual CPUs
	AnonMiB  int    `json:"anon_mib"`  // anonymous memory its workload held
	CacheMiB int    `json:"cache_mib"` // the file it left in its page cache
	// Dumps are the crash's dumps (vmcore-elf, lzo-d31), their Files
	// relative to the corpus root, as the manifest's are.
	Dumps []Dump `json:"dumps"`
	// Seconds is the time the build took; Phases splits it by the
	// guest's console markers (boot, fills, capture kernel, cp, read back).
	Seconds float64            `json:"seconds"`
	Phases  map[string]float64 `json:"phases,omitempty"`
}

// Dump returns the bench crash's dump of the given variant.
func (b *Bench) Dump(variant string) (Dump, bool) {
	for _, d := range b.Dumps {
		if d.Variant == variant {
			return d, true
		}
	}
	return Dump{}, false
}

// LoadBench reads the bench crash's record under root; with more than
// one release there, the first in name order.
func LoadBench(root string) (*Bench, error) {
	recs, _ := filepath.Glob(filepath.Join(root, BenchDir, "*", BenchRecord))
	sort.Strings(recs)
	if len(recs) == 0 {
		return nil, fmt.Errorf("lab corpus: no bench crash under %s (run `make bench`, which builds it: a 6 GiB guest crashed under QEMU, about 3 minutes)", filepath.Join(root, BenchDir))
	}
	b, err := os.ReadFile(recs[0])
	if err != nil {
		return nil, fmt.Errorf("lab corpus: %w", err)
	}
	var rec Bench
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("lab corpus: %s: %w", recs[0], err)
	}
	if len(rec.Dumps) == 0 {
		return nil, fmt.Errorf("lab corpus: %s lists no dumps (run `make bench`)", recs[0])
	}
	return &rec, nil
}

// RequireBench loads the corpus and its bench crash for a benchmark and
// fails it — never skips it — when either is missing, saying that `make
// bench` builds the bench crash.
func RequireBench(tb testing.TB) (*Manifest, *Bench) {
	tb.Helper()
	m := Require(tb)
	b, err := LoadBench(m.Root)
	if err != nil {
		tb.Fatalf("%v", err)
	}
	for _, d := range b.Dumps {
		for _, p := range m.Paths(d) {
			if _, err := os.Stat(p); err != nil {
				tb.Fatalf("lab corpus: bench dump %s: %v (run `make bench`)", d.ID, err)
			}
		}
	}
	return m, b
}
