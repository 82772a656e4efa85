// Package amd64 translates x86_64 kernel virtual addresses in a dump: the
// kernel page tables (4- and 5-level paging, 2M and 1G pages), the fixed
// kernel-text mapping and the direct map, and the KASLR-randomized layout
// (page_offset_base, vmalloc_base, vmemmap_base).
//
// The layout follows the kernel's arch/x86/include/asm/pgtable_64_types.h,
// page_64_types.h and Documentation/arch/x86/x86_64/mm.rst; the entry
// format is the Intel SDM, volume 3, chapter 4.5 ("4-level paging and
// 5-level paging").
package amd64
