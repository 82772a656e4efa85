// Package arch describes the machine architectures whose dumps salvage
// reads. Differences are data and a few functions in one Arch value per
// architecture (as delve's proc.Arch): adding arm64 is adding a package,
// not editing switches.
package arch

import "salvage/dump"

// Translation is the result of a virtual-to-physical walk.
type Translation struct {
	Virt, Phys uint64
	PageSize   uint64 // 4K, 2M or 1G on x86_64
	// Steps are the page-table entries visited, top level first, for vtop.
	Steps []Step
}

// Step is one level of a page-table walk.
type Step struct {
	Level string // "PGD", "P4D", "PUD", "PMD", "PTE"
	Addr  uint64 // physical address of the entry
	Entry uint64 // its value
}

// Layout is the kernel virtual address layout found in a dump.
type Layout struct {
	PageOffset      uint64 // start of the direct map (page_offset_base)
	VmallocStart    uint64
	VmallocEnd      uint64
	VmemmapStart    uint64
	ModulesStart    uint64
	ModulesEnd      uint64
	KernelMapStart  uint64 // __START_KERNEL_map
	PhysBase        uint64 // phys_base (two's complement when negative)
	KASLROffset     uint64
	PageTableLevels int // 4 or 5
}

// Translator turns kernel virtual addresses into physical ones for one
// dump. Implementations are per architecture (arch/amd64, arch/arm64).
type Translator interface {
	// VirtToPhys walks the kernel page tables (or uses the fixed direct
	// and kernel-text mappings where that is exact).
	VirtToPhys(addr uint64) (Translation, error)
	// PhysToVirt returns the direct-map address of a physical address.
	PhysToVirt(phys uint64) uint64
	// ReadVirt reads kernel virtual memory (crossing pages as needed).
	ReadVirt(p []byte, addr uint64) (int, error)
	Layout() Layout
	Memory() dump.Memory
}
