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
//
// What the analyzer needs (the kernel image, its page tables, the tasks
// and their stacks, the memory nodes, per-CPU areas and the PID IDR:
// needs.go) is kept whatever the level, and written first: a dump cut
// short — a full disk, a killed collector, a power cut in the capture
// kernel — is marked incomplete from its first write and still opens in
// salvage and crash. A source that lacks pages it should hold (a
// truncated copy) leaves them missing in the dump, which is marked
// incomplete, and Collect returns a SourceError. Options.RetryLevels
// starts again at a higher level when the destination runs out of space;
// CollectSplit writes makedumpfile's --split parts (split.go).
package collect
