package debuginfo

import (
	"slices"
	"strings"
	"testing"
	"time"

	"salvage/dump"

	"salvage/lab/corpus"
)

// TestKallsymsCorpus decodes kallsyms from the memory of every corpus dump
// and checks it against the guest's own /proc/kallsyms (captured before
// the crash), crash 8.0.6's `sym linux_banner` and `sym init_task`, and
// the functions of crash's backtraces.
func TestKallsymsCorpus(t *testing.T) {
	m := corpus.Require(t)
	for _, d := range m.Dumps {
		t.Run(d.ID, func(t *testing.T) {
			kall, f := loadCorpusKallsyms(t, m, d)
			if kall.Len() < 50000 {
				t.Errorf("only %d symbols", kall.Len())
			}
			// Every vmlinux symbol the guest listed, at the same address
			// and with the same type.
			truth := truthKallsyms(t, m, d)
			checked := 0
			for s := range truth.All {
				if s.Module != "" {
					// Module code is above vmlinux's last symbol: not in it.
					if got, off, ok := kall.ByAddr(s.Addr); ok {
						t.Errorf("ByAddr(%#x), in module %s, = %s+%#x", s.Addr, s.Module, got.Name, off)
					}
					continue
				}
				got, ok := kall.Lookup(s.Name)
				if !ok {
					t.Errorf("%s: not in kallsyms; the guest had %#x %c", s.Name, s.Addr, s.Type)
					continue
				}
				if got.Addr != s.Addr || got.Type != s.Type {
					t.Errorf("%s: %#x %c; the guest had %#x %c", s.Name, got.Addr, got.Type, s.Addr, s.Type)
				}
				checked++
			}
			if checked < 5 {
				t.Errorf("only %d truth symbols checked", checked)
			}

			// crash's sym: same address and type letter.
			syms := 0
			for _, key := range []string{"sym", "sym-init_task"} {
				want, ok := crashSym(t, m, d, key)
				if !ok {
					continue
				}
				got, ok := kall.Lookup(want.Name)
				if !ok || got.Addr != want.Addr || got.Type != want.Type {
					t.Errorf("%s: kallsyms %+v (found %v); crash 8.0.6 `%s` says %#x (%c)", want.Name, got, ok, d.RefCommands[key], want.Addr, want.Type)
				}
				syms++
			}

			frames := checkCrashBT(t, m, d, kall)

			// kallsyms and VMCOREINFO agree where both speak.
			for _, name := range []string{"_stext", "init_uts_ns", "init_top_pgt", "prb", "node_data"} {
				want, ok := f.VMCoreInfo.Symbol(name)
				if !ok {
					continue
				}
				if got, ok := kall.Lookup(name); !ok || got.Addr != want {
					t.Errorf("%s: kallsyms %#x (%v); VMCOREINFO SYMBOL(%s)=%x", name, got.Addr, ok, name, want)
				}
			}
			t.Logf("%d symbols; checked %d guest symbols, %d crash syms, %d bt frames", kall.Len(), checked, syms, frames)
		})
	}
}

// TestKallsymsScanCorpus: with the kallsyms lines taken out of VMCOREINFO
// (as kernels before 6.0 write it), scanning the kernel image finds the
// same symbols, on one dump of each crash and one compressed dump.
func TestKallsymsScanCorpus(t *testing.T) {
	m := corpus.Require(t)
	ds := onePerCrash(m)
	if c := m.Select(func(d corpus.Dump) bool { return d.Compression == "lzo" }); len(c) > 0 && !slices.ContainsFunc(ds, func(d corpus.Dump) bool { return d.ID == c[0].ID }) {
		ds = append(ds, c[0])
	}
	for _, d := range ds {
		t.Run(d.ID, func(t *testing.T) {
			want, f := loadCorpusKallsyms(t, m, d)
			var lines []string
			for _, l := range strings.Split(f.VMCoreInfo.Raw, "\n") {
				if !strings.HasPrefix(l, "SYMBOL(kallsyms_") {
					lines = append(lines, l)
				}
			}
			old := mustVMCoreInfo(t, strings.Join(lines, "\n"))
			start := time.Now()
			got, err := LoadKallsyms(KernelImageReader(f.Memory, old), old)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %d symbols in %v", got.Source(), got.Len(), time.Since(start))
			if got.Len() != want.Len() {
				t.Fatalf("%d symbols by scanning, %d located by VMCOREINFO", got.Len(), want.Len())
			}
			for i := range want.symbols() {
				if got.symbols()[i] != want.symbols()[i] {
					t.Fatalf("symbol %d: %+v by scanning, %+v located by VMCOREINFO", i, got.symbols()[i], want.symbols()[i])
				}
			}
		})
	}
}

// BenchmarkLoadKallsyms times opening a dump and decoding its kallsyms
// (the tables are about 2 MiB of the kernel image's rodata).
func BenchmarkLoadKallsyms(b *testing.B) {
	m := corpus.Require(b)
	for _, variant := range []string{"vmcore-elf", "lzo-d31"} {
		ds := m.Select(func(d corpus.Dump) bool { return d.Variant == variant })
		if len(ds) == 0 {
			b.Fatalf("the corpus has no %s dump", variant)
		}
		b.Run(variant, func(b *testing.B) {
			defer cpuTimer(b)()
			for b.Loop() {
				// Opened each time: the dump's reader caches pages.
				f, err := dump.Open(m.Paths(ds[0])...)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := LoadKallsyms(KernelImageReader(f.Memory, f.VMCoreInfo), f.VMCoreInfo); err != nil {
					b.Fatal(err)
				}
				f.Close()
			}
		})
	}
}

// TestKernelImageReaderCorpus reads linux_banner (found by kallsyms)
// through the kernel-image map on every dump: with VMCOREINFO's
// phys_base, and — for QEMU dumps, which carry the CPUs' state — with
// phys_base found by FileKernelImageReader when VMCOREINFO lacks it.
func TestKernelImageReaderCorpus(t *testing.T) {
	m := corpus.Require(t)
	for _, d := range m.Dumps {
		t.Run(d.ID, func(t *testing.T) {
			kall, f := loadCorpusKallsyms(t, m, d)
			banner, ok := kall.Lookup("linux_banner")
			if !ok {
				t.Fatal("no linux_banner in kallsyms")
			}
			want := "Linux version " + f.VMCoreInfo.OSRelease() + " "
			read := func(how string, r VirtReader) {
				t.Helper()
				b := make([]byte, len(want))
				if n, err := r.ReadVirt(b, banner.Addr); err != nil || string(b[:n]) != want {
					t.Errorf("%s: linux_banner at %#x reads %q, %v; want %q", how, banner.Addr, b[:n], err, want)
				}
			}
			read("VMCOREINFO phys_base", KernelImageReader(f.Memory, f.VMCoreInfo))
			read("FileKernelImageReader", FileKernelImageReader(f))
			if len(f.QEMUCPUs) == 0 {
				return
			}
			var lines []string
			for _, l := range strings.Split(f.VMCoreInfo.Raw, "\n") {
				if !strings.HasPrefix(l, "NUMBER(phys_base)=") {
					lines = append(lines, l)
				}
			}
			g := *f
			g.VMCoreInfo = mustVMCoreInfo(t, strings.Join(lines, "\n"))
			read("phys_base from the CPU state", FileKernelImageReader(&g))
			t.Logf("read through phys_base from %d QEMU CPU states", len(f.QEMUCPUs))
		})
	}
}

// TestKallsymsLookupIndex checks, on one dump of each crash, that Lookup
// through the compressed names' index gives, for every name in the
// table, the symbol the decoded table's own name index gives (the one
// NewTable keeps: global before local, then the lowest address), and
// that names not in the table are not found.
func TestKallsymsLookupIndex(t *testing.T) {
	m := corpus.Require(t)
	seen := map[string]bool{}
	for _, d := range m.Dumps {
		if seen[d.Crash] || d.Scenario == "live" {
			continue
		}
		seen[d.Crash] = true
		t.Run(d.ID, func(t *testing.T) {
			lazy, _ := loadCorpusKallsyms(t, m, d)
			if lazy.lazy == nil {
				t.Fatal("LoadKallsyms made a decoded table, not a compressed one")
			}
			eager := NewTable("decoded", lazy.lazy.decodeAll())
			names, dups := 0, 0
			byName := map[string]int{}
			for s := range eager.All {
				byName[s.Name]++
			}
			for name, n := range byName {
				want, _ := eager.Lookup(name)
				got, ok := lazy.Lookup(name)
				if !ok || got != want {
					t.Errorf("Lookup(%q) = %+v, %v; the decoded table gives %+v", name, got, ok, want)
				}
				names++
				if n > 1 {
					dups++
				}
				for _, other := range []string{name + "x", "x" + name, name[:len(name)-1]} {
					if _, known := byName[other]; known {
						continue
					}
					if got, ok := lazy.Lookup(other); ok {
						t.Errorf("Lookup(%q) = %+v; not in the table", other, got)
					}
				}
			}
			if names < 50000 || dups < 100 {
				t.Errorf("only %d names (%d shared by several symbols) compared", names, dups)
			}
			t.Logf("%d names compared, %d of them shared by several symbols", names, dups)
		})
	}
}
