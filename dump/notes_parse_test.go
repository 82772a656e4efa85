package dump

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

func TestParseNotes(t *testing.T) {
	two := []Note{
		{Name: "CORE", Type: 1, Desc: []byte{1, 2, 3, 4, 5}},
		{Name: "VMCOREINFO", Type: 0, Desc: []byte("A=1\n")},
	}
	enc := encodeNotes(two)
	tests := []struct {
		name string
		b    []byte
		want []Note
		err  string
	}{
		{name: "two notes", b: enc, want: two},
		{name: "zero padding after", b: append(append([]byte{}, enc...), make([]byte, 40)...), want: two},
		{name: "short zero tail", b: append(append([]byte{}, enc...), 0, 0, 0, 0), want: two},
		{name: "empty", b: nil, want: nil},
		{name: "last descriptor unpadded", b: encodeNotes(two[:1])[:12+8+5], want: two[:1]},
		{name: "garbage tail", b: append(append([]byte{}, enc...), 1, 2, 3), err: "cut short"},
		{name: "descriptor past the end", b: enc[:len(enc)-4], err: "runs past the end"},
		{name: "huge sizes", b: []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0}, err: "runs past the end"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseNotes(tc.b, "x.vmcore", 0x1000)
			if tc.err != "" {
				var fe *FormatError
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.As(err, &fe) || fe.Off < 0x1000 || fe.File != "x.vmcore" {
					t.Fatalf("error %v, want a FormatError containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d notes, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if got[i].Name != tc.want[i].Name || got[i].Type != tc.want[i].Type || !bytes.Equal(got[i].Desc, tc.want[i].Desc) {
					t.Errorf("note %d = %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestParsePRStatus(t *testing.T) {
	arm := make([]byte, prstatusSize(ArchARM64))
	binary.LittleEndian.PutUint32(arm[prstatusPIDOff:], 77)
	for i := 0; i < 34; i++ {
		binary.LittleEndian.PutUint64(arm[prstatusRegOff+8*i:], uint64(1000+i))
	}
	tests := []struct {
		name     string
		desc     []byte
		arch     Arch
		wantArch Arch
		pid      int32
		nregs    int
		firstReg uint64
		err      bool
	}{
		{"x86_64", x86PRStatus(5, 40), ArchX86_64, ArchX86_64, 5, 27, 40, false},
		{"arm64", arm, ArchARM64, ArchARM64, 77, 34, 1000, false},
		{"x86_64 inferred", x86PRStatus(6, 1), "", ArchX86_64, 6, 27, 1, false},
		{"arm64 inferred", arm, "", ArchARM64, 77, 34, 1000, false},
		{"too short", make([]byte, 300), ArchX86_64, "", 0, 0, 0, true},
		{"arm64 too short", x86PRStatus(1, 1), ArchARM64, "", 0, 0, 0, true},
		{"unknown size", make([]byte, 100), "", "", 0, 0, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := parsePRStatus(tc.desc, tc.arch)
			if tc.err {
				if err == nil {
					t.Fatalf("no error, got %+v", p)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Arch != tc.wantArch || p.PID != tc.pid || len(p.Regs) != tc.nregs || p.Regs[0] != tc.firstReg || p.Regs[tc.nregs-1] != tc.firstReg+uint64(tc.nregs-1) {
				t.Errorf("got %+v", p)
			}
		})
	}
}

// qemuCPUState makes a QEMUCPUState descriptor: registers 1…18, segment i
// with selector i and base 0x1000*i, cr[i] = 0x100+i.
func qemuCPUState(size int) []byte {
	b := make([]byte, size)
	le := binary.LittleEndian
	le.PutUint32(b, 1)
	le.PutUint32(b[4:], uint32(size))
	for i := 0; i < 18; i++ {
		le.PutUint64(b[8+8*i:], uint64(i+1))
	}
	for i := 0; i < 10; i++ {
		s := b[152+24*i:]
		le.PutUint32(s, uint32(i))
		le.PutUint32(s[4:], 0xffff)
		le.PutUint32(s[8:], 0x9b)
		le.PutUint64(s[16:], 0x1000*uint64(i))
	}
	for i := 0; i < 5; i++ {
		le.PutUint64(b[392+8*i:], 0x100+uint64(i))
	}
	if size >= 440 {
		le.PutUint64(b[432:], 0xffff888000000000)
	}
	return b
}

func TestParseQEMUCPU(t *testing.T) {
	for _, size := range []int{432, 440, 600} {
		c, err := parseQEMUCPU(qemuCPUState(size))
		if err != nil {
			t.Fatal(err)
		}
		if c.Version != 1 || len(c.Regs) != 18 || c.Regs[0] != 1 || c.Regs[17] != 18 {
			t.Errorf("size %d: regs %v", size, c.Regs)
		}
		if c.CS.Selector != 0 || c.SS.Selector != 5 || c.IDT.Selector != 9 || c.GDT.Base != 0x8000 || c.TR.Limit != 0xffff || c.LDT.Flags != 0x9b {
			t.Errorf("size %d: segments %+v", size, c)
		}
		if c.CR != [5]uint64{0x100, 0x101, 0x102, 0x103, 0x104} {
			t.Errorf("size %d: cr %x", size, c.CR)
		}
		if c.HasKernelGSBase != (size >= 440) || (size >= 440 && c.KernelGSBase != 0xffff888000000000) {
			t.Errorf("size %d: kernel_gs_base %v %#x", size, c.HasKernelGSBase, c.KernelGSBase)
		}
	}
	if _, err := parseQEMUCPU(make([]byte, 431)); err == nil {
		t.Error("short QEMU note accepted")
	}
}

func TestApplyNotes(t *testing.T) {
	notes := []Note{
		{Name: "CORE", Type: NTPRStatus, Desc: x86PRStatus(1, 0)},
		{Name: "CORE", Type: 2, Desc: make([]byte, 512)}, // NT_PRFPREG: kept, not decoded
		{Name: "QEMU", Type: NTQEMUCPU, Desc: qemuCPUState(440)},
		{Name: "CORE", Type: NTPRStatus, Desc: x86PRStatus(2, 0)},
		{Name: "QEMU", Type: NTQEMUCPU, Desc: qemuCPUState(440)},
		{Name: "VMCOREINFO", Desc: []byte("OSRELEASE=6.1.0\nbroken line\nPAGESIZE=4096\n\x00\x00")},
	}
	f := &File{Path: "x", Arch: ArchX86_64}
	if err := f.applyNotes(notes); err != nil {
		t.Fatal(err)
	}
	if len(f.Notes) != 6 || len(f.PRStatus) != 2 || len(f.QEMUCPUs) != 2 || f.CPUs != 2 {
		t.Fatalf("notes %d prstatus %d qemu %d cpus %d", len(f.Notes), len(f.PRStatus), len(f.QEMUCPUs), f.CPUs)
	}
	if f.PRStatus[1].PID != 2 {
		t.Errorf("second CPU pid %d", f.PRStatus[1].PID)
	}
	if f.VMCoreInfo.OSRelease() != "6.1.0" || f.VMCoreInfo.Err == nil {
		t.Errorf("VMCOREINFO %+v", f.VMCoreInfo)
	}
	// A caller that knows the CPU count (kdump nr_cpus) keeps it.
	g := &File{Path: "x", Arch: ArchX86_64, CPUs: 4}
	if err := g.applyNotes(notes[:1]); err != nil || g.CPUs != 4 {
		t.Errorf("CPUs %d, %v", g.CPUs, err)
	}
	// A VMCOREINFO with nothing usable is kept as raw text.
	h := &File{Path: "x", Arch: ArchX86_64}
	if err := h.applyNotes([]Note{{Name: "VMCOREINFO", Desc: []byte("garbage")}}); err != nil || h.VMCoreInfo == nil || h.VMCoreInfo.Err == nil || h.VMCoreInfo.Raw != "garbage" {
		t.Errorf("VMCOREINFO %+v, %v", h.VMCoreInfo, err)
	}
	bad := &File{Path: "x", Arch: ArchX86_64}
	if err := bad.applyNotes([]Note{{Name: "QEMU", Desc: make([]byte, 10)}}); err == nil {
		t.Error("short QEMU note accepted")
	}
}

// pageMemory is a Memory over a sparse map of 4 KiB pages.
type pageMemory map[uint64][]byte

func (m pageMemory) ReadPhys(p []byte, addr uint64) (int, error) {
	for n := 0; n < len(p); {
		a := addr + uint64(n)
		pg, ok := m[a/4096]
		if !ok {
			return n, &PageError{Addr: a, State: PageNotRAM}
		}
		n += copy(p[n:], pg[a%4096:])
	}
	return len(p), nil
}
func (m pageMemory) State(pfn uint64) PageState {
	if _, ok := m[pfn]; ok {
		return PagePresent
	}
	return PageNotRAM
}
func (m pageMemory) PageSize() int   { return 4096 }
func (m pageMemory) Ranges() []Range { return nil }

func (m pageMemory) set(addr, v uint64) {
	pg, ok := m[addr/4096]
	if !ok {
		pg = make([]byte, 4096)
		m[addr/4096] = pg
	}
	binary.LittleEndian.PutUint64(pg[addr%4096:], v)
}

func TestX86Translate(t *testing.T) {
	const va = 0xffffffff9b4d2328 // a KASLR kernel-text address
	idx := func(shift uint) uint64 { return (va >> shift) & 0x1ff }
	tests := []struct {
		name  string
		la57  bool
		build func(m pageMemory) // tables rooted at 0x1000
		want  uint64
		err   bool
	}{
		{"4-level, 4K page", false, func(m pageMemory) {
			m.set(0x1000+idx(39)*8, 0x2000|3)
			m.set(0x2000+idx(30)*8, 0x3000|3)
			m.set(0x3000+idx(21)*8, 0x4000|3)
			m.set(0x4000+idx(12)*8, 0x7654321000|0x63|1<<63) // NX bit set
		}, 0x7654321000 | va&0xfff, false},
		{"4-level, 2M page", false, func(m pageMemory) {
			m.set(0x1000+idx(39)*8, 0x2000|3)
			m.set(0x2000+idx(30)*8, 0x3000|3)
			m.set(0x3000+idx(21)*8, 0x23e00000|0x80|0x1000|3) // PAT bit 12 in a 2M entry
		}, 0x23e00000 | va&0x1fffff, false},
		{"4-level, 1G page", false, func(m pageMemory) {
			m.set(0x1000+idx(39)*8, 0x2000|3)
			m.set(0x2000+idx(30)*8, 0x80000000|0x80|3)
		}, 0x80000000 | va&0x3fffffff, false},
		{"5-level", true, func(m pageMemory) {
			m.set(0x1000+idx(48)*8, 0x5000|3)
			m.set(0x5000+idx(39)*8, 0x2000|3)
			m.set(0x2000+idx(30)*8, 0x80000000|0x80|3)
		}, 0x80000000 | va&0x3fffffff, false},
		{"not present", false, func(m pageMemory) {
			m.set(0x1000+idx(39)*8, 0x2000|3)
			m.set(0x2000+idx(30)*8, 0x3000)
		}, 0, true},
		{"table outside RAM", false, func(m pageMemory) {
			m.set(0x1000+idx(39)*8, 0x7000000|3)
		}, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := pageMemory{}
			tc.build(m)
			got, err := x86Translate(m, 0x1000|0x18 /* PCD|PWT ignored */, tc.la57, va)
			if tc.err {
				if err == nil {
					t.Fatalf("got %#x, want an error", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %#x, %v; want %#x", got, err, tc.want)
			}
		})
	}
}

func TestPhysBase(t *testing.T) {
	const rip = 0xffffffff9b4d2328
	m := pageMemory{}
	idx := func(shift uint) uint64 { return (rip >> shift) & 0x1ff }
	m.set(0x1000+idx(39)*8, 0x2000|3)
	m.set(0x2000+idx(30)*8, 0x3000|3)
	m.set(0x3000+idx(21)*8, 0x3e400000|0x80|3)
	// The same mapping, but the kernel image loaded at 2 MiB, below its
	// link-time offset from __START_KERNEL_map.
	low := pageMemory{}
	low.set(0x1000+idx(39)*8, 0x2000|3)
	low.set(0x2000+idx(30)*8, 0x3000|3)
	low.set(0x3000+idx(21)*8, 0x200000|0x80|3)
	cpu := func(rip, cr0 uint64) QEMUCPU {
		c := QEMUCPU{Regs: make([]uint64, 18)}
		c.Regs[16] = rip
		c.CR[0], c.CR[3] = cr0, 0x1000
		return c
	}
	const pg = 0x80000011
	ripv := uint64(rip)
	lowBase := 0x200000 - (ripv&^0x1fffff - 0xffffffff80000000) // wraps: phys_base < 0
	wantBase := uint64(0x3e400000|rip&0x1fffff) - (rip - 0xffffffff80000000)
	tests := []struct {
		name string
		f    *File
		want uint64
		ok   bool
	}{
		{"VMCOREINFO", &File{Arch: ArchX86_64, VMCoreInfo: mustVMCoreInfo(t, "NUMBER(phys_base)=-2145386496\n")}, 0xffffffff80200000, true},
		{"QEMU page walk", &File{Arch: ArchX86_64, Memory: m, QEMUCPUs: []QEMUCPU{cpu(0x7f0000001000, pg), cpu(rip, pg)}}, wantBase, true},
		{"QEMU page walk, negative phys_base", &File{Arch: ArchX86_64, Memory: low, QEMUCPUs: []QEMUCPU{cpu(rip, pg)}}, lowBase, true},
		{"paging off", &File{Arch: ArchX86_64, Memory: m, QEMUCPUs: []QEMUCPU{cpu(rip, 0x11)}}, 0, false},
		{"user mode only", &File{Arch: ArchX86_64, Memory: m, QEMUCPUs: []QEMUCPU{cpu(0x401000, pg)}}, 0, false},
		{"arm64", &File{Arch: ArchARM64, Memory: m}, 0, false},
		{"nothing", &File{Arch: ArchX86_64}, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, src, ok := tc.f.PhysBase()
			if ok != tc.ok || got != tc.want || (ok && src == "") {
				t.Errorf("PhysBase() = %#x, %q, %v; want %#x, %v", got, src, ok, tc.want, tc.ok)
			}
		})
	}
}

func mustVMCoreInfo(t *testing.T, s string) *VMCoreInfo {
	t.Helper()
	v, err := ParseVMCoreInfo([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return v
}
