package debuginfo

import (
	"errors"
	"strings"
	"testing"
)

func TestParseSystemMap(t *testing.T) {
	const text = `0000000000000000 D fixed_percpu_data
00000000000001ea A kexec_control_code_size
ffffffff81000000 T _stext
ffffffff816a89f0 t sysrq_handle_crash
ffffffff8211ffe0 D linux_banner
ffffffff83e00000 D __init_scratch_end
`
	tab, err := ParseSystemMap(strings.NewReader(text), "System.map", 0x15e00000)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []Symbol{
		{Name: "fixed_percpu_data", Addr: 0, Type: 'D'},           // per-CPU: not moved
		{Name: "kexec_control_code_size", Addr: 0x1ea, Type: 'A'}, // absolute: not moved
		// Moved by KASLR; running to the next symbol, as in kallsyms.
		{Name: "sysrq_handle_crash", Addr: 0xffffffff974a89f0, Size: 0x8211ffe0 - 0x816a89f0, Type: 't'},
	} {
		if got, ok := tab.Lookup(want.Name); !ok || got != want {
			t.Errorf("%s: %+v %v, want %+v", want.Name, got, ok, want)
		}
	}
	if s, off, ok := tab.ByAddr(0xffffffff974a8a06); !ok || s.Name != "sysrq_handle_crash" || off != 0x16 {
		t.Errorf("ByAddr in a function: %s+%#x %v", s.Name, off, ok)
	}
	if s, off, ok := tab.ByAddr(0xffffffffc0000000); ok {
		t.Errorf("ByAddr of a module address: %s+%#x", s.Name, off)
	}

	// /proc/kallsyms text, with modules.
	tab, err = ParseSystemMap(strings.NewReader("ffffffff96e00000 T _text\nffffffffc04d50c6 t salvage_lab_hang\t[salvage_lab]\n"), "kallsyms", 0)
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := tab.Lookup("salvage_lab:salvage_lab_hang"); !ok || s.Module != "salvage_lab" || s.Addr != 0xffffffffc04d50c6 {
		t.Errorf("module symbol: %+v %v", s, ok)
	}

	for _, bad := range []struct{ text, want string }{
		{"ffffffffffffffff B The real System.map is in the linux-image-<version>-dbg package\n", "Debian's placeholder"},
		{"ffffffff81000000 T\n", "want \"address type name\""},
		{"xyz T _stext\n", "not hexadecimal"},
		{"ffffffff81000000 TT _stext\n", "type"},
		{"ffffffff81000000 T _stext salvage_lab\n", "[module]"},
		{"\n\n", "no symbols"},
	} {
		_, err := ParseSystemMap(strings.NewReader(bad.text), "System.map", 0)
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: %v, want an error saying %q", bad.text, err, bad.want)
		}
		var se *SystemMapError
		if bad.want != "no symbols" && (!errors.As(err, &se) || se.Line != 1) {
			t.Errorf("%q: %v is not a *SystemMapError at line 1", bad.text, err)
		}
	}
}
