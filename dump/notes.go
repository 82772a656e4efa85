package dump

// Note is one ELF note (Elf64_Nhdr plus name and descriptor).
type Note struct {
	Name string // without the trailing NUL
	Type uint32
	Desc []byte
}

// Note types used in crash dumps (include/uapi/linux/elf.h).
const (
	NTPRStatus = 1 // NT_PRSTATUS: struct elf_prstatus
	NTVMCoreDD = 0 // VMCOREINFO note type in "VMCOREINFO" notes
	NTQEMUCPU  = 0 // QEMU's "QEMU" note holding QEMUCPUState
)

// PRStatus is one CPU's NT_PRSTATUS note: the registers the kernel saved
// when it stopped that CPU (crash_save_cpu), or QEMU's view of them.
type PRStatus struct {
	PID  int32 // pr_pid: the task running on the CPU
	Arch Arch
	// Regs is elf_gregset_t in the kernel's order for Arch: x86_64
	// struct user_regs_struct (27 registers: r15 … gs); arm64 struct
	// user_pt_regs (x0–x30, sp, pc, pstate).
	Regs []uint64
}

// QEMUCPU is QEMU's per-CPU state note (QEMUCPUState, target/i386/arch_dump.c):
// general registers plus segment and control registers.
type QEMUCPU struct {
	Version uint32   // QEMUCPUSTATE_VERSION (1 so far)
	Regs    []uint64 // rax rbx rcx rdx rsi rdi rsp rbp r8–r15 rip rflags
	// Segment registers and descriptor tables, in QEMUCPUState's order.
	CS, DS, ES, FS, GS, SS QEMUSegment
	LDT, TR, GDT, IDT      QEMUSegment
	CR                     [5]uint64
	KernelGSBase           uint64 // 0 when the note is too old to carry it
	HasKernelGSBase        bool   // the note's size covers kernel_gs_base
}

// QEMUSegment is QEMUCPUSegment (target/i386/arch_dump.c): a segment
// register or descriptor-table register as QEMU's CPU model holds it.
type QEMUSegment struct {
	Selector uint32
	Limit    uint32
	Flags    uint32
	Base     uint64
}
