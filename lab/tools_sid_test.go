package lab

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"salvage/lab/corpus"
)

// callerRe is 1.7.8's caller-ID column after a line's time stamp.
var callerRe = regexp.MustCompile(`(?m)^(\[ *[0-9]+\.[0-9]+\] )\[ *[TC][0-9]+\] `)

// dropCallerIDs removes 1.7.8's caller-ID column, and as many spaces from
// the continuation lines of a multi-line message, which it indents under
// the text.
func dropCallerIDs(b []byte) []byte {
	var out bytes.Buffer
	w := 0
	for _, l := range bytes.SplitAfter(b, []byte("\n")) {
		if m := callerRe.FindSubmatchIndex(l); m != nil {
			w = m[1] - m[3]
			l = append(l[:m[3]:m[3]], l[m[1]:]...)
		} else if w > 0 && len(l) > w && len(bytes.TrimLeft(l[:w], " ")) == 0 {
			l = l[w:]
		}
		out.Write(l)
	}
	return out.Bytes()
}

// TestSidMakedumpfileRuns runs the lab's sid makedumpfile on a crash's
// /proc/vmcore copy: its --dump-dmesg must equal bookworm's 1.7.2's, made
// in the capture kernel, but for the caller-ID column ("[      T0] ",
// the task or CPU that logged the line) that 1.7.8 adds after the time.
func TestSidMakedumpfileRuns(t *testing.T) {
	m := corpus.Require(t)
	if v := m.MakedumpfileSidVersion(); v == "" {
		t.Fatal("the lab has no sid makedumpfile: run `make lab`")
	}
	for _, d := range m.Dumps {
		if d.Variant != "vmcore-elf" || d.Dmesg == "" || d.Scenario != "oops" {
			continue
		}
		out := filepath.Join(t.TempDir(), "dmesg")
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd, err := m.MakedumpfileSid(ctx, "--dump-dmesg", m.Paths(d)[0], out)
		if err != nil {
			t.Fatal(err)
		}
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", d.ID, err, b)
		}
		got, _ := os.ReadFile(out)
		if !callerRe.Match(got) {
			t.Errorf("%s: sid makedumpfile's --dump-dmesg has no caller IDs", d.ID)
		}
		got = dropCallerIDs(got)
		want, err := os.ReadFile(m.Path(d.Dmesg))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) || len(got) == 0 {
			t.Errorf("%s: sid makedumpfile %s's --dump-dmesg (%d bytes) differs from 1.7.2's (%d bytes)", d.ID, m.MakedumpfileSidVersion(), len(got), len(want))
		}
		return
	}
	t.Fatal("the corpus has no oops vmcore-elf with a dmesg")
}
