package dump_test

import (
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"salvage/dump"
	"salvage/lab/corpus"
)

// presentPFNs lists up to max page frames that the dump holds whole, in
// order (a /proc/vmcore range may end mid-page, e.g. at 0x9fc00).
func presentPFNs(f *dump.File, max int) []uint64 {
	ps := uint64(f.Memory.PageSize())
	var out []uint64
	for _, r := range f.Memory.Ranges() {
		for pfn := (r.Start + ps - 1) / ps; pfn < r.End/ps; pfn++ {
			if f.Memory.State(pfn) == dump.PagePresent {
				out = append(out, pfn)
				if len(out) == max {
					return out
				}
			}
		}
	}
	return out
}

// BenchmarkReadPages reads present pages of every lab dump, in order and
// at random, and reports pages per second.
func BenchmarkReadPages(b *testing.B) {
	m := corpus.Require(b)
	for _, d := range m.Dumps {
		f, err := dump.Open(m.Paths(d)...)
		if err != nil {
			b.Fatalf("%s: %v", d.ID, err)
		}
		pfns := presentPFNs(f, 20000)
		ps := f.Memory.PageSize()
		name := strings.ReplaceAll(d.ID, "/", "_")
		read := func(b *testing.B, order []uint64) {
			buf := make([]byte, ps)
			b.SetBytes(int64(len(order) * ps))
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				for _, pfn := range order {
					if _, err := f.Memory.ReadPhys(buf, pfn*uint64(ps)); err != nil {
						b.Fatalf("%s: pfn %#x: %v", d.ID, pfn, err)
					}
				}
			}
			b.ReportMetric(float64(b.N*len(order))/time.Since(start).Seconds(), "pages/s")
		}
		b.Run(name+"/sequential", func(b *testing.B) { read(b, pfns) })
		shuffled := append([]uint64(nil), pfns...)
		rand.New(rand.NewSource(1)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		b.Run(name+"/random", func(b *testing.B) { read(b, shuffled) })
		f.Close()
	}
}

// BenchmarkOpenFlattened opens the lab's flattened dump and the same crash's
// kdump file with salvage and with crash 8.0.6, in one run: crash's time
// to the first prompt, salvage's time to a readable dump.
func BenchmarkOpenFlattened(b *testing.B) {
	m := corpus.Require(b)
	flats := m.Select(func(d corpus.Dump) bool { return d.Variant == "flat-lzo-d31" })
	if len(flats) == 0 {
		b.Fatal("the corpus has no makedumpfile -F dump")
	}
	flat := flats[0]
	plain := m.Select(func(d corpus.Dump) bool { return d.Crash == flat.Crash && d.Variant == "lzo-d31" })
	if len(plain) != 1 {
		b.Fatalf("no lzo-d31 dump of %s", flat.Crash)
	}
	k := m.Kernel(flat.Release)
	if k == nil {
		b.Fatalf("no kernel %s in the corpus", flat.Release)
	}
	crash := filepath.Join(m.Root, "tools/crash-trixie/root")
	lib := filepath.Join(crash, "usr/lib/x86_64-linux-gnu")
	cmdFile := filepath.Join(b.TempDir(), "q")
	os.WriteFile(cmdFile, []byte("q\n"), 0o644)
	for _, d := range []corpus.Dump{flat, plain[0]} {
		b.Run("salvage/"+d.Variant, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				f, err := dump.Open(m.Paths(d)...)
				if err != nil {
					b.Fatal(err)
				}
				f.Close()
			}
		})
		b.Run("crash-8.0.6/"+d.Variant, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				args := []string{"--library-path", lib, filepath.Join(crash, "usr/bin/crash"), "-s", m.Path(k.DebugVmlinux)}
				args = append(args, m.Paths(d)...)
				args = append(args, "-i", cmdFile)
				out, err := exec.Command(filepath.Join(lib, "ld-linux-x86-64.so.2"), args...).CombinedOutput()
				if err != nil {
					b.Fatalf("crash: %v: %s", err, out)
				}
			}
		})
	}
}
