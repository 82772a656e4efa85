package collect

import (
	"strings"
	"testing"

	"salvage/dump"
)

// flatMemory is a machine of n pages whose bytes repeat a fuzzed pattern;
// kernel virtual addresses read the same bytes (modulo its size), so
// that section tables and struct pages are whatever the fuzzer makes.
type flatMemory struct {
	b []byte
}

func (m flatMemory) ReadPhys(p []byte, addr uint64) (int, error) {
	for i := range p {
		p[i] = m.b[(addr+uint64(i))%uint64(len(m.b))]
	}
	return len(p), nil
}
func (m flatMemory) State(pfn uint64) dump.PageState { return dump.PagePresent }
func (m flatMemory) PageSize() int                   { return 4096 }
func (m flatMemory) Ranges() []dump.Range {
	return []dump.Range{{Start: 0x1000, End: uint64(len(m.b))}}
}
func (m flatMemory) ReadVirt(p []byte, va uint64) (int, error) {
	return m.ReadPhys(p, va)
}

// Select never panics, whatever VMCOREINFO and memory hold: it returns an
// error, or a selection that keeps only RAM frames.
func FuzzSelect(f *testing.F) {
	f.Add([]byte(vmcoreinfo61), []byte{0x41, 0, 0, 0, 0, 0x80, 0xff, 0xff}, uint8(31))
	f.Add([]byte(vmcoreinfo61+"OFFSET(page.mapping)=4000\n"), []byte{1, 2, 3}, uint8(30))
	f.Add([]byte("SYMBOL(mem_section)=0\nSIZE(page)=64\nOFFSET(page.flags)=0\nOFFSET(page.mapping)=8\n"), []byte{0xff}, uint8(31))
	// A free page whose order is absurd, with no LENGTH(zone.free_area).
	f.Add([]byte(strings.Replace(vmcoreinfo61, "LENGTH(zone.free_area)=11\n", "", 1)),
		[]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 70, 0, 0, 0, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, uint8(16))
	f.Fuzz(func(t *testing.T, vi []byte, pattern []byte, level uint8) {
		if len(pattern) == 0 {
			pattern = []byte{0}
		}
		const size = 64 * 4096
		mem := make([]byte, size)
		for i := range mem {
			mem[i] = pattern[i%len(pattern)]
		}
		info, _ := dump.ParseVMCoreInfo(vi)
		m := flatMemory{mem}
		sel, err := Select(m, info, m, int(level%32))
		if err != nil {
			return
		}
		for pfn := sel.Kept.Next(0); pfn < sel.MaxPFN; pfn = sel.Kept.Next(pfn + 1) {
			if !sel.RAM.Has(pfn) {
				t.Fatalf("frame %#x kept but not RAM", pfn)
			}
		}
	})
}
