// Package collect is salvage's collector, what makedumpfile does: it reads
// a crashed kernel's memory (/proc/vmcore in the capture kernel, or any
// dump package dump opens), decides page by page what to keep at a dump
// level, and writes a smaller dump (kdump-compressed, ELF, or either as a
// flattened stream) with the writers of package dump.
//
// Classification reads the kernel's struct page array through SPARSEMEM
// sections using only VMCOREINFO, as makedumpfile does: in the capture
// kernel there is no vmlinux and no BTF. The semantics of each dump-level
// bit are those of makedumpfile's __exclude_unnecessary_pages
// (makedumpfile.c); see classify.go. An entry a bit needs that VMCOREINFO
// lacks drops that bit, and the plan says so (plan notes).
//
// Memory stays bounded whatever the size of the machine, as in
// makedumpfile's cyclic mode: frames are classified in windows of 2^21
// (walk.go), once to count and write the bitmaps, again while the pages
// are written; pages go through a pipeline of at most 2×workers batches
// of 256 pages (pipeline.go).
package collect
