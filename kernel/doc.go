// Package kernel presents a dumped Linux kernel as typed objects: globals
// and per-CPU variables found by symbol and typed by the debug info, values
// read lazily from the dump through the architecture's translator, the
// kernel's linked structures (list_head, hlist, rb_tree), and checks that a
// vmlinux belongs to a dump.
//
// It sits between debuginfo (symbols, types) and analyze (commands): it
// knows kernel data structures, never output formats.
package kernel
