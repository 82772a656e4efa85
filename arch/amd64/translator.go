package amd64

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"salvage/arch"
	"salvage/dump"
)

// Page-table entry bits (Intel SDM vol. 3, 4.5).
const (
	ptepresent = 1 << 0
	ptePSE     = 1 << 7 // a 2M (PMD) or 1G (PUD) leaf
	// Physical address bits of an entry: 12 through 51.
	physMask = 0x000ffffffffff000
)

// Translator is the x86_64 arch.Translator of one dump.
type Translator struct {
	mem       dump.Memory
	layout    arch.Layout
	root      uint64 // physical address of the top-level table
	rootVirt  uint64 // its kernel virtual address, when known
	entryMask uint64 // physMask without the SME encryption bit
	textEnd   uint64 // end of the kernel image mapping
	directMax uint64 // size of the direct map (MAX_PHYSMEM_BITS)

	levelSource, rootSource, pageOffsetSource string

	cache  tlb
	tables tableCache
}

var _ arch.Translator = (*Translator)(nil)

// New makes the translator of a dump from its physical memory, its
// VMCOREINFO and, optionally, a symbol lookup (nil when none is loaded
// yet: VMCOREINFO's SYMBOL() entries and the page tables then suffice).
// qemu, when the dump has QEMU CPU notes, supplies CR3 and CR4 as a last
// resort.
func New(mem dump.Memory, vi *dump.VMCoreInfo, sym func(name string) (uint64, bool), qemu ...dump.QEMUCPU) (*Translator, error) {
	return newTranslator(mem, vi, sym, qemu, func() (uint64, bool) { return 0, false })
}

func newTranslator(mem dump.Memory, vi *dump.VMCoreInfo, sym func(name string) (uint64, bool), qemu []dump.QEMUCPU, physBase func() (uint64, bool)) (*Translator, error) {
	if mem == nil {
		return nil, errors.New("amd64: no memory")
	}
	if ps := mem.PageSize(); ps != 4096 {
		return nil, fmt.Errorf("amd64: page size %d; x86_64 uses 4096", ps)
	}
	t := &Translator{mem: mem, entryMask: physMask}
	if err := t.discover(vi, sym, qemu, physBase); err != nil {
		return nil, err
	}
	return t, nil
}

// NewFromFile is New for an opened dump, with its QEMU CPU notes: a QEMU
// dump without VMCOREINFO is translated through CR3 and CR4, with
// phys_base found from a CPU's instruction pointer (dump.File.PhysBase).
func NewFromFile(f *dump.File, sym func(name string) (uint64, bool)) (*Translator, error) {
	if f.Arch != "" && f.Arch != dump.ArchX86_64 {
		return nil, fmt.Errorf("amd64: %s is a %s dump", f.Path, f.Arch)
	}
	return newTranslator(f.Memory, f.VMCoreInfo, sym, f.QEMUCPUs, func() (uint64, bool) {
		pb, _, ok := f.PhysBase()
		return pb, ok
	})
}

// Memory returns the dump's physical memory.
func (t *Translator) Memory() dump.Memory { return t.mem }

// Root returns the physical address of the kernel's top-level page table
// and its virtual address (0 when found through CR3).
func (t *Translator) Root() (phys, virt uint64) { return t.root, t.rootVirt }

// levelName names a table level as the kernel does: with 4-level paging
// the top level is the PGD and there is no P4D.
func (t *Translator) levelName(level int) string {
	switch level {
	case 5:
		return "PGD"
	case 4:
		if t.layout.PageTableLevels == 4 {
			return "PGD"
		}
		return "P4D"
	case 3:
		return "PUD"
	case 2:
		return "PMD"
	}
	return "PTE"
}

func largeMask(level int) uint64 {
	return ^(uint64(1)<<(12+9*(level-1)) - 1)
}

func (t *Translator) canonical(va uint64) bool {
	return signExtend(va, t.layout.PageTableLevels) == va
}

// VirtToPhys walks the kernel page tables from init_top_pgt, recording
// every entry visited.
func (t *Translator) VirtToPhys(va uint64) (arch.Translation, error) {
	return t.walk(va, true)
}

// VirtToPhysIn walks the page tables whose top-level table is at physical
// address root: a process's (its mm->pgd, translated), for user addresses.
func (t *Translator) VirtToPhysIn(root, va uint64) (arch.Translation, error) {
	return t.walkFrom(root&t.entryMask, va, true)
}

func (t *Translator) walk(va uint64, record bool) (arch.Translation, error) {
	return t.walkFrom(t.root, va, record)
}

func (t *Translator) walkFrom(root, va uint64, record bool) (arch.Translation, error) {
	tr := arch.Translation{Virt: va}
	if !t.canonical(va) {
		return tr, &Error{Virt: va, Op: "translate", Msg: fmt.Sprintf("not canonical with %d-level paging", t.layout.PageTableLevels)}
	}
	if record {
		tr.Steps = make([]arch.Step, 0, t.layout.PageTableLevels)
	}
	table := root
	for level := t.layout.PageTableLevels; level >= 1; level-- {
		shift := uint(12 + 9*(level-1))
		addr := table + (va>>shift&511)*8
		tbl, err := t.tables.get(t.mem, table)
		if err != nil {
			return tr, &Error{Virt: va, Op: "translate", Level: t.levelName(level), EntryAddr: addr, Err: err}
		}
		e := tbl[va>>shift&511]
		if record {
			tr.Steps = append(tr.Steps, arch.Step{Level: t.levelName(level), Addr: addr, Entry: e})
		}
		if e&ptepresent == 0 {
			return tr, &Error{Virt: va, Op: "translate", Level: t.levelName(level), EntryAddr: addr, Entry: e, NotPresent: true}
		}
		if level == 1 || (level <= 3 && e&ptePSE != 0) {
			size := uint64(1) << shift
			tr.PageSize = size
			tr.Phys = e&t.entryMask&largeMask(level) | va&(size-1)
			return tr, nil
		}
		table = e & t.entryMask
	}
	panic("unreachable")
}

// PhysToVirt returns the direct-map address of phys.
func (t *Translator) PhysToVirt(phys uint64) uint64 { return t.layout.PageOffset + phys }

// fastPhys translates addresses of the two linear mappings without a walk:
// the kernel image (__phys_addr_symbol) and the direct map (__pa). n is how
// many bytes from va the mapping stays linear.
func (t *Translator) fastPhys(va uint64) (phys, n uint64, ok bool) {
	l := &t.layout
	if va >= startKernelMap && va < t.textEnd {
		return t.textToPhys(va), t.textEnd - va, true
	}
	if t.pageOffsetSource != "default" && va >= l.PageOffset && va-l.PageOffset < t.directMax {
		return va - l.PageOffset, t.directMax - (va - l.PageOffset), true
	}
	return 0, 0, false
}

// translate finds the physical address of va for reading and how many
// bytes after it lie in the same mapping.
func (t *Translator) translate(va uint64) (uint64, uint64, error) {
	if p, n, ok := t.fastPhys(va); ok {
		return p, n, nil
	}
	page := va &^ 0xfff
	if p, ok := t.cache.get(page); ok {
		return p | va&0xfff, 4096 - va&0xfff, nil
	}
	tr, err := t.walk(va, false)
	if err != nil {
		return 0, 0, err
	}
	t.cache.put(page, tr.Phys&^0xfff)
	return tr.Phys, tr.PageSize - va&(tr.PageSize-1), nil
}

// ReadVirt reads kernel virtual memory. On failure it returns the bytes
// read before the failing address and an *Error that wraps the
// *dump.PageError, when the dump lacks a page.
func (t *Translator) ReadVirt(p []byte, va uint64) (int, error) {
	done := 0
	for done < len(p) {
		cur := va + uint64(done)
		phys, n, err := t.translate(cur)
		if err != nil {
			return done, err
		}
		chunk := uint64(len(p) - done)
		if n < chunk {
			chunk = n
		}
		m, err := t.mem.ReadPhys(p[done:done+int(chunk)], phys)
		done += m
		if err != nil {
			return done, &Error{Virt: va + uint64(done), Op: "read", Phys: phys + uint64(m), Err: err}
		}
	}
	return done, nil
}

func (t *Translator) readTable(phys uint64, tbl *[512]uint64) error {
	var b [4096]byte
	if _, err := t.mem.ReadPhys(b[:], phys); err != nil {
		return err
	}
	for i := range tbl {
		tbl[i] = binary.LittleEndian.Uint64(b[i*8:])
	}
	return nil
}

// tlb caches 4K-page translations of the walked (vmalloc, module,
// fixmap) ranges; the kernel's page tables do not change in a dump.
type tlb struct {
	mu      sync.Mutex
	entries [1024]struct{ virt, phys uint64 }
}

func (c *tlb) get(page uint64) (uint64, bool) {
	i := page >> 12 & 1023
	c.mu.Lock()
	e := c.entries[i]
	c.mu.Unlock()
	if e.virt == page|1 {
		return e.phys, true
	}
	return 0, false
}

func (c *tlb) put(page, phys uint64) {
	i := page >> 12 & 1023
	c.mu.Lock()
	c.entries[i] = struct{ virt, phys uint64 }{page | 1, phys}
	c.mu.Unlock()
}

// tableCache keeps recently walked page-table pages decoded: a walk then
// costs map lookups instead of one dump read per level. The top levels
// are shared by every walk.
type tableCache struct {
	mu sync.Mutex
	m  map[uint64]*[512]uint64
}

const tableCacheMax = 512 // 2 MiB of tables

func (c *tableCache) get(mem dump.Memory, phys uint64) (*[512]uint64, error) {
	phys &^= 0xfff
	c.mu.Lock()
	tbl, ok := c.m[phys]
	c.mu.Unlock()
	if ok {
		return tbl, nil
	}
	var b [4096]byte
	if _, err := mem.ReadPhys(b[:], phys); err != nil {
		return nil, err
	}
	tbl = new([512]uint64)
	for i := range tbl {
		tbl[i] = binary.LittleEndian.Uint64(b[i*8:])
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= tableCacheMax {
		c.m = make(map[uint64]*[512]uint64) // start over: walks refill the hot tables at once
	}
	c.m[phys] = tbl
	c.mu.Unlock()
	return tbl, nil
}
