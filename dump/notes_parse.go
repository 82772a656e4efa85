package dump

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Elf64_Nhdr (include/uapi/linux/elf.h): three 32-bit words, then the
// name and the descriptor, each padded to a multiple of 4 bytes.
const nhdrSize = 12

// parseNotes parses a buffer of ELF notes. off is the buffer's offset in
// the file named name, for messages. Each Note's Desc aliases b.
//
// The buffer may end in zero padding: an all-zero header ends the list, as
// it does for the kernel when it merges per-CPU note buffers into
// /proc/vmcore (fs/proc/vmcore.c stops at the first empty name).
func parseNotes(b []byte, name string, off int64) ([]Note, error) {
	var notes []Note
	le := binary.LittleEndian
	pos := 0
	for pos < len(b) {
		if len(b)-pos < nhdrSize {
			if allZero(b[pos:]) {
				break
			}
			return notes, &FormatError{File: name, Off: off + int64(pos),
				Msg: fmt.Sprintf("ELF note header cut short: %d bytes left, need %d", len(b)-pos, nhdrSize)}
		}
		namesz := uint64(le.Uint32(b[pos:]))
		descsz := uint64(le.Uint32(b[pos+4:]))
		typ := le.Uint32(b[pos+8:])
		if namesz == 0 && descsz == 0 && typ == 0 {
			break
		}
		nameAt := uint64(pos) + nhdrSize
		descAt := nameAt + align4(namesz)
		end := descAt + align4(descsz)
		// The descriptor's padding may be missing after the last note.
		if descAt+descsz > uint64(len(b)) {
			return notes, &FormatError{File: name, Off: off + int64(pos),
				Msg: fmt.Sprintf("ELF note (name size %d, descriptor size %d) runs past the end of its %d-byte note segment", namesz, descsz, len(b))}
		}
		n := Note{
			Name: string(bytes.TrimRight(b[nameAt:nameAt+namesz], "\x00")),
			Type: typ,
			Desc: b[descAt : descAt+descsz : descAt+descsz],
		}
		notes = append(notes, n)
		if end > uint64(len(b)) {
			break
		}
		pos = int(end)
	}
	return notes, nil
}

func align4(n uint64) uint64 { return (n + 3) &^ 3 }

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// struct elf_prstatus (include/linux/elfcore.h) on 64-bit Linux: pr_info
// (3 ints), pr_cursig (short, padded), pr_sigpend, pr_sighold (longs),
// pr_pid, pr_ppid, pr_pgrp, pr_sid (ints), four struct timevals (16 bytes
// each), then pr_reg, then int pr_fpvalid padded to 8.
const (
	prstatusPIDOff = 32
	prstatusRegOff = 112
)

// prstatusRegs is the number of registers in elf_gregset_t: x86_64 struct
// user_regs_struct (arch/x86/include/asm/user_64.h), arm64 struct
// user_pt_regs (arch/arm64/include/uapi/asm/ptrace.h).
var prstatusRegs = map[Arch]int{
	ArchX86_64: 27,
	ArchARM64:  34,
}

// prstatusSize is sizeof(struct elf_prstatus) for an architecture.
func prstatusSize(a Arch) int {
	return prstatusRegOff + prstatusRegs[a]*8 + 8
}

// parsePRStatus decodes one NT_PRSTATUS descriptor. When arch is unknown
// it is inferred from the descriptor's size.
func parsePRStatus(desc []byte, arch Arch) (PRStatus, error) {
	if _, ok := prstatusRegs[arch]; !ok {
		arch = ""
		for a := range prstatusRegs {
			if len(desc) == prstatusSize(a) {
				arch = a
			}
		}
		if arch == "" {
			return PRStatus{}, fmt.Errorf("NT_PRSTATUS of %d bytes matches no known architecture's struct elf_prstatus", len(desc))
		}
	}
	nregs := prstatusRegs[arch]
	if len(desc) < prstatusRegOff+nregs*8 {
		return PRStatus{}, fmt.Errorf("NT_PRSTATUS is %d bytes, %s struct elf_prstatus needs %d", len(desc), arch, prstatusSize(arch))
	}
	le := binary.LittleEndian
	p := PRStatus{
		PID:  int32(le.Uint32(desc[prstatusPIDOff:])),
		Arch: arch,
		Regs: make([]uint64, nregs),
	}
	for i := range p.Regs {
		p.Regs[i] = le.Uint64(desc[prstatusRegOff+8*i:])
	}
	return p, nil
}

// struct QEMUCPUState (qemu target/i386/arch_dump.c): version and size
// (uint32 each), 18 general registers, ten QEMUCPUSegments (selector,
// limit, flags, pad: uint32; base: uint64) for cs ds es fs gs ss ldt tr gdt
// idt, cr[5], and — in notes whose size says so — kernel_gs_base.
const (
	qemuCPURegsOff   = 8
	qemuCPUNRegs     = 18
	qemuCPUSegOff    = qemuCPURegsOff + qemuCPUNRegs*8 // 152
	qemuCPUSegSize   = 24
	qemuCPUCROff     = qemuCPUSegOff + 10*qemuCPUSegSize // 392
	qemuCPUMinSize   = qemuCPUCROff + 5*8                // 432
	qemuCPUKGSOff    = qemuCPUMinSize                    // 432
	qemuCPUSizeWithK = qemuCPUKGSOff + 8                 // 440
)

func parseQEMUCPU(desc []byte) (QEMUCPU, error) {
	if len(desc) < qemuCPUMinSize {
		return QEMUCPU{}, fmt.Errorf("QEMU CPU state note is %d bytes, QEMUCPUState needs at least %d", len(desc), qemuCPUMinSize)
	}
	le := binary.LittleEndian
	size := le.Uint32(desc[4:])
	c := QEMUCPU{Version: le.Uint32(desc), Regs: make([]uint64, qemuCPUNRegs)}
	for i := range c.Regs {
		c.Regs[i] = le.Uint64(desc[qemuCPURegsOff+8*i:])
	}
	segs := []*QEMUSegment{&c.CS, &c.DS, &c.ES, &c.FS, &c.GS, &c.SS, &c.LDT, &c.TR, &c.GDT, &c.IDT}
	for i, s := range segs {
		b := desc[qemuCPUSegOff+qemuCPUSegSize*i:]
		*s = QEMUSegment{Selector: le.Uint32(b), Limit: le.Uint32(b[4:]), Flags: le.Uint32(b[8:]), Base: le.Uint64(b[16:])}
	}
	for i := range c.CR {
		c.CR[i] = le.Uint64(desc[qemuCPUCROff+8*i:])
	}
	if size >= qemuCPUSizeWithK && len(desc) >= qemuCPUSizeWithK {
		c.KernelGSBase = le.Uint64(desc[qemuCPUKGSOff:])
		c.HasKernelGSBase = true
	}
	return c, nil
}

// applyNotes records a dump's notes in f: every note in f.Notes, the
// CPUs' NT_PRSTATUS (decoded for f.Arch, which the caller sets first),
// QEMU's CPU states, and the VMCOREINFO note. f.CPUs is set from the
// NT_PRSTATUS count (or QEMU's) unless the caller already knows it.
//
// A note that is too short for its structure is an error. A VMCOREINFO
// note with malformed lines is not: its good lines are kept and the
// problem is left in VMCoreInfo.Err, since the rest of the dump is sound.
func (f *File) applyNotes(notes []Note) error {
	f.Notes = notes
	f.PRStatus = nil
	f.QEMUCPUs = nil
	for i, n := range notes {
		switch {
		case n.Name == "CORE" && n.Type == NTPRStatus:
			p, err := parsePRStatus(n.Desc, f.Arch)
			if err != nil {
				return &FormatError{File: f.Path, Off: -1, Msg: fmt.Sprintf("note %d: %v", i, err)}
			}
			f.PRStatus = append(f.PRStatus, p)
		case n.Name == "QEMU" && n.Type == NTQEMUCPU:
			c, err := parseQEMUCPU(n.Desc)
			if err != nil {
				return &FormatError{File: f.Path, Off: -1, Msg: fmt.Sprintf("note %d: %v", i, err)}
			}
			f.QEMUCPUs = append(f.QEMUCPUs, c)
		case n.Name == "VMCOREINFO" && f.VMCoreInfo == nil:
			info, err := ParseVMCoreInfo(n.Desc)
			if info == nil {
				// Nothing usable: keep the text so it can still be shown.
				info = &VMCoreInfo{Raw: string(n.Desc), Err: err}
			}
			f.VMCoreInfo = info
		}
	}
	if f.CPUs == 0 {
		f.CPUs = max(len(f.PRStatus), len(f.QEMUCPUs))
	}
	return nil
}

// x86_64 kernel image mapping (arch/x86/include/asm/page_64_types.h):
// __START_KERNEL_map, and KERNEL_IMAGE_SIZE as it is with KASLR (1 GiB);
// modules begin right after it.
const (
	x86StartKernelMap  = 0xffffffff80000000
	x86KernelImageSize = 1 << 30
)

// PhysBase reports the x86_64 kernel's phys_base, the offset of the kernel
// image in physical memory (for an address x in the image mapping,
// physical = x - __START_KERNEL_map + phys_base). source says where it came
// from. It is VMCOREINFO's NUMBER(phys_base) when the dump has one; for a
// QEMU dump without it, the kernel-image address in a CPU's rip is
// translated through that CPU's page tables (cr3). ok is false when neither
// is possible.
func (f *File) PhysBase() (base uint64, source string, ok bool) {
	if v, ok := f.VMCoreInfo.Number("phys_base"); ok {
		return uint64(v), "VMCOREINFO NUMBER(phys_base)", true
	}
	if cpu, base, ok := f.physBaseFromCPUs(); ok {
		return base, fmt.Sprintf("page-table walk of CPU %d's rip (QEMU CPU state)", cpu), true
	}
	return 0, "", false
}

// physBaseFromCPUs derives phys_base from the first QEMU CPU state whose
// rip is in the kernel image and whose page tables map it.
func (f *File) physBaseFromCPUs() (cpu int, base uint64, ok bool) {
	if f.Arch != ArchX86_64 || f.Memory == nil {
		return 0, 0, false
	}
	const (
		cr0PG   = 1 << 31
		cr4LA57 = 1 << 12
		ripReg  = 16 // QEMUCPUState: rax … r15, then rip
	)
	for i, c := range f.QEMUCPUs {
		rip := c.Regs[ripReg]
		if rip < x86StartKernelMap || rip-x86StartKernelMap >= x86KernelImageSize || c.CR[0]&cr0PG == 0 {
			continue
		}
		pa, err := x86Translate(f.Memory, c.CR[3], c.CR[4]&cr4LA57 != 0, rip)
		if err != nil {
			continue
		}
		// Modular arithmetic, as in the kernel: with KASLR the image
		// may sit lower in physical memory than its link-time offset,
		// and phys_base is then "negative".
		return i, pa - (rip - x86StartKernelMap), true
	}
	return 0, 0, false
}

// x86Translate walks x86_64 4- or 5-level page tables (Intel SDM vol. 3,
// "4-Level Paging and 5-Level Paging") rooted at cr3 to translate va.
func x86Translate(m Memory, cr3 uint64, la57 bool, va uint64) (uint64, error) {
	const (
		addrMask = 0x000ffffffffff000 // bits 51:12 of an entry or cr3
		present  = 1 << 0
		pageSize = 1 << 7 // PS: this entry maps a 1 GiB or 2 MiB page
	)
	levels, shift := 4, uint(39)
	if la57 {
		levels, shift = 5, 48
	}
	table := cr3 & addrMask
	for l := levels; l >= 1; l-- {
		var b [8]byte
		if _, err := m.ReadPhys(b[:], table+((va>>shift)&0x1ff)*8); err != nil {
			return 0, err
		}
		e := binary.LittleEndian.Uint64(b[:])
		if e&present == 0 {
			return 0, fmt.Errorf("virtual address %#x: not mapped (level %d entry %#x)", va, l, e)
		}
		if (l == 2 || l == 3) && e&pageSize != 0 {
			mask := uint64(1)<<shift - 1
			return (e & addrMask &^ mask) | va&mask, nil
		}
		table = e & addrMask
		shift -= 9
	}
	return table | va&0xfff, nil
}
