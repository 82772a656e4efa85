// Package collect is salvage's collector, what makedumpfile does: it reads
// a crashed kernel's memory (/proc/vmcore in the capture kernel, or any
// dump package dump opens), decides page by page what to keep at a dump
// level, and writes a smaller dump (kdump-compressed, ELF or flattened).
//
// Classification reads the kernel's struct page array through SPARSEMEM
// sections using only VMCOREINFO, as makedumpfile does: in the capture
// kernel there is no vmlinux and no BTF. The semantics of each dump-level
// bit are those of makedumpfile's __exclude_unnecessary_pages
// (makedumpfile.c); see classify.go.
package collect
