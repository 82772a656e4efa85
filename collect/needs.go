package collect

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sort"

	"salvage/dump"
	"salvage/kernel"
)

// needs is what the analyzer cannot do without, in page frames: the
// kernel image (its text and data, and with them the BTF, the kallsyms
// and ORC tables, the printk ring and the IDT), the page-table pages that
// map it, every task's task_struct and kernel stack (and the signal_struct,
// struct pid and mm_struct ps reads of it), the memory nodes'
// pglist_data and the CPUs' static per-CPU areas. Whatever the dump
// level, these frames are kept (a level's page classes are heuristics; a
// makedumpfile that misreads a new kernel's page types drops in-use slab
// pages, and with them the task list).
type needs struct {
	pfns  []uint64 // sorted, unique
	tasks int
}

// has reports whether pfn is needed (never, for a nil needs).
func (n *needs) has(pfn uint64) bool {
	if n == nil {
		return false
	}
	i := sort.Search(len(n.pfns), func(i int) bool { return n.pfns[i] >= pfn })
	return i < len(n.pfns) && n.pfns[i] == pfn
}

// analyzerNeeds finds the needed frames of src through the kernel model
// built from the dump alone (VMCOREINFO, kallsyms and BTF): no vmlinux
// exists in a capture kernel.
func analyzerNeeds(src *dump.File) (*needs, error) {
	k, err := openKernel(src)
	if err != nil {
		return nil, err
	}
	// set gathers frames, with repeats: sorted and made unique at the end.
	var set []uint64
	ps := uint64(src.Memory.PageSize())
	addVirt := func(start, end uint64) error {
		for a := start &^ (ps - 1); a < end; {
			tr, err := k.Arch.VirtToPhys(a)
			if err != nil {
				return fmt.Errorf("%#x: %w", a, err)
			}
			for _, st := range tr.Steps {
				set = append(set, st.Addr/ps)
			}
			// The rest of a large page (the kernel image and the direct
			// map are mapped with 2 MiB and 1 GiB pages) needs no walk.
			size := max(tr.PageSize, ps)
			stop := min(end, (a&^(size-1))+size)
			for ; a < stop; a += ps {
				set = append(set, (tr.Phys+a-tr.Virt)/ps)
			}
		}
		return nil
	}
	text, err1 := k.SymbolAddr("_stext")
	end, err2 := k.SymbolAddr("_end")
	if err1 != nil || err2 != nil || end <= text {
		return nil, fmt.Errorf("the kernel image's bounds (_stext, _end) are unknown")
	}
	// Parts of the image are freed once the kernel has booted, and their
	// pages are free memory now (the kernel's "Freeing unused …" lines):
	// the init sections; on x86_64 the gaps mark_rodata_ro frees
	// (arch/x86/mm/init_64.c) between the text and the read-only data and
	// between those and the data; the unused decrypted bss
	// (mem_encrypt_free_decrypted_mem); and the unused end of the brk
	// area, past what _brk_end says was used.
	pageUp := func(a uint64) uint64 { return (a + ps - 1) &^ (ps - 1) }
	freed := [][2]string{{"__init_begin", "__init_end"}, {"_etext", "__start_rodata"}, {"__end_rodata", "_sdata"},
		{"__start_bss_decrypted_unused", "__end_bss_decrypted"}}
	var holes [][2]uint64
	hole := func(a, b uint64) {
		if a = pageUp(a); text <= a && a < b && b <= end {
			holes = append(holes, [2]uint64{a, b})
		}
	}
	for _, f := range freed {
		a, err1 := k.SymbolAddr(f[0])
		b, err2 := k.SymbolAddr(f[1])
		if err1 == nil && err2 == nil {
			hole(a, b)
		}
	}
	if p, err := k.SymbolAddr("_brk_end"); err == nil {
		if used, err := k.ReadPointer(p); err == nil {
			if limit, err := k.SymbolAddr("__brk_limit"); err == nil {
				hole(used, limit)
			}
		}
	}
	sort.Slice(holes, func(i, j int) bool { return holes[i][0] < holes[j][0] })
	at := text
	for _, h := range holes {
		if h[0] > at {
			if err := addVirt(at, h[0]); err != nil {
				return nil, fmt.Errorf("the kernel image: %w", err)
			}
		}
		at = max(at, h[1])
	}
	if err := addVirt(at, end); err != nil {
		return nil, fmt.Errorf("the kernel image: %w", err)
	}
	n := &needs{}
	stackSize := uint64(16 << 10) // THREAD_SIZE on x86_64 (KASAN off)
	for task, err := range k.Tasks() {
		if err != nil {
			return nil, err
		}
		n.tasks++
		if err := addVirt(task.Address(), task.Address()+uint64(task.Size())); err != nil {
			return nil, fmt.Errorf("task_struct: %w", err)
		}
		// What ps and bt follow from a task: its thread group (the
		// signal_struct's thread_head), its struct pid and its mm (RSS
		// and VSZ). Best effort, as the stack.
		for _, member := range []string{"signal", "thread_pid", "mm"} {
			if p, err := task.Member(member); err == nil {
				if o, err := p.Deref(); err == nil && o.Address() != 0 && o.Size() > 0 {
					addVirt(o.Address(), o.Address()+uint64(o.Size()))
				}
			}
		}
		v, err := task.Member("stack")
		if err != nil {
			continue
		}
		if stack, err := v.Uint(); err == nil && stack != 0 {
			// A stack the dump cannot map is the analyzer's to report.
			addVirt(stack, stack+stackSize)
		}
	}
	// The memory nodes (struct pglist_data, memblock-allocated at the top
	// of a node: sys's memory size, kmem -i) and every CPU's static
	// per-CPU area (current_task, runqueues, the IRQ stack pointers):
	// small, and without them a dump opens but says little. They are
	// best effort: a kernel model that lacks one leaves it to the level.
	if pg, err := k.SymbolAddr("node_data"); err == nil {
		nodes := 1
		if a, err := k.SymbolAddr("nr_node_ids"); err == nil {
			if v, err := k.ReadUint(a, 4); err == nil && v > 0 && v <= 1<<10 {
				nodes = int(v)
			}
		}
		for i := 0; i < nodes; i++ {
			if p, err := k.ReadPointer(pg + uint64(8*i)); err == nil && p != 0 {
				if v, err := k.ObjectOf(p, "struct pglist_data"); err == nil {
					addVirt(p, p+uint64(v.Size()))
				}
			}
		}
	}
	if start, err := k.SymbolAddr("__per_cpu_start"); err == nil {
		if end, err := k.SymbolAddr("__per_cpu_end"); err == nil && end > start && end-start < 64<<20 {
			if n, err := k.NrCPUIDs(); err == nil {
				for cpu := 0; cpu < min(n, 8192); cpu++ {
					if off, err := k.PerCPUOffset(cpu); err == nil {
						addVirt(start+off, end+off)
					}
				}
			}
		}
	}
	// The PID IDR's radix-tree nodes and the struct pids they hold:
	// crash gathers its task table from them (init_pid_ns.idr).
	if ns, err := k.Global("init_pid_ns"); err == nil {
		if head, err := ns.Member("idr.idr_rt.xa_head"); err == nil {
			if e, err := head.Uint(); err == nil {
				xarrayNodes(k, e, 0, func(start, end uint64) { addVirt(start, end) })
			}
		}
	}
	// SPARSEMEM_EXTREME's section roots (mem_section points at an array
	// of LENGTH(mem_section) pointers, each to a page of struct
	// mem_section; mm/sparse.c): crash reads them all when it starts.
	if vi := src.VMCoreInfo; vi != nil {
		// Uint fails unless mem_section is a pointer (not the array of
		// a kernel without SPARSEMEM_EXTREME).
		if g, err := k.Global("mem_section"); err == nil {
			n, ok := vi.Length("mem_section")
			if root, err := g.Uint(); ok && err == nil && root != 0 && n > 0 && n < 1<<20 {
				addVirt(root, root+8*uint64(n))
				for i := uint64(0); i < uint64(n); i++ {
					if p, err := k.ReadPointer(root + 8*i); err == nil && p != 0 {
						addVirt(p, p+ps)
					}
				}
			}
		}
	}
	// Every page-table page of the kernel half: crash, unlike salvage,
	// walks the page tables of the whole direct map, vmemmap and vmalloc
	// area when it starts, and stops at the first it cannot read.
	if t, ok := k.Arch.(interface{ Root() (phys, virt uint64) }); ok {
		phys, _ := t.Root()
		kernelTables(src.Memory, phys, k.Arch.Layout().PageTableLevels, &set)
	}
	slices.Sort(set)
	n.pfns = slices.Compact(set)
	return n, nil
}

// openKernel is kernel.Open from the dump alone, a panic in a reader of
// a malformed dump turned into an error.
func openKernel(src *dump.File) (k *kernel.Kernel, err error) {
	defer func() {
		if r := recover(); r != nil {
			k, err = nil, fmt.Errorf("internal error reading the kernel: %v", r)
		}
	}()
	return kernel.Open(src, kernel.Options{})
}

// kernelTables adds to set the frames of the page tables that map the
// kernel half of the address space (the upper 256 entries of the top
// level) under root, an x86_64 page table of levels levels (4 or 5):
// each present entry that is not a large page points at a table of the
// next level (Intel SDM vol. 3, 4.5). Tables the dump lacks are skipped.
func kernelTables(mem dump.Memory, root uint64, levels int, set *[]uint64) {
	if levels != 4 && levels != 5 {
		return
	}
	const (
		present  = 1 << 0
		large    = 1 << 7
		addrMask = 0x000ffffffffff000
	)
	ps := uint64(mem.PageSize())
	buf := make([]byte, 4096)
	var visit func(table uint64, level int, first int)
	visit = func(table uint64, level int, first int) {
		*set = append(*set, table/ps)
		if level == 1 {
			return
		}
		if _, err := mem.ReadPhys(buf, table); err != nil {
			return
		}
		var next []uint64
		for i := first; i < 512; i++ {
			e := binary.LittleEndian.Uint64(buf[8*i:])
			if e&present == 0 || level <= 3 && e&large != 0 {
				continue
			}
			next = append(next, e&addrMask)
		}
		for _, n := range next {
			visit(n, level-1, 0)
		}
	}
	visit(root&addrMask, levels, 256)
}

// xarrayNodes calls add with the extent of every node of the XArray
// whose head entry is e, and of every object its leaves point at. An
// entry whose low two bits are 2 (and that is above 4096: the small
// values are retry and sibling markers) is a node pointer plus 2
// (include/linux/xarray.h xa_is_node); a node's shift is 0 at the leaves.
func xarrayNodes(k *kernel.Kernel, e uint64, depth int, add func(start, end uint64)) {
	const kernelHalf = 1 << 63
	switch {
	case depth > 12 || e < kernelHalf:
		return
	case e&3 == 0:
		if v, err := k.ObjectOf(e, "struct pid"); err == nil {
			add(e, e+uint64(v.Size()))
		}
		return
	case e&3 != 2:
		return
	}
	addr := e - 2
	node, err := k.ObjectOf(addr, "struct xa_node")
	if err != nil {
		return
	}
	add(addr, addr+uint64(node.Size()))
	slots, err := node.Member("slots")
	if err != nil {
		return
	}
	for i := 0; i < 64; i++ {
		s, err := slots.Index(i)
		if err != nil {
			return
		}
		if c, err := s.Uint(); err == nil && c != 0 {
			xarrayNodes(k, c, depth+1, add)
		}
	}
}
