package analyze

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"salvage/kernel"
	"salvage/lab/corpus"
)

// btGoldenCommands are bt's options beyond the lab's references, asked of
// crash 8.0.6 on each crash's unfiltered dump and kept in the corpus
// beside the dumps (refs/bt-golden/CRASH/), made on first use. PID stands
// for the guest's workload process; "SCENARIO,…:" limits a command to the
// crashes of those scenarios.
var btGoldenCommands = []string{
	"bt -s",
	"bt -sx",
	"bt -sd",
	"bt -a -s",
	"bt -a -sx",
	"bt -c 0",
	"bt -c 1",
	"bt -c 0-1",
	"bt -c 0,1",
	"bt -p",
	"bt -g PID",
	"bt -s -x PID",
	"bt -f PID",
	"bt -R pipe_read PID",
	"bt -R vfs_write PID",
	"bt -R do_syscall_64",
	"bt -v",
	"bt -t",
	"bt -T",
	"bt -t PID",
	"bt -T PID",
	"bt -t 1",
	"bt -c 0 -t",
	"bt -a -t",
	"bt -c 1 -T",
	"bt 1 2 PID",
	"bt -l",
	"bt -a -l",
	"bt -l PID",
	"bt -sl 1",
	"bt -F",
	"bt -F PID",
	"bt -FF PID",
	"bt -F 1",
	"bt -a -F",
	"bt -o PID",
	"bt -o 1",
	"bt -o",
	"bt -a -o",
	"bt -r 1",
	"bt -r PID",
	// crash 8.0.6 dies of a segmentation fault in bt -e on the sysrq
	// dump's panic task, taking its session with it.
	"oops,hung:bt -e",
	"oops,hung:bt -e PID",
	"oops,hung:bt -e 1",
	"oops,hung:bt -a -e",
}

// btGoldenKnown are outputs that legitimately differ from crash's, by
// crash scenario and command, with why. The test checks that they still
// differ, so that a fixed difference is noticed.
var btGoldenKnown = map[string]string{}

// nmiGuardOnly reports outputs that differ only where crash's text scan
// (-t, -T) prints the function a crash NMI interrupted (native_safe_halt)
// at an address in the exception stacks' area (cpu_entry_area,
// fffffe…) — its guard page — instead of the stack pointer the NMI
// saved, which salvage prints. Which CPU the NMI stops differs from boot
// to boot, so the test looks for the case rather than naming a CPU.
func nmiGuardOnly(got, want string) bool {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	if len(g) != len(w) || got == want {
		return false
	}
	for i := range g {
		if g[i] == w[i] {
			continue
		}
		gf, wf := strings.Fields(g[i]), strings.Fields(w[i])
		if len(gf) != len(wf) || len(wf) < 2 || !strings.HasPrefix(wf[0], "[fffffe") || strings.Join(gf[1:], " ") != strings.Join(wf[1:], " ") {
			return false
		}
	}
	return true
}

// crashBufferDump reports crash 8.0.6 running out of its own buffers in a
// long command (bt -g of a thread group of thousands, in the many
// crash): it prints its allocator's state (buf_1K_used: …) where a
// backtrace belongs. salvage has no such limit; the test then checks only
// that both name the same tasks.
func crashBufferDump(got, want string) bool {
	if !strings.Contains(want, "buf_1K_used:") {
		return false
	}
	return strings.Count(got, "PID: ") == strings.Count(want, "PID: ")
}

// TestBtOptionsMatchCrash compares bt's other options with crash 8.0.6's
// output on every dump of each crash, with and without the vmlinux.
func TestBtOptionsMatchCrash(t *testing.T) {
	m := corpus.Require(t)
	byCrash := map[string][]corpus.Dump{}
	for _, d := range m.Dumps {
		if d.Scenario == "live" {
			continue // crash 8.0.6 cannot unwind these (see TestBtCorpus)
		}
		byCrash[d.Crash] = append(byCrash[d.Crash], d)
	}
	var crashes []string
	for c := range byCrash {
		crashes = append(crashes, c)
	}
	sort.Strings(crashes)
	if len(crashes) == 0 {
		t.Fatal("the corpus has no crash dumps")
	}
	same := map[string]int{}
	for _, c := range crashes {
		ds := byCrash[c]
		var ref corpus.Dump
		for _, d := range ds {
			if d.Variant == "vmcore-elf" {
				ref = d
			}
		}
		if ref.ID == "" {
			t.Fatalf("crash %s has no vmcore-elf dump", c)
		}
		goldens := ensureBtGoldens(t, m, ref)
		for _, mode := range btModes {
			for _, d := range ds {
				t.Run(mode+"/"+d.ID, func(t *testing.T) {
					s := corpusSession(t, m, d, mode == "vmlinux")
					k, err := s.Kernel()
					if err != nil {
						t.Fatal(err)
					}
					for _, g := range goldens {
						got, errs := execCapture(s, g.cmd)
						if errs != "" {
							got += errs + "\n"
						}
						if mode == "btf" && hasOption(g.generic, 'l') {
							// Line numbers come from the vmlinux's DWARF:
							// without it bt -l says so, in one line.
							if !strings.Contains(errs, "need the debug vmlinux") || strings.Count(errs, "\n") > 0 {
								t.Errorf("%s without a vmlinux: %q", g.cmd, errs)
							}
							continue
						}
						key := d.Scenario + "/" + g.generic
						if why, ok := btGoldenKnown[key]; ok {
							if got == g.want {
								t.Errorf("%s: now identical to crash; drop the known difference (%s)", g.cmd, why)
							}
							continue
						}
						if got != g.want && (hasOption(g.generic, 't') || hasOption(g.generic, 'T')) {
							if nmiGuardOnly(got, g.want) {
								same[mode+" "+g.generic+" (NMI guard page)"]++
								continue
							}
						}
						if got != g.want && crashBufferDump(got, g.want) {
							same[mode+" "+g.generic+" (crash out of buffers)"]++
							continue
						}
						if got != g.want && aliasOnly(k, got, g.want) {
							same[mode+" "+g.generic+" (aliases)"]++
							continue
						}
						if got != g.want && mode == "btf" && localLabelsOnly(got, g.want) {
							same[mode+" "+g.generic+" (local labels)"]++
							continue
						}
						if got != g.want && mode == "btf" && labelsOrAliasesOnly(k, got, g.want) {
							same[mode+" "+g.generic+" (local labels and aliases)"]++
							continue
						}
						if got != g.want {
							t.Errorf("%s (%s) differs from crash:\n%s", g.cmd, mode, lineDiff(got, g.want))
							continue
						}
						same[mode+" "+g.generic]++
					}
				})
			}
		}
	}
	logCounts(t, same, "dumps identical to crash")
}

type btGolden struct {
	generic, cmd, want string
}

// ensureBtGoldens returns crash's answers to btGoldenCommands for d's
// crash, running crash once for those the corpus does not have yet.
func ensureBtGoldens(t *testing.T, m *corpus.Manifest, d corpus.Dump) []btGolden {
	t.Helper()
	pidCmd, ok := d.RefCommands["bt-pid"]
	if !ok {
		t.Fatalf("%s: no bt-pid reference to take the workload's PID from", d.ID)
	}
	pid := strings.TrimPrefix(pidCmd, "bt ")
	dir := filepath.Join(m.Root, "refs", "bt-golden", d.Crash)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var out []btGolden
	var missing []string
	for _, g := range btGoldenCommands {
		if only, rest, ok := strings.Cut(g, ":"); ok {
			if !slices.Contains(strings.Split(only, ","), d.Scenario) {
				continue
			}
			g = rest
		}
		cmd := strings.ReplaceAll(g, "PID", pid)
		path := filepath.Join(dir, goldenFileName(g))
		out = append(out, btGolden{generic: g, cmd: cmd})
		if _, err := os.Stat(path); err != nil {
			missing = append(missing, fmt.Sprintf("%s > %s", cmd, path))
		}
	}
	if len(missing) > 0 {
		in := filepath.Join(dir, "session.in")
		if err := os.WriteFile(in, []byte(strings.Join(missing, "\n")+"\nq\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		c, err := m.Crash(ctx, d, in)
		if err != nil {
			t.Fatal(err)
		}
		if b, err := c.CombinedOutput(); err != nil {
			t.Fatalf("crash on %s: %v\n%s", d.ID, err, b)
		}
	}
	for i := range out {
		b, err := os.ReadFile(filepath.Join(dir, goldenFileName(out[i].generic)))
		if err != nil {
			t.Fatalf("crash wrote no answer to %q: %v", out[i].cmd, err)
		}
		out[i].want = string(b)
	}
	return out
}

func goldenFileName(cmd string) string {
	r := strings.NewReplacer(" ", "_", "-", "", ",", "+")
	return r.Replace(cmd) + ".txt"
}

// hasOption reports whether a bt command line has option letter c.
func hasOption(cmd string, c byte) bool {
	for _, f := range strings.Fields(cmd) {
		if strings.HasPrefix(f, "-") && strings.IndexByte(f, c) > 0 {
			return true
		}
	}
	return false
}

// localLabelsOnly reports whether got and want differ only in words that
// crash names by a compiler's local label (.LC0+1217: a string constant in
// .rodata). A known difference without a vmlinux: kallsyms has no local
// labels, so salvage names the nearest symbol it has.
func localLabelsOnly(got, want string) bool {
	return wordsDifferOnly(got, want, func(_, w string) bool { return strings.HasPrefix(w, ".L") })
}

// labelsOrAliasesOnly is localLabelsOnly and aliasOnly at once: a stack
// of stale words can hold both a pointer into a string constant and one
// to a function crash names by another alias.
func labelsOrAliasesOnly(k *kernel.Kernel, got, want string) bool {
	return wordsDifferOnly(got, want, func(g, w string) bool { return strings.HasPrefix(w, ".L") || sameAddress(k, g, w) })
}
