package capture

import (
	"context"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"salvage/collect"
	"salvage/debuginfo"
	"salvage/dump"
	"salvage/kernel"
	"salvage/lab/corpus"
)

// goMemory is the Go memory the estimate models: heap in use, stacks and
// the runtime's metadata.
func goMemory(ms *runtime.MemStats) uint64 {
	return ms.HeapInuse + ms.StackInuse + ms.MSpanInuse + ms.MCacheInuse + ms.GCSys
}

// peakGoMemory runs f and returns the peak of goMemory, sampled every
// 2 ms while it runs, above what was in use (after a collection) before.
func peakGoMemory(f func()) uint64 {
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak uint64
	var mu sync.Mutex
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			mu.Lock()
			peak = max(peak, goMemory(&ms))
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	f()
	close(stop)
	<-done
	return peak - min(peak, goMemory(&base))
}

// TestCollectorMemoryMeasured runs the real collector as the capture
// kernel would (one worker, lzo, -d 31) on the lab's raw /proc/vmcore of
// a 1 GiB guest, for each kernel the lab crashed, and checks that its Go
// memory (heap in use, stacks and runtime metadata, sampled while it
// runs) stays within what the estimate grants it. It also measures, alone,
// the kernel model the collector builds to list the analyzer's pages
// (kallsyms and BTF from the dump, the task walk: collect/needs.go) against
// the estimate's analyzerModel term.
func TestCollectorMemoryMeasured(t *testing.T) {
	m := corpus.Require(t)
	var raws []corpus.Dump
	for _, d := range m.Dumps {
		if d.Scenario == "sysrq" && d.Variant == "vmcore-elf" {
			raws = append(raws, d)
		}
	}
	if len(raws) == 0 {
		t.Fatal("the lab has no sysrq vmcore-elf")
	}
	for _, d := range raws {
		t.Run(d.Release, func(t *testing.T) {
			src, err := dump.Open(m.Paths(d)...)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()

			var tasks, nsym int
			var kerr error
			var live uint64
			model := peakGoMemory(func() {
				var before runtime.MemStats
				runtime.ReadMemStats(&before)
				k, err := kernel.Open(src, kernel.Options{})
				if err != nil {
					kerr = err
					return
				}
				for _, err := range k.Tasks() {
					if err != nil {
						kerr = err
						return
					}
					tasks++
				}
				runtime.GC()
				var after runtime.MemStats
				runtime.ReadMemStats(&after)
				live = goMemory(&after) - min(goMemory(&after), goMemory(&before))
				k.Symbols.All(func(debuginfo.Symbol) bool { nsym++; return true })
				runtime.KeepAlive(k)
			})
			if kerr != nil {
				t.Fatalf("the kernel model: %v", kerr)
			}
			modelGrant := AnalyzerModelMemory(uint64(nsym))
			t.Logf("kernel model of %s (BTF-only, %d symbols, %d tasks walked): peak %.1fM, live after a GC %.1fM, the estimate's term %.1fM",
				d.ID, nsym, tasks, float64(model)/(1<<20), float64(live)/(1<<20), float64(modelGrant)/(1<<20))
			if model > modelGrant {
				t.Errorf("the kernel model used %d bytes; the estimate grants it %d", model, modelGrant)
			}

			var res *collect.Result
			used := peakGoMemory(func() {
				res, err = collect.Collect(context.Background(), src, filepath.Join(t.TempDir(), "dump"),
					collect.Options{Level: 31, Format: collect.FormatKdump, Compression: "lzo", Threads: 1})
			})
			if err != nil {
				t.Fatal(err)
			}
			maxPFN := res.Selection.MaxPFN
			grant := CollectorMemory(maxPFN, uint64(nsym))
			t.Logf("collector on %s (max_pfn %d): peak %.1fM of Go memory above the start, estimate grants %.1fM",
				d.ID, maxPFN, float64(used)/(1<<20), float64(grant)/(1<<20))
			if used > grant {
				t.Errorf("the collector used %d bytes; the estimate grants %d", used, grant)
			}
		})
	}
}
