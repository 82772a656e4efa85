package amd64

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"salvage/dump"
)

// fakeMemory is a sparse physical memory of 4K pages for page tables
// built by hand; pages not written read as excluded.
type fakeMemory map[uint64]*[4096]byte

func (m fakeMemory) ReadPhys(p []byte, addr uint64) (int, error) {
	n := 0
	for n < len(p) {
		a := addr + uint64(n)
		pg, ok := m[a>>12]
		if !ok {
			return n, &dump.PageError{Addr: a, State: dump.PageExcluded}
		}
		n += copy(p[n:], pg[a&0xfff:])
	}
	return n, nil
}
func (m fakeMemory) State(pfn uint64) dump.PageState {
	if _, ok := m[pfn]; ok {
		return dump.PagePresent
	}
	return dump.PageExcluded
}
func (m fakeMemory) PageSize() int        { return 4096 }
func (m fakeMemory) Ranges() []dump.Range { return nil }

func (m fakeMemory) set(phys, v uint64) {
	pg, ok := m[phys>>12]
	if !ok {
		pg = new([4096]byte)
		m[phys>>12] = pg
	}
	binary.LittleEndian.PutUint64(pg[phys&0xfff:], v)
}

func index(va uint64, level int) uint64 { return va >> (12 + 9*(level-1)) & 511 }

// TestFiveLevelLargePages builds 5-level tables mapping a 1G page, a 2M
// page and a 4K page, and checks the walks and the error of a hole.
func TestFiveLevelLargePages(t *testing.T) {
	mem := fakeMemory{}
	const physBase = 0x1000000
	const rootVirt = 0xffffffff82a10000
	root := uint64(rootVirt - startKernelMap + physBase)
	vi, err := dump.ParseVMCoreInfo([]byte(fmt.Sprintf(
		"SYMBOL(init_top_pgt)=%x\nNUMBER(phys_base)=%d\nNUMBER(pgtable_l5_enabled)=1\nKERNELOFFSET=0\n", uint64(rootVirt), physBase)))
	if err != nil {
		t.Fatal(err)
	}
	// Tables at fixed frames: P4D 0x100000, PUD 0x101000, PMD 0x102000, PTE 0x103000.
	const va1G = 0xff11000040000000 // direct map + 1G
	const va2M = 0xff11000000200000
	const va4K = 0xff11000000001000
	mem.set(root+index(va1G, 5)*8, 0x100000|0x63)
	mem.set(0x100000+index(va1G, 4)*8, 0x101000|0x63)
	mem.set(0x101000+index(va1G, 3)*8, 0x80000000|0xe3) // 1G page at 2G
	mem.set(0x101000+index(va2M, 3)*8, 0x102000|0x63)
	mem.set(0x102000+index(va2M, 2)*8, 0x600000|0xe3) // 2M page
	mem.set(0x102000+index(va4K, 2)*8, 0x103000|0x63)
	mem.set(0x103000+index(va4K, 1)*8, 0x8000000000777063)
	mem.set(0x102000+index(0xff11000000400000, 2)*8, 0x900000|0x63) // a PTE table not in the dump
	tr, err := New(mem, vi, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Layout().PageTableLevels != 5 {
		t.Fatalf("levels %d", tr.Layout().PageTableLevels)
	}
	for _, c := range []struct {
		va, phys, size uint64
		levels         string
	}{
		{va1G + 0x12345, 0x80012345, 1 << 30, "PGD P4D PUD"},
		{va2M + 0x1234, 0x601234, 2 << 20, "PGD P4D PUD PMD"},
		{va4K + 0x10, 0x777010, 4096, "PGD P4D PUD PMD PTE"},
	} {
		got, err := tr.VirtToPhys(c.va)
		if err != nil {
			t.Fatalf("%#x: %v", c.va, err)
		}
		var lv string
		for i, s := range got.Steps {
			if i > 0 {
				lv += " "
			}
			lv += s.Level
		}
		if got.Phys != c.phys || got.PageSize != c.size || lv != c.levels {
			t.Errorf("%#x: got %#x size %#x via %s; want %#x size %#x via %s", c.va, got.Phys, got.PageSize, lv, c.phys, c.size, c.levels)
		}
	}
	// A hole: PTE not present.
	_, err = tr.VirtToPhys(va4K + 0x1000)
	var e *Error
	if !errors.As(err, &e) || !e.NotPresent || e.Level != "PTE" {
		t.Errorf("hole: %v", err)
	}
	// A table page the dump lacks: the error names the level and wraps
	// the page state.
	_, err = tr.VirtToPhys(0xff11000000400000)
	var pe *dump.PageError
	if !errors.As(err, &e) || e.Level != "PTE" || !errors.As(err, &pe) || pe.State != dump.PageExcluded {
		t.Errorf("missing table: %v", err)
	}
	t.Log(err)
	// Non-canonical with 5 levels.
	if _, err := tr.VirtToPhys(0xff00000000000000 ^ 1<<56); err == nil {
		t.Error("non-canonical address translated")
	}
	// page_offset_base found from the tables: the 1G page maps phys
	// 2G, the 4K page not 0; so there is no direct map of 0.
	if got := tr.Layout().PageOffset; got != pageOffsetL5 {
		t.Errorf("PageOffset %#x", got)
	}
}

func BenchmarkVirtToPhys(b *testing.B) {
	m := requireBench(b)
	_, tr, sym := openTranslator(b, m, m.Dumps[0])
	va, _ := sym("init_task")
	b.Run("text-walk", func(b *testing.B) {
		for b.Loop() {
			if _, err := tr.VirtToPhys(va); err != nil {
				b.Fatal(err)
			}
		}
	})
	direct := tr.Layout().PageOffset + 0x1000000
	b.Run("direct-walk", func(b *testing.B) {
		for b.Loop() {
			if _, err := tr.VirtToPhys(direct); err != nil {
				b.Fatal(err)
			}
		}
	})
	buf := make([]byte, 8)
	b.Run("ReadVirt-direct-8", func(b *testing.B) {
		for b.Loop() {
			if _, err := tr.ReadVirt(buf, direct); err != nil {
				b.Fatal(err)
			}
		}
	})
	mod, _ := sym("vmap_area_list")
	b.Run("ReadVirt-text-8", func(b *testing.B) {
		for b.Loop() {
			if _, err := tr.ReadVirt(buf, mod); err != nil {
				b.Fatal(err)
			}
		}
	})
}
