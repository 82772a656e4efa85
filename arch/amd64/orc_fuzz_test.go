package amd64

import (
	"testing"

	"salvage/arch"
)

// FuzzParseORC feeds arbitrary ip and entry arrays to the ORC parser and
// unwinds over the result: the contract is an error or a table whose
// lookups and walks never panic.
func FuzzParseORC(f *testing.F) {
	const base = 0xffffffff82000000
	ip, orc := orcBytes(base, []uint64{0xffffffff81000000, 0xffffffff81000010},
		[][]byte{entryBytes(8, 0, orcRegSP, 0, 0, 0, 2), entryBytes(0, 0, 0, 0, 1, 1, 2)})
	f.Add(ip, orc, uint64(0xffffffff81000004), uint64(0xffffc90000010100), false)
	f.Add(ip, orc, uint64(0xffffffff81000004), uint64(0xffffc90000010100), true)
	f.Add([]byte{}, []byte{}, uint64(0), uint64(0), false)
	f.Fuzz(func(t *testing.T, ip, orc []byte, pc, sp uint64, newLayout bool) {
		l := DefaultORCLayout
		if newLayout {
			l = layout64
		}
		tab, err := ParseORC("fuzz", ip, base, orc, l)
		if err != nil {
			if tab != nil {
				t.Fatalf("error %v with a table", err)
			}
			return
		}
		if len(tab.IPs) != len(ip)/4 || len(tab.Entries) != len(tab.IPs) {
			t.Fatalf("%d ips, %d entries from %d bytes", len(tab.IPs), len(tab.Entries), len(ip))
		}
		for i := 1; i < len(tab.IPs); i++ {
			if tab.IPs[i] < tab.IPs[i-1] {
				t.Fatalf("table not sorted at %d", i)
			}
		}
		tab.Lookup(pc)
		stack := arch.Stack{Base: sp &^ 0xfff, Top: sp&^0xfff + 0x4000}
		m := &fakeStackMemory{words: map[uint64]uint64{}, stacks: []arch.Stack{stack}}
		for i := 0; i+8 <= len(orc) && i < 512; i += 8 {
			m.words[sp+uint64(i)] = uint64(orc[i]) | uint64(orc[i+1])<<8 | pc&^0xffff
		}
		u := &Unwinder{Tables: []*ORCTable{tab}, MaxFrames: 64}
		frames, _ := u.Unwind(arch.Start{PC: pc, SP: sp}, m)
		if len(frames) > 64 {
			t.Fatalf("%d frames beyond the limit", len(frames))
		}
	})
}
