package collect

import (
	"encoding/binary"
	"fmt"

	"salvage/dump"
)

// virtReader reads kernel virtual memory (arch/amd64's Translator).
type virtReader interface {
	ReadVirt(p []byte, va uint64) (int, error)
}

// sparseMem is the kernel's SPARSEMEM section table as VMCOREINFO
// describes it (include/linux/mmzone.h): mem_section is an array of roots
// (SPARSEMEM_EXTREME: pointers to pages of struct mem_section) or of
// sections, each holding section_mem_map, the encoded address of the
// section's struct page array.
type sparseMem struct {
	sectionBits  uint // SECTION_SIZE_BITS
	pageShift    uint
	pagesPerSect uint64
	// memMaps[i] is the virtual address of the struct page of the first
	// frame of section i, or 0 when the section has no mem_map.
	memMaps []uint64
}

// Low bits of section_mem_map that are flags, not address
// (include/linux/mmzone.h: SECTION_MARKED_PRESENT … SECTION_MAP_LAST_BIT;
// 5 bits since Linux 5.x, fewer before — the mem_map address is aligned
// far more, so masking five bits is right for every version).
const (
	sectionMarkedPresent = 1 << 0
	sectionMapMask       = ^uint64(1<<5 - 1)
)

// readSparseMem reads the section table for frames [0, maxPFN). Every
// size, offset and number comes from VMCOREINFO; the error says which
// entry is missing.
func readSparseMem(vi *dump.VMCoreInfo, rd virtReader, pageShift uint, maxPFN uint64) (*sparseMem, error) {
	need := func(ok bool, what string) error {
		if !ok {
			return fmt.Errorf("VMCOREINFO has no %s", what)
		}
		return nil
	}
	root, ok := vi.Symbol("mem_section")
	if err := need(ok, "SYMBOL(mem_section) (the kernel is not SPARSEMEM)"); err != nil {
		return nil, err
	}
	secSize, ok := vi.Size("mem_section")
	if err := need(ok, "SIZE(mem_section)"); err != nil {
		return nil, err
	}
	mapOff, ok := vi.Offset("mem_section", "section_mem_map")
	if err := need(ok, "OFFSET(mem_section.section_mem_map)"); err != nil {
		return nil, err
	}
	secBits, ok := vi.Number("SECTION_SIZE_BITS")
	if err := need(ok, "NUMBER(SECTION_SIZE_BITS)"); err != nil {
		return nil, err
	}
	physBits, ok := vi.Number("MAX_PHYSMEM_BITS")
	if err := need(ok, "NUMBER(MAX_PHYSMEM_BITS)"); err != nil {
		return nil, err
	}
	pageSize, ok := vi.Size("page")
	if err := need(ok, "SIZE(page)"); err != nil {
		return nil, err
	}
	if secSize == 0 || secSize > 4096 || mapOff+8 > secSize || secBits <= int64(pageShift) || secBits > 40 || physBits <= secBits || physBits > 64 {
		return nil, fmt.Errorf("VMCOREINFO: implausible SPARSEMEM geometry (SIZE(mem_section) %d, OFFSET(mem_section.section_mem_map) %d, SECTION_SIZE_BITS %d, MAX_PHYSMEM_BITS %d)", secSize, mapOff, secBits, physBits)
	}
	sm := &sparseMem{sectionBits: uint(secBits), pageShift: pageShift, pagesPerSect: 1 << (uint(secBits) - pageShift)}
	nrSections := uint64(1) << uint(physBits-secBits)
	perRoot := (uint64(1) << pageShift) / secSize // SECTIONS_PER_ROOT, SPARSEMEM_EXTREME
	nrRoots := (nrSections + perRoot - 1) / perRoot
	length, hasLen := vi.Length("mem_section")
	// LENGTH(mem_section) is NR_SECTION_ROOTS under SPARSEMEM_EXTREME and
	// NR_MEM_SECTIONS without it (kernel/crash_core.c).
	extreme := !hasLen || length == nrRoots
	if !extreme && length != nrSections {
		return nil, fmt.Errorf("VMCOREINFO: LENGTH(mem_section) %d is neither the %d section roots nor the %d sections of SPARSEMEM", length, nrRoots, nrSections)
	}
	used := (maxPFN + sm.pagesPerSect - 1) / sm.pagesPerSect
	sm.memMaps = make([]uint64, used)

	readU64 := func(va uint64) (uint64, error) {
		var b [8]byte
		if _, err := rd.ReadVirt(b[:], va); err != nil {
			return 0, err
		}
		return binary.LittleEndian.Uint64(b[:]), nil
	}
	// decode fills memMaps from the section table whose roots (or
	// sections) start at base; it reports whether any section decoded,
	// as makedumpfile's validate_mem_section does, because SYMBOL
	// (mem_section) is the array on some kernels and a pointer to it on
	// others (makedumpfile.c get_mem_section).
	decode := func(base uint64) (bool, error) {
		found := false
		var roots []uint64
		if extreme {
			nr := min(nrRoots, (used+perRoot-1)/perRoot)
			roots = make([]uint64, nr)
			buf := make([]byte, 8*nr)
			if _, err := rd.ReadVirt(buf, base); err != nil {
				return false, err
			}
			for i := range roots {
				roots[i] = binary.LittleEndian.Uint64(buf[8*i:])
			}
		}
		sec := make([]byte, secSize)
		for nr := uint64(0); nr < used; nr++ {
			var addr uint64
			if extreme {
				r := roots[nr/perRoot]
				if r == 0 {
					sm.memMaps[nr] = 0
					continue
				}
				addr = r + (nr%perRoot)*secSize
			} else {
				addr = base + nr*secSize
			}
			if _, err := rd.ReadVirt(sec, addr); err != nil {
				return false, fmt.Errorf("struct mem_section %d at %#x: %w", nr, addr, err)
			}
			coded := binary.LittleEndian.Uint64(sec[mapOff:])
			if coded&sectionMarkedPresent == 0 {
				sm.memMaps[nr] = 0
				continue
			}
			mm := coded&sectionMapMask + nr*sm.pagesPerSect*pageSize
			if mm>>63 == 0 { // not a kernel address: this was not the table
				return false, nil
			}
			sm.memMaps[nr] = mm
			found = true
		}
		return found, nil
	}
	ok, err := decode(root)
	if (err != nil || !ok) && extreme {
		p, perr := readU64(root)
		if perr != nil {
			return nil, fmt.Errorf("mem_section at %#x: %w", root, perr)
		}
		ok, err = decode(p)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the mem_section table: %w", err)
	}
	if !ok {
		return nil, fmt.Errorf("mem_section at %#x holds no present section with a mem_map", root)
	}
	return sm, nil
}
