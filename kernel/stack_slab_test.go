package kernel

import "testing"

// TestPageTypeIs decodes page_type words of both encodings: 6.12's type
// byte (PAGE_SLAB_MAPCOUNT_VALUE=-184549376, as the lab's 6.12 VMCOREINFO
// has it) and the cleared-bit encoding of 6.9–6.11 (PG_slab 0x00200000
// under PAGE_TYPE_BASE, exported as its complement).
func TestPageTypeIs(t *testing.T) {
	const slab612 = -184549376     // 0xf5000000
	const slab69 = -0x00200000 - 1 // ^0x00200000 as an int32
	for _, c := range []struct {
		pageType uint32
		value    int64
		want     bool
	}{
		{0xf5000000, slab612, true},
		{0xf5000123, slab612, true}, // low bytes are the type's own data
		{0xf0000000, slab612, false},
		{0xffffffff, slab612, false}, // _mapcount -1: no type
		{0xf0000000 | 0x0fdfffff, slab69, true},
		{0xffffffff, slab69, false},
		{0x00000000, slab69, false},
	} {
		if got := pageTypeIs(c.pageType, c.value); got != c.want {
			t.Errorf("pageTypeIs(%#x, %d) = %v, want %v", c.pageType, c.value, got, c.want)
		}
	}
}
