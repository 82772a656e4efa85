package amd64

import (
	"encoding/binary"
	"fmt"
	"testing"

	"salvage/dump"
)

// fuzzMemory serves every physical page from the fuzz input, so any entry
// points somewhere readable and walks go as deep as the tables say; page
// frames at or above 1<<20 are excluded.
type fuzzMemory []byte

func (m fuzzMemory) ReadPhys(p []byte, addr uint64) (int, error) {
	for i := range p {
		a := addr + uint64(i)
		if a>>12 >= 1<<20 {
			return i, &dump.PageError{Addr: a, State: dump.PageExcluded}
		}
		if len(m) > 0 {
			p[i] = m[(a*7+a>>12)%uint64(len(m))]
		}
	}
	return len(p), nil
}
func (m fuzzMemory) State(uint64) dump.PageState { return dump.PagePresent }
func (m fuzzMemory) PageSize() int               { return 4096 }
func (m fuzzMemory) Ranges() []dump.Range        { return nil }

// FuzzTranslate: on any page tables, New and the walks return results or
// errors — no panics — and a translation's steps and page size agree.
func FuzzTranslate(f *testing.F) {
	var seed [64]byte
	binary.LittleEndian.PutUint64(seed[:], 0x2063)
	binary.LittleEndian.PutUint64(seed[8:], 0x800000000000e3)
	f.Add(seed[:], uint64(0xffff888000001234), false)
	f.Add([]byte{0xe3, 1, 0, 0, 0, 0, 0, 0}, uint64(0xff11000000000000), true)
	f.Fuzz(func(t *testing.T, data []byte, va uint64, l5 bool) {
		lv := 0
		if l5 {
			lv = 1
		}
		vi, err := dump.ParseVMCoreInfo([]byte(fmt.Sprintf("SYMBOL(init_top_pgt)=ffffffff82a10000\nNUMBER(phys_base)=0\nNUMBER(pgtable_l5_enabled)=%d\n", lv)))
		if err != nil {
			t.Fatal(err)
		}
		tr, err := New(fuzzMemory(data), vi, nil)
		if err != nil {
			return
		}
		got, err := tr.VirtToPhys(va)
		if err == nil {
			if got.PageSize != 4096 && got.PageSize != 2<<20 && got.PageSize != 1<<30 {
				t.Fatalf("page size %#x", got.PageSize)
			}
			if len(got.Steps) == 0 || len(got.Steps) > tr.Layout().PageTableLevels {
				t.Fatalf("%d steps", len(got.Steps))
			}
		}
		buf := make([]byte, 100)
		if n, _ := tr.ReadVirt(buf, va); n < 0 || n > len(buf) {
			t.Fatalf("ReadVirt n=%d", n)
		}
	})
}
