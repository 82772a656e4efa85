package debuginfo

import (
	"testing"

	"salvage/lab/corpus"
)

// TestSystemMapAgainstKallsyms checks the kernel's System.map, relocated
// by the dump's KASLR offset, against kallsyms decoded from one dump of
// each crash, as TestELFSymbolsAgainstKallsyms does for the vmlinux.
func TestSystemMapAgainstKallsyms(t *testing.T) {
	m := corpus.Require(t)
	for _, d := range onePerCrash(m) {
		t.Run(d.Crash, func(t *testing.T) {
			k := m.Kernel(d.Release)
			if k == nil {
				t.Fatalf("the manifest has no kernel %s", d.Release)
			}
			kall, f := loadCorpusKallsyms(t, m, d)
			kaslr, err := KASLROffset(f.VMCoreInfo, nil)
			if err != nil {
				t.Fatal(err)
			}
			sm, err := LoadSystemMap(corpusSystemMap(t, m, k), kaslr.Offset)
			if err != nil {
				t.Fatal(err)
			}
			c := compareWithKallsyms(kall, sm)
			t.Logf("KASLR offset %#x (%s); %d System.map symbols; %s", kaslr.Offset, kaslr.Source, sm.Len(), c)
			checkComparison(t, kall, c)
			checkCrashBT(t, m, d, sm)
		})
	}
}

// TestSystemMapPlaceholder: Debian's linux-image packages ship a one-line
// System.map that says where the real one is; reading it says so too.
func TestSystemMapPlaceholder(t *testing.T) {
	m := corpus.Require(t)
	for _, k := range m.Kernels {
		if k.Role != "" {
			continue // fetched only as the wrong vmlinux of mismatch tests
		}
		_, err := LoadSystemMap(m.Path(k.SystemMap), 0)
		t.Logf("%s: %v", k.SystemMap, err)
	}
}
