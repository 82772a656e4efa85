package dump

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// PlanELFLoads cuts segments where makedumpfile -E does: only at runs of
// 256 or more excluded frames; a partial first page is kept, a partial
// last page only when dumpable.
func TestPlanELFLoads(t *testing.T) {
	const ps = 4096
	set := func(ranges ...[2]uint64) *PFNSet {
		s := NewPFNSet(4096)
		for _, r := range ranges {
			s.AddRange(r[0], r[1])
		}
		return s
	}
	tests := []struct {
		name string
		seg  ELFSegment
		dump *PFNSet
		want []ELFLoad
	}{
		{"all dumpable", ELFSegment{0, 0x1000, 10 * ps}, set([2]uint64{0, 10}),
			[]ELFLoad{{Paddr: 0, Vaddr: 0x1000, Memsz: 10 * ps, Filesz: 10 * ps}}},
		{"short hole written", ELFSegment{0, 0, 300 * ps}, set([2]uint64{0, 10}, [2]uint64{265, 300}),
			[]ELFLoad{{Paddr: 0, Memsz: 300 * ps, Filesz: 300 * ps}}},
		{"long hole cuts", ELFSegment{0, 0, 600 * ps}, set([2]uint64{0, 10}, [2]uint64{266, 600}),
			[]ELFLoad{{Paddr: 0, Memsz: 266 * ps, Filesz: 10 * ps}, {Paddr: 266 * ps, Vaddr: 266 * ps, Memsz: 334 * ps, Filesz: 334 * ps}}},
		{"trailing hole in memsz", ELFSegment{0, 0, 20 * ps}, set([2]uint64{0, 5}),
			[]ELFLoad{{Paddr: 0, Memsz: 20 * ps, Filesz: 5 * ps}}},
		{"partial tail not dumpable", ELFSegment{ps, 0, 2*ps + 0xc00}, set([2]uint64{1, 3}),
			[]ELFLoad{{Paddr: ps, Memsz: 2*ps + 0xc00, Filesz: 2 * ps}}},
		{"partial head kept", ELFSegment{0x800, 0, ps + 0x800}, set([2]uint64{1, 2}),
			[]ELFLoad{{Paddr: 0x800, Memsz: ps + 0x800, Filesz: ps + 0x800}}},
		{"nothing dumpable", ELFSegment{0, 0, 4 * ps}, set(),
			[]ELFLoad{{Paddr: 0, Memsz: 4 * ps}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := PlanELFLoads([]ELFSegment{tt.seg}, tt.dump, ps)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// An ELF dump written by ELFWriter reads back through the ELF reader.
func TestELFWriterRoundTrip(t *testing.T) {
	const ps = 4096
	// Frames 20–29 are a short hole (written anyway), 60–339 a long one
	// (left out, the PT_LOAD is cut).
	const n = 400
	pages := synthPages(n, ps)
	dumpable := NewPFNSet(n)
	dumpable.AddRange(0, 20)
	dumpable.AddRange(30, 60)
	dumpable.AddRange(340, n)
	readable := dumpable.Clone()
	readable.AddRange(20, 30)
	loads := PlanELFLoads([]ELFSegment{{Paddr: 0, Vaddr: 0xffff888000000000, Memsz: n * ps}}, dumpable, ps)
	if len(loads) != 2 {
		t.Fatalf("%d PT_LOADs, want 2: %+v", len(loads), loads)
	}
	p := filepath.Join(t.TempDir(), "synth.elf")
	out, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	notes := []Note{{Name: "VMCOREINFO", Desc: []byte("OSRELEASE=6.1.0-test\nPAGESIZE=4096\n")}}
	ew, err := NewELFWriter(out, ArchX86_64, notes, 0, loads, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range loads {
		for a := l.Paddr; a < l.Paddr+l.Filesz; a += ps {
			if _, err := ew.Write(pages[a/ps]); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := ew.Write(make([]byte, 1)); err == nil {
		t.Error("a write past the PT_LOADs' data was accepted")
	}
	if err := ew.Close(); err != nil {
		t.Fatal(err)
	}
	out.Close()
	f, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Format != FormatELF || f.Incomplete || f.VMCoreInfo.OSRelease() != "6.1.0-test" {
		t.Errorf("format %s, incomplete %v, VMCOREINFO %v", f.Format, f.Incomplete, f.VMCoreInfo)
	}
	buf := make([]byte, ps)
	for pfn := uint64(0); pfn < n; pfn++ {
		_, err := f.Memory.ReadPhys(buf, pfn*ps)
		if readable.Has(pfn) != (err == nil) {
			t.Errorf("frame %d: readable %v, read error %v", pfn, readable.Has(pfn), err)
		}
		if err == nil && !bytes.Equal(buf, pages[pfn]) {
			t.Errorf("frame %d reads differently", pfn)
		}
	}
}
