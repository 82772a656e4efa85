package analyze

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"salvage/lab/corpus"
)

var btHeaderRe = regexp.MustCompile(`^PID: (\d+)\s+TASK: ([0-9a-f]+)\s+CPU: (\d+)\s+COMMAND: (".*")`)

// TestStartupBanner: an interactive session starts as crash's does, with
// the sys block (crash's sys reference) and the panic task's lines.
func TestStartupBanner(t *testing.T) {
	m := corpus.Require(t)
	for _, d := range m.Select(func(d corpus.Dump) bool { return d.Scenario == "oops" || d.Scenario == "hung" }) {
		sys, ok1, _ := m.Ref(d, "sys")
		bt, ok2, _ := m.Ref(d, "bt")
		if !ok1 || !ok2 {
			t.Fatalf("%s: no sys or bt reference", d.ID)
		}
		s := corpusSession(t, m, d, true)
		var out bytes.Buffer
		s.Out = &out
		s.startupSys()
		h := btHeaderRe.FindStringSubmatch(bt)
		if h == nil {
			t.Fatalf("%s: crash's bt header: %q", d.ID, strings.SplitN(bt, "\n", 2)[0])
		}
		k, err := s.Kernel()
		if err != nil {
			t.Fatal(err)
		}
		if hz, ok := crashHZOf(t, k); ok {
			sys = hz.sysText(sys) // crash's HZ on 6.12: see crashHZ
		}
		want := sys + fmt.Sprintf("         PID: %s\n     COMMAND: %s\n        TASK: %s  [THREAD_INFO: %s]\n         CPU: %s\n       STATE: TASK_RUNNING (PANIC)\n\n", h[1], h[4], h[2], h[2], h[3])
		if got := out.String(); got != want {
			t.Errorf("%s: start-up differs from crash's:\n%s", d.ID, lineDiff(got, want))
		}
	}
}
