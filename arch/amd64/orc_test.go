package amd64

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"salvage/arch"
)

// layout64 is struct orc_entry of 6.4+: sp_reg:4 bp_reg:4 type:3 signal:1.
var layout64 = ORCLayout{
	Size: 6, SPOffset: 0, BPOffset: 2,
	SPReg: ORCBitfield{4, 0, 4}, BPReg: ORCBitfield{4, 4, 4},
	Type: ORCBitfield{4, 8, 3}, Signal: ORCBitfield{4, 11, 1},
	UndefinedEndOfStack: true,
}

func entryBytes(sp, bp int16, spReg, bpReg, typ, last uint16, typeBits uint) []byte {
	b := make([]byte, 6)
	binary.LittleEndian.PutUint16(b[0:], uint16(sp))
	binary.LittleEndian.PutUint16(b[2:], uint16(bp))
	binary.LittleEndian.PutUint16(b[4:], spReg|bpReg<<4|typ<<8|last<<(8+typeBits))
	return b
}

func TestORCDecodeLayouts(t *testing.T) {
	for _, c := range []struct {
		name string
		l    ORCLayout
		b    []byte
		want ORCEntry
	}{
		{"6.1 call", DefaultORCLayout, entryBytes(88, -24, orcRegSP, orcRegPrevSP, 0, 0, 2),
			ORCEntry{SPOffset: 88, BPOffset: -24, SPReg: orcRegSP, BPReg: orcRegPrevSP, Type: ORCCall}},
		{"6.1 regs", DefaultORCLayout, entryBytes(0, 0, orcRegSP, 0, 1, 0, 2),
			ORCEntry{SPReg: orcRegSP, Type: ORCRegs}},
		{"6.1 partial", DefaultORCLayout, entryBytes(8, 0, orcRegSP, 0, 2, 0, 2),
			ORCEntry{SPOffset: 8, SPReg: orcRegSP, Type: ORCRegsPartial}},
		{"6.1 end", DefaultORCLayout, entryBytes(0, 0, orcRegUndefined, 0, 1, 1, 2),
			ORCEntry{Type: ORCEndOfStack, End: true}},
		{"6.1 undefined", DefaultORCLayout, entryBytes(0, 0, orcRegUndefined, 0, 0, 0, 2),
			ORCEntry{Type: ORCUndefined}},
		{"6.4 undefined", layout64, entryBytes(0, 0, 0, 0, 0, 0, 3), ORCEntry{Type: ORCUndefined}},
		{"6.4 end of stack", layout64, entryBytes(0, 0, 0, 0, 1, 0, 3), ORCEntry{Type: ORCEndOfStack}},
		{"6.4 call", layout64, entryBytes(16, 0, orcRegSP, 0, 2, 0, 3), ORCEntry{SPOffset: 16, SPReg: orcRegSP, Type: ORCCall}},
		{"6.4 regs signal", layout64, entryBytes(0, 0, orcRegSP, 0, 3, 1, 3), ORCEntry{SPReg: orcRegSP, Type: ORCRegs, Signal: true}},
		{"6.4 partial", layout64, entryBytes(8, 0, orcRegSP, 0, 4, 1, 3), ORCEntry{SPOffset: 8, SPReg: orcRegSP, Type: ORCRegsPartial, Signal: true}},
		{"6.4 type 5 is not defined", layout64, entryBytes(8, 0, orcRegSP, 0, 5, 0, 3), ORCEntry{SPOffset: 8, SPReg: orcRegSP, Type: ORCUndefined}},
	} {
		if got := c.l.Decode(c.b); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}

// orcBytes builds the two raw arrays of a table with entries at ips.
func orcBytes(base uint64, ips []uint64, entries [][]byte) (ip, orc []byte) {
	ip = make([]byte, 4*len(ips))
	for i, a := range ips {
		binary.LittleEndian.PutUint32(ip[4*i:], uint32(int32(int64(a)-int64(base+uint64(4*i)))))
		orc = append(orc, entries[i]...)
	}
	return ip, orc
}

func TestParseORC(t *testing.T) {
	const base = 0xffffffff82000000
	ips := []uint64{0xffffffff81000000, 0xffffffff81000010, 0xffffffff81000008}
	e := [][]byte{
		entryBytes(8, 0, orcRegSP, 0, 0, 0, 2),
		entryBytes(0, 0, 0, 0, 0, 0, 2),
		entryBytes(16, 0, orcRegSP, 0, 0, 0, 2),
	}
	ip, orc := orcBytes(base, ips, e)
	tab, err := ParseORC("test", ip, base, orc, DefaultORCLayout)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		pc   uint64
		ok   bool
		want ORCType
		sp   int16
	}{
		{0xffffffff80ffffff, false, 0, 0},
		{0xffffffff81000000, true, ORCCall, 8},
		{0xffffffff81000007, true, ORCCall, 8},
		{0xffffffff81000008, true, ORCCall, 16}, // the unsorted entry was sorted into place
		{0xffffffff81000010, true, ORCUndefined, 0},
	} {
		got, ok := tab.Lookup(c.pc)
		if ok != c.ok || ok && (got.Type != c.want || got.SPOffset != c.sp) {
			t.Errorf("Lookup(%#x) = %+v %v, want %v sp %d %v", c.pc, got, ok, c.want, c.sp, c.ok)
		}
	}
	if !tab.Covers(0xffffffff81000004) || tab.Covers(0xffffffff81000011) {
		t.Errorf("Covers is wrong at the table's ends")
	}
	for _, c := range []struct {
		name     string
		ip, orc  []byte
		l        ORCLayout
		contains string
	}{
		{"odd ip table", ip[:5], orc, DefaultORCLayout, "multiple of 4"},
		{"short entries", ip, orc[:10], DefaultORCLayout, "bytes of entries"},
		{"bad layout", ip, orc, ORCLayout{Size: 2}, "size 2"},
	} {
		if _, err := ParseORC("test", c.ip, base, c.orc, c.l); err == nil || !contains(err.Error(), c.contains) {
			t.Errorf("%s: error %v, want one saying %q", c.name, err, c.contains)
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// TestPrologueFrame reads the prologue of Debian 6.1's __crash_kexec,
// which objtool leaves without ORC (STACK_FRAME_NON_STANDARD): crash 8.0.6
// shows its frame as 0xb8 bytes (its return address at ffffccebc0f53ab8,
// the next at ffffccebc0f53b78, in the sysrq dump).
func TestPrologueFrame(t *testing.T) {
	crashKexec := []byte{
		0xe8, 0xeb, 0x70, 0xf0, 0xff, // call __fentry__
		0x53,                         // push %rbx
		0xba, 0x01, 0x00, 0x00, 0x00, // mov $0x1,%edx
		0x48, 0x81, 0xec, 0xb0, 0x00, 0x00, 0x00, // sub $0xb0,%rsp
		0x65, 0x48, 0x8b, 0x04, 0x25, // mov %gs:…
	}
	for _, c := range []struct {
		name     string
		code     []byte
		size, bp int
		ok       bool
	}{
		{"__crash_kexec", crashKexec, 0xb8, 0, true},
		{"patched ftrace nop", append([]byte{0x0f, 0x1f, 0x44, 0x00, 0x00}, crashKexec[5:]...), 0xb8, 0, true},
		// Debian 6.12's __crash_kexec in memory: the sealed endbr64
		// (nopw (%rax)) and the ftrace nop before the same frame.
		{"6.12 sealed endbr", append([]byte{0x66, 0x0f, 0x1f, 0x00, 0x0f, 0x1f, 0x44, 0x00, 0x00}, crashKexec[5:]...), 0xb8, 0, true},
		{"frame pointer", []byte{0xf3, 0x0f, 0x1e, 0xfa, 0x55, 0x48, 0x89, 0xe5, 0x41, 0x57, 0x48, 0x83, 0xec, 0x10}, 0x20, 1, true},
		{"pushes only", []byte{0x41, 0x54, 0x55, 0x53, 0xcc}, 24, 2, true},
		{"nothing known", []byte{0xcc, 0x53}, 0, 0, false},
	} {
		size, bp, ok := prologueFrame(c.code)
		if size != c.size || bp != c.bp || ok != c.ok {
			t.Errorf("%s: size %#x bp slot %d ok %v, want %#x %d %v", c.name, size, bp, ok, c.size, c.bp, c.ok)
		}
	}
}

// fakeStackMemory is a sparse word memory with one stack, for unwinder tests.
type fakeStackMemory struct {
	words  map[uint64]uint64
	stacks []arch.Stack
	funcs  map[uint64]uint64 // pc range start → function start, by exact lookup in FuncStart
}

func (m *fakeStackMemory) ReadWord(a uint64) (uint64, error) {
	if v, ok := m.words[a]; ok {
		return v, nil
	}
	return 0, fmt.Errorf("no memory at %#x", a)
}

func (m *fakeStackMemory) StackOf(a uint64) (arch.Stack, bool) {
	for _, s := range m.stacks {
		if s.Contains(a) {
			return s, true
		}
	}
	return arch.Stack{}, false
}

func (m *fakeStackMemory) FuncStart(pc uint64) (uint64, bool) { return 0, false }

// TestUnwindSynthetic walks an NMI-style chain: a call frame on an
// exception stack, a full register frame whose interrupted context is on
// the task stack, two call frames there and the end of the stack.
func TestUnwindSynthetic(t *testing.T) {
	const (
		fA   = 0xffffffff81001000 // call frame, CFA = sp+16
		fB   = 0xffffffff81002000 // entry code: pt_regs at sp
		fC   = 0xffffffff81003000 // call frame, CFA = sp+8
		fD   = 0xffffffff81004000 // end of stack
		fEnd = 0xffffffff81005000
	)
	tab := &ORCTable{Name: "vmlinux",
		IPs: []uint64{fA, fB, fC, fD, fEnd},
		Entries: []ORCEntry{
			{SPReg: orcRegSP, SPOffset: 16, Type: ORCCall},
			{SPReg: orcRegSP, SPOffset: 0, Type: ORCRegs},
			{SPReg: orcRegSP, SPOffset: 8, Type: ORCCall},
			{Type: ORCEndOfStack},
			{Type: ORCUndefined},
		}}
	nmi := arch.Stack{Base: 0xfffffe0000010000, Top: 0xfffffe0000012000, Label: "NMI exception stack"}
	task := arch.Stack{Base: 0xffffc90000010000, Top: 0xffffc90000014000}
	m := &fakeStackMemory{words: map[uint64]uint64{}, stacks: []arch.Stack{nmi, task}}
	sp := nmi.Base + 0x100
	m.words[sp+8] = fB + 0x10 // A's return address into B
	regs := sp + 16
	for i := 0; i < NumPTRegs; i++ {
		m.words[regs+uint64(8*i)] = 0
	}
	taskSP := task.Base + 0x200
	m.words[regs+8*RegIP] = fC + 0x20
	m.words[regs+8*RegSP] = taskSP
	m.words[regs+8*RegCS] = 0x10
	m.words[regs+8*RegBP] = 0x1234
	m.words[taskSP] = fD + 0x5 // C's return address into D

	u := &Unwinder{Tables: []*ORCTable{tab}}
	frames, err := u.Unwind(arch.Start{PC: fA + 4, SP: sp}, m)
	if err != nil {
		t.Fatalf("Unwind: %v (%+v)", err, frames)
	}
	want := []struct {
		pc, sp uint64
		stack  arch.Stack
		exc    bool
	}{
		{fA + 4, sp, nmi, false},
		{fB + 0x10, sp + 8, nmi, true},
		{fC + 0x20, taskSP, task, false},
		{fD + 0x5, taskSP, task, false},
	}
	if len(frames) != len(want) {
		t.Fatalf("%d frames, want %d: %+v", len(frames), len(want), frames)
	}
	for i, w := range want {
		f := frames[i]
		if f.PC != w.pc || f.SP != w.sp || f.Stack != w.stack || (f.Exception != nil) != w.exc {
			t.Errorf("frame %d: %+v, want %+v", i, f, w)
		}
	}
	if e := frames[1].Exception; e.Addr != regs || e.User || e.Regs[RegBP] != 0x1234 {
		t.Errorf("exception frame: %+v", e)
	}

	// The same walk with the return address missing stops with an error
	// that keeps the read failure, after the frames before it.
	delete(m.words, taskSP)
	frames, err = u.Unwind(arch.Start{PC: fA + 4, SP: sp}, m)
	var ue *arch.UnwindError
	if !errors.As(err, &ue) || len(frames) != 3 {
		t.Errorf("missing word: %d frames, error %v", len(frames), err)
	}

	// A user-mode start is one frame: the registers.
	ur := make([]uint64, NumPTRegs)
	ur[RegCS], ur[RegIP], ur[RegSP] = 0x33, 0x401000, 0x7ffc0000
	frames, err = u.Unwind(arch.Start{PC: 0x401000, SP: 0x7ffc0000, Regs: ur}, m)
	if err != nil || len(frames) != 1 || frames[0].Exception == nil || !frames[0].Exception.User {
		t.Errorf("user start: %+v %v", frames, err)
	}

	// A loop (a return address pointing back down the stack) ends with
	// an error, not forever.
	loop := &fakeStackMemory{words: map[uint64]uint64{task.Base + 0x100: fC + 1}, stacks: []arch.Stack{task}}
	tab2 := &ORCTable{IPs: []uint64{fC, fEnd}, Entries: []ORCEntry{{SPReg: orcRegSP, SPOffset: -8, Type: ORCCall}, {Type: ORCUndefined}}}
	_, err = (&Unwinder{Tables: []*ORCTable{tab2}}).Unwind(arch.Start{PC: fC + 1, SP: task.Base + 0x110}, loop)
	if err == nil {
		t.Errorf("a frame that does not move up the stack was accepted")
	}
}

// TestUnwindIRQStackSwitch walks off an IRQ stack the way 6.1's
// call_on_irqstack leaves it: the task's stack pointer saved in the top
// word of the IRQ stack, and the caller's CFA found through it
// (ORC_REG_SP_INDIRECT); then an iret-only frame (regs partial).
func TestUnwindIRQStackSwitch(t *testing.T) {
	const (
		fH   = 0xffffffff81001000 // handler on the IRQ stack: CFA = sp+8
		fX   = 0xffffffff81002000 // switched stacks: CFA = *(sp)+16
		fY   = 0xffffffff81003000 // entry code: iret frame at sp+0
		fZ   = 0xffffffff81004000 // interrupted function: CFA = sp+8
		fEnd = 0xffffffff81005000 // no unwinding beyond
	)
	tab := &ORCTable{IPs: []uint64{fH, fX, fY, fZ, fEnd}, Entries: []ORCEntry{
		{SPReg: orcRegSP, SPOffset: 8, Type: ORCCall},
		{SPReg: orcRegSPIndirect, SPOffset: 16, Type: ORCCall},
		{SPReg: orcRegSP, SPOffset: 0, Type: ORCRegsPartial},
		{SPReg: orcRegSP, SPOffset: 8, Type: ORCCall},
		{Type: ORCEndOfStack},
	}}
	irq := arch.Stack{Base: 0xffff88807fc00000, Top: 0xffff88807fc04000, Label: "IRQ stack"}
	task := arch.Stack{Base: 0xffffc90000010000, Top: 0xffffc90000014000}
	m := &fakeStackMemory{words: map[uint64]uint64{}, stacks: []arch.Stack{irq, task}}
	hSP := irq.Top - 0x20
	m.words[hSP] = fX + 4              // H's return address into X
	m.words[hSP+8] = task.Base + 0x800 // the saved task stack pointer
	m.words[task.Base+0x808] = fY + 4  // X's return address into Y, at CFA-8
	iret := task.Base + 0x810          // Y: iret frame at its sp
	m.words[iret] = fZ + 0x10          // ip
	m.words[iret+8] = 0x10             // cs: kernel
	m.words[iret+16] = 0x246
	m.words[iret+24] = task.Base + 0x900 // sp
	m.words[iret+32] = 0x18
	m.words[task.Base+0x900] = 0 // Z's caller: none (a zero return address ends the walk)

	u := &Unwinder{Tables: []*ORCTable{tab}}
	frames, err := u.Unwind(arch.Start{PC: fH + 2, SP: hSP}, m)
	if err != nil || len(frames) != 4 {
		t.Fatalf("%d frames: %+v (%v)", len(frames), frames, err)
	}
	want := []struct {
		pc, sp uint64
		stack  arch.Stack
	}{
		{fH + 2, hSP, irq},
		{fX + 4, hSP, irq},
		{fY + 4, task.Base + 0x808, task},
		{fZ + 0x10, task.Base + 0x900, task},
	}
	for i, w := range want {
		f := frames[i]
		if f.PC != w.pc || f.SP != w.sp || f.Stack != w.stack {
			t.Errorf("frame %d: pc %#x sp %#x stack %q, want pc %#x sp %#x stack %q", i, f.PC, f.SP, f.Stack.Label, w.pc, w.sp, w.stack.Label)
		}
	}
	if e := frames[2].Exception; e == nil || !e.Partial || e.Addr != iret-iretFrameOffset || e.Regs[RegFlags] != 0x246 {
		t.Errorf("iret frame: %+v", e)
	}
}
