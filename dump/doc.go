// Package dump reads Linux kernel crash dumps: ELF cores (/proc/vmcore
// copies, QEMU's dump-guest-memory, makedumpfile -E), kdump-compressed
// files (makedumpfile and QEMU, header versions 1–6, every codec),
// makedumpfile's flattened stream and split dumps.
//
// Every format is presented as a File: physical memory behind the Memory
// interface, with a state for every page frame, plus the ELF notes
// (NT_PRSTATUS per CPU, VMCOREINFO, QEMU CPU state). Formats are detected
// from content, never from file names. Layouts follow makedumpfile's
// diskdump_mod.h and the kernel's include/uapi/linux/elf.h.
package dump
