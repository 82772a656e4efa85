package debuginfo

import (
	"bytes"
	"testing"
)

// FuzzParseSystemMap reads arbitrary text as a System.map. The contract:
// no panic, an error or a table (never both), one symbol per non-blank
// line, each found by ByAddr at its address.
func FuzzParseSystemMap(f *testing.F) {
	f.Add([]byte("ffffffff81000000 T _stext\nffffffff8211ffe0 D linux_banner\n0000000000000000 D fixed_percpu_data\n00000000000001ea A kexec_control_code_size\n"))
	f.Add([]byte("ffffffff96e00000 T _text\nffffffffc04d50c6 t salvage_lab_hang\t[salvage_lab]\n"))
	f.Add([]byte("ffffffffffffffff B The real System.map is in the linux-image-<version>-dbg package\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tab, err := ParseSystemMap(bytes.NewReader(data), "fuzz", 0x15e00000)
		if (tab == nil) == (err == nil) {
			t.Fatalf("table %v and error %v", tab, err)
		}
		if err != nil {
			return
		}
		lines := 0
		for _, l := range bytes.Split(data, []byte("\n")) {
			if len(bytes.TrimSpace(l)) > 0 {
				lines++
			}
		}
		if tab.Len() != lines {
			t.Fatalf("%d symbols from %d lines", tab.Len(), lines)
		}
		for s := range tab.All {
			if got, _, ok := tab.ByAddr(s.Addr); !ok || got.Addr != s.Addr {
				t.Fatalf("ByAddr(%#x) = %+v %v", s.Addr, got, ok)
			}
		}
	})
}
