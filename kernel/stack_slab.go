package kernel

import "fmt"

// SlabCache names the slab cache that addr's page belongs to, as crash's
// bt -F shows stack words that point into slab objects: the direct-map
// page of addr (its compound head), flagged PG_slab, and the cache its
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
	pgSlab, ok := k.VMCoreInfo().Number("PG_slab")
	if !ok {
		return "", false
	}
	page := lay.VmemmapStart + (phys>>12)*pageSize
	head, err := k.compoundHead(page)
	if err != nil {
		return "", false
	}
	flags, err := k.ReadPointer(head)
	if err != nil || flags&(1<<uint(pgSlab)) == 0 {
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
