package capture

import (
	"context"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"salvage/collect"
	"salvage/dump"
	"salvage/lab/corpus"
)

// TestCollectorMemoryMeasured runs the real collector as the capture
// kernel would (one worker, lzo, -d 31) on the lab's raw /proc/vmcore of
// a 1 GiB guest and checks that its Go memory (heap in use, stacks and
// runtime metadata, sampled while it runs) stays within what the estimate
// grants it.
func TestCollectorMemoryMeasured(t *testing.T) {
	m := corpus.Require(t)
	var d *corpus.Dump
	for i := range m.Dumps {
		if m.Dumps[i].Scenario == "sysrq" && m.Dumps[i].Variant == "vmcore-elf" {
			d = &m.Dumps[i]
		}
	}
	if d == nil {
		t.Fatal("the lab has no sysrq vmcore-elf")
	}
	src, err := dump.Open(m.Paths(*d)...)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
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
			use := ms.HeapInuse + ms.StackInuse + ms.MSpanInuse + ms.MCacheInuse + ms.GCSys
			mu.Lock()
			peak = max(peak, use)
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	res, err := collect.Collect(context.Background(), src, filepath.Join(t.TempDir(), "dump"),
		collect.Options{Level: 31, Format: collect.FormatKdump, Compression: "lzo", Threads: 1})
	close(stop)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	maxPFN := res.Selection.MaxPFN
	grant := CollectorMemory(maxPFN)
	used := peak - min(peak, base.HeapInuse+base.StackInuse+base.MSpanInuse+base.MCacheInuse+base.GCSys)
	t.Logf("collector on %s (max_pfn %d): peak %.1fM of Go memory above the start, estimate grants %.1fM",
		d.ID, maxPFN, float64(used)/(1<<20), float64(grant)/(1<<20))
	if used > grant {
		t.Errorf("the collector used %d bytes; the estimate grants %d", used, grant)
	}
}
