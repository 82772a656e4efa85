package analyze

import (
	"strings"
	"testing"
)

// The string and column rules below are gdb's and crash's, as the crash
// goldens show them on real kernel data; these cases pin each rule alone.

func TestCharArray(t *testing.T) {
	for _, c := range []struct {
		in   []byte
		want string
	}{
		{[]byte("workload\x00\x00\x00\x00\x00\x00\x00\x00"), `"workload\000\000\000\000\000\000\000"`},
		{[]byte{0, 0, 0}, `"\000\000"`},
		{[]byte("a\"b\\c\n"), `"a\"b\\c\n"`},
		// A digit after an octal escape is escaped too.
		{[]byte{0xe2, 0xbf, '2', 'x'}, `"\342\277\062x"`},
		// A printable UTF-8 sequence is shown as is.
		{[]byte{0x14, 0xc4, 0x99, 'r', 0}, "\"\\024\u0119r\""},
		// A valid but unprintable (unassigned) UTF-8 character is
		// escaped byte by byte, yet counts as one of the 256 elements,
		// and a digit after it is escaped (seen in a task's FPU state
		// on a fresh lab corpus: U+05F8 is 0xd7 0xb8).
		{[]byte(strings.Repeat("\xd7\xb8a", 200)), `"` + strings.Repeat(`\327\270a`, 128) + `"...`},
		{[]byte{0xd7, 0xb8, '5'}, `"\327\270\065"`},
		// gdb counts a run of one character whole: the run that
		// crosses the 256-element limit is printed to its end.
		{[]byte(strings.Repeat("x", 300)), `"` + strings.Repeat("x", 300) + `"`},
		{[]byte(strings.Repeat("xy", 150)), `"` + strings.Repeat("xy", 128) + `"...`},
		{append([]byte(strings.Repeat("xy", 100)), strings.Repeat("z", 100)...), `"` + strings.Repeat("xy", 100) + strings.Repeat("z", 100) + `"`},
	} {
		if got := charArray(c.in); got != c.want {
			t.Errorf("charArray(%q) = %s, want %s", c.in, got, c.want)
		}
	}
}

func TestCharLiteral(t *testing.T) {
	for c, want := range map[byte]string{'s': `'s'`, 0: `'\000'`, 1: `'\001'`, '\'': `'\''`, '\n': `'\n'`, 0xff: `'\377'`} {
		if got := charLiteral(c); got != want {
			t.Errorf("charLiteral(%#x) = %s, want %s", c, got, want)
		}
	}
}

func TestCenter(t *testing.T) {
	for _, c := range []struct {
		width int
		s     string
		rjust bool
		want  string
	}{
		{16, "PTE", false, "      PTE       "},
		{8, "PTE", false, "  PTE   "},
		{16, "MAPPING", true, "     MAPPING    "},
		{8, "INDEX", true, "  INDEX "},
		{4, "LONGER", false, "LONGER"},
	} {
		if got := center(c.width, c.s, c.rjust); got != c.want {
			t.Errorf("center(%d, %q, %v) = %q, want %q", c.width, c.s, c.rjust, got, c.want)
		}
	}
}

func TestCrashSymbolName(t *testing.T) {
	for in, want := range map[string]string{
		"intel_pmu_hw_config.part.0": "intel_pmu_hw_config",
		"match_id.isra.0":            "match_id",
		"foo.llvm.123456":            "foo",
		"virtblk_probe.cold":         "virtblk_probe.cold",
		"__wake_nocb_gp.constprop.0": "__wake_nocb_gp.constprop.0",
		"init_task":                  "init_task",
	} {
		if got := crashSymbolName(in); got != want {
			t.Errorf("crashSymbolName(%q) = %q, want %q", in, got, want)
		}
	}
}
