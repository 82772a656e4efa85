package kernel

import (
	"encoding/binary"
	"fmt"
	"strings"

	"salvage/arch"
	"salvage/arch/amd64"
	"salvage/debuginfo"
)

// initStacksAMD64 reads what x86_64 backtraces need: the ORC tables of
// vmlinux and the modules, each CPU's IRQ and exception stacks, the
// running tasks and the panic task.
func (k *Kernel) initStacksAMD64(st *stackState) error {
	lay, err := k.orcLayout()
	if err != nil {
		return err
	}
	vm, err := k.vmlinuxORC(lay)
	if err != nil {
		return err
	}
	tables := []*amd64.ORCTable{vm}
	if mods, err := k.Modules(); err == nil {
		for _, m := range mods {
			if t, err := k.moduleORC(m, lay); err == nil && t != nil {
				tables = append(tables, t)
			}
		}
	}
	st.unw = &amd64.Unwinder{Tables: tables}
	st.thread = k.ThreadSize()
	st.start = amd64ActiveStart

	n, err := k.NrCPUIDs()
	if err != nil {
		return err
	}
	act, err := k.ActiveTasks()
	if err != nil {
		return err
	}
	st.active = map[uint64]int{}
	for cpu, t := range act {
		st.active[t.Address()] = cpu
	}
	st.cpuStk = make([][]arch.Stack, n)
	for cpu := 0; cpu < n; cpu++ {
		if _, ok := act[cpu]; !ok {
			continue
		}
		st.cpuStk[cpu] = k.cpuStacksAMD64(cpu)
	}
	st.pcpu = k.panicCPU()
	if t, ok := act[st.pcpu]; ok {
		st.panic = t.Address()
	} else {
		st.pcpu = -1
	}
	return nil
}

// orcLayout reads struct orc_entry (arch/x86/include/asm/orc_types.h)
// from the kernel's types: which bitfields it has says how to read it.
func (k *Kernel) orcLayout() (amd64.ORCLayout, error) {
	t, err := k.structType("orc_entry")
	if err != nil {
		return amd64.DefaultORCLayout, nil
	}
	return ORCLayoutOf(t)
}

// ORCLayoutOf is the ORC entry layout that struct orc_entry t describes
// (from DWARF or BTF): where each field is, and — from the width of its
// type bitfield — which numbering of entry types the kernel uses.
func ORCLayoutOf(t *debuginfo.Type) (amd64.ORCLayout, error) {
	l := amd64.ORCLayout{Size: int(sizeOf(t))}
	field := func(name string) (debuginfo.MemberPath, bool) {
		mp, err := lookupMember(t, name)
		return mp, err == nil
	}
	bits := func(name string) amd64.ORCBitfield {
		mp, ok := field(name)
		if !ok {
			return amd64.ORCBitfield{}
		}
		size := mp.BitSize
		if size == 0 {
			size = int(sizeOf(mp.Type)) * 8
		}
		return amd64.ORCBitfield{Offset: int(mp.Offset), Bit: mp.BitOffset, Size: size}
	}
	spo, ok1 := field("sp_offset")
	bpo, ok2 := field("bp_offset")
	if !ok1 || !ok2 {
		return l, fmt.Errorf("struct orc_entry lacks sp_offset or bp_offset: an ORC layout salvage does not know")
	}
	l.SPOffset, l.BPOffset = int(spo.Offset), int(bpo.Offset)
	l.SPReg, l.BPReg, l.Type = bits("sp_reg"), bits("bp_reg"), bits("type")
	l.End, l.Signal = bits("end"), bits("signal")
	// The 3-bit type of 6.4+ comes with its new numbering, in which 0 is
	// UNDEFINED and 1 END_OF_STACK.
	l.UndefinedEndOfStack = l.Type.Size >= 3
	return l, l.Validate()
}

// vmlinuxORC reads vmlinux's ORC table from the dump's memory, between
// the linker's __start_orc_unwind_ip / __stop_orc_unwind_ip and from
// __start_orc_unwind (include/asm-generic/vmlinux.lds.h): the same
// bytes as the vmlinux's .orc_unwind_ip and .orc_unwind sections, at
// their run-time addresses, and present with or without a vmlinux.
func (k *Kernel) vmlinuxORC(l amd64.ORCLayout) (*amd64.ORCTable, error) {
	ipStart, err := k.SymbolAddr("__start_orc_unwind_ip")
	if err != nil {
		return nil, fmt.Errorf("backtrace: the kernel has no ORC tables (built without CONFIG_UNWINDER_ORC?): %w", err)
	}
	ipStop, err := k.SymbolAddr("__stop_orc_unwind_ip")
	if err != nil {
		return nil, err
	}
	orcStart, err := k.SymbolAddr("__start_orc_unwind")
	if err != nil {
		return nil, err
	}
	if ipStop < ipStart || ipStop-ipStart > 64<<20 {
		return nil, fmt.Errorf("backtrace: ORC ip table %#x–%#x is not a plausible size", ipStart, ipStop)
	}
	n := (ipStop - ipStart) / 4
	return k.readORC("vmlinux", ipStart, orcStart, n, l)
}

func (k *Kernel) readORC(name string, ipAddr, orcAddr, n uint64, l amd64.ORCLayout) (*amd64.ORCTable, error) {
	ip := make([]byte, n*4)
	if err := k.Read(ip, ipAddr); err != nil {
		return nil, fmt.Errorf("%s ORC ip table: %w", name, err)
	}
	orc := make([]byte, n*uint64(l.Size))
	if err := k.Read(orc, orcAddr); err != nil {
		return nil, fmt.Errorf("%s ORC entries: %w", name, err)
	}
	return amd64.ParseORC(name, ip, ipAddr, orc, l)
}

// moduleORC reads a module's ORC table: struct module's arch member
// (struct mod_arch_specific: num_orcs, orc_unwind_ip, orc_unwind), which
// module_finalize() fills from the module's own sections.
func (k *Kernel) moduleORC(m Module, l amd64.ORCLayout) (*amd64.ORCTable, error) {
	mod, err := k.ObjectOf(m.Addr, "struct module")
	if err != nil {
		return nil, err
	}
	n, err := memberUint(mod, "arch.num_orcs")
	if err != nil || n == 0 || n > 1<<22 {
		return nil, err
	}
	ip, err := memberUint(mod, "arch.orc_unwind_ip")
	if err != nil {
		return nil, err
	}
	orc, err := memberUint(mod, "arch.orc_unwind")
	if err != nil {
		return nil, err
	}
	return k.readORC(m.Name, ip, orc, n, l)
}

// exceptionStackLabels are crash's names of the x86_64 exception stacks,
// by struct cea_exception_stacks member (arch/x86/include/asm/cpu_entry_area.h).
var exceptionStackLabels = map[string]string{
	"DF_stack":  "DOUBLEFAULT",
	"NMI_stack": "NMI",
	"DB_stack":  "DEBUG",
	"MCE_stack": "MCE",
	"VC_stack":  "VC",
	"VC2_stack": "VC2",
}

// cpuStacksAMD64 lists cpu's IRQ stack and exception stacks. Absent ones
// (older layouts, a read failure) are left out: a walk onto them then
// stops with an error rather than misreading.
func (k *Kernel) cpuStacksAMD64(cpu int) []arch.Stack {
	var out []arch.Stack
	irqSize := k.ThreadSize()
	if ts, err := k.types(); err == nil {
		if t, err := ts.Named("struct irq_stack"); err == nil && sizeOf(t) > 0 {
			irqSize = uint64(sizeOf(t))
		}
	}
	// hardirq_stack_ptr is the top of the IRQ stack less one word
	// (arch/x86/kernel/irq_64.c); 6.2+ keeps it in pcpu_hot.
	var top uint64
	if a, err := k.PerCPUAddr("hardirq_stack_ptr", cpu); err == nil {
		top, _ = k.ReadPointer(a)
	} else if v, err := k.PerCPU("pcpu_hot", cpu); err == nil {
		if p, err := v.Member("hardirq_stack_ptr"); err == nil {
			top, _ = p.Uint()
		}
	}
	if top != 0 {
		top = (top + 8 + 4095) &^ 4095
		out = append(out, arch.Stack{Base: top - irqSize, Top: top, Label: "IRQ stack"})
	}
	// The exception stacks live in the CPU's entry area; the per-CPU
	// cea_exception_stacks points at them.
	if a, err := k.PerCPUAddr("cea_exception_stacks", cpu); err == nil {
		if base, err := k.ReadPointer(a); err == nil && base != 0 {
			if t, err := k.structType("cea_exception_stacks"); err == nil {
				for _, m := range t.Members {
					label, ok := exceptionStackLabels[m.Name]
					if !ok || !strings.HasSuffix(m.Name, "_stack") {
						continue
					}
					sz := uint64(sizeOf(m.Type))
					if sz == 0 {
						continue
					}
					s := base + uint64(m.Offset)
					out = append(out, arch.Stack{Base: s, Top: s + sz, Label: label + " exception stack"})
				}
			}
		}
	}
	return out
}

// amd64ActiveStart places the start of a running task's walk as crash
// does for a kdump (x86_64_get_dumpfile_stack_frame in crash's x86_64.c):
// the registers in the CPU's crash note were saved inside the kernel's
// crash path, so crash looks on the task's stack, then on the CPU's IRQ
// and exception stacks, for the return address that marks where the
// interesting part begins — into machine_kexec on the panicking CPU,
// into crash_nmi_callback on the CPUs the NMI stopped — and starts there.
// Failing that (a dump of a live machine), the note's registers are used.
func amd64ActiveStart(k *Kernel, st *stackState, task Value, cpu int, ts arch.Stack) (arch.Start, error) {
	isPanic := st.panic == task.Address()
	stacks := append([]arch.Stack{ts}, st.cpuStk[cpu]...)
	var panicAt *arch.Start
	var kexecFallback *arch.Start
	for _, s := range stacks {
		words := make([]byte, s.Top-s.Base)
		if err := k.Read(words, s.Base); err != nil {
			// A stack the dump lacks a page of: search what can be read.
			words = k.readPresent(s)
		}
		for i := 0; i+8 <= len(words); i += 8 {
			w := binary.LittleEndian.Uint64(words[i:])
			name := k.textSymbol(w)
			if name == "" {
				continue
			}
			at := arch.Start{PC: w, SP: s.Base + uint64(i) + 8, ReturnAddress: true}
			switch name {
			case "machine_kexec":
				return at, nil
			case "crash_kexec":
				if k.callTarget(w) == "machine_kexec" {
					return at, nil
				}
				if kexecFallback == nil {
					kexecFallback = &at
				}
			case "panic":
				a := at
				panicAt = &a
			case "die":
				return at, nil
			case "crash_nmi_callback":
				if !isPanic {
					return at, nil
				}
			}
		}
		if panicAt != nil {
			return *panicAt, nil
		}
		if kexecFallback != nil {
			return *kexecFallback, nil
		}
	}
	return k.noteStart(cpu)
}

// readPresent reads a stack a page at a time, leaving zeroes where the
// dump lacks a page.
func (k *Kernel) readPresent(s arch.Stack) []byte {
	out := make([]byte, s.Top-s.Base)
	for off := uint64(0); off < uint64(len(out)); off += 4096 {
		end := off + 4096
		if end > uint64(len(out)) {
			end = uint64(len(out))
		}
		_ = k.Read(out[off:end], s.Base+off)
	}
	return out
}

// textSymbol names the kernel or module function containing addr, or ""
// when addr is not in text.
func (k *Kernel) textSymbol(addr uint64) string {
	if k.Symbols == nil || addr < 0xffff800000000000 {
		return ""
	}
	s, _, ok := k.Symbols.ByAddr(addr)
	if !ok || (s.Type != 'T' && s.Type != 't' && s.Type != 'W' && s.Type != 'w') {
		return ""
	}
	return s.Name
}

// callTarget names the function a direct call (e8 rel32) just before the
// return address ret calls, or "".
func (k *Kernel) callTarget(ret uint64) string {
	var b [5]byte
	if k.Read(b[:], ret-5) != nil || b[0] != 0xe8 {
		return ""
	}
	target := ret + uint64(int64(int32(binary.LittleEndian.Uint32(b[1:]))))
	return k.textSymbol(target)
}

// noteStart is the registers of cpu's NT_PRSTATUS note (or QEMU's note).
func (k *Kernel) noteStart(cpu int) (arch.Start, error) {
	var regs []uint64
	switch {
	case cpu < len(k.Dump.PRStatus) && len(k.Dump.PRStatus[cpu].Regs) >= amd64.NumPTRegs:
		regs = k.Dump.PRStatus[cpu].Regs[:amd64.NumPTRegs]
	case cpu < len(k.Dump.QEMUCPUs) && len(k.Dump.QEMUCPUs[cpu].Regs) >= 18:
		// QEMUCPUState's order: rax rbx rcx rdx rsi rdi rsp rbp r8–r15 rip rflags.
		q := k.Dump.QEMUCPUs[cpu]
		regs = make([]uint64, amd64.NumPTRegs)
		for i, r := range []int{amd64.RegAX, amd64.RegBX, amd64.RegCX, amd64.RegDX, amd64.RegSI, amd64.RegDI, amd64.RegSP, amd64.RegBP,
			amd64.RegR8, amd64.RegR9, amd64.RegR10, amd64.RegR11, amd64.RegR12, amd64.RegR13, amd64.RegR14, amd64.RegR15, amd64.RegIP, amd64.RegFlags} {
			regs[r] = q.Regs[i]
		}
		regs[amd64.RegCS], regs[amd64.RegSS] = uint64(q.CS.Selector), uint64(q.SS.Selector)
	default:
		return arch.Start{}, fmt.Errorf("CPU %d: the dump has no registers for it (no NT_PRSTATUS note)", cpu)
	}
	regs = append([]uint64(nil), regs...)
	return arch.Start{PC: regs[amd64.RegIP], SP: regs[amd64.RegSP], FP: regs[amd64.RegBP], Regs: regs}, nil
}

// alignmentFrames are the stale frames crash shows above a kernel-mode
// exception frame e. Before pushing its iret frame, an x86_64 CPU aligns
// the stack pointer down to 16 bytes (Intel SDM vol. 3, 6.14.2, "64-Bit
// Mode Stack Frame"), so when the interrupted stack pointer was not
// aligned, one word lies between the end of struct pt_regs and the
// interrupted stack, holding whatever was there before. crash goes on
// reading the stack from the end of pt_regs, and a kernel text address
// in that slot (often the interrupted RIP itself) becomes a frame of its
// own; salvage's unwind tables know better, and the frame is marked
// Stale.
func (k *Kernel) alignmentFrames(e *arch.ExceptionFrame) []Frame {
	if e == nil || e.User || e.Partial || len(e.Regs) < amd64.NumPTRegs || k.Symbols == nil {
		return nil
	}
	// The slot exists only where the frame was pushed on the stack it
	// interrupted, one word below that stack pointer (an exception taken
	// on its own stack, an NMI's, has none).
	end := e.Addr + 8*amd64.NumPTRegs
	if e.Regs[amd64.RegSP] != end+8 {
		return nil
	}
	w, err := k.ReadPointer(end)
	if err != nil {
		return nil
	}
	s, off, ok := k.Symbols.ByAddr(w)
	if !ok || !isTextSymbolType(s.Type) {
		return nil
	}
	return []Frame{{SP: end, PC: w, Symbol: s.Name, Offset: off, Module: s.Module, Stale: true}}
}

// isTextSymbolType reports an nm-style type letter of code.
func isTextSymbolType(t byte) bool {
	switch t {
	case 'T', 't', 'W', 'w':
		return true
	}
	return false
}
