package kernel

import "fmt"

// SlabCache names the slab cache that addr's page belongs to, as crash's
// bt -F shows stack words that point into slab objects: the direct-map
// page of addr (its compound head), a slab page (pageIsSlab), and the cache its
// struct slab (struct page before 5.17) names. ok is false for any other
// address.
func (k *Kernel) SlabCache(addr uint64) (name string, ok bool) {
	lay := k.Arch.Layout()
	if lay.PageOffset == 0 || addr < lay.PageOffset || lay.VmemmapStart == 0 {
		return "", false
	}
	phys := addr - lay.PageOffset
	if phys >= 1<<46 {
		return "", false
	}
	pageSize, ok := k.VMCoreInfo().Size("page")
	if !ok || pageSize == 0 {
		return "", false
	}
	page := lay.VmemmapStart + (phys>>12)*pageSize
	head, err := k.compoundHead(page)
	if err != nil {
		return "", false
	}
	if !k.pageIsSlab(head) {
		return "", false
	}
	typ := "struct slab"
	if _, err := k.ObjectOf(head, typ); err != nil {
		typ = "struct page"
	}
	v, err := k.ObjectOf(head, typ)
	if err != nil {
		return "", false
	}
	cache, err := v.Member("slab_cache")
	if err != nil {
		return "", false
	}
	n, err := cache.Member("name")
	if err != nil {
		return "", false
	}
	s, err := n.CString(64)
	if err != nil || s == "" {
		return "", false
	}
	return s, true
}

// pageIsSlab reports whether the (head) page at addr is a slab page, as
// VMCOREINFO says to tell: by the PG_slab flag (before 6.10), or by the
// page type kept in the _mapcount word (PAGE_SLAB_MAPCOUNT_VALUE).
func (k *Kernel) pageIsSlab(page uint64) bool {
	vi := k.VMCoreInfo()
	if pgSlab, ok := vi.Number("PG_slab"); ok {
		flags, err := k.ReadPointer(page)
		return err == nil && flags&(1<<uint(pgSlab)) != 0
	}
	value, ok := vi.Number("PAGE_SLAB_MAPCOUNT_VALUE")
	if !ok {
		return false
	}
	off, ok := vi.Offset("page", "_mapcount")
	if !ok {
		return false
	}
	pt, err := k.ReadUint(page+uint64(off), 4)
	return err == nil && pageTypeIs(uint32(pt), value)
}

// pageTypeIs tells whether a page's page_type word has the type whose
// VMCOREINFO value (PAGE_*_MAPCOUNT_VALUE) is value. 6.12 keeps the type
// in the top byte (enum pagetype, include/linux/page-flags.h: 0xf5 is
// slab), and exports it shifted into place with the low bytes clear;
// 6.9–6.11 cleared one bit under PAGE_TYPE_BASE (0xf0000000) and export
// the complement of that bit.
func pageTypeIs(pageType uint32, value int64) bool {
	v := uint32(value)
	if v&0x00ffffff == 0 {
		return pageType>>24 == v>>24
	}
	const pageTypeBase = 0xf0000000
	bit := ^v
	return pageType&(pageTypeBase|bit) == pageTypeBase
}

// compoundHead is the head page of the compound page that page is part
// of (page->compound_head with bit 0 set on tail pages), or page itself.
func (k *Kernel) compoundHead(page uint64) (uint64, error) {
	p, err := k.ObjectOf(page, "struct page")
	if err != nil {
		return 0, err
	}
	ch, err := p.Member("compound_head")
	if err != nil {
		return 0, fmt.Errorf("struct page: %w", err)
	}
	v, err := ch.Uint()
	if err != nil {
		return 0, err
	}
	if v&1 != 0 {
		return v - 1, nil
	}
	return page, nil
}
