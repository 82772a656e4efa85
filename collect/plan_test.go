package collect

import (
	"strings"
	"testing"

	"salvage/dump"
)

// A complete VMCOREINFO of a 6.1 kernel, as far as classification reads it.
const vmcoreinfo61 = `PAGESIZE=4096
SYMBOL(mem_section)=ffff8884bffd9000
LENGTH(mem_section)=2048
SIZE(mem_section)=16
OFFSET(mem_section.section_mem_map)=0
NUMBER(SECTION_SIZE_BITS)=27
NUMBER(MAX_PHYSMEM_BITS)=46
SIZE(page)=64
OFFSET(page.flags)=0
OFFSET(page._refcount)=52
OFFSET(page.mapping)=24
OFFSET(page.lru)=8
OFFSET(page._mapcount)=48
OFFSET(page.private)=40
OFFSET(page.compound_dtor)=16
OFFSET(page.compound_order)=17
OFFSET(page.compound_head)=8
LENGTH(zone.free_area)=11
NUMBER(PG_lru)=4
NUMBER(PG_private)=13
NUMBER(PG_swapcache)=10
NUMBER(PG_swapbacked)=19
NUMBER(PG_slab)=9
NUMBER(PG_head_mask)=65536
NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)=-129
NUMBER(HUGETLB_PAGE_DTOR)=2
NUMBER(PAGE_OFFLINE_MAPCOUNT_VALUE)=-257
`

func without(keys ...string) *dump.VMCoreInfo {
	var lines []string
	for _, l := range strings.Split(vmcoreinfo61, "\n") {
		drop := false
		for _, k := range keys {
			if strings.HasPrefix(l, k+"=") {
				drop = true
			}
		}
		if !drop {
			lines = append(lines, l)
		}
	}
	vi, _ := dump.ParseVMCoreInfo([]byte(strings.Join(lines, "\n")))
	return vi
}

// When VMCOREINFO lacks what a level bit needs, the bit is dropped (pages
// kept) and the plan says why; nothing is guessed.
func TestPlanFallsBack(t *testing.T) {
	tests := []struct {
		name    string
		vi      *dump.VMCoreInfo
		level   int
		want    int
		mention string
	}{
		{"complete", without(), 31, 31, ""},
		{"no PG_slab", without("NUMBER(PG_slab)"), 31, 7, "PG_slab"},
		{"no buddy value", without("NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)"), 31, 15, "PAGE_BUDDY_MAPCOUNT_VALUE"},
		{"no private", without("OFFSET(page.private)"), 16, 0, "page.private"},
		{"no PG_lru", without("NUMBER(PG_lru)"), 31, 25, "PG_lru"},
		{"no SIZE(page)", without("SIZE(page)"), 31, 1, "struct page cannot be read"},
		{"no mem_section", without("SYMBOL(mem_section)"), 30, 0, "mem_section"},
		{"no VMCOREINFO at all", nil, 31, 1, "struct page"},
		{"level 1 needs nothing", nil, 1, 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := planLevel(tt.vi, tt.level)
			if p.Level != tt.want {
				t.Errorf("level %d, want %d (notes %q)", p.Level, tt.want, p.Notes)
			}
			notes := strings.Join(p.Notes, "\n")
			if tt.mention == "" && notes != "" {
				t.Errorf("unexpected notes %q", notes)
			}
			if tt.mention != "" && !strings.Contains(notes, tt.mention) {
				t.Errorf("notes %q do not mention %s", notes, tt.mention)
			}
		})
	}
}

// classifyOne on struct pages built by hand: the order of the tests and
// the extent of each exclusion follow makedumpfile.
func TestClassifyOne(t *testing.T) {
	vi := without()
	p := planLevel(vi, 31)
	const (
		lru, private, swapcache, swapbacked, slab = 1 << 4, 1 << 13, 1 << 10, 1 << 19, 1 << 9
		head                                      = 65536
	)
	tests := []struct {
		name  string
		pfn   uint64
		s     pageState
		next  []byte
		class Class
		n     uint64
	}{
		{"buddy order 3", 8, pageState{mapcount: -129, private: 3}, nil, ClassFree, 8},
		{"slab page whose _mapcount looks like buddy", 8, pageState{flags: slab, mapcount: -129, private: 3}, nil, ClassKept, 1},
		{"buddy with an impossible order", 8, pageState{mapcount: -129, private: 11}, nil, ClassKept, 1},
		{"page cache", 1, pageState{flags: lru, mapping: 0xffff888000001000}, nil, ClassCache, 1},
		{"private page cache", 1, pageState{flags: lru | private, mapping: 0xffff888000001000}, nil, ClassCachePrivate, 1},
		{"swap cache needs swapbacked", 1, pageState{flags: swapcache}, nil, ClassKept, 1},
		{"swap cache", 1, pageState{flags: swapcache | swapbacked, mapping: 0}, nil, ClassCache, 1},
		{"anonymous on the LRU is user data", 1, pageState{flags: lru, mapping: 0xffff888000001001}, nil, ClassUser, 1},
		{"anonymous compound head: the whole folio", 512, pageState{flags: head, mapping: 0xffff888000001001}, compoundTail(9, 0), ClassUser, 512},
		{"hugetlb head", 512, pageState{flags: head}, compoundTail(9, 2), ClassUser, 512},
		{"misaligned head: one page", 513, pageState{flags: head, mapping: 1}, compoundTail(9, 0), ClassUser, 1},
		{"tail page", 5, pageState{compoundHead: 0xffffea0000000001, mapping: 1}, nil, ClassKept, 1},
		{"offline", 1, pageState{mapcount: -257}, nil, ClassOffline, 1},
		{"kernel page", 1, pageState{}, nil, ClassKept, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, n := p.classifyOne(tt.pfn, tt.s, tt.next)
			if c != tt.class || n != tt.n {
				t.Errorf("class %d ×%d, want %d ×%d", c, n, tt.class, tt.n)
			}
		})
	}
}

// compoundTail is a first tail page with compound_order and compound_dtor
// at their 6.1 offsets (17 and 16).
func compoundTail(order, dtor byte) []byte {
	b := make([]byte, 64)
	b[8] = 1 // compound_head with bit 0: a tail
	b[16], b[17] = dtor, order
	return b
}

// A source without VMCOREINFO is collected at the level that needs none
// (zero pages only), saying why, rather than refused or guessed at.
func TestPrepareWithoutVMCoreInfo(t *testing.T) {
	m := flatMemory{make([]byte, 64*4096)}
	f := &dump.File{Path: "synthetic", Format: dump.FormatELF, Arch: dump.ArchX86_64, Memory: m}
	sel, err := Prepare(f, 31)
	if err != nil {
		t.Fatal(err)
	}
	if sel.Plan.Level != 1 || len(sel.Plan.Notes) == 0 || sel.Counts.Kept != sel.Counts.RAM {
		t.Errorf("level %d, notes %q, kept %d of %d", sel.Plan.Level, sel.Plan.Notes, sel.Counts.Kept, sel.Counts.RAM)
	}
	t.Logf("notes: %q", sel.Plan.Notes)
}
