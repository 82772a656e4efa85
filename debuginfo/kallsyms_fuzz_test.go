package debuginfo

import (
	"bytes"
	"slices"
	"testing"

	"salvage/dump"
)

// fuzzKallsymsBase is where a fuzz input's memory image lies.
const fuzzKallsymsBase = 0xffffffff82000000

// FuzzKallsyms decodes kallsyms tables from arbitrary memory. An input is
// VMCOREINFO text, a NUL, then the memory at 0xffffffff82000000. The
// contract: no panic, an error or a table (never both), and a table's
// symbols are in address order, named, typed by a letter, and found by
// their names.
func FuzzKallsyms(f *testing.F) {
	for _, mode := range []addrMode{modeRelative, modeAbsolutePercpu, modeAbsolute} {
		syms := testSymbols()
		if mode != modeRelative {
			syms = append([]Symbol{{Name: "fixed_percpu_data", Type: 'A'}, {Name: "cpu_tss_rw", Addr: 0x6000, Type: 'A'}}, syms...)
		}
		img := buildKallsyms(f, syms, mode)
		f.Add(append(append([]byte(img.vmcoreinfo), 0), img.mem[fuzzKallsymsBase]...))
		// As a kernel before 6.0 would have it: found by scanning.
		f.Add(append([]byte("KERNELOFFSET=1000000\n\x00"), img.mem[fuzzKallsymsBase]...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		text, image, ok := bytes.Cut(data, []byte{0})
		if !ok {
			return
		}
		vi, _ := dump.ParseVMCoreInfo(text)
		tab, err := LoadKallsyms(sparseMemory{fuzzKallsymsBase: image}, vi)
		if (tab == nil) == (err == nil) {
			t.Fatalf("table %v and error %v", tab, err)
		}
		if err != nil {
			return
		}
		var addrs []uint64
		for s := range tab.All {
			addrs = append(addrs, s.Addr)
			if s.Name == "" || !(s.Type >= 'A' && s.Type <= 'Z' || s.Type >= 'a' && s.Type <= 'z') {
				t.Fatalf("symbol %+v", s)
			}
			if got, ok := tab.Lookup(s.Name); !ok || got.Name != s.Name {
				t.Fatalf("Lookup(%q) = %+v %v", s.Name, got, ok)
			}
		}
		if !slices.IsSorted(addrs) {
			t.Fatalf("not in address order")
		}
	})
}
