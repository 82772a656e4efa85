package analyze

import (
	"strings"
	"testing"

	"salvage/lab/corpus"
)

// TestForeachBt runs foreach bt on every corpus dump crash 8.0.6 made
// it on, with the vmlinux and without, and compares each task's block
// with crash's; foreach UN/kernel/active selections are checked against
// the blocks they must pick.
func TestForeachBt(t *testing.T) {
	m := corpus.Require(t)
	n := 0
	for _, d := range m.Dumps {
		want, ok, err := m.Ref(d, "foreach-bt")
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			continue
		}
		n++
		for _, mode := range []bool{true, false} {
			s := corpusSession(t, m, d, mode)
			got, errs := execCapture(s, "foreach bt")
			if errs != "" {
				t.Errorf("%s vmlinux=%v: foreach bt: %s", d.ID, mode, errs)
			}
			k, err := s.Kernel()
			if err != nil {
				t.Fatal(err)
			}
			gb, wb := strings.Split(got, "\n\nPID:"), strings.Split(want, "\n\nPID:")
			same := 0
			for i := range min(len(gb), len(wb)) {
				if gb[i] == wb[i] {
					same++
				} else if noreturnCallerOnly(k, gb[i], wb[i]) {
					same++ // a known difference: see noreturnCallerOnly
				} else if same == i {
					t.Errorf("%s vmlinux=%v: task block %d differs:\n%s", d.ID, mode, i, lineDiff("PID:"+gb[i], "PID:"+wb[i]))
				}
			}
			if len(gb) != len(wb) || same != len(wb) {
				t.Errorf("%s vmlinux=%v: %d of crash's %d task blocks identical (salvage printed %d)", d.ID, mode, same, len(wb), len(gb))
			}
			// Selections: every active task's block, and only those.
			act, _ := execCapture(s, "foreach active bt")
			blocks := strings.Count(act, "PID:")
			if blocks != 2 {
				t.Errorf("%s: foreach active bt printed %d tasks, want one per CPU (2)", d.ID, blocks)
			}
			for _, b := range strings.Split(act, "\n\nPID:") {
				if !strings.Contains(want, strings.TrimPrefix(b, "PID:")) {
					t.Errorf("%s: foreach active bt block not in crash's foreach bt:\n%s", d.ID, b)
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("the corpus has no foreach-bt reference: run make lab")
	}
}
