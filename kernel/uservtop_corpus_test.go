package kernel

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"salvage/arch/amd64"
	"salvage/lab/corpus"
)

var (
	userVirtLine = regexp.MustCompile(`^([0-9a-f]+)\s+([0-9a-f]+|\(not)`)
	userStepLine = regexp.MustCompile(`^\s+(PGD|P4D|PUD|PMD|PTE): ([0-9a-f]+) => ([0-9a-f]+)$`)
	setPID       = regexp.MustCompile(`(?m)^#\s+set (\d+)$`)
)

// TestUserVtop walks a process's page tables (its mm->pgd) and compares
// with crash's `vtop -u` in that process's context (testdata/vtop-user,
// made by crash; see each file's header).
func TestUserVtop(t *testing.T) {
	m := corpus.Require(t)
	files, _ := filepath.Glob(filepath.Join("testdata", "vtop-user", "*.txt"))
	if len(files) == 0 {
		t.Fatal("no user vtop goldens")
	}
	used := 0
	for _, d := range m.Dumps {
		k := openTypedKernel(t, m, d)
		ct, _ := k.Dump.VMCoreInfo.Get("CRASHTIME")
		ko, _ := k.Dump.VMCoreInfo.Get("KERNELOFFSET")
		golden := filepath.Join("testdata", "vtop-user", fmt.Sprintf("%s-%s-%s-%s.txt", d.Release, d.Scenario, ct, ko))
		b, err := os.ReadFile(golden)
		if err != nil {
			continue
		}
		used++
		t.Run(d.ID, func(t *testing.T) {
			text := string(b)
			pm := setPID.FindStringSubmatch(text)
			if pm == nil {
				t.Fatal("golden names no task (set PID)")
			}
			pid, _ := strconv.ParseInt(pm[1], 10, 64)
			var pgd uint64
			for task, err := range k.Tasks() {
				if err != nil {
					t.Fatal(err)
				}
				p, _ := task.Member("pid")
				if n, _ := p.Int(); n == pid {
					v, err := task.Member("mm->pgd")
					if err != nil {
						t.Fatal(err)
					}
					if pgd, err = v.Uint(); err != nil {
						t.Fatal(err)
					}
					break
				}
			}
			if pgd == 0 {
				t.Fatalf("no task with pid %d", pid)
			}
			root, err := k.Arch.VirtToPhys(pgd)
			if err != nil {
				t.Fatal(err)
			}
			tr := k.Arch.(*amd64.Translator)
			n := 0
			var va uint64
			var mapped bool
			var steps []string
			check := func() {
				if n == 0 {
					return
				}
				got, err := tr.VirtToPhysIn(root.Phys, va)
				var gs []string
				for _, s := range got.Steps {
					gs = append(gs, fmt.Sprintf("%s %x %x", s.Level, s.Addr, s.Entry))
				}
				if mapped && err != nil {
					t.Errorf("vtop -u %#x: %v", va, err)
				}
				if !mapped && err == nil {
					t.Errorf("vtop -u %#x: crash says not accessible; we say %#x", va, got.Phys)
				}
				if len(steps) > 0 && strings.Join(gs, "; ") != strings.Join(steps, "; ") {
					t.Errorf("vtop -u %#x:\n got   %s\n crash %s", va, strings.Join(gs, "; "), strings.Join(steps, "; "))
				}
			}
			lines := strings.Split(text, "\n")
			for i, l := range lines {
				if strings.HasPrefix(l, "VIRTUAL ") && i+1 < len(lines) {
					check()
					s := userVirtLine.FindStringSubmatch(lines[i+1])
					if s == nil {
						t.Fatalf("line %q", lines[i+1])
					}
					va, _ = strconv.ParseUint(s[1], 16, 64)
					mapped = s[2] != "(not"
					steps = nil
					n++
					continue
				}
				if s := userStepLine.FindStringSubmatch(l); s != nil && n > 0 {
					steps = append(steps, s[1]+" "+s[2]+" "+s[3])
				}
			}
			check()
			if n < 5 {
				t.Errorf("only %d answers", n)
			}
		})
	}
	if used == 0 {
		t.Fatal("no corpus dump matches a user vtop golden (regenerate them for this corpus)")
	}
}
