package collect

import (
	"encoding/binary"
	"fmt"

	"salvage/dump"
)

// Dump-level bits, makedumpfile's -d (makedumpfile.h DL_EXCLUDE_*).
const (
	LevelZero         = 1  // pages full of zeroes
	LevelCache        = 2  // page cache without private data
	LevelCachePrivate = 4  // page cache, private data or not
	LevelUser         = 8  // user process data: anonymous and hugetlbfs pages
	LevelFree         = 16 // free pages, owned by the buddy allocator
	LevelMax          = 31
)

// Counts are the pages of each class, the numbers makedumpfile's
// --message-level report prints.
type Counts struct {
	RAM          uint64 // page frames that are RAM (in a PT_LOAD)
	Zero         uint64 // excluded as zero pages (counted while writing)
	Cache        uint64 // non-private page cache
	CachePrivate uint64 // private page cache
	User         uint64 // user process data
	Free         uint64 // free pages
	HWPoison     uint64 // hardware-poisoned pages, always dropped
	Offline      uint64 // logically offline pages, always dropped
	Kept         uint64 // pages the dump holds (zero pages included)
	// KeptForAnalyzer are pages the level would have excluded that the
	// analyzer needs (see needs.go), kept and counted among Kept.
	KeptForAnalyzer uint64
}

// Excluded is the total of the excluded classes.
func (c Counts) Excluded() uint64 {
	return c.Zero + c.Cache + c.CachePrivate + c.User + c.Free + c.HWPoison + c.Offline
}

// pageLayout is what classification needs of struct page, all from
// VMCOREINFO. The *Ok fields say an optional entry is there.
type pageLayout struct {
	size                                  uint64 // SIZE(page)
	flags, refcount, mapping              uint64
	mapcount, private, compoundHead       uint64
	mapcountOk, privateOk, compoundHeadOk bool
	compoundOrder, compoundDtor           uint64
	compoundOrderOk, compoundDtorOk       bool
	pgLRU, pgPrivate, pgSwapcache, pgSlab uint
	pgSwapbacked, pgHWPoison, pgHugetlb   uint
	swapbackedOk, hwpoisonOk, hugetlbFlag bool
	headMask                              uint64
	headMaskOk                            bool
	buddyValue, offlineValue, slabValue   int32
	buddyOk, offlineOk, slabValueOk       bool
	hugetlbMapcount, unacceptedValue      int32
	hugetlbMapcountOk, unacceptedOk       bool
	hugetlbDtor                           uint64
	hugetlbDtorOk                         bool
	maxOrder                              uint64 // LENGTH(zone.free_area)
	maxOrderOk                            bool
}

// Plan is the outcome of reading VMCOREINFO for a requested dump level:
// the level that can be honoured and why any bit was dropped.
type Plan struct {
	Requested int
	Level     int      // the effective level
	Notes     []string // one line per bit dropped, saying what was missing
	layout    pageLayout
}

// planLevel checks VMCOREINFO for every entry each bit of level needs and
// drops the bits it cannot honour, saying why: a missing entry never
// leads to a guess (a page dropped by mistake is lost for good).
func planLevel(vi *dump.VMCoreInfo, level int) *Plan {
	p := &Plan{Requested: level, Level: level}
	l := &p.layout
	drop := func(bits int, why string) {
		if p.Level&bits != 0 {
			p.Level &^= bits
			p.Notes = append(p.Notes, fmt.Sprintf("dump level %d dropped: %s", bits&level, why))
		}
	}
	num := func(name string) (uint, bool) {
		n, ok := vi.Number(name)
		return uint(n), ok && n >= 0 && n < 64
	}
	val := func(name string) (int32, bool) {
		n, ok := vi.Number(name)
		return int32(n), ok
	}
	var ok bool
	// Without struct page's size and flags nothing but zero pages can be
	// told apart.
	var okSize, okFlags, okMap bool
	l.size, okSize = vi.Size("page")
	l.flags, okFlags = vi.Offset("page", "flags")
	l.mapping, okMap = vi.Offset("page", "mapping")
	l.refcount, _ = vi.Offset("page", "_refcount")
	// An offset that would read past struct page is as good as missing:
	// VMCOREINFO is data from a crashed kernel and is checked like input.
	fits := func(off uint64, ok bool, width uint64) bool { return ok && off+width <= l.size }
	if _, ok = vi.Symbol("mem_section"); !ok || !okSize || l.size == 0 || l.size > 1024 ||
		!fits(l.flags, okFlags, 8) || !fits(l.mapping, okMap, 8) {
		drop(LevelCache|LevelCachePrivate|LevelUser|LevelFree, "VMCOREINFO lacks SYMBOL(mem_section), SIZE(page), OFFSET(page.flags) or OFFSET(page.mapping): struct page cannot be read")
		return p
	}
	l.mapcount, l.mapcountOk = vi.Offset("page", "_mapcount")
	l.private, l.privateOk = vi.Offset("page", "private")
	l.compoundHead, l.compoundHeadOk = vi.Offset("page", "compound_head")
	l.compoundOrder, l.compoundOrderOk = vi.Offset("page", "compound_order")
	l.compoundDtor, l.compoundDtorOk = vi.Offset("page", "compound_dtor")
	l.mapcountOk = fits(l.mapcount, l.mapcountOk, 4)
	l.privateOk = fits(l.private, l.privateOk, 8)
	l.compoundHeadOk = fits(l.compoundHead, l.compoundHeadOk, 8)
	l.compoundOrderOk = fits(l.compoundOrder, l.compoundOrderOk, 1)
	l.compoundDtorOk = fits(l.compoundDtor, l.compoundDtorOk, 1)
	l.pgSwapbacked, l.swapbackedOk = num("PG_swapbacked")
	l.pgHWPoison, l.hwpoisonOk = num("PG_hwpoison")
	l.pgHugetlb, l.hugetlbFlag = num("PG_hugetlb")
	var hm int64
	hm, l.headMaskOk = vi.Number("PG_head_mask")
	l.headMask = uint64(hm)
	l.buddyValue, l.buddyOk = val("PAGE_BUDDY_MAPCOUNT_VALUE")
	l.offlineValue, l.offlineOk = val("PAGE_OFFLINE_MAPCOUNT_VALUE")
	l.slabValue, l.slabValueOk = val("PAGE_SLAB_MAPCOUNT_VALUE")
	l.hugetlbMapcount, l.hugetlbMapcountOk = val("PAGE_HUGETLB_MAPCOUNT_VALUE")
	l.unacceptedValue, l.unacceptedOk = val("PAGE_UNACCEPTED_MAPCOUNT_VALUE")
	var hd int64
	hd, l.hugetlbDtorOk = vi.Number("HUGETLB_PAGE_DTOR")
	l.hugetlbDtor = uint64(hd)
	l.maxOrder, l.maxOrderOk = vi.Length("zone.free_area")
	l.offlineOk = l.offlineOk && l.mapcountOk

	var okSlab, okLRU, okPriv, okSwap bool
	l.pgSlab, okSlab = num("PG_slab")
	l.pgLRU, okLRU = num("PG_lru")
	l.pgPrivate, okPriv = num("PG_private")
	l.pgSwapcache, okSwap = num("PG_swapcache")
	if !okSlab && !l.slabValueOk {
		// Slab pages are told from anonymous and buddy pages by PG_slab;
		// without it those tests would drop slab pages.
		drop(LevelUser|LevelFree, "VMCOREINFO has neither NUMBER(PG_slab) nor NUMBER(PAGE_SLAB_MAPCOUNT_VALUE), so slab pages cannot be told from user and free pages")
	}
	if !okLRU || !okPriv || !okSwap {
		drop(LevelCache|LevelCachePrivate, "VMCOREINFO lacks NUMBER(PG_lru), NUMBER(PG_private) or NUMBER(PG_swapcache)")
	}
	if !l.privateOk || !l.mapcountOk || !l.buddyOk {
		// makedumpfile then walks the zones' free lists; salvage does not
		// yet, so free pages are kept.
		drop(LevelFree, "VMCOREINFO lacks OFFSET(page.private), OFFSET(page._mapcount) or NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE) (free-list walking is not implemented)")
	}
	if p.Level&LevelUser != 0 && !l.headMaskOk {
		// Without PG_head_mask compound heads, hence hugetlb pages,
		// cannot be found; anonymous pages still can.
		p.Notes = append(p.Notes, "VMCOREINFO has no NUMBER(PG_head_mask): hugetlbfs pages are kept")
	}
	return p
}

// pageState is the fields of one struct page that classification reads.
type pageState struct {
	flags, mapping, private, compoundHead uint64
	mapcount                              int32
}

func (l *pageLayout) read(b []byte) pageState {
	le := binary.LittleEndian
	s := pageState{
		flags:   le.Uint64(b[l.flags:]),
		mapping: le.Uint64(b[l.mapping:]),
	}
	if l.mapcountOk {
		s.mapcount = int32(le.Uint32(b[l.mapcount:]))
	}
	if l.privateOk {
		s.private = le.Uint64(b[l.private:])
	}
	if l.compoundHeadOk {
		s.compoundHead = le.Uint64(b[l.compoundHead:])
	}
	return s
}

func (l *pageLayout) bit(flags uint64, n uint) bool { return flags&(1<<n) != 0 }

// isSlab: PG_slab, or since Linux 6.10 a page type in _mapcount
// (makedumpfile.c isSlab).
func (l *pageLayout) isSlab(s pageState) bool {
	if l.slabValueOk && s.mapcount == l.slabValue {
		return true
	}
	return l.bit(s.flags, l.pgSlab)
}

// isBuddy: a free page heading a block of 2^private frames is marked by
// PAGE_BUDDY_MAPCOUNT_VALUE in _mapcount (page_type), unless it is a slab
// page, whose _mapcount shares the union (makedumpfile.c page_is_buddy_v3).
func (l *pageLayout) isBuddy(s pageState) bool {
	return !l.isSlab(s) && s.mapcount == l.buddyValue
}

// isCache: on the LRU, or in the swap cache (PG_swapcache only means it
// with PG_swapbacked set, since 4.10) — makedumpfile.c is_cache_page.
func (l *pageLayout) isCache(s pageState) bool {
	if l.bit(s.flags, l.pgLRU) {
		return true
	}
	return (!l.swapbackedOk || l.bit(s.flags, l.pgSwapbacked)) && l.bit(s.flags, l.pgSwapcache)
}

// isAnon: PAGE_MAPPING_ANON in mapping, not a slab page (makedumpfile.h isAnon).
func (l *pageLayout) isAnon(s pageState) bool {
	return s.mapping&1 != 0 && !l.isSlab(s)
}

func (l *pageLayout) isOffline(s pageState) bool {
	return l.offlineOk && !l.isSlab(s) && s.mapcount == l.offlineValue
}

// compound returns the order and whether a compound head is a hugetlb
// page, from the first tail page (next), as makedumpfile reads them:
// 6.9+ a hugetlb page type in _mapcount, 6.6+ the order in the low byte of
// folio._flags_1 and PG_hugetlb there, before that compound_order and
// compound_dtor (a byte each since 4.16) in the tail.
func (l *pageLayout) compound(s pageState, next []byte) (order uint, huge bool) {
	le := binary.LittleEndian
	switch {
	case l.hugetlbMapcountOk:
		order = uint(le.Uint64(next[l.flags:]) & 0xff)
		huge = s.mapcount == l.hugetlbMapcount
	case l.hugetlbFlag:
		f1 := le.Uint64(next[l.flags:])
		order = uint(f1 & 0xff)
		huge = f1&(1<<l.pgHugetlb) != 0
	default:
		if l.compoundOrderOk {
			order = uint(next[l.compoundOrder])
		}
		if l.compoundDtorOk && l.hugetlbDtorOk {
			huge = uint64(next[l.compoundDtor]) == l.hugetlbDtor
		}
	}
	return order, huge
}

// Class is why a page is excluded, or ClassKept.
type Class uint8

// Page classes.
const (
	ClassKept Class = iota
	ClassCache
	ClassCachePrivate
	ClassUser
	ClassFree
	ClassHWPoison
	ClassOffline
)

func (c *Counts) add(cl Class, n uint64) {
	switch cl {
	case ClassCache:
		c.Cache += n
	case ClassCachePrivate:
		c.CachePrivate += n
	case ClassUser:
		c.User += n
	case ClassFree:
		c.Free += n
	case ClassHWPoison:
		c.HWPoison += n
	case ClassOffline:
		c.Offline += n
	}
}

// classifyOne decides one page (makedumpfile.c __exclude_unnecessary_pages,
// in its order: free, cache, private cache, user, hwpoison, offline) and
// returns how many frames from it the decision covers.
func (p *Plan) classifyOne(pfn uint64, s pageState, next []byte) (Class, uint64) {
	l := &p.layout
	level := p.Level
	var order uint
	var huge bool
	if next != nil && l.headMaskOk && s.flags&l.headMask != 0 {
		order, huge = l.compound(s, next)
		if order >= 64 || pfn&(1<<order-1) != 0 {
			order = 0 // not a valid head: makedumpfile's check_order
		}
	}
	n := uint64(1) << order
	switch {
	case s.compoundHead&1 != 0:
		// A tail page: excluded with its head, if at all.
		return ClassKept, 1
	case level&LevelFree != 0 && l.isBuddy(s):
		if (l.maxOrderOk && s.private >= l.maxOrder) || s.private >= 32 {
			return ClassKept, 1 // makedumpfile: "Invalid free page order"
		}
		return ClassFree, 1 << s.private
	case level&LevelFree != 0 && l.unacceptedOk && s.mapcount == l.unacceptedValue && l.maxOrderOk && l.maxOrder >= 1 && l.maxOrder <= 32:
		return ClassFree, 1 << (l.maxOrder - 1)
	case level&LevelCache != 0 && l.isCache(s) && !l.bit(s.flags, l.pgPrivate) && !l.isAnon(s):
		return ClassCache, n
	case level&LevelCachePrivate != 0 && l.isCache(s) && !l.isAnon(s):
		if l.bit(s.flags, l.pgPrivate) {
			return ClassCachePrivate, n
		}
		return ClassCache, n
	case level&LevelUser != 0 && (l.isAnon(s) || huge):
		return ClassUser, n
	case l.hwpoisonOk && l.bit(s.flags, l.pgHWPoison):
		return ClassHWPoison, n
	case l.isOffline(s):
		return ClassOffline, n
	}
	// A kept page decides only itself: the frames after a kept compound
	// head are looked at one by one (makedumpfile's "continue").
	return ClassKept, 1
}
