package kernel

import (
	"fmt"
	"os"
	"os/exec"
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
// with crash's `vtop -u` in that process's context (made by crash and
// kept in the lab corpus; see each file's header).
func TestUserVtop(t *testing.T) {
	m := corpus.Require(t)
	used := 0
	for _, d := range m.Dumps {
		if d.Scenario == "live" {
			continue // crash 8.0.6 cannot read QEMU's live dumps
		}
		k := openTypedKernel(t, m, d)
		golden := ensureUserGolden(t, m, d, k)
		b, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
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
		t.Fatal("no kdump in the corpus to compare user page-table walks on")
	}
}

// ensureUserGolden returns crash's `vtop -u` answers for the workload
// process of d's crash, kept in the lab corpus beside the dumps they
// describe; when there are none yet, crash 8.0.6 is asked for them, at
// addresses taken from the workload's mm (code, data, heap, stack, mmap
// base, arguments) and one that is never mapped.
func ensureUserGolden(t *testing.T, m *corpus.Manifest, d corpus.Dump, k *Kernel) string {
	t.Helper()
	ct, _ := k.Dump.VMCoreInfo.Get("CRASHTIME")
	ko, _ := k.Dump.VMCoreInfo.Get("KERNELOFFSET")
	golden := filepath.Join(m.Root, "refs", "vtop-user", fmt.Sprintf("%s-%s-%s-%s.txt", d.Release, d.Scenario, ct, ko))
	if _, err := os.Stat(golden); err == nil {
		return golden
	}
	b, err := os.ReadFile(filepath.Join(m.Path(d.Truth), "workload.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	var addrs []uint64
	for task, err := range k.Tasks() {
		if err != nil {
			t.Fatal(err)
		}
		p, _ := task.Member("pid")
		if n, _ := p.Int(); n != pid {
			continue
		}
		for _, f := range []string{"start_code", "start_data", "start_brk", "start_stack", "mmap_base", "arg_start"} {
			v, err := task.Member("mm->" + f)
			if err != nil {
				t.Fatal(err)
			}
			a, err := v.Uint()
			if err != nil {
				t.Fatal(err)
			}
			addrs = append(addrs, a&^0xfff)
		}
		break
	}
	if len(addrs) == 0 {
		t.Fatalf("%s: no workload task %d", d.ID, pid)
	}
	addrs = append(addrs, 0x1000) // never mapped
	var cmds strings.Builder
	fmt.Fprintf(&cmds, "set %d\n", pid)
	for _, a := range addrs {
		fmt.Fprintf(&cmds, "vtop -u %x\n", a)
	}
	dir := t.TempDir()
	cmdFile := filepath.Join(dir, "cmds")
	os.WriteFile(cmdFile, []byte(cmds.String()), 0o644)
	root := filepath.Join(m.Root, "tools", "crash-trixie", "root")
	lib := filepath.Join(root, "usr", "lib", "x86_64-linux-gnu")
	args := []string{"--library-path", lib, filepath.Join(root, "usr", "bin", "crash"), "-s", m.Path(m.Kernel(d.Release).DebugVmlinux)}
	args = append(args, m.Paths(d)...)
	args = append(args, "-i", cmdFile)
	out, err := exec.Command(filepath.Join(lib, "ld-linux-x86-64.so.2"), args...).CombinedOutput()
	if !strings.Contains(string(out), "VIRTUAL ") {
		t.Fatalf("crash 8.0.6 gave no vtop -u answers on %s: %v\n%s", d.ID, err, out)
	}
	var hdr strings.Builder
	fmt.Fprintf(&hdr, "# Made by crash 8.0.6 (Debian trixie), not by salvage:\n#   crash -s vmlinux-%s %s -i CMDS\n", d.Release, strings.Join(d.Files, " "))
	fmt.Fprintf(&hdr, "# dump %s (CRASHTIME=%s KERNELOFFSET=%s); task %d is the guest's workload\n# CMDS:\n", d.ID, ct, ko, pid)
	for _, l := range strings.Split(strings.TrimSpace(cmds.String()), "\n") {
		fmt.Fprintf(&hdr, "#   %s\n", l)
	}
	if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(golden+".tmp", append([]byte(hdr.String()), out...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(golden+".tmp", golden); err != nil {
		t.Fatal(err)
	}
	return golden
}
