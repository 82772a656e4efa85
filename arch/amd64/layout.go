package amd64

import (
	"encoding/binary"
	"fmt"

	"salvage/arch"
	"salvage/dump"
)

// Fixed points of the x86_64 kernel address space (page_64_types.h,
// pgtable_64_types.h). The KASLR-randomized bases are read from the dump;
// these defaults apply only when the kernel does not randomize them.
const (
	startKernelMap = 0xffffffff80000000 // __START_KERNEL_map
	modulesEnd     = 0xffffffffff000000 // MODULES_END

	pageOffsetL4   = 0xffff888000000000 // __PAGE_OFFSET_BASE_L4
	pageOffsetL5   = 0xff11000000000000 // __PAGE_OFFSET_BASE_L5
	vmallocBaseL4  = 0xffffc90000000000
	vmallocBaseL5  = 0xffa0000000000000
	vmallocSizeL4  = 32 << 40    // VMALLOC_SIZE_TB_L4 TiB
	vmallocSizeL5  = 12800 << 40 // VMALLOC_SIZE_TB_L5 TiB
	vmemmapBaseL4  = 0xffffea0000000000
	vmemmapBaseL5  = 0xffd4000000000000
	directMapMaxL4 = 1 << 46 // MAX_PHYSMEM_BITS with 4-level paging
	directMapMaxL5 = 1 << 52

	// KERNEL_IMAGE_SIZE when VMCOREINFO lacks it: 1 GiB with
	// CONFIG_RANDOMIZE_BASE, which every distribution kernel sets.
	defaultKernelImageSize = 1 << 30
)

// SymbolFunc finds a kernel symbol's run-time address.
type SymbolFunc func(name string) (uint64, bool)

// discover fills t.layout: paging depth, page-table root, the randomized
// bases. Each fact comes from VMCOREINFO first, then from the kernel's own
// variables read through the text mapping, then from the CPU state QEMU
// saved, and only last from the kernel's compile-time defaults.
func (t *Translator) discover(vi *dump.VMCoreInfo, sym SymbolFunc, qemu []dump.QEMUCPU, physBase func() (uint64, bool)) error {
	l := &t.layout
	l.KernelMapStart = startKernelMap

	if n, ok := vi.Number("phys_base"); ok {
		l.PhysBase = uint64(n)
	} else if pb, ok := physBase(); ok {
		l.PhysBase = pb
	} else {
		return fmt.Errorf("amd64: VMCOREINFO has no NUMBER(phys_base) and no CPU state gives it: cannot place the kernel text mapping")
	}
	l.KASLROffset, _ = vi.KernelOffset()
	if n, ok := vi.Number("sme_mask"); ok {
		t.entryMask &^= uint64(n)
	}

	lookup := func(name string) (uint64, bool) {
		if a, ok := vi.Symbol(name); ok {
			return a, true
		}
		if sym != nil {
			return sym(name)
		}
		return 0, false
	}

	// Paging depth: VMCOREINFO (4.17+), else the kernel's variable, else
	// CR4.LA57 of a QEMU CPU note, else 4.
	l.PageTableLevels = 4
	t.levelSource = "default"
	if n, ok := vi.Number("pgtable_l5_enabled"); ok {
		if n != 0 {
			l.PageTableLevels = 5
		}
		t.levelSource = "VMCOREINFO NUMBER(pgtable_l5_enabled)"
	} else if a, ok := lookup("__pgtable_l5_enabled"); ok {
		v, err := t.readTextUint(a, 4)
		if err != nil {
			return fmt.Errorf("amd64: reading __pgtable_l5_enabled: %w", err)
		}
		if v != 0 {
			l.PageTableLevels = 5
		}
		t.levelSource = "__pgtable_l5_enabled"
	} else if len(qemu) > 0 {
		if qemu[0].CR[4]&(1<<12) != 0 { // CR4.LA57
			l.PageTableLevels = 5
		}
		t.levelSource = "CR4.LA57 (QEMU CPU note)"
	}

	// The page-table root: init_top_pgt (swapper_pg_dir before 4.13),
	// reached through the text mapping; else CR3 of a QEMU CPU note.
	root := ""
	for _, name := range []string{"init_top_pgt", "init_level4_pgt", "swapper_pg_dir"} {
		if a, ok := lookup(name); ok {
			t.rootVirt = a
			t.root = t.textToPhys(a)
			root = name
			break
		}
	}
	if root == "" {
		if len(qemu) == 0 || qemu[0].CR[3] == 0 {
			return fmt.Errorf("amd64: no init_top_pgt or swapper_pg_dir symbol and no CR3: cannot find the kernel page tables")
		}
		// CR3 may hold a user PGD (PTI) or PCID bits; the kernel half of
		// any PGD maps the kernel, and the low 12 bits are flags.
		t.root = qemu[0].CR[3] & t.entryMask &^ (1 << 12)
		root = "CR3"
	}
	t.rootSource = root

	if l.PageTableLevels == 5 {
		l.PageOffset, l.VmallocStart, l.VmemmapStart = pageOffsetL5, vmallocBaseL5, vmemmapBaseL5
		t.directMax = directMapMaxL5
	} else {
		l.PageOffset, l.VmallocStart, l.VmemmapStart = pageOffsetL4, vmallocBaseL4, vmemmapBaseL4
		t.directMax = directMapMaxL4
	}
	t.pageOffsetSource = "default"
	// KASLR (CONFIG_RANDOMIZE_MEMORY) moves the three bases; the kernel
	// keeps them in variables of the same names.
	for _, v := range []struct {
		name string
		dst  *uint64
	}{
		{"page_offset_base", &l.PageOffset},
		{"vmalloc_base", &l.VmallocStart},
		{"vmemmap_base", &l.VmemmapStart},
	} {
		if n, ok := vi.Number(v.name); ok {
			*v.dst = uint64(n)
			if v.name == "page_offset_base" {
				t.pageOffsetSource = "VMCOREINFO"
			}
			continue
		}
		a, ok := lookup(v.name)
		if !ok {
			continue
		}
		val, err := t.readTextUint(a, 8)
		if err != nil {
			return fmt.Errorf("amd64: reading %s: %w", v.name, err)
		}
		*v.dst = val
		if v.name == "page_offset_base" {
			t.pageOffsetSource = "page_offset_base"
		}
	}
	if t.pageOffsetSource == "default" && (l.KASLROffset != 0 || sym == nil) {
		// Without the variable, a KASLR kernel's direct map is wherever
		// the page tables first map physical address 0 in the kernel half.
		if po, ok := t.findDirectMap(); ok {
			l.PageOffset = po
			t.pageOffsetSource = "page tables (first mapping of physical 0)"
		}
	}
	if l.PageTableLevels == 5 {
		l.VmallocEnd = l.VmallocStart + vmallocSizeL5 - 1
	} else {
		l.VmallocEnd = l.VmallocStart + vmallocSizeL4 - 1
	}
	imageSize := uint64(defaultKernelImageSize)
	if n, ok := vi.Number("KERNEL_IMAGE_SIZE"); ok && n > 0 {
		imageSize = uint64(n)
	}
	t.textEnd = startKernelMap + imageSize
	l.ModulesStart = startKernelMap + imageSize
	l.ModulesEnd = modulesEnd - 1
	return nil
}

// textToPhys is __phys_addr_symbol: the kernel image is mapped at
// __START_KERNEL_map + (phys - phys_base).
func (t *Translator) textToPhys(virt uint64) uint64 {
	return virt - startKernelMap + t.layout.PhysBase
}

// readTextUint reads a little-endian integer of a kernel-image variable
// before the page tables are known.
func (t *Translator) readTextUint(virt uint64, size int) (uint64, error) {
	var b [8]byte
	if _, err := t.mem.ReadPhys(b[:size], t.textToPhys(virt)); err != nil {
		return 0, &Error{Virt: virt, Op: "read", Err: err}
	}
	return binary.LittleEndian.Uint64(b[:]), nil
}

// findDirectMap scans the kernel half of the page tables for the lowest
// virtual address that maps physical address 0. The direct map starts
// there: it maps all RAM from 0, lies below vmalloc and vmemmap in every
// layout, and KASLR moves it in PUD-sized (1 GiB) steps, so only the first
// byte of each present PUD entry needs checking.
//
// The scan is bounded: real tables have a few present entries in the
// kernel half, while damaged ones could make it visit millions.
func (t *Translator) findDirectMap() (uint64, bool) {
	budget := 1 << 14
	return t.scanForZero(t.root, t.layout.PageTableLevels, 0, true, &budget)
}

func (t *Translator) scanForZero(table uint64, level int, va uint64, top bool, budget *int) (uint64, bool) {
	shift := uint(12 + 9*(level-1))
	start := 0
	if top {
		start = 256
	}
	var tbl [512]uint64
	if err := t.readTable(table, &tbl); err != nil {
		return 0, false
	}
	for i := start; i < 512; i++ {
		e := tbl[i]
		if e&ptepresent == 0 {
			continue
		}
		if *budget--; *budget < 0 {
			return 0, false
		}
		eva := va + uint64(i)<<shift
		if top {
			eva = signExtend(eva, t.layout.PageTableLevels)
		}
		if level > 3 {
			if a, ok := t.scanForZero(e&t.entryMask, level-1, eva, false, budget); ok {
				return a, true
			}
			continue
		}
		// PUD level: follow entry 0 down to the first byte's frame.
		phys, ok := t.firstByte(e, level)
		if ok && phys == 0 {
			return eva, true
		}
	}
	return 0, false
}

func (t *Translator) firstByte(e uint64, level int) (uint64, bool) {
	for {
		if e&ptepresent == 0 {
			return 0, false
		}
		if level == 1 || (level <= 3 && e&ptePSE != 0) {
			return e & t.entryMask & largeMask(level), true
		}
		var b [8]byte
		if _, err := t.mem.ReadPhys(b[:], e&t.entryMask); err != nil {
			return 0, false
		}
		e = binary.LittleEndian.Uint64(b[:])
		level--
	}
}

// Layout returns the address layout found in the dump.
func (t *Translator) Layout() arch.Layout { return t.layout }

// Describe says where each layout fact came from, for `salvage info` and
// error messages.
func (t *Translator) Describe() string {
	return fmt.Sprintf("%d-level paging (%s), page tables at %#x (%s), page_offset_base %#x (%s)",
		t.layout.PageTableLevels, t.levelSource, t.root, t.rootSource, t.layout.PageOffset, t.pageOffsetSource)
}

func signExtend(va uint64, levels int) uint64 {
	bits := uint(48)
	if levels == 5 {
		bits = 57
	}
	if va&(1<<(bits-1)) != 0 {
		return va | ^uint64(0)<<bits
	}
	return va &^ (^uint64(0) << bits)
}
