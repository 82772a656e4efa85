package collect

import (
	"fmt"
	"sort"

	"salvage/dump"
	"salvage/kernel"
)

// needs is what the analyzer cannot do without, in page frames: the
// kernel image (its text and data, and with them the BTF, the kallsyms
// and ORC tables, the printk ring and the IDT), the page-table pages that
// map it, and every task's task_struct and kernel stack. Whatever the dump
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
	set := map[uint64]bool{}
	ps := uint64(src.Memory.PageSize())
	addVirt := func(start, end uint64) error {
		for a := start &^ (ps - 1); a < end; a += ps {
			tr, err := k.Arch.VirtToPhys(a)
			if err != nil {
				return fmt.Errorf("%#x: %w", a, err)
			}
			set[tr.Phys/ps] = true
			for _, st := range tr.Steps {
				set[st.Addr/ps] = true
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
		v, err := task.Member("stack")
		if err != nil {
			continue
		}
		if stack, err := v.Uint(); err == nil && stack != 0 {
			// A stack the dump cannot map is the analyzer's to report.
			addVirt(stack, stack+stackSize)
		}
	}
	for pfn := range set {
		n.pfns = append(n.pfns, pfn)
	}
	sort.Slice(n.pfns, func(i, j int) bool { return n.pfns[i] < n.pfns[j] })
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
