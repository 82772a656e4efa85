package collect

import (
	"testing"

	"salvage/lab/corpus"
)

// TestAnalyzerNeedsKept: at -d 31, every page the analyzer needs — the
// kernel image, its page tables, every task_struct and kernel stack — is
// kept, on every crash of the corpus; and salvage's analyzer finds the
// same number of tasks as it listed.
func TestAnalyzerNeedsKept(t *testing.T) {
	m := corpus.Require(t)
	n := 0
	for _, d := range m.Dumps {
		if d.Variant != "vmcore-elf" {
			continue
		}
		n++
		t.Run(d.ID, func(t *testing.T) {
			f := openDump(t, m, d)
			need, err := analyzerNeeds(f)
			if err != nil {
				t.Fatal(err)
			}
			if len(need.pfns) < 1000 || need.tasks < 100 {
				t.Fatalf("only %d frames of %d tasks: the kernel model did not list them", len(need.pfns), need.tasks)
			}
			sel, err := Prepare(f, 31)
			if err != nil {
				t.Fatal(err)
			}
			missing := 0
			for _, pfn := range need.pfns {
				if sel.RAM.Has(pfn) && !sel.Kept.Has(pfn) {
					missing++
				}
			}
			if missing > 0 {
				t.Errorf("%d of %d needed frames not kept", missing, len(need.pfns))
			}
			t.Logf("%d needed frames (%d tasks), all kept; %d of them kept against level 31's classes", len(need.pfns), need.tasks, sel.Counts.KeptForAnalyzer)
		})
	}
	if n == 0 {
		t.Fatal("no raw dumps in the corpus")
	}
}
