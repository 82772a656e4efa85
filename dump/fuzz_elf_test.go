package dump

import (
	"bytes"
	"errors"
	"testing"
)

// The fuzz contract for the ELF side: no panic, no hang, no allocation
// beyond what the input's size justifies; on error no File; on success a
// File whose Memory answers consistently. Seed corpora are in
// testdata/fuzz/<FuzzName>/ (headers and notes of real dumps, cut short)
// beside the seeds added here.

func FuzzOpenELF(f *testing.F) {
	seeds := []testCore{
		{notes: []Note{
			{Name: "CORE", Type: NTPRStatus, Desc: x86PRStatus(1, 0)},
			{Name: "QEMU", Type: NTQEMUCPU, Desc: qemuCPUState(440)},
			{Name: "VMCOREINFO", Desc: []byte(sampleVMCoreInfo)},
		}, loads: []testLoad{{paddr: 0, filesz: 2 * pg, memsz: 2 * pg}, {paddr: 0x100000, filesz: pg, memsz: 4 * pg}}},
		{machine: emAArch64, flags: dumpELFIncomplete, loads: []testLoad{{paddr: 0x40000000, filesz: pg, memsz: 300 * pg}, {paddr: 0x40000000 + 100*pg, filesz: pg, memsz: pg}}},
		{xnum: true, loads: []testLoad{{paddr: pg, filesz: 16, memsz: pg}}},
	}
	for _, c := range seeds {
		f.Add(c.build(f))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := NewFile(bytes.NewReader(b), int64(len(b)), "fuzz.vmcore")
		if err != nil {
			if file != nil {
				t.Fatalf("File returned with error %v", err)
			}
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		checkMemoryContract(t, file.Memory)
		file.PhysBase()
	})
}

// checkMemoryContract exercises a Memory: sorted disjoint Ranges, a state
// for the ends of each range that agrees with ReadPhys.
func checkMemoryContract(t *testing.T, m Memory) {
	t.Helper()
	ps := uint64(m.PageSize())
	if ps == 0 || ps&(ps-1) != 0 {
		t.Fatalf("page size %d", ps)
	}
	ranges := m.Ranges()
	for i, r := range ranges {
		if r.End <= r.Start || i > 0 && r.Start <= ranges[i-1].End {
			t.Fatalf("range %d %#x not sorted, disjoint and non-empty: %#x", i, r, ranges)
		}
	}
	if len(ranges) > 32 {
		ranges = ranges[:32]
	}
	buf := make([]byte, 64)
	for _, r := range ranges {
		for _, addr := range []uint64{r.Start, r.End - 1} {
			st := m.State(addr / ps)
			if st == PageNotRAM {
				t.Fatalf("address %#x in range %#x is in a page that is not RAM", addr, r)
			}
			n, err := m.ReadPhys(buf[:1], addr)
			var pe *PageError
			switch {
			case err == nil && n != 1:
				t.Fatalf("ReadPhys at %#x: %d bytes, no error", addr, n)
			case err != nil && !errors.As(err, &pe):
				t.Fatalf("ReadPhys at %#x: %v is not a PageError", addr, err)
			case err != nil && pe.State == PageNotRAM:
				t.Fatalf("ReadPhys at %#x in RAM range %#x: %v", addr, r, err)
			}
		}
		m.ReadPhys(buf, r.End-1)
	}
	if n, err := m.ReadPhys(buf, ^uint64(0)-10); err == nil || n > 11 {
		t.Fatalf("read past the top of the address space: %d, %v", n, err)
	}
}

func FuzzParseNotes(f *testing.F) {
	f.Add(encodeNotes([]Note{
		{Name: "CORE", Type: NTPRStatus, Desc: x86PRStatus(1, 0)},
		{Name: "QEMU", Type: NTQEMUCPU, Desc: qemuCPUState(440)},
		{Name: "VMCOREINFO", Desc: []byte(sampleVMCoreInfo)},
	}))
	f.Add(encodeNotes([]Note{{Name: "CORE", Type: NTPRStatus, Desc: make([]byte, prstatusSize(ArchARM64))}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		notes, err := parseNotes(b, "fuzz", 0)
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a FormatError", err)
			}
		}
		for _, a := range []Arch{ArchX86_64, ArchARM64, ""} {
			file := &File{Path: "fuzz", Arch: a}
			if err := file.applyNotes(notes); err != nil {
				continue
			}
			for _, p := range file.PRStatus {
				if len(p.Regs) != prstatusRegs[p.Arch] {
					t.Fatalf("%s NT_PRSTATUS with %d registers", p.Arch, len(p.Regs))
				}
			}
			for _, c := range file.QEMUCPUs {
				if len(c.Regs) != qemuCPUNRegs {
					t.Fatalf("QEMU CPU with %d registers", len(c.Regs))
				}
			}
		}
	})
}

func FuzzParseVMCoreInfo(f *testing.F) {
	f.Add([]byte(sampleVMCoreInfo))
	f.Add([]byte("A=1\nbad\n=2\nNUMBER(x)=0x\nSYMBOL(y)=-1\n\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := ParseVMCoreInfo(b)
		if v == nil {
			if err == nil {
				t.Fatal("nil info without an error")
			}
			return
		}
		if v.Err != err {
			t.Fatalf("Err %v, returned %v", v.Err, err)
		}
		for _, k := range v.Keys() {
			if _, ok := v.Get(k); !ok {
				t.Fatalf("key %q listed but not found", k)
			}
		}
		v.Symbol("init_uts_ns")
		v.Number("phys_base")
		v.Offset("page", "flags")
		v.Size("page")
		v.Length("mem_section")
		v.PageSize()
		v.KernelOffset()
		v.CrashTime()
	})
}
