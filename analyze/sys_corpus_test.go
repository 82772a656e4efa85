package analyze

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"salvage/lab/corpus"
)

// sysField is one "LABEL: value" field of sys; continuation lines (the
// second file of DUMPFILES) join their field's value.
type sysField struct{ label, value string }

func parseSys(out string) []sysField {
	var fs []sysField
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		label, value, ok := strings.Cut(l, ": ")
		if ok && strings.TrimSpace(label) != "" && len(label) <= 12 {
			fs = append(fs, sysField{strings.TrimSpace(label), value})
			continue
		}
		if len(fs) > 0 {
			fs[len(fs)-1].value += "\n" + strings.TrimSpace(l)
		}
	}
	return fs
}

// sysKnownDifference says why field label of salvage's sys may differ
// from the reference, and checks the difference is exactly that; ""
// when no difference is allowed.
func sysKnownDifference(mode, which, label, got, want string) (string, bool) {
	switch {
	case label == "KERNEL" && mode == "btf":
		// crash needs a vmlinux; salvage without one says where its
		// symbols and types come from. The [TAINTED] mark must agree.
		return "no vmlinux: KERNEL names the dump's kallsyms and BTF",
			strings.HasPrefix(got, sysKernelNone) && strings.HasSuffix(got, "[TAINTED]") == strings.HasSuffix(want, "[TAINTED]")
	case label == "TASKS" && strings.HasPrefix(which, "crash-8.0.2:"):
		// crash 8.0.2 cannot gather this kernel's task table (see
		// TestPSCorpus) and counts only the idle tasks.
		n, err := strconv.Atoi(got)
		return "crash 8.0.2 counts only the idle tasks of this kernel", err == nil && want == "2" && n > 300
	}
	return "", false
}

// TestSysCorpus compares every field of sys and sys -t with crash's on
// every dump, with the debug vmlinux and without one: crash 8.0.6's
// references, and bookworm's 8.0.2's on the live dumps, where 8.0.6
// fails. Known differences are in sysKnownDifference; with the vmlinux
// and crash 8.0.6's reference the output must match byte for byte.
func TestSysCorpus(t *testing.T) {
	m := corpus.Require(t)
	var report []string
	for _, mode := range modes {
		for _, d := range m.Dumps {
			t.Run(mode+"/"+d.ID, func(t *testing.T) {
				s := taskSession(t, m, d, mode)
				same, total, known := 0, 0, 0
				for _, key := range []string{"sys", "sys-t"} {
					want, which, ok := refFor(t, m, d, key)
					if !ok {
						t.Fatalf("no %s reference", key)
					}
					got := runCmd(t, s, strings.Replace(key, "-", " -", 1))
					g, w := parseSys(got), parseSys(want)
					if len(g) != len(w) {
						t.Errorf("%s: %d fields, crash %d:\n%s", key, len(g), len(w), lineDiff(got, want))
						continue
					}
					for i := range w {
						total++
						if g[i].label != w[i].label {
							t.Errorf("%s: field %d is %s, crash's %s", key, i, g[i].label, w[i].label)
							continue
						}
						if g[i].value == w[i].value {
							same++
							continue
						}
						if why, ok := sysKnownDifference(mode, which, w[i].label, g[i].value, w[i].value); ok {
							known++
							t.Logf("%s: known difference: %s", w[i].label, why)
							continue
						}
						t.Errorf("%s %s: salvage %q, %s %q", key, w[i].label, g[i].value, which, w[i].value)
					}
					if mode == "vmlinux" && !strings.HasPrefix(which, "crash-8.0.2:") && got != want {
						t.Errorf("%s text differs from crash:\n%s", key, lineDiff(got, want))
					}
				}
				report = append(report, fmt.Sprintf("%s %s: %d/%d fields identical to crash, %d known differences", mode, d.ID, same, total, known))
			})
		}
	}
	for _, r := range report {
		t.Log(r)
	}
}

// TestSysGuestTruth checks sys against what the guest itself recorded
// just before the crash: uname -a (node name, release, version,
// machine), date +%s (DATE within a minute after it), /proc/meminfo's
// MemTotal (at most MEMORY: the kernel's own reservations are not in
// it) and the number of processes in /proc (at most TASKS, which counts
// threads and the idle tasks too).
func TestSysGuestTruth(t *testing.T) {
	m := corpus.Require(t)
	for _, mode := range modes {
		for _, d := range m.Dumps {
			t.Run(mode+"/"+d.ID, func(t *testing.T) {
				var s sysJSON
				if err := json.Unmarshal([]byte(runCmd(t, taskSession(t, m, d, mode), "sys --json")), &s); err != nil {
					t.Fatal(err)
				}
				truth := func(name string) string {
					b, err := os.ReadFile(filepath.Join(m.Path(d.Truth), name))
					if err != nil {
						t.Fatal(err)
					}
					return strings.TrimSpace(string(b))
				}
				uname := strings.Fields(truth("uname"))
				// Linux NODENAME RELEASE #VERSION... MACHINE GNU/Linux
				if len(uname) < 6 || uname[1] != s.Nodename || uname[2] != s.Release || uname[len(uname)-2] != s.Machine ||
					strings.Join(uname[3:len(uname)-2], " ") != s.Version {
					t.Errorf("uname -a %q; sys: %s %s %s %s", truth("uname"), s.Nodename, s.Release, s.Version, s.Machine)
				}
				date, err := strconv.ParseInt(truth("date"), 10, 64)
				if err != nil {
					t.Fatal(err)
				}
				if s.Date < date || s.Date > date+60 {
					t.Errorf("DATE %s; the guest's date before the crash %s", time.Unix(s.Date, 0).UTC(), time.Unix(date, 0).UTC())
				}
				var memTotal uint64
				for _, l := range strings.Split(truth("meminfo"), "\n") {
					if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
						memTotal, _ = strconv.ParseUint(f[1], 10, 64)
					}
				}
				if memTotal == 0 || memTotal*1024 > s.MemoryBytes || s.MemoryBytes > 2*memTotal*1024 {
					t.Errorf("MemTotal %d kB; sys memory %d bytes", memTotal, s.MemoryBytes)
				}
				procs := len(strings.Fields(truth("pids")))
				if s.Tasks < procs {
					t.Errorf("TASKS %d, fewer than the guest's %d processes", s.Tasks, procs)
				}
				// The panic task is the task running on the CPU that
				// panicked: none in the live dumps.
				if (s.PanicTask == nil) != (d.Scenario == "live") {
					t.Errorf("panic task %+v in a %s dump", s.PanicTask, d.Scenario)
				}
			})
		}
	}
}
