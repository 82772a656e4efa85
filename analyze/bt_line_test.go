package analyze

import (
	"encoding/binary"
	"testing"
)

// arangeSet builds one .debug_aranges set (DWARF 5 section 6.1.2) for
// the unit at unit, with the given address ranges.
func arangeSet(unit uint32, ranges ...[2]uint64) []byte {
	body := make([]byte, 0, 12+16*(len(ranges)+1))
	body = binary.LittleEndian.AppendUint16(body, 2) // version
	body = binary.LittleEndian.AppendUint32(body, unit)
	body = append(body, 8, 0)       // address size, segment size
	body = append(body, 0, 0, 0, 0) // pad the 12-byte header to 16
	for _, r := range ranges {
		body = binary.LittleEndian.AppendUint64(body, r[0])
		body = binary.LittleEndian.AppendUint64(body, r[1])
	}
	body = append(body, make([]byte, 16)...) // terminator
	return append(binary.LittleEndian.AppendUint32(nil, uint32(len(body))), body...)
}

func TestParseAranges(t *testing.T) {
	b := append(arangeSet(0x100, [2]uint64{0xffffffff81002000, 0x100}), arangeSet(0x0, [2]uint64{0xffffffff81000000, 0x40}, [2]uint64{0xffffffff81003000, 8})...)
	rs, err := parseAranges(b)
	if err != nil {
		t.Fatal(err)
	}
	want := []cuRange{
		{0xffffffff81000000, 0xffffffff81000040, 0},
		{0xffffffff81002000, 0xffffffff81002100, 0x100},
		{0xffffffff81003000, 0xffffffff81003008, 0},
	}
	if len(rs) != len(want) {
		t.Fatalf("%d ranges, want %d: %+v", len(rs), len(want), rs)
	}
	for i := range want {
		if rs[i] != want[i] {
			t.Errorf("range %d: %+v, want %+v", i, rs[i], want[i])
		}
	}
	for _, c := range []struct {
		name string
		b    []byte
	}{
		{"truncated length", []byte{1, 2}},
		{"length past the end", arangeSet(0, [2]uint64{1, 1})[:20]},
		{"64-bit DWARF", []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}},
		{"4-byte addresses", func() []byte { s := arangeSet(0); s[10] = 4; return s }()},
	} {
		if _, err := parseAranges(c.b); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
}

// FuzzParseAranges: any input gives ranges or an error, never a panic,
// and ranges come sorted.
func FuzzParseAranges(f *testing.F) {
	f.Add(arangeSet(0x100, [2]uint64{0xffffffff81002000, 0x100}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		rs, err := parseAranges(b)
		if err != nil {
			return
		}
		for i := 1; i < len(rs); i++ {
			if rs[i].start < rs[i-1].start {
				t.Fatalf("unsorted at %d", i)
			}
		}
	})
}
