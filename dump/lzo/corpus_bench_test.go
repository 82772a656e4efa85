package lzo_test

import (
	"testing"

	"salvage/dump"
	"salvage/dump/lzo"
	"salvage/lab/corpus"
)

// BenchmarkCompressKernelPages compresses the pages makedumpfile kept at
// -d 31 of the lab's sysrq crash: real kernel memory, not a pattern.
func BenchmarkCompressKernelPages(b *testing.B) {
	m := corpus.Require(b)
	var d corpus.Dump
	for _, x := range m.Dumps {
		if x.Scenario == "sysrq" && x.Variant == "lzo-d31" {
			d = x
		}
	}
	f, err := dump.Open(m.Paths(d)...)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var pages [][]byte
	for _, r := range f.Memory.Ranges() {
		for a := r.Start &^ 4095; a+4096 <= r.End && len(pages) < 4000; a += 4096 {
			if f.Memory.State(a/4096) != dump.PagePresent {
				continue
			}
			p := make([]byte, 4096)
			if _, err := f.Memory.ReadPhys(p, a); err == nil {
				pages = append(pages, p)
			}
		}
	}
	var c lzo.Compressor
	var out []byte
	var total int
	b.SetBytes(int64(len(pages) * 4096))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		total = 0
		for _, p := range pages {
			out = c.Compress(out[:0], p)
			total += len(out)
		}
	}
	b.ReportMetric(float64(total)/float64(len(pages)*4096), "ratio")
}
