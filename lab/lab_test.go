package lab

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"salvage/lab/corpus"
)

// sysField returns a field of crash's sys output.
func sysField(sys, name string) string {
	re := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(name) + `: (.*)$`)
	if m := re.FindStringSubmatch(sys); m != nil {
		return strings.TrimSpace(m[1])
	}
	return ""
}

func readTruth(t *testing.T, m *corpus.Manifest, d corpus.Dump, name string) string {
	t.Helper()
	if d.Truth == "" {
		t.Fatalf("%s: no ground truth recorded", d.ID)
	}
	b, err := os.ReadFile(m.Path(d.Truth) + "/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestCorpusHasEveryScenario checks that each crashed kernel's scenarios
// have their dumps, with the sizes the manifest records.
func TestCorpusHasEveryScenario(t *testing.T) {
	m := corpus.Require(t)
	for _, k := range m.Kernels {
		if k.Role != "" {
			continue
		}
		var spec *KernelSpec
		if k.Name == "" {
			spec = &DefaultKernel // a manifest from before kernels had names
		}
		for i := range Kernels {
			if Kernels[i].Name == k.Name {
				spec = &Kernels[i]
			}
		}
		if spec == nil {
			t.Errorf("kernel %s: the lab knows no kernel named %q", k.Release, k.Name)
			continue
		}
		checkScenarios(t, m, k.Release, *spec)
	}
}

func checkScenarios(t *testing.T, m *corpus.Manifest, release string, spec KernelSpec) {
	t.Helper()
	for _, s := range Scenarios {
		if !spec.crashes(s.Name) {
			continue
		}
		for _, v := range s.Variants {
			if !spec.keeps(v.Name) {
				continue
			}
			found := false
			for _, d := range m.Dumps {
				if d.Release != release || d.Scenario != s.Name || d.Variant != v.Name {
					continue
				}
				found = true
				var size int64
				for _, f := range m.Paths(d) {
					st, err := os.Stat(f)
					if err != nil {
						t.Errorf("%s: %v", d.ID, err)
						continue
					}
					if st.Mode().Perm() != 0o600 {
						t.Errorf("%s: mode %v, want 0600 (dumps hold secrets)", f, st.Mode().Perm())
					}
					size += st.Size()
				}
				if size != d.Size || size == 0 {
					t.Errorf("%s: %d bytes on disk, manifest says %d", d.ID, size, d.Size)
				}
			}
			if !found {
				t.Errorf("%s scenario %s: no %s dump in the corpus", release, s.Name, v.Name)
			}
		}
	}
}

// panicPatterns is what crash's PANIC field must say for each crash: the
// panic string, or for an oops the "Oops:" line (crash appends "(check log
// for details)").
var panicPatterns = map[string]*regexp.Regexp{
	"sysrq": regexp.MustCompile(`^"Kernel panic - not syncing: sysrq triggered crash"$`),
	// 6.12's __die_header (arch/x86/kernel/dumpstack.c) prints the die
	// string after "Oops: ", and a page fault's is "Oops" itself:
	// "Oops: Oops: 0000 [#1] …".
	"oops": regexp.MustCompile(`^"Oops: (Oops: )?0000 \[#1\] .*" \(check log for details\)$`),
	"hung": regexp.MustCompile(`^"Kernel panic - not syncing: hung_task: blocked tasks"$`),
}

// logPatterns must be in the kernel's own log of each crash.
var logPatterns = map[string][]string{
	"sysrq": {"Kernel panic - not syncing: sysrq triggered crash"},
	// With panic_on_oops the oops path enters kdump itself, before panic()
	// would print "Fatal exception".
	"oops": {"BUG: kernel NULL pointer dereference", "RIP: 0010:salvage_lab_oops", "Oops: 0000 [#1]"},
	"hung": {"blocked for more than", "salvage_lab_hang", "Kernel panic - not syncing: hung_task: blocked tasks"},
}

// TestReferenceSys checks crash's sys on every dump: the release the guest
// reported, and for kdumps the panic string the kernel printed.
func TestReferenceSys(t *testing.T) {
	m := corpus.Require(t)
	for _, d := range m.Dumps {
		t.Run(strings.ReplaceAll(d.ID, "/", "_"), func(t *testing.T) {
			sys, ok, err := m.Ref(d, "sys")
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				// Known: crash 8.0.6 cannot open QEMU's dumps of a guest
				// that did not panic ("read of stack at fffffe0000014000
				// failed"), and drgn 0.0.22 cannot translate addresses in
				// QEMU's physical-only ELF; bookworm's crash 8.0.2 can.
				if d.Scenario != "live" {
					t.Fatalf("crash's sys failed on a kdump: %s", d.RefErrors["sys"])
				}
				for _, alt := range []string{"drgn:sys", "crash-8.0.2:sys"} {
					if text, ok, _ := m.Ref(d, alt); ok {
						sys = text
						break
					}
				}
				if sys == "" {
					t.Fatalf("no reference tool answered sys: crash 8.0.6: %s; drgn: %s; crash 8.0.2: %s",
						d.RefErrors["sys"], d.RefErrors["drgn"], d.RefErrors["crash-8.0.2:sys"])
				}
			}
			want := readTruth(t, m, d, "release")
			if got := sysField(sys, "RELEASE"); got != want {
				t.Errorf("RELEASE %q, the guest said %q", got, want)
			}
			re, ok := panicPatterns[d.Scenario]
			if !ok {
				return
			}
			panicStr := sysField(sys, "PANIC")
			if !re.MatchString(panicStr) {
				t.Errorf("PANIC %q does not match %v", panicStr, re)
			}
			// makedumpfile's --dump-dmesg of the same crash holds it too.
			if d.Dmesg == "" {
				t.Fatalf("no dmesg for %s", d.Crash)
			}
			dmesg, err := os.ReadFile(m.Path(d.Dmesg))
			if err != nil {
				t.Fatal(err)
			}
			quoted := strings.TrimSuffix(panicStr, " (check log for details)")
			if !strings.Contains(string(dmesg), strings.Trim(quoted, `"`)) {
				t.Errorf("PANIC %q is not in the kernel's log %s", panicStr, d.Dmesg)
			}
			for _, want := range logPatterns[d.Scenario] {
				if !strings.Contains(string(dmesg), want) {
					t.Errorf("the kernel's log %s lacks %q", d.Dmesg, want)
				}
			}
		})
	}
}

// TestReferencePsSeesWorkload checks the oracle's task list against the
// guest: the 300 sleeping processes and the workload started before the
// ground truth was taken.
func TestReferencePsSeesWorkload(t *testing.T) {
	m := corpus.Require(t)
	for _, d := range m.Select(func(d corpus.Dump) bool { return d.Scenario != "live" }) {
		ps, ok, err := m.Ref(d, "ps")
		if err != nil || !ok {
			t.Errorf("%s: crash's ps failed: %v %s", d.ID, err, d.RefErrors["ps"])
			continue
		}
		sleeps, workload := 0, false
		pid := readTruth(t, m, d, "workload.pid")
		for _, line := range strings.Split(ps, "\n") {
			f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), ">"))
			if len(f) < 9 {
				continue
			}
			if f[8] == "sleep" {
				sleeps++
			}
			if f[0] == pid && f[8] == "workload" {
				workload = true
			}
		}
		// init.sh starts 300; in the hung scenario init itself then waits
		// in one more sleep while the hung-task detector counts down.
		want := 300
		if d.Scenario == "hung" {
			want++
		}
		if sleeps != want {
			t.Errorf("%s: crash lists %d sleep processes, the guest started %d", d.ID, sleeps, want)
		}
		if !workload {
			t.Errorf("%s: crash does not list the workload (pid %s)", d.ID, pid)
		}
	}
}
