package kernel

import "testing"

// TestFormatPages: crash's pages_to_size, at its unit boundaries and the
// ".0" it drops (memory.c).
func TestFormatPages(t *testing.T) {
	for _, c := range []struct {
		pages uint64
		want  string
	}{
		{0, "0"}, {1, "4 KB"}, {21, "84 KB"}, {255, "1020 KB"}, {256, "1 MB"}, {183556, "717 MB"},
		{130602, "510.2 MB"}, {262144, "1 GB"}, {393216, "1.5 GB"}, {91651, "358 MB"},
	} {
		if got := FormatPages(c.pages, 4096); got != c.want {
			t.Errorf("FormatPages(%d) = %q, want %q", c.pages, got, c.want)
		}
	}
}
