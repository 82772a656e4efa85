// Package debuginfo holds what the analyzer knows about a kernel's code and
// data: symbols (from a vmlinux's ELF symbol table, a System.map, or the
// kallsyms tables decoded from the dump's own memory, plus each loaded
// module's) and types (from DWARF in a debug vmlinux, or from the BTF the
// kernel carries), behind one model: Symbols and Types.
//
// This package never imports kernel/ or analyze/. Reading the dump's
// memory (for kallsyms and BTF without a vmlinux) goes through the small
// VirtReader interface that the caller provides.
package debuginfo
