package debuginfo

import (
	"testing"

	"salvage/lab/corpus"
)

// TestELFSymbolsAgainstKallsyms loads the debug vmlinux's .symtab,
// relocated by the dump's KASLR offset, and checks that every symbol
// kallsyms (decoded from the dump) has is in it at the same address,
// for one dump of each crash. It logs the count compared and the classes
// of symbols only one side has.
func TestELFSymbolsAgainstKallsyms(t *testing.T) {
	m := corpus.Require(t)
	for _, d := range onePerCrash(m) {
		t.Run(d.Crash, func(t *testing.T) {
			k := m.Kernel(d.Release)
			if k == nil || k.DebugVmlinux == "" {
				t.Fatalf("the manifest has no debug vmlinux for %s", d.Release)
			}
			kall, f := loadCorpusKallsyms(t, m, d)
			link, err := LoadELFSymbols(m.Path(k.DebugVmlinux), 0)
			if err != nil {
				t.Fatal(err)
			}
			kaslr, err := KASLROffset(f.VMCoreInfo, link)
			if err != nil {
				t.Fatal(err)
			}
			elfSyms, err := LoadELFSymbols(m.Path(k.DebugVmlinux), kaslr.Offset)
			if err != nil {
				t.Fatal(err)
			}
			c := compareWithKallsyms(kall, elfSyms)
			t.Logf("KASLR offset %#x (%s); %d ELF symbols; %s", kaslr.Offset, kaslr.Source, elfSyms.Len(), c)
			checkComparison(t, kall, c)
			checkCrashBT(t, m, d, elfSyms)
		})
	}
}

// checkComparison fails on what must not differ between kallsyms and a
// vmlinux's own symbols: a symbol at another address, a kallsyms symbol
// the vmlinux lacks, or a type letter other than kallsyms' 'A' for
// x86_64's per-CPU symbols (nm says 'D'/'d': they are in .data..percpu).
func checkComparison(t *testing.T, kall *Table, c symbolComparison) {
	t.Helper()
	if c.Compared < kall.Len()*99/100 {
		t.Errorf("only %d of %d kallsyms symbols compared", c.Compared, kall.Len())
	}
	for i, s := range c.Moved {
		if i == 10 {
			t.Errorf("… %d more", len(c.Moved)-10)
			break
		}
		t.Errorf("%s: kallsyms has it at another address than the vmlinux", s)
	}
	for class, n := range c.OnlyKallsyms {
		t.Errorf("%d kallsyms symbols of class %s missing", n, class)
	}
	for diff, n := range c.TypeDiffs {
		if diff != "A/D" && diff != "A/d" {
			t.Errorf("%d symbols typed %s (kallsyms/other)", n, diff)
		}
	}
}

// BenchmarkLoadELFSymbols times reading the debug vmlinux's ~117,000
// symbols (the target is under 100 ms).
func BenchmarkLoadELFSymbols(b *testing.B) {
	m := corpus.Require(b)
	if len(m.Kernels) == 0 {
		b.Fatal("the corpus has no kernels")
	}
	path := m.Path(m.Kernels[0].DebugVmlinux)
	defer cpuTimer(b)()
	for b.Loop() {
		if _, err := LoadELFSymbols(path, 0x1000000); err != nil {
			b.Fatal(err)
		}
	}
}

// TestELFSymbolsAgainstSystemMap: System.map is nm's listing of the same
// vmlinux (filtered by scripts/mksysmap), so every one of its symbols is
// in the .symtab with the same address and the same nm type letter.
func TestELFSymbolsAgainstSystemMap(t *testing.T) {
	m := corpus.Require(t)
	for _, k := range m.Kernels {
		if k.Role != "" {
			continue // fetched only as the wrong vmlinux of mismatch tests
		}
		t.Run(k.Release, func(t *testing.T) {
			sm, err := LoadSystemMap(corpusSystemMap(t, m, &k), 0)
			if err != nil {
				t.Fatal(err)
			}
			elfSyms, err := LoadELFSymbols(m.Path(k.DebugVmlinux), 0)
			if err != nil {
				t.Fatal(err)
			}
			type key struct {
				name string
				addr uint64
			}
			types := map[key]byte{}
			for s := range elfSyms.All {
				types[key{s.Name, s.Addr}] = s.Type
			}
			bad := 0
			for s := range sm.All {
				typ, ok := types[key{s.Name, s.Addr}]
				if !ok || typ != s.Type {
					if bad < 10 {
						t.Errorf("%s %#x %c: the vmlinux has %c (found %v)", s.Name, s.Addr, s.Type, typ, ok)
					}
					bad++
				}
			}
			t.Logf("%d System.map symbols, %d differ; the vmlinux has %d", sm.Len(), bad, elfSyms.Len())
		})
	}
}
