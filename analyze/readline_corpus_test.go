package analyze

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"salvage/lab/corpus"
)

// TestCompletion completes words on a real dump, with the vmlinux and
// without: commands, symbols, member paths (through anonymous unions)
// and PIDs that crash's ps lists.
func TestCompletion(t *testing.T) {
	m := corpus.Require(t)
	ds := m.Select(func(d corpus.Dump) bool { return d.Scenario == "sysrq" && d.Variant == "vmcore-elf" })
	if len(ds) == 0 {
		t.Fatal("corpus: no sysrq vmcore-elf dump")
	}
	b, err := os.ReadFile(filepath.Join(m.Path(ds[0].Truth), "workload.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid := strings.TrimSpace(string(b))
	for _, withVmlinux := range []bool{true, false} {
		s := corpusSession(t, m, ds[0], withVmlinux)
		for _, c := range []struct {
			line, want string
		}{
			{"stru", "struct "},
			{"sy", "sys "},
			{"sym linux_ban", "linux_banner "},
			{"p init_ta", "init_task "},
			{"struct task_struct.se.vrun", "task_struct.se.vruntime"},
			{"struct task_struct.__st", "task_struct.__state"},
			{"struct page.compound_he", "page.compound_head"}, // inside anonymous unions
			{"task " + pid[:len(pid)-1], pid + " "},           // the guest's workload
		} {
			_, got, _ := completeWord(s, c.line, len(c.line))
			if !slices.Contains(got, c.want) {
				t.Errorf("vmlinux=%v: completing %q: %q lacks %q", withVmlinux, c.line, got, c.want)
			}
		}
		if _, got, _ := completeWord(s, "sym zzzznotasymbol", 17); len(got) != 0 {
			t.Errorf("completing a symbol no one has: %q", got)
		}
	}
}
