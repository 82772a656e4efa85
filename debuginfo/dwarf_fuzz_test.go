package debuginfo

import (
	"debug/elf"
	"testing"
)

// FuzzDWARFIndex: the index scanner trusts lengths for speed; on any
// bytes it returns an index or an error, and never panics or hangs.
func FuzzDWARFIndex(f *testing.F) {
	// The lab vmlinux's first unit (head_64.S: five subprograms), its
	// abbreviations and the strings they name, cut down to what it uses.
	f.Add(seedUnit, seedAbbrev, seedStr)
	f.Fuzz(func(t *testing.T, info, abbrev, str []byte) {
		ix, err := buildDwarfIndex(&dwarfSections{info: info, abbrev: abbrev, str: str})
		if (ix == nil) == (err == nil) {
			t.Fatalf("index %v and error %v", ix, err)
		}
	})
}

func TestDWARFIndexSeed(t *testing.T) {
	ix, err := buildDwarfIndex(&dwarfSections{info: seedUnit, abbrev: seedAbbrev, str: seedStr})
	if err != nil {
		t.Fatal(err)
	}
	for _, fn := range []string{"verify_cpu", "sev_verify_cbit", "xen_hypercall_intel"} {
		if _, ok := ix.names[nsFunc][fn]; !ok {
			t.Errorf("function %s not indexed: %v", fn, ix.names[nsFunc])
		}
	}
}

// TestDWARFIndexSeedIsLab checks the seed against the lab's vmlinux.
func TestDWARFIndexSeedIsLab(t *testing.T) {
	f, err := elf.Open(labVmlinux(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info := make([]byte, len(seedUnit))
	if _, err := f.Section(".debug_info").ReadAt(info, 0); err != nil {
		t.Fatal(err)
	}
	if string(info) != string(seedUnit) {
		t.Errorf("the seed is not the first unit of the lab's vmlinux")
	}
}
