package debuginfo

import (
	"encoding/binary"
	"testing"
)

// aranges builds one .debug_aranges set (32-bit DWARF, 8-byte addresses)
// for the unit at unit, with the given [lo, lo+len) ranges.
func aranges(unit uint32, ranges ...[2]uint64) []byte {
	le := binary.LittleEndian
	body := []byte{2, 0}                         // version
	body = le.AppendUint32(body, unit)           // debug_info_offset
	body = append(body, 8, 0)                    // address size, segment size
	body = append(body, make([]byte, 16-4-8)...) // pad the 12-byte header to 16
	for _, r := range ranges {
		body = le.AppendUint64(body, r[0])
		body = le.AppendUint64(body, r[1])
	}
	body = append(body, make([]byte, 16)...)
	return append(le.AppendUint32(nil, uint32(len(body))), body...)
}

func TestParseAranges(t *testing.T) {
	b := append(aranges(0x100, [2]uint64{0x2000, 0x10}, [2]uint64{0x1000, 0x20}), aranges(0x200, [2]uint64{0x3000, 8})...)
	got, err := parseAranges(b)
	if err != nil {
		t.Fatal(err)
	}
	want := []codeRange{{0x1000, 0x1020, 0x100}, {0x2000, 0x2010, 0x100}, {0x3000, 0x3008, 0x200}}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("range %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	for _, bad := range [][]byte{nil, b[:10], append([]byte{0xff, 0xff, 0xff, 0xff}, b[4:8]...), aranges(1)[:14]} {
		if _, err := parseAranges(bad); err == nil && len(bad) < 16 {
			t.Errorf("parseAranges(%x): no error", bad)
		}
	}
}

func FuzzParseAranges(f *testing.F) {
	f.Add(aranges(0x100, [2]uint64{0x2000, 0x10}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		rs, err := parseAranges(b)
		if err != nil && rs != nil {
			t.Fatalf("error %v with ranges", err)
		}
		for i := 1; i < len(rs); i++ {
			if rs[i].lo < rs[i-1].lo {
				t.Fatal("ranges not sorted")
			}
		}
	})
}

func TestDisplayName(t *testing.T) {
	for _, c := range []struct{ dir, name, want string }{
		{"debian/build/build_amd64_none_cloud-amd64", "kernel/sched/core.c", "debian/build/build_amd64_none_cloud-amd64/kernel/sched/core.c"},
		{"debian/build/x", "/build/linux/arch/x86/lib/memset_64.S", "/build/linux/arch/x86/lib/memset_64.S"},
		{"", "a/./b.c", "a/b.c"},
	} {
		if got := displayName(c.dir, c.name); got != c.want {
			t.Errorf("displayName(%q, %q) = %q, want %q", c.dir, c.name, got, c.want)
		}
	}
}
