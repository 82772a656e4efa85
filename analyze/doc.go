// Package analyze is salvage's crash-compatible analysis session: a table
// of commands (rd, sym, whatis, struct, union, p, vtop, ptov, help, quit)
// run against one opened dump, from -c arguments, an -i script or an
// interactive prompt. The kernel model (package kernel: symbols, types,
// page tables) is built on first use, from a debug vmlinux or from the
// dump's own kallsyms and BTF.
//
// Command behaviour and output formats follow the crash utility
// (github.com/crash-utility/crash: cmdline.c for the session, memory.c's
// cmd_rd, display_memory, cmd_vtop and cmd_ptov, symbols.c's cmd_sym,
// cmd_whatis, cmd_struct and cmd_p, with gdb's value printing as crash
// configures it), checked against crash's own output.
package analyze
