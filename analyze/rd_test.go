package analyze

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// TestRdGolden runs each command of testdata/rd on the memory crash read
// from the same dump (banner.bin) and compares with crash's output byte
// for byte.
func TestRdGolden(t *testing.T) {
	for _, g := range readGoldens(t, "testdata/rd") {
		t.Run(g.name, func(t *testing.T) {
			s, out, errw := testSession(t, testMemory(t))
			if err := s.Exec(g.command); err != nil {
				t.Fatalf("%s: %v", g.command, errw)
			}
			if got := out.String(); got != g.output {
				t.Errorf("%s:\n%s", g.command, lineDiff(got, g.output))
			}
		})
	}
}

// lineDiff shows the first line where got and want differ.
func lineDiff(got, want string) string {
	g, w := strings.SplitAfter(got, "\n"), strings.SplitAfter(want, "\n")
	for i := 0; i < max(len(g), len(w)); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d:\n salvage: %q\n   crash: %q\n(%d bytes vs crash's %d)", i+1, gl, wl, len(got), len(want))
		}
	}
	return "equal"
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// rd -a without a count reads to the end of the string. crash leaves the
// line unterminated there (the next output continues on it); salvage ends
// it with a newline.
func TestRdASCIIString(t *testing.T) {
	tests := []struct {
		cmd, want string
	}{
		{"rd -a -p 3d91ffe0", "        3d91ffe0:  Linux version 6.1.0-56-cloud-amd64 (debian-kernel@lists.debi\n" +
			"        3d92001c:  an.org) (gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0, GNU ld (G\n" +
			"        3d920058:  NU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian \n" +
			"        3d920094:  6.1.192-2 (2026-11-16)\n"},
		{"rd -a -p 3d9200b0", ""}, // starts on a NUL: crash prints nothing
		{"rd -a -p 3d920090", "        3d920090:  ian 6.1.192-2 (2026-11-16)\n"},
	}
	for _, tt := range tests {
		s, out, errw := testSession(t, testMemory(t))
		if err := s.Exec(tt.cmd); err != nil {
			t.Fatalf("%s: %v", tt.cmd, errw)
		}
		if out.String() != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.cmd, out, tt.want)
		}
	}
}

func TestRdJSON(t *testing.T) {
	tests := []struct {
		cmd  string
		want rdJSON
	}{
		{"rd -p 3d91ffe0 2 --json", rdJSON{Address: 0x3d91ffe0, Space: "physical", Format: "hex", Size: 8, Count: 2,
			Values: []json.Number{"7311066746820913484", "3329884633174733682"}, Bytes: "4c696e75782076657273696f6e20362e"}},
		{"rd --json -d -32 -p 3d920650 2", rdJSON{Address: 0x3d920650, Space: "physical", Format: "decimal", Size: 4, Count: 2,
			Values: []json.Number{"-1", "-1"}, Bytes: "ffffffffffffffff"}},
		{"rd -N -16 -p 3d91ffe0 1 --json", rdJSON{Address: 0x3d91ffe0, Space: "physical", Format: "hex", Size: 2, Count: 1,
			Values: []json.Number{"19561"}, Bytes: "4c69"}},
		{"rd -a -p 3d9200a7 12 --json", rdJSON{Address: 0x3d9200a7, Space: "physical", Format: "ascii", Size: 1, Count: 12,
			Strings: []rdString{{Address: 0x3d9200a7, Text: "16)"}}, Bytes: "3136290a0000000000000000"}},
		{"rd -p 3d920ff8 2 --json", rdJSON{Address: 0x3d920ff8, Space: "physical", Format: "hex", Size: 8, Count: 2,
			Values: []json.Number{"18446225310379550863"}, Bytes: "8f28feff2f28feff",
			Error: "physical address 0x3d921000: page excluded by the dump filter"}},
	}
	for _, tt := range tests {
		s, out, errw := testSession(t, testMemory(t))
		err := s.Exec(tt.cmd)
		if (err != nil) != (tt.want.Error != "") {
			t.Errorf("%s: %v", tt.cmd, errw)
		}
		var got rdJSON
		if err := json.Unmarshal(out.Bytes(), &got); err != nil {
			t.Fatalf("%s: %v\n%s", tt.cmd, err, out)
		}
		g, w := jsonString(got), jsonString(tt.want)
		if g != w {
			t.Errorf("%s:\n got %s\nwant %s", tt.cmd, g, w)
		}
	}
}
