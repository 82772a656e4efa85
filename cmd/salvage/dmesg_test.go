package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"salvage/kernel"
	"salvage/lab/corpus"
)

// dmesgReference is what `salvage dmesg` must print for d:
// makedumpfile --dump-dmesg's output of its crash, or, for the live dumps
// (no capture kernel ran, so no makedumpfile), crash 8.0.2's log, whose
// format is makedumpfile's for messages without unprintable bytes or
// data-less records (the lab's have none: the test would show it).
func dmesgReference(t *testing.T, m *corpus.Manifest, d corpus.Dump) (string, string) {
	t.Helper()
	if d.Dmesg != "" {
		b, err := os.ReadFile(m.Path(d.Dmesg))
		if err != nil {
			t.Fatal(err)
		}
		return string(b), "makedumpfile --dump-dmesg"
	}
	text, ok, err := m.Ref(d, "crash-8.0.2:log")
	if err != nil || !ok {
		t.Fatalf("%s: no dmesg and no crash log reference (%v)", d.ID, err)
	}
	return text, "crash 8.0.2's log"
}

// sameLines counts equal lines, position by position.
func sameLines(got, want string) (same, total int) {
	g := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	w := strings.Split(strings.TrimSuffix(want, "\n"), "\n")
	for i := range w {
		if i < len(g) && g[i] == w[i] {
			same++
		}
	}
	return same, len(w)
}

// TestDmesgMatchesMakedumpfile runs salvage dmesg on every corpus dump,
// from VMCOREINFO alone and with the debug vmlinux, and compares its
// output with makedumpfile's byte for byte.
func TestDmesgMatchesMakedumpfile(t *testing.T) {
	m := corpus.Require(t)
	for _, d := range m.Dumps {
		want, refName := dmesgReference(t, m, d)
		vmlinux := m.Path(m.Kernel(d.Release).DebugVmlinux)
		for _, mode := range []string{"vmcoreinfo", "vmlinux"} {
			t.Run(mode+"/"+d.ID, func(t *testing.T) {
				args := append([]string{"dmesg"}, m.Paths(d)...)
				if mode == "vmlinux" {
					args = append([]string{"dmesg", vmlinux}, m.Paths(d)...)
				}
				got, stderr, err := runSalvage(t, args...)
				if err != nil || stderr != "" {
					t.Fatalf("salvage %s: %v %s", strings.Join(args, " "), err, stderr)
				}
				same, total := sameLines(got, want)
				if got != want {
					t.Fatalf("differs from %s: %d of %d lines the same\n%s", refName, same, total, firstDiff(got, want))
				}
				t.Logf("%d of %d lines identical to %s", same, total, refName)
			})
		}
	}
}

// firstDiff shows the first line that differs.
func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return "line " + itoa(i+1) + ":\n salvage: " + gl + "\n    want: " + wl
		}
	}
	return ""
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// TestDmesgJSON rebuilds makedumpfile's text from dmesg --json's fields
// and compares it with makedumpfile's.
func TestDmesgJSON(t *testing.T) {
	m := corpus.Require(t)
	ds := m.Select(func(d corpus.Dump) bool { return d.ID == "6.1.0-56-cloud-amd64/oops/lzo-d31" })
	if len(ds) != 1 {
		t.Fatal("the corpus has no oops/lzo-d31 dump")
	}
	want, refName := dmesgReference(t, m, ds[0])
	out, stderr, err := runSalvage(t, append([]string{"dmesg", "--json"}, m.Paths(ds[0])...)...)
	if err != nil || stderr != "" {
		t.Fatalf("dmesg --json: %v %s", err, stderr)
	}
	var recs []dmesgRecordJSON
	if err := json.Unmarshal([]byte(out), &recs); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, r := range recs {
		secs, micros, _ := strings.Cut(r.Time, ".")
		prefix := "[" + strings.Repeat(" ", max(0, 5-len(secs))) + secs + "." + micros + "] "
		b.WriteString(prefix + strings.ReplaceAll(r.Text, "\n", "\n"+strings.Repeat(" ", len(prefix))) + "\n")
		if r.Level < 0 || r.Level > 7 || (r.Caller[0] != 'T' && r.Caller[0] != 'C') {
			t.Errorf("record %d: level %d, caller %q", r.Seq, r.Level, r.Caller)
		}
	}
	if got := b.String(); got != want {
		t.Errorf("dmesg --json's records differ from %s:\n%s", refName, firstDiff(got, want))
	}
}

// TestDmesgCaller: --caller puts makedumpfile 1.7.3's "[%8s] " caller
// column after the timestamp and changes nothing else.
func TestDmesgCaller(t *testing.T) {
	m := corpus.Require(t)
	d := m.Dumps[0]
	plain, _, err := runSalvage(t, append([]string{"dmesg"}, m.Paths(d)...)...)
	if err != nil {
		t.Fatal(err)
	}
	withCaller, _, err := runSalvage(t, append([]string{"dmesg", "--caller"}, m.Paths(d)...)...)
	if err != nil {
		t.Fatal(err)
	}
	p, c := strings.Split(plain, "\n"), strings.Split(withCaller, "\n")
	if len(p) != len(c) {
		t.Fatalf("%d lines with --caller, %d without", len(c), len(p))
	}
	const stamp, col = len("[    0.000000] "), len("[      T0] ")
	for i := range p {
		switch {
		case p[i] == "":
		case p[i][0] == '[':
			if c[i][:stamp] != p[i][:stamp] || c[i][stamp+col:] != p[i][stamp:] || c[i][stamp] != '[' || c[i][stamp+col-2:stamp+col] != "] " {
				t.Fatalf("line %d: %q with --caller, %q without", i+1, c[i], p[i])
			}
		default: // continuation lines are indented by the wider prefix
			if c[i] != strings.Repeat(" ", col)+p[i] {
				t.Fatalf("continuation line %d: %q with --caller, %q without", i+1, c[i], p[i])
			}
		}
	}
}

// TestWriteDmesgEscapes: makedumpfile's escapes of unprintable bytes
// (printf %02x of a signed char), and its skipping of data-less records.
func TestWriteDmesgEscapes(t *testing.T) {
	var b bytes.Buffer
	writeDmesg(&b, []kernel.LogRecord{
		{TimeNS: 1_234_567_891, Text: "a\x01b\x7f\xe2\x80\x99\tc"},
		{TimeNS: 123_456_000_000_000, Text: "x\ny"},
	}, false)
	want := "[    1.234567] a\\x01b\\x7f\\xffffffe2\\xffffff80\\xffffff99\tc\n" +
		"[123456.000000] x\n                y\n"
	if b.String() != want {
		t.Errorf("got %q\nwant %q", b.String(), want)
	}
}

// TestDmesgErrors: bad input gives one clear line, never a panic.
func TestDmesgErrors(t *testing.T) {
	dir := t.TempDir()
	core := writeTestCore(t, dir, 0)
	notDump := filepath.Join(dir, "text")
	os.WriteFile(notDump, []byte("hello, world\n"), 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"dmesg", filepath.Join(dir, "nonexistent")}, "nonexistent"},
		{[]string{"dmesg", notDump}, "text"},
		// VMCOREINFO without the printk layout, and no kallsyms to fall
		// back on.
		{[]string{"dmesg", core}, "SYMBOL(prb)"},
		{[]string{"dmesg"}, "arg"},
	} {
		out, stderr, err := runSalvage(t, c.args...)
		msg := stderr
		if err != nil {
			msg += err.Error()
		}
		if err == nil || !strings.Contains(msg, c.want) || strings.Contains(msg, "panic") || strings.Count(strings.TrimSpace(err.Error()), "\n") > 0 {
			t.Errorf("salvage %v: out %.60q, error %q; want one line mentioning %q", c.args, out, msg, c.want)
		}
	}
}
