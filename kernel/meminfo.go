package kernel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"strings"

	"salvage/debuginfo"
)

// MemInfo is the kernel's memory summary, every figure in pages, computed
// the way crash 8.0.6's `kmem -i` computes it (memory.c dump_kmeminfo):
// mostly from the kernel's own counters, plus one walk of every struct
// page for the figures the kernel keeps no counter of.
type MemInfo struct {
	PageSize uint64
	// TotalRAM is _totalram_pages (totalram_pages() in si_meminfo).
	TotalRAM uint64
	// Free is the sum over every zone of every online node of
	// zone.vm_stat[NR_FREE_PAGES]: crash reads the zones, not the global
	// vm_zone_stat, whose per-CPU deltas may lag.
	Free uint64
	// Shared is crash's own tally, not the kernel's Shmem: the pages of
	// every present memory section that are not PG_reserved and whose
	// _refcount is above 1.
	Shared uint64
	// Reserved counts the PG_reserved pages of the same walk.
	Reserved uint64
	// UnreadMemMap is how many bytes of the section tables and struct
	// pages the dump could not give: the walk took them for zeros (no
	// section, no reference), as crash does.
	UnreadMemMap uint64
	// SlabFlagPages counts the pages with the PG_slab flag set (slab head
	// pages), what crash before 8.0.4 showed as SLAB on 5.9+ kernels; 0
	// when PG_slab is not a page flag (6.8+ made it a page type).
	SlabFlagPages uint64
	// Buffers is nr_blockdev_pages(): the page-cache pages of every block
	// device inode (blockdev_superblock's s_inodes; all_bdevs before 5.9).
	Buffers uint64
	// FilePages and SwapCache are the vm_node_stat counters NR_FILE_PAGES
	// and NR_SWAPCACHE; Cached is FilePages - SwapCache - Buffers, never
	// below 0 (crash says so when it would be).
	FilePages, SwapCache int64
	Cached               uint64
	CachedNegative       bool
	// Slab is NR_SLAB_RECLAIMABLE_B + NR_SLAB_UNRECLAIMABLE_B (the older
	// NR_SLAB or NR_SLAB_RECLAIMABLE + NR_SLAB_UNRECLAIMABLE when those are
	// the enumerators the kernel has).
	Slab uint64
	// HugeTotal and HugeFree sum every registered hstate's nr_huge_pages
	// and free_huge_pages, in base pages.
	HugeTotal, HugeFree uint64
	// HasSwap is set when the kernel has swap (swapper_spaces):
	// SwapTotal and SwapUsed sum every used swap_info_struct's pages and
	// inuse_pages.
	HasSwap             bool
	SwapTotal, SwapUsed uint64
	// HasCommit is set when the kernel has sysctl_overcommit_memory:
	// CommitLimit is what __vm_enough_memory allows (overcommit_kbytes, or
	// ratio% of the RAM outside huge pages, plus the swap), Committed is
	// vm_committed_as.count (0 when negative), as /proc/meminfo shows.
	HasCommit   bool
	CommitLimit uint64
	Committed   int64
}

// MemInfo reads the memory summary. An error names the first figure that
// could not be read (a counter, a zone, a block device inode…); a
// struct page the dump lacks counts as zeros, as crash's mem_map cache
// does.
func (k *Kernel) MemInfo() (*MemInfo, error) {
	ts, err := k.types()
	if err != nil {
		return nil, err
	}
	mi := &MemInfo{PageSize: 4096}
	if ps, ok := k.VMCoreInfo().PageSize(); ok && ps > 0 {
		mi.PageSize = uint64(ps)
	}
	if mi.TotalRAM, err = k.readGlobalUint("_totalram_pages", "totalram_pages"); err != nil {
		return nil, fmt.Errorf("total RAM: %w", err)
	}
	if mi.TotalRAM == 0 {
		return nil, errors.New("total RAM: _totalram_pages is 0")
	}
	if err := k.walkMemMap(ts, mi); err != nil {
		return nil, fmt.Errorf("struct page array: %w", err)
	}
	if mi.Free, err = k.zonesFreePages(ts); err != nil {
		return nil, fmt.Errorf("free pages: %w", err)
	}
	st, err := k.newVMStat(ts)
	if err != nil {
		return nil, err
	}
	if mi.Slab, err = st.slab(); err != nil {
		return nil, err
	}
	if mi.Buffers, err = k.blockdevPages(ts); err != nil {
		return nil, fmt.Errorf("buffers (block device page cache): %w", err)
	}
	if v, ok, err := st.get("NR_FILE_PAGES"); err != nil {
		return nil, err
	} else if ok {
		mi.FilePages = v
		if v, ok, err := st.get("NR_SWAPCACHE"); err != nil {
			return nil, err
		} else if ok {
			mi.SwapCache = v
		}
		// Before 5.13 the swap cache has no counter: crash sums the
		// swapper_spaces' nrpages, which salvage does not read yet.
		cached := mi.FilePages - mi.SwapCache - int64(mi.Buffers)
		if cached < 0 {
			mi.CachedNegative = true
			cached = 0
		}
		mi.Cached = uint64(cached)
	}
	if mi.HugeTotal, mi.HugeFree, err = k.hugePages(ts); err != nil {
		return nil, fmt.Errorf("huge pages: %w", err)
	}
	if _, err := k.SymbolAddr("swapper_spaces"); err == nil {
		mi.HasSwap = true
	} else if _, err := k.SymbolAddr("swapper_space"); err == nil {
		mi.HasSwap = true
	}
	if mi.HasSwap {
		if mi.SwapTotal, mi.SwapUsed, err = k.swapPages(ts); err != nil {
			return nil, fmt.Errorf("swap: %w", err)
		}
	}
	if err := k.commitInfo(mi); err != nil {
		return nil, fmt.Errorf("committed memory: %w", err)
	}
	return mi, nil
}

// readGlobalUint reads the first of names that the kernel has as an
// unsigned integer of its declared size (an atomic_long_t's counter,
// when it is one); without a declared type, as an unsigned long.
func (k *Kernel) readGlobalUint(names ...string) (uint64, error) {
	var first error
	for _, name := range names {
		addr, err := k.SymbolAddr(name)
		if err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		if v, err := k.Global(name); err == nil {
			if r := v.Type().Resolve(); r != nil && (r.Kind == debuginfo.KindStruct || r.Kind == debuginfo.KindUnion) {
				if c, err := v.Member("counter"); err == nil {
					return c.Uint()
				}
			}
			if u, err := v.Uint(); err == nil {
				return u, nil
			}
		}
		return k.ReadUint(addr, k.ptrSize)
	}
	return 0, first
}

// readGlobalInt32 reads a global int (sysctl_overcommit_ratio,
// hugetlb_max_hstate) whose type BTF may lack.
func (k *Kernel) readGlobalInt32(name string) (int64, error) {
	addr, err := k.SymbolAddr(name)
	if err != nil {
		return 0, err
	}
	u, err := k.ReadUint(addr, 4)
	return int64(int32(u)), err
}

// enumValue is the value of enumerator name of enum typ.
func enumValue(ts debuginfo.Types, typ, name string) (int64, bool) {
	t, err := ts.Enum(typ)
	if err != nil {
		return 0, false
	}
	for _, e := range t.Enums {
		if e.Name == name {
			return e.Value, true
		}
	}
	return 0, false
}

// memberOffset is the byte offset of path in struct typ.
func memberOffset(ts debuginfo.Types, typ, path string) (int64, error) {
	t, err := ts.Named(typ)
	if err != nil {
		return 0, err
	}
	mp, err := lookupMember(t, path)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", typ, err)
	}
	return mp.Offset, nil
}

// sectionMarkedPresent and sectionMapMask are mem_section.section_mem_map's
// flag bits (include/linux/mmzone.h SECTION_MARKED_PRESENT, and the five
// low bits crash 8.0.6 masks, defs.h SECTION_MAP_LAST_BIT).
const (
	sectionMarkedPresent = 1
	sectionMapMask       = ^uint64(1<<5 - 1)
)

// walkMemMap tallies crash's dump_mem_map(GET_ALL) figures over every
// struct page of every present section (SPARSEMEM: mem_section, an array
// of roots, each a page of struct mem_section under SPARSEMEM_EXTREME).
func (k *Kernel) walkMemMap(ts debuginfo.Types, mi *MemInfo) error {
	vi := k.VMCoreInfo()
	secBits, ok := vi.Number("SECTION_SIZE_BITS")
	if !ok {
		return errors.New("VMCOREINFO has no NUMBER(SECTION_SIZE_BITS) (the kernel is not SPARSEMEM)")
	}
	physBits, ok := vi.Number("MAX_PHYSMEM_BITS")
	if !ok {
		return errors.New("VMCOREINFO has no NUMBER(MAX_PHYSMEM_BITS)")
	}
	pageShift := 0
	for 1<<pageShift < mi.PageSize {
		pageShift++
	}
	if secBits <= int64(pageShift) || secBits > 40 || physBits < secBits || physBits > 64 {
		return fmt.Errorf("implausible SPARSEMEM geometry: SECTION_SIZE_BITS %d, MAX_PHYSMEM_BITS %d", secBits, physBits)
	}
	pagesPerSection := uint64(1) << (secBits - int64(pageShift))
	nrSections := uint64(1) << (physBits - secBits)

	pageT, err := ts.Named("struct page")
	if err != nil {
		return err
	}
	pageSize := uint64(pageT.Size)
	flagsOff, err := memberOffset(ts, "struct page", "flags")
	if err != nil {
		return err
	}
	refOff, err := memberOffset(ts, "struct page", "_refcount")
	if err != nil {
		// Before 4.6 the reference count was _count.
		if refOff, err = memberOffset(ts, "struct page", "_count"); err != nil {
			return err
		}
	}
	// PG_reserved's bit from enum pageflags, as crash's
	// PG_reserved_flag_init prefers; PG_slab likewise, while it is a flag.
	// The bits move between kernels: PG_reserved is 12 on Debian's 6.1
	// and 13 on its 6.12, where PG_slab is gone (6.8 made slab a page
	// type) and so is the 8.0.2-style tally.
	pgReserved, ok := enumValue(ts, "pageflags", "PG_reserved")
	if !ok {
		return errors.New("enum pageflags has no PG_reserved")
	}
	pgSlab, hasSlabFlag := enumValue(ts, "pageflags", "PG_slab")

	secT, err := ts.Named("struct mem_section")
	if err != nil {
		return err
	}
	secSize := uint64(secT.Size)
	mapOff, err := memberOffset(ts, "struct mem_section", "section_mem_map")
	if err != nil {
		return err
	}
	if secSize == 0 || pageSize == 0 || uint64(mapOff)+8 > secSize || uint64(flagsOff)+8 > pageSize || uint64(refOff)+4 > pageSize {
		return fmt.Errorf("implausible layouts: struct mem_section %d bytes (section_mem_map at %d), struct page %d bytes (flags at %d, _refcount at %d)",
			secSize, mapOff, pageSize, flagsOff, refOff)
	}
	if pagesPerSection*pageSize > 1<<30 {
		return fmt.Errorf("implausible SPARSEMEM geometry: %d struct pages of %d bytes a section", pagesPerSection, pageSize)
	}
	ms, err := k.Global("mem_section")
	if err != nil {
		return err
	}
	// SPARSEMEM_EXTREME: mem_section points to NR_SECTION_ROOTS pointers,
	// each to a page of sections; otherwise it is a two-level array.
	perRoot := uint64(1)
	extreme := false
	if r := ms.Type().Resolve(); r != nil && r.Kind == debuginfo.KindPointer {
		extreme = true
		perRoot = mi.PageSize / secSize
	} else if r != nil && r.Kind == debuginfo.KindArray {
		if e := r.Elem.Resolve(); e != nil && e.Kind == debuginfo.KindArray && e.Len > 0 {
			perRoot = uint64(e.Len)
		}
	}
	nrRoots := (nrSections + perRoot - 1) / perRoot
	if n, ok := vi.Length("mem_section"); ok && n > 0 && n < nrRoots {
		nrRoots = n
	}
	if nrRoots > 1<<20 {
		return fmt.Errorf("implausible SPARSEMEM geometry: %d section roots", nrRoots)
	}
	roots := make([]uint64, nrRoots)
	if extreme {
		base, err := k.ReadPointer(ms.Address())
		if err != nil {
			return fmt.Errorf("mem_section: %w", err)
		}
		// A page of NULL roots is a zero page, which makedumpfile -d 1
		// drops from ELF dumps: unreadable roots count as NULL.
		buf := make([]byte, nrRoots*8)
		mi.UnreadMemMap += k.readZeroFilled(buf, base)
		for i := range roots {
			roots[i] = binary.LittleEndian.Uint64(buf[i*8:])
		}
	} else {
		for i := range roots {
			roots[i] = ms.Address() + uint64(i)*perRoot*secSize
		}
	}
	chunk := make([]byte, 64<<10)
	secBuf := make([]byte, perRoot*secSize)
	for r, root := range roots {
		if root == 0 {
			continue
		}
		mi.UnreadMemMap += k.readZeroFilled(secBuf, root)
		for j := uint64(0); j < perRoot; j++ {
			nr := uint64(r)*perRoot + j
			coded := binary.LittleEndian.Uint64(secBuf[j*secSize+uint64(mapOff):])
			if coded&sectionMarkedPresent == 0 {
				continue
			}
			memMap := (coded & sectionMapMask) + nr*pagesPerSection*pageSize
			total := pagesPerSection * pageSize
			for off := uint64(0); off < total; off += uint64(len(chunk)) {
				b := chunk[:min(uint64(len(chunk)), total-off)]
				mi.UnreadMemMap += k.readZeroFilled(b, memMap+off)
				for p := uint64(0); p+pageSize <= uint64(len(b)); p += pageSize {
					flags := binary.LittleEndian.Uint64(b[p+uint64(flagsOff):])
					count := int32(binary.LittleEndian.Uint32(b[p+uint64(refOff):]))
					if hasSlabFlag && flags>>uint(pgSlab)&1 != 0 {
						mi.SlabFlagPages++
					}
					if flags>>uint(pgReserved)&1 != 0 {
						mi.Reserved++
					} else if count > 1 {
						mi.Shared++
					}
				}
			}
		}
	}
	return nil
}

// readZeroFilled reads b at addr, leaving zeros for the pages that
// cannot be read, as crash's fill_mem_map_cache does; it returns how
// many bytes it could not read.
func (k *Kernel) readZeroFilled(b []byte, addr uint64) uint64 {
	if k.Read(b, addr) == nil {
		return 0
	}
	var missing uint64
	for off := 0; off < len(b); {
		n := 4096 - int((addr+uint64(off))&4095)
		n = min(n, len(b)-off)
		if k.Read(b[off:off+n], addr+uint64(off)) != nil {
			clear(b[off : off+n])
			missing += uint64(n)
		}
		off += n
	}
	return missing
}

// onlineNodes lists the pglist_data of every online node: node_data[n]
// for each bit of node_states[N_ONLINE], or contig_page_data without
// NUMA.
func (k *Kernel) onlineNodes(ts debuginfo.Types) ([]Value, error) {
	if _, err := k.SymbolAddr("node_data"); err != nil {
		addr, err2 := k.SymbolAddr("contig_page_data")
		if err2 != nil {
			return nil, fmt.Errorf("neither node_data nor contig_page_data: %w", err)
		}
		v, err := k.ObjectOf(addr, "struct pglist_data")
		return []Value{v}, err
	}
	nd, err := k.Global("node_data")
	if err != nil {
		return nil, err
	}
	online, ok := enumValue(ts, "node_states", "N_ONLINE")
	if !ok {
		return nil, errors.New("enum node_states has no N_ONLINE")
	}
	states, err := k.Global("node_states")
	if err != nil {
		return nil, err
	}
	mask, err := states.Index(int(online))
	if err != nil {
		return nil, err
	}
	bits, err := mask.Bytes()
	if err != nil {
		return nil, fmt.Errorf("node_states[N_ONLINE]: %w", err)
	}
	pgdatT, err := ts.Named("struct pglist_data")
	if err != nil {
		return nil, err
	}
	var nodes []Value
	for n := 0; n < len(bits)*8; n++ {
		if bits[n/8]>>(n%8)&1 == 0 {
			continue
		}
		// node_data's declared length depends on the configuration
		// (MAX_NUMNODES); the online mask bounds the index instead.
		p, err := k.ReadPointer(nd.Address() + uint64(n)*8)
		if err != nil {
			return nil, fmt.Errorf("node_data[%d]: %w", n, err)
		}
		if p == 0 {
			continue
		}
		nodes = append(nodes, k.Object(p, pgdatT))
	}
	if len(nodes) == 0 {
		return nil, errors.New("no online node has a pglist_data")
	}
	return nodes, nil
}

// zonesFreePages sums zone.vm_stat[NR_FREE_PAGES] over every zone of
// every online node (crash's dump_free_pages_zones_v2, GET_FREE_PAGES).
func (k *Kernel) zonesFreePages(ts debuginfo.Types) (uint64, error) {
	idx, ok := enumValue(ts, "zone_stat_item", "NR_FREE_PAGES")
	if !ok {
		return 0, errors.New("enum zone_stat_item has no NR_FREE_PAGES")
	}
	nodes, err := k.onlineNodes(ts)
	if err != nil {
		return 0, err
	}
	var sum uint64
	for _, node := range nodes {
		zones, err := node.Member("node_zones")
		if err != nil {
			return 0, err
		}
		r := zones.Type().Resolve()
		if r == nil || r.Kind != debuginfo.KindArray || r.Len <= 0 {
			return 0, zones.typeErr("node_zones is not an array of zones")
		}
		for z := 0; z < int(r.Len); z++ {
			zone, err := zones.Index(z)
			if err != nil {
				return 0, err
			}
			c, err := zone.Member(fmt.Sprintf("vm_stat[%d].counter", idx))
			if err != nil {
				return 0, err
			}
			v, err := c.Uint()
			if err != nil {
				return 0, fmt.Errorf("zone %d of node at %#x: %w", z, node.Address(), err)
			}
			sum += v
		}
	}
	return sum, nil
}

// vmStat reads the global memory counters by enumerator name: the zone
// items (enum zone_stat_item) in vm_zone_stat, the node items (enum
// node_stat_item) in vm_node_stat; before 4.8, vm_stat held them all.
// The indexes move (6.12 added NR_UNACCEPTED to the zone items; the node
// items gained and lost members across 6.x): only names are stable.
type vmStat struct {
	k     *Kernel
	ts    debuginfo.Types
	split bool
}

func (k *Kernel) newVMStat(ts debuginfo.Types) (*vmStat, error) {
	if _, err := k.SymbolAddr("vm_zone_stat"); err == nil {
		if _, err := k.SymbolAddr("vm_node_stat"); err != nil {
			return nil, fmt.Errorf("vm_zone_stat without vm_node_stat: %w", err)
		}
		return &vmStat{k: k, ts: ts, split: true}, nil
	}
	if _, err := k.SymbolAddr("vm_stat"); err != nil {
		return nil, errors.New("memory counters: the kernel has neither vm_zone_stat nor vm_stat")
	}
	return &vmStat{k: k, ts: ts}, nil
}

// get returns counter item; ok is false when the kernel has no such
// enumerator.
func (s *vmStat) get(item string) (int64, bool, error) {
	type source struct{ enum, array, limit string }
	srcs := []source{{"zone_stat_item", "vm_stat", "NR_VM_ZONE_STAT_ITEMS"}}
	if s.split {
		srcs = []source{
			{"zone_stat_item", "vm_zone_stat", "NR_VM_ZONE_STAT_ITEMS"},
			{"node_stat_item", "vm_node_stat", "NR_VM_NODE_STAT_ITEMS"},
		}
	}
	for _, src := range srcs {
		idx, ok := enumValue(s.ts, src.enum, item)
		if !ok {
			continue
		}
		if n, ok := enumValue(s.ts, src.enum, src.limit); ok && idx >= n {
			continue
		}
		addr, err := s.k.SymbolAddr(src.array)
		if err != nil {
			return 0, false, err
		}
		u, err := s.k.ReadUint(addr+uint64(idx)*8, 8)
		if err != nil {
			return 0, false, fmt.Errorf("%s[%s]: %w", src.array, item, err)
		}
		return int64(u), true, nil
	}
	return 0, false, nil
}

// slab is the slab counters' sum, by whichever enumerators the kernel
// has (crash's order: NR_SLAB, then the split counters, then 5.9's
// byte-named ones, which the global counters still keep in pages).
func (s *vmStat) slab() (uint64, error) {
	for _, pair := range [][2]string{{"NR_SLAB", ""}, {"NR_SLAB_RECLAIMABLE", "NR_SLAB_UNRECLAIMABLE"}, {"NR_SLAB_RECLAIMABLE_B", "NR_SLAB_UNRECLAIMABLE_B"}} {
		v, ok, err := s.get(pair[0])
		if err != nil {
			return 0, err
		}
		if !ok {
			continue
		}
		if pair[1] != "" {
			w, ok, err := s.get(pair[1])
			if err != nil {
				return 0, err
			}
			if ok {
				v += w
			}
		}
		return uint64(v), nil
	}
	return 0, errors.New("slab pages: no NR_SLAB* enumerator in zone_stat_item or node_stat_item")
}

// blockdevPages is nr_blockdev_pages(): the nrpages of every block
// device inode's mapping (block/bdev.c: blockdev_superblock's s_inodes
// since 5.9; fs/block_dev.c: the all_bdevs list before).
func (k *Kernel) blockdevPages(ts debuginfo.Types) (uint64, error) {
	if head, err := k.SymbolAddr("all_bdevs"); err == nil {
		return sumMember(k.ListEntries(head, "struct block_device", "bd_list"), "bd_inode->i_mapping->nrpages")
	}
	sbp, err := k.SymbolAddr("blockdev_superblock")
	if err != nil {
		return 0, err
	}
	sb, err := k.ReadPointer(sbp)
	if err != nil {
		return 0, fmt.Errorf("blockdev_superblock: %w", err)
	}
	if sb == 0 {
		return 0, errors.New("blockdev_superblock is NULL")
	}
	off, err := memberOffset(ts, "struct super_block", "s_inodes")
	if err != nil {
		return 0, err
	}
	return sumMember(k.ListEntries(sb+uint64(off), "struct inode", "i_sb_list"), "i_mapping->nrpages")
}

// sumMember adds up the integer member path of every object of seq.
func sumMember(seq iter.Seq2[Value, error], path string) (uint64, error) {
	var sum uint64
	for obj, err := range seq {
		if err != nil {
			return 0, err
		}
		n, err := obj.Member(path)
		if err != nil {
			return 0, err
		}
		v, err := n.Uint()
		if err != nil {
			return 0, err
		}
		sum += v
	}
	return sum, nil
}

// hugePages sums the hstates (mm/hugetlb.c): nr_huge_pages and
// free_huge_pages of each, times its pages (1 << order). Only the first
// hugetlb_max_hstate are registered; the rest have order 0, which crash
// skips too.
func (k *Kernel) hugePages(ts debuginfo.Types) (total, free uint64, err error) {
	base, err := k.SymbolAddr("hstates")
	if err != nil {
		// No HUGETLBFS: crash shows zeros.
		return 0, 0, nil
	}
	hT, err := ts.Named("struct hstate")
	if err != nil {
		return 0, 0, err
	}
	n := int64(0)
	if v, err := k.Global("hstates"); err == nil {
		if r := v.Type().Resolve(); r != nil && r.Kind == debuginfo.KindArray && r.Len > 0 {
			n = r.Len
		}
	}
	if n == 0 {
		if n, err = k.readGlobalInt32("hugetlb_max_hstate"); err != nil {
			return 0, 0, err
		}
	}
	if n < 0 || n > 64 {
		return 0, 0, fmt.Errorf("implausible number of hstates %d", n)
	}
	for i := int64(0); i < n; i++ {
		h := k.Object(base+uint64(i*hT.Size), hT)
		order, err := h.Member("order")
		if err != nil {
			return 0, 0, err
		}
		o, err := order.Uint()
		if err != nil {
			return 0, 0, err
		}
		if o == 0 {
			continue
		}
		var vals [2]uint64
		for j, m := range []string{"nr_huge_pages", "free_huge_pages"} {
			f, err := h.Member(m)
			if err != nil {
				return 0, 0, err
			}
			if vals[j], err = f.Uint(); err != nil {
				return 0, 0, err
			}
		}
		total += vals[0] << o
		free += vals[1] << o
	}
	return total, free, nil
}

// swpUsed is SWP_USED of swap_info_struct.flags (include/linux/swap.h).
const swpUsed = 1

// swapPages sums pages and inuse_pages over the used swap_info_structs
// (swap_info[] holds pointers since 2.6.33; crash's SWAPINFO_V2).
func (k *Kernel) swapPages(ts debuginfo.Types) (total, used uint64, err error) {
	nr, err := k.readGlobalInt32("nr_swapfiles")
	if err != nil {
		return 0, 0, err
	}
	base, err := k.SymbolAddr("swap_info")
	if err != nil {
		return 0, 0, err
	}
	siT, err := ts.Named("struct swap_info_struct")
	if err != nil {
		return 0, 0, err
	}
	for i := int64(0); i < nr && i < 64; i++ {
		p, err := k.ReadPointer(base + uint64(i)*8)
		if err != nil || p == 0 {
			continue
		}
		si := k.Object(p, siT)
		var vals [3]uint64
		for j, m := range []string{"flags", "pages", "inuse_pages"} {
			f, err := si.Member(m)
			if err != nil {
				return 0, 0, err
			}
			if vals[j], err = f.Uint(); err != nil {
				return 0, 0, fmt.Errorf("swap_info[%d]: %w", i, err)
			}
		}
		if vals[0]&swpUsed == 0 {
			continue
		}
		total += uint64(uint32(vals[1]))
		used += vals[2]
	}
	return total, used, nil
}

// commitInfo reads the overcommit limit and the committed address space
// as crash does (mm/util.c vm_commit_limit, vm_memory_committed without
// the per-CPU deltas).
func (k *Kernel) commitInfo(mi *MemInfo) error {
	if _, err := k.SymbolAddr("sysctl_overcommit_memory"); err != nil {
		return nil
	}
	mi.HasCommit = true
	var kbytes uint64
	if addr, err := k.SymbolAddr("sysctl_overcommit_kbytes"); err == nil {
		if kbytes, err = k.ReadUint(addr, 8); err != nil {
			return err
		}
	}
	if kbytes != 0 {
		mi.CommitLimit = kbytes >> (pageShiftOf(mi.PageSize) - 10)
	} else {
		ratio, err := k.readGlobalInt32("sysctl_overcommit_ratio")
		if err != nil {
			return err
		}
		mi.CommitLimit = (mi.TotalRAM - mi.HugeTotal) * uint64(ratio) / 100
	}
	mi.CommitLimit += mi.SwapTotal
	addr, err := k.SymbolAddr("vm_committed_as")
	if err != nil {
		return err
	}
	off, err := memberOffset(k.Types, "struct percpu_counter", "count")
	if err != nil {
		return err
	}
	u, err := k.ReadUint(addr+uint64(off), 8)
	if err != nil {
		return fmt.Errorf("vm_committed_as: %w", err)
	}
	mi.Committed = max(int64(u), 0)
	return nil
}

func pageShiftOf(size uint64) uint {
	s := uint(0)
	for 1<<s < size {
		s++
	}
	return s
}

// FormatPages is crash's pages_to_size: a page count as "0", "84 KB",
// "510.2 MB" or "1.5 GB", the ".0" of a whole number dropped.
func FormatPages(pages, pageSize uint64) string {
	if pages == 0 {
		return "0"
	}
	total := float64(pages) * float64(pageSize)
	var s string
	switch {
	case total >= 1<<30:
		s = fmt.Sprintf("%.1f GB", total/(1<<30))
	case total >= 1<<20:
		s = fmt.Sprintf("%.1f MB", total/(1<<20))
	default:
		s = fmt.Sprintf("%d KB", uint64(total/(1<<10)))
	}
	return strings.Replace(s, ".0 ", " ", 1)
}
