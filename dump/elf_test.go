package dump

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"salvage/lab/corpus"
)

// testLoad is one PT_LOAD of a synthetic core. Its file bytes follow
// patternByte, so every read can be checked against its physical address.
type testLoad struct {
	paddr, filesz, memsz uint64
	noPAddr              bool // p_paddr = NOT_PADDR
}

// testCore describes a synthetic ELF64 core for tests.
type testCore struct {
	class, data byte   // 0: ELFCLASS64, ELFDATA2LSB
	typ         uint16 // 0: ET_CORE
	machine     uint16 // 0: EM_X86_64
	flags       uint32
	notes       []Note
	loads       []testLoad
	xnum        bool // e_phnum = PN_XNUM, count in section header 0
}

func patternByte(addr uint64) byte { return byte(addr ^ addr>>8 ^ addr>>16 ^ 0x5a) }

// encodeNotes writes Elf64_Nhdr notes with 4-byte padding.
func encodeNotes(notes []Note) []byte {
	var b bytes.Buffer
	le := binary.LittleEndian
	for _, n := range notes {
		name := []byte(n.Name + "\x00")
		var h [12]byte
		le.PutUint32(h[0:], uint32(len(name)))
		le.PutUint32(h[4:], uint32(len(n.Desc)))
		le.PutUint32(h[8:], n.Type)
		b.Write(h[:])
		b.Write(name)
		b.Write(make([]byte, align4(uint64(len(name)))-uint64(len(name))))
		b.Write(n.Desc)
		b.Write(make([]byte, align4(uint64(len(n.Desc)))-uint64(len(n.Desc))))
	}
	return b.Bytes()
}

func (c testCore) build(t testing.TB) []byte {
	t.Helper()
	le := binary.LittleEndian
	nph := len(c.loads)
	noteBytes := encodeNotes(c.notes)
	if len(c.notes) > 0 {
		nph++
	}
	phoff := uint64(ehdrSize)
	shoff := uint64(0)
	dataOff := phoff + uint64(nph)*phdrSize
	if c.xnum {
		shoff = dataOff
		dataOff += shdrSize
	}
	eh := make([]byte, ehdrSize)
	copy(eh, "\x7fELF")
	eh[4], eh[5], eh[6] = orByte(c.class, elfClass64), orByte(c.data, elfData2LSB), 1
	le.PutUint16(eh[16:], orU16(c.typ, etCore))
	le.PutUint16(eh[18:], orU16(c.machine, emX86_64))
	le.PutUint32(eh[20:], 1)
	le.PutUint64(eh[32:], phoff)
	le.PutUint64(eh[40:], shoff)
	le.PutUint32(eh[48:], c.flags)
	le.PutUint16(eh[52:], ehdrSize)
	le.PutUint16(eh[54:], phdrSize)
	if c.xnum {
		le.PutUint16(eh[56:], pnXNum)
		le.PutUint16(eh[58:], shdrSize)
		le.PutUint16(eh[60:], 1)
	} else {
		le.PutUint16(eh[56:], uint16(nph))
	}
	var ph, body bytes.Buffer
	off := dataOff
	phdr := func(typ uint32, off, paddr, filesz, memsz uint64) {
		var h [phdrSize]byte
		le.PutUint32(h[0:], typ)
		le.PutUint64(h[8:], off)
		le.PutUint64(h[16:], paddr)
		le.PutUint64(h[24:], paddr)
		le.PutUint64(h[32:], filesz)
		le.PutUint64(h[40:], memsz)
		ph.Write(h[:])
	}
	if len(c.notes) > 0 {
		phdr(ptNote, off, 0, uint64(len(noteBytes)), uint64(len(noteBytes)))
		body.Write(noteBytes)
		off += uint64(len(noteBytes))
	}
	for _, l := range c.loads {
		paddr := l.paddr
		if l.noPAddr {
			paddr = notPAddr
		}
		phdr(ptLoad, off, paddr, l.filesz, l.memsz)
		for a := l.paddr; a < l.paddr+l.filesz; a++ {
			body.WriteByte(patternByte(a))
		}
		off += l.filesz
	}
	out := append(eh, ph.Bytes()...)
	if c.xnum {
		sh := make([]byte, shdrSize)
		le.PutUint32(sh[shdrInfoOff:], uint32(nph))
		out = append(out, sh...)
	}
	return append(out, body.Bytes()...)
}

func orByte(v, d byte) byte {
	if v == 0 {
		return d
	}
	return v
}

func orU16(v, d uint16) uint16 {
	if v == 0 {
		return d
	}
	return v
}

func openBytes(t testing.TB, b []byte) (*File, error) {
	t.Helper()
	return NewFile(bytes.NewReader(b), int64(len(b)), "test.vmcore")
}

// x86PRStatus makes an x86_64 NT_PRSTATUS descriptor whose registers
// are base, base+1, …
func x86PRStatus(pid int32, base uint64) []byte {
	b := make([]byte, prstatusSize(ArchX86_64))
	binary.LittleEndian.PutUint32(b[prstatusPIDOff:], uint32(pid))
	for i := 0; i < 27; i++ {
		binary.LittleEndian.PutUint64(b[prstatusRegOff+8*i:], base+uint64(i))
	}
	return b
}

const pg = 4096

func TestOpenELF(t *testing.T) {
	notes := []Note{
		{Name: "CORE", Type: NTPRStatus, Desc: x86PRStatus(1, 100)},
		{Name: "CORE", Type: NTPRStatus, Desc: x86PRStatus(2, 200)},
		{Name: "VMCOREINFO", Desc: []byte("OSRELEASE=6.1.0-test\nPAGESIZE=4096\n")},
	}
	manyLoads := make([]testLoad, 70000)
	for i := range manyLoads {
		manyLoads[i] = testLoad{paddr: uint64(i) * 2 * pg, filesz: 0, memsz: pg}
	}
	tests := []struct {
		name   string
		core   testCore
		cut    int // bytes removed from the end
		err    string
		arch   Arch
		cpus   int
		ranges []Range
		states map[uint64]PageState
		incomp bool
	}{{
		name: "qemu-like",
		core: testCore{notes: notes, loads: []testLoad{
			{paddr: 0, filesz: 0xa0000, memsz: 0xa0000},
			{paddr: 0x100000, filesz: 4 * pg, memsz: 4 * pg},
		}},
		arch: ArchX86_64, cpus: 2,
		ranges: []Range{{0, 0xa0000}, {0x100000, 0x104000}},
		states: map[uint64]PageState{0: PagePresent, 0x9f: PagePresent, 0xa0: PageNotRAM, 0x100: PagePresent, 0x103: PagePresent, 0x104: PageNotRAM},
	}, {
		name: "makedumpfile -E: excluded tail, split segments, incomplete flag",
		core: testCore{flags: dumpELFIncomplete, machine: emAArch64, loads: []testLoad{
			{paddr: 0x40000000, filesz: 2 * pg, memsz: 300 * pg},
			{paddr: 0x40000000 + 300*pg, filesz: pg, memsz: pg},
			{paddr: 0x40000000 + 301*pg, filesz: 0, memsz: 256 * pg},
		}},
		arch:   ArchARM64,
		ranges: []Range{{0x40000000, 0x40000000 + 557*pg}},
		states: map[uint64]PageState{0x40000: PagePresent, 0x40001: PagePresent, 0x40002: PageExcluded, 0x40000 + 299: PageExcluded, 0x40000 + 300: PagePresent, 0x40000 + 301: PageExcluded, 0x40000 + 556: PageExcluded, 0x40000 + 557: PageNotRAM},
		incomp: true,
	}, {
		name: "truncated inside a PT_LOAD",
		core: testCore{loads: []testLoad{{paddr: 0, filesz: 8 * pg, memsz: 8 * pg}, {paddr: 16 * pg, filesz: pg, memsz: pg}}},
		// The file ends 2.5 pages before the end of the first segment.
		cut:    pg + 2*pg + pg/2,
		ranges: []Range{{0, 8 * pg}, {16 * pg, 17 * pg}},
		states: map[uint64]PageState{0: PagePresent, 4: PagePresent, 5: PageMissing, 7: PageMissing, 8: PageNotRAM, 16: PageMissing},
		arch:   ArchX86_64,
	}, {
		name:   "unaligned e820-style ranges",
		core:   testCore{loads: []testLoad{{paddr: 0x1000, filesz: 0x9ec00, memsz: 0x9ec00}, {paddr: 0x100000, filesz: 2 * pg, memsz: 2 * pg}}},
		ranges: []Range{{0x1000, 0x9fc00}, {0x100000, 0x102000}},
		states: map[uint64]PageState{0: PageNotRAM, 1: PagePresent, 0x9f: PagePresent, 0xa0: PageNotRAM},
		arch:   ArchX86_64,
	}, {
		name: "overlapping kernel-text segment and NOT_PADDR",
		core: testCore{loads: []testLoad{
			{paddr: 0x100000, filesz: 4 * pg, memsz: 4 * pg},
			{paddr: 0, filesz: 0x200000, memsz: 0x400000},
			{paddr: 0x500000, filesz: pg, memsz: pg, noPAddr: true},
		}},
		ranges: []Range{{0, 0x400000}},
		states: map[uint64]PageState{0: PagePresent, 0x100: PagePresent, 0x1ff: PagePresent, 0x200: PageExcluded, 0x3ff: PageExcluded, 0x400: PageNotRAM, 0x500: PageNotRAM},
		arch:   ArchX86_64,
	}, {
		name: "file data beats another segment's excluded tail",
		core: testCore{loads: []testLoad{
			{paddr: 0, filesz: pg, memsz: 8 * pg},
			{paddr: 4 * pg, filesz: pg, memsz: pg},
		}},
		ranges: []Range{{0, 8 * pg}},
		states: map[uint64]PageState{0: PagePresent, 1: PageExcluded, 3: PageExcluded, 4: PagePresent, 5: PageExcluded, 8: PageNotRAM},
		arch:   ArchX86_64,
	}, {
		name:   "PN_XNUM",
		core:   testCore{xnum: true, notes: notes[:1], loads: []testLoad{{paddr: pg, filesz: pg, memsz: pg}}},
		ranges: []Range{{pg, 2 * pg}},
		states: map[uint64]PageState{1: PagePresent},
		arch:   ArchX86_64, cpus: 1,
	}, {
		name:   "more program headers than e_phnum holds",
		core:   testCore{xnum: true, loads: manyLoads},
		arch:   ArchX86_64,
		cpus:   0,
		states: map[uint64]PageState{0: PageExcluded, 1: PageNotRAM, 2: PageExcluded, 2 * 69999: PageExcluded, 2*69999 + 1: PageNotRAM},
	}, {
		name: "ELF32", core: testCore{class: 1}, err: "only ELF64",
	}, {
		name: "big-endian", core: testCore{data: 2}, err: "little-endian",
	}, {
		name: "executable", core: testCore{typ: 2}, err: "not a core file",
	}, {
		name: "s390x", core: testCore{machine: 22}, err: "not a supported architecture",
	}, {
		name: "no program headers", core: testCore{}, err: "no program headers",
	}, {
		name: "program headers cut off",
		core: testCore{loads: []testLoad{{filesz: 0, memsz: pg}, {filesz: 0, memsz: pg}}},
		cut:  60, err: "run past the end",
	}, {
		name: "notes cut off",
		core: testCore{notes: notes},
		cut:  16, err: "PT_NOTE segment",
	}, {
		name: "short NT_PRSTATUS",
		core: testCore{notes: []Note{{Name: "CORE", Type: NTPRStatus, Desc: make([]byte, 200)}}},
		err:  "NT_PRSTATUS",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.core.build(t)
			b = b[:len(b)-tc.cut]
			f, err := openBytes(t, b)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				if !strings.Contains(err.Error(), "test.vmcore") {
					t.Errorf("error %q does not name the file", err)
				}
				if f != nil {
					t.Errorf("File %v returned with an error", f)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.Format != FormatELF || f.Inner != FormatELF || f.DumpLevel != -1 || f.Arch != tc.arch || f.CPUs != tc.cpus || f.Incomplete != tc.incomp {
				t.Errorf("got format %s/%s level %d arch %s cpus %d incomplete %v", f.Format, f.Inner, f.DumpLevel, f.Arch, f.CPUs, f.Incomplete)
			}
			if tc.ranges != nil {
				if got := f.Memory.Ranges(); !equalRanges(got, tc.ranges) {
					t.Errorf("Ranges() = %#x, want %#x", got, tc.ranges)
				}
			}
			for pfn, want := range tc.states {
				if got := f.Memory.State(pfn); got != want {
					t.Errorf("State(%#x) = %v, want %v", pfn, got, want)
				}
			}
			checkReads(t, f.Memory)
		})
	}
}

func equalRanges(a, b []Range) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// checkReads reads every RAM page of a synthetic core (pages in bulk,
// then across each range's ends) and checks bytes against patternByte and
// errors against State.
func checkReads(t *testing.T, m Memory) {
	t.Helper()
	ps := uint64(m.PageSize())
	ranges := m.Ranges()
	if len(ranges) > 64 {
		ranges = ranges[:64]
	}
	buf := make([]byte, ps)
	for _, r := range ranges {
		for pfn := r.Start / ps; pfn <= (r.End-1)/ps; pfn++ {
			lo, hi := max(pfn*ps, r.Start), min((pfn+1)*ps, r.End)
			n, err := m.ReadPhys(buf[:hi-lo], lo)
			st := m.State(pfn)
			if (err == nil) != (st == PagePresent) {
				t.Fatalf("page %#x: state %v but read error %v", pfn, st, err)
			}
			if err != nil {
				var pe *PageError
				if !errors.As(err, &pe) || pe.Addr != lo+uint64(n) || pe.File != "test.vmcore" {
					t.Fatalf("page %#x: error %#v after %d bytes", pfn, err, n)
				}
			}
			for i := 0; i < n; i++ {
				if buf[i] != patternByte(lo+uint64(i)) {
					t.Fatalf("byte at %#x reads %#x, want %#x", lo+uint64(i), buf[i], patternByte(lo+uint64(i)))
				}
			}
		}
		// One read over the whole range and one past its end.
		whole := make([]byte, min(r.End-r.Start+1, 1<<22))
		n, err := m.ReadPhys(whole, r.Start)
		if err == nil && uint64(len(whole)) > r.End-r.Start {
			t.Errorf("read of [%#x, %#x) past the range's end gave no error", r.Start, r.Start+uint64(len(whole)))
		}
		for i := 0; i < n; i++ {
			if whole[i] != patternByte(r.Start+uint64(i)) {
				t.Fatalf("bulk read: byte at %#x wrong", r.Start+uint64(i))
			}
		}
	}
}

func TestELFReadAcrossSegments(t *testing.T) {
	c := testCore{loads: []testLoad{{paddr: 0, filesz: 3 * pg, memsz: 3 * pg}, {paddr: 3 * pg, filesz: 2 * pg, memsz: 4 * pg}}}
	f, err := openBytes(t, c.build(t))
	if err != nil {
		t.Fatal(err)
	}
	// Two PT_LOADs back to back read as one.
	b := make([]byte, 5*pg)
	if n, err := f.Memory.ReadPhys(b, 0); n != len(b) || err != nil {
		t.Fatalf("ReadPhys = %d, %v", n, err)
	}
	for i := range b {
		if b[i] != patternByte(uint64(i)) {
			t.Fatalf("byte %#x wrong", i)
		}
	}
	// Running into the excluded tail stops there.
	n, err := f.Memory.ReadPhys(make([]byte, 2*pg), 4*pg+100)
	var pe *PageError
	if n != pg-100 || !errors.As(err, &pe) || pe.State != PageExcluded || pe.Addr != 5*pg {
		t.Fatalf("ReadPhys into excluded pages = %d, %v", n, err)
	}
	if n, err := f.Memory.ReadPhys(make([]byte, 8), ^uint64(0)-3); n != 0 || err == nil {
		t.Fatalf("read at the top of the address space = %d, %v", n, err)
	}
	if got := f.Memory.State(^uint64(0)); got != PageNotRAM {
		t.Errorf("State(max) = %v", got)
	}
}

func TestELFConcurrentReads(t *testing.T) {
	c := testCore{loads: []testLoad{{paddr: 0, filesz: 64 * pg, memsz: 64 * pg}}}
	f, err := openBytes(t, c.build(t))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			b := make([]byte, 1000)
			for i := 0; i < 200; i++ {
				addr := uint64((g*7919 + i*104729) % (64*pg - 1000))
				if _, err := f.Memory.ReadPhys(b, addr); err != nil {
					t.Error(err)
					return
				}
				if b[0] != patternByte(addr) || b[999] != patternByte(addr+999) {
					t.Errorf("wrong bytes at %#x", addr)
					return
				}
			}
		}(g)
	}
	wg.Wait()
}

// TestELFPageSizeFromVMCoreInfo: an arm64 kernel with 64K pages.
func TestELFPageSizeFromVMCoreInfo(t *testing.T) {
	c := testCore{machine: emAArch64,
		notes: []Note{{Name: "VMCOREINFO", Desc: []byte("PAGESIZE=65536\n")}},
		loads: []testLoad{{paddr: 0x40000000, filesz: 0x20000, memsz: 0x40000}}}
	f, err := openBytes(t, c.build(t))
	if err != nil {
		t.Fatal(err)
	}
	if f.Memory.PageSize() != 65536 {
		t.Fatalf("page size %d", f.Memory.PageSize())
	}
	for pfn, want := range map[uint64]PageState{0x4000: PagePresent, 0x4001: PagePresent, 0x4002: PageExcluded, 0x4003: PageExcluded, 0x4004: PageNotRAM} {
		if got := f.Memory.State(pfn); got != want {
			t.Errorf("State(%#x) = %v, want %v", pfn, got, want)
		}
	}
}

// releaseArch is the architecture of a Debian kernel release.
func releaseArch(release string) Arch {
	switch {
	case strings.HasSuffix(release, "-amd64"):
		return ArchX86_64
	case strings.HasSuffix(release, "-arm64"):
		return ArchARM64
	}
	return ""
}

// elfPageCounts walks State over the RAM ranges, as `salvage info` does.
func elfPageCounts(m Memory) map[PageState]int {
	counts := map[PageState]int{}
	ps := uint64(m.PageSize())
	next := uint64(0)
	for _, r := range m.Ranges() {
		for pfn := max(r.Start/ps, next); pfn <= (r.End-1)/ps; pfn++ {
			counts[m.State(pfn)]++
		}
		next = (r.End-1)/ps + 1
	}
	return counts
}

// TestCorpusELF checks every ELF dump of the lab corpus against what the
// lab knows of it: the kernel that crashed, its build ID, two CPUs.
func TestCorpusELF(t *testing.T) {
	m := corpus.Require(t)
	elfs := m.Select(func(d corpus.Dump) bool { return d.Format == "elf" })
	if len(elfs) == 0 {
		t.Fatal("the lab corpus has no ELF dumps")
	}
	for _, d := range elfs {
		t.Run(d.ID, func(t *testing.T) {
			f, err := Open(m.Paths(d)...)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.Format != FormatELF || f.Inner != FormatELF || f.DumpLevel != -1 || f.Incomplete ||
				len(f.Compression) != 1 || f.Compression[0] != d.Compression {
				t.Errorf("format %s/%s codecs %v level %d incomplete %v; manifest: %s %s", f.Format, f.Inner, f.Compression, f.DumpLevel, f.Incomplete, d.Format, d.Compression)
			}
			if want := releaseArch(d.Release); f.Arch != want {
				t.Errorf("arch %s, want %s", f.Arch, want)
			}
			vi := f.VMCoreInfo
			if vi == nil || vi.Err != nil {
				t.Fatalf("VMCOREINFO %v", vi)
			}
			if got := vi.OSRelease(); got != d.Release {
				t.Errorf("OSRELEASE %q, manifest release %q", got, d.Release)
			}
			if k := m.Kernel(d.Release); k != nil && k.BuildID != "" && !strings.EqualFold(vi.BuildID(), k.BuildID) {
				t.Errorf("BUILD-ID %q, the kernel's is %q", vi.BuildID(), k.BuildID)
			}
			if ps, ok := vi.PageSize(); !ok || ps != f.Memory.PageSize() {
				t.Errorf("PAGESIZE %d, Memory page size %d", ps, f.Memory.PageSize())
			}
			if _, ok := vi.Symbol("init_uts_ns"); !ok {
				t.Error("no SYMBOL(init_uts_ns)")
			}
			if _, ok := vi.KernelOffset(); !ok && f.Arch == ArchX86_64 {
				t.Error("no KERNELOFFSET")
			}
			if d.Scenario != "live" {
				// The kernel appends CRASHTIME when it panics.
				if ct, ok := vi.CrashTime(); !ok || ct.Before(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)) || ct.After(time.Now().Add(time.Hour)) {
					t.Errorf("CRASHTIME %v, %v", ct, ok)
				}
			}
			// The guests have 2 CPUs; a capture kernel booted with
			// nr_cpus=1 still reports the crashed machine's two.
			if f.CPUs != 2 || len(f.PRStatus) != 2 {
				t.Errorf("CPUs %d, NT_PRSTATUS notes %d; want 2", f.CPUs, len(f.PRStatus))
			}
			if strings.Contains(d.Producer, "qemu") && f.Arch == ArchX86_64 {
				if len(f.QEMUCPUs) != 2 {
					t.Errorf("%d QEMU CPU states, want 2", len(f.QEMUCPUs))
				}
				// phys_base from a page-table walk agrees with the kernel's.
				want, _ := vi.Number("phys_base")
				if cpu, got, ok := f.physBaseFromCPUs(); !ok || got != uint64(want) {
					t.Errorf("page-table walk (CPU %d) gives phys_base %#x, %v; VMCOREINFO says %#x", cpu, got, ok, want)
				}
			}
			counts := elfPageCounts(f.Memory)
			if counts[PagePresent] < 1000 || counts[PageMissing] != 0 || counts[PageNotRAM] != 0 {
				t.Errorf("page states %v", counts)
			}
			if filtered := d.DumpLevel > 0; filtered != (counts[PageExcluded] > 0) {
				t.Errorf("manifest dump level %d but %d pages excluded", d.DumpLevel, counts[PageExcluded])
			}
			t.Logf("%s: %d PT_LOAD ranges, pages %v", d.ID, len(f.Memory.Ranges()), counts)
		})
	}
}

// TestCorpusELFSameCrash reads the same physical pages from every ELF dump
// of one crash (the kernel's /proc/vmcore copy, makedumpfile -E of it):
// where two dumps both hold a page, it must read the same.
func TestCorpusELFSameCrash(t *testing.T) {
	m := corpus.Require(t)
	byCrash := map[string][]corpus.Dump{}
	for _, d := range m.Select(func(d corpus.Dump) bool { return d.Format == "elf" && d.Crash != "" }) {
		byCrash[d.Crash] = append(byCrash[d.Crash], d)
	}
	groups := 0
	for crash, ds := range byCrash {
		if len(ds) < 2 {
			continue
		}
		groups++
		t.Run(crash, func(t *testing.T) {
			var files []*File
			for _, d := range ds {
				f, err := Open(m.Paths(d)...)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				files = append(files, f)
			}
			base := files[0]
			ps := uint64(base.Memory.PageSize())
			a, b := make([]byte, ps), make([]byte, ps)
			for i, f := range files[1:] {
				compared := 0
				for _, r := range base.Memory.Ranges() {
					for pfn := r.Start / ps; pfn <= (r.End-1)/ps; pfn += 3 {
						if base.Memory.State(pfn) != PagePresent || f.Memory.State(pfn) != PagePresent {
							continue
						}
						if _, err := base.Memory.ReadPhys(a, pfn*ps); err != nil {
							t.Fatalf("%s: %v", ds[0].ID, err)
						}
						if _, err := f.Memory.ReadPhys(b, pfn*ps); err != nil {
							t.Fatalf("%s: %v", ds[i+1].ID, err)
						}
						if !bytes.Equal(a, b) {
							t.Fatalf("page %#x differs between %s and %s", pfn, ds[0].ID, ds[i+1].ID)
						}
						compared++
					}
				}
				if compared < 1000 {
					t.Errorf("%s and %s share only %d sampled pages", ds[0].ID, ds[i+1].ID, compared)
				}
				t.Logf("%s = %s on %d sampled pages", ds[0].ID, ds[i+1].ID, compared)
			}
		})
	}
	if groups == 0 {
		t.Fatal("the lab corpus has no crash with two ELF dumps")
	}
}

// TestCorpusELFTruncated cuts a real ELF dump short at several points:
// opening gives a clear error, or a File whose lost pages read as missing.
func TestCorpusELFTruncated(t *testing.T) {
	m := corpus.Require(t)
	elfs := m.Select(func(d corpus.Dump) bool { return d.Format == "elf" })
	if len(elfs) == 0 {
		t.Fatal("the lab corpus has no ELF dumps")
	}
	d := elfs[0]
	r, err := os.Open(m.Path(d.Files[0]))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	st, err := r.Stat()
	if err != nil {
		t.Fatal(err)
	}
	size := st.Size()
	for _, cut := range []int64{10, 64, 200, 0x300, 0x1000, size / 3, size - 4096 - 1} {
		f, err := NewFile(io.NewSectionReader(r, 0, cut), cut, "cut.vmcore")
		if err != nil {
			if !strings.Contains(err.Error(), "cut.vmcore") {
				t.Errorf("cut at %#x: error %q does not name the file", cut, err)
			}
			continue
		}
		counts := elfPageCounts(f.Memory)
		if counts[PageMissing] == 0 {
			t.Errorf("cut at %#x: no missing pages: %v", cut, counts)
		}
		checkMemoryContract(t, f.Memory)
	}
}

// damagedReader is a real dump file with some bytes replaced.
type damagedReader struct {
	r     io.ReaderAt
	off   int64
	patch []byte
}

func (p damagedReader) ReadAt(b []byte, off int64) (int, error) {
	n, err := p.r.ReadAt(b, off)
	for i := 0; i < n; i++ {
		if j := off + int64(i) - p.off; j >= 0 && j < int64(len(p.patch)) {
			b[i] = p.patch[j]
		}
	}
	return n, err
}

// TestCorpusELFCorrupted damages the headers and notes of a real
// /proc/vmcore copy: each damage gives a clear error or a File that says
// what is wrong.
func TestCorpusELFCorrupted(t *testing.T) {
	m := corpus.Require(t)
	raw := m.Select(func(d corpus.Dump) bool { return d.Format == "elf" && d.DumpLevel < 0 })
	if len(raw) == 0 {
		t.Fatal("the lab corpus has no unfiltered ELF dump")
	}
	// One dump of each producer (QEMU, the kernel's /proc/vmcore).
	seen := map[string]bool{}
	for _, d := range raw {
		if !seen[d.Producer] {
			seen[d.Producer] = true
			t.Run(d.ID, func(t *testing.T) { testCorruptedELF(t, m.Path(d.Files[0])) })
		}
	}
}

func testCorruptedELF(t *testing.T, path string) {
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 1<<16)
	if _, err := fh.ReadAt(head, 0); err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	phoff := le.Uint64(head[32:])
	phnum := int(le.Uint16(head[56:]))
	ph := func(typ uint32) int { // offset of the first program header of typ
		for i := 0; i < phnum; i++ {
			if o := int(phoff) + i*phdrSize; le.Uint32(head[o:]) == typ {
				return o
			}
		}
		t.Fatalf("no program header of type %d", typ)
		return 0
	}
	note := ph(ptNote)
	lastLoad := int(phoff) + (phnum-1)*phdrSize
	if le.Uint32(head[lastLoad:]) != ptLoad {
		t.Fatal("the last program header is not a PT_LOAD")
	}
	noteOff := int(le.Uint64(head[note+8:]))
	vmci := noteOff + bytes.Index(head[noteOff:], []byte("OSRELEASE="))
	tests := []struct {
		name  string
		patch func(b []byte)
		err   string              // the open fails with this
		check func(f *File) error // or the File passes this
	}{
		{name: "PN_XNUM without section headers", patch: func(b []byte) { le.PutUint16(b[56:], pnXNum) }, err: "PN_XNUM"},
		{name: "e_phnum far too big", patch: func(b []byte) { le.PutUint16(b[56:], 0xfffe) }, err: ""},
		{name: "e_phoff past the end", patch: func(b []byte) { le.PutUint64(b[32:], uint64(st.Size())) }, err: "past the end"},
		{name: "PT_NOTE size absurd", patch: func(b []byte) { le.PutUint64(b[note+32:], 1<<62) }, err: "PT_NOTE"},
		{name: "note descsz absurd", patch: func(b []byte) { le.PutUint32(b[noteOff+4:], 0x7fffffff) }, err: "runs past the end"},
		{name: "NT_PRSTATUS cut short", patch: func(b []byte) { le.PutUint32(b[noteOff+4:], 100) }, err: ""},
		{name: "VMCOREINFO line damaged", patch: func(b []byte) { b[vmci+len("OSRELEASE")] = '#' }, check: func(f *File) error {
			if f.VMCoreInfo == nil || f.VMCoreInfo.Err == nil || f.VMCoreInfo.BuildID() == "" {
				return fmt.Errorf("VMCOREINFO %+v: want the damage reported and the other lines kept", f.VMCoreInfo)
			}
			return nil
		}},
		{name: "a PT_LOAD's data beyond the end", patch: func(b []byte) { le.PutUint64(b[lastLoad+8:], uint64(st.Size())+1<<20) }, check: func(f *File) error {
			if c := elfPageCounts(f.Memory); c[PageMissing] == 0 {
				return fmt.Errorf("pages %v: want some missing", c)
			}
			return nil
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := append([]byte{}, head...)
			tc.patch(b)
			f, err := NewFile(damagedReader{fh, 0, b}, st.Size(), "damaged.vmcore")
			switch {
			case err != nil && tc.check != nil:
				t.Fatalf("open failed: %v", err)
			case err != nil:
				if !strings.Contains(err.Error(), "damaged.vmcore") || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("error %q: want one line naming the file and saying %q", err, tc.err)
				}
				t.Logf("%v", err)
			case tc.check != nil:
				if err := tc.check(f); err != nil {
					t.Fatal(err)
				}
			default:
				t.Fatalf("opened without complaint")
			}
		})
	}
}
