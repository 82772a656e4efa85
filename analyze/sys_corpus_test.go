package analyze

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
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
func sysKnownDifference(mode, which, label, got, want string, hz *crashHZ) (string, bool) {
	switch {
	case label == "UPTIME" && hz != nil:
		return "crash 8.0.6 takes HZ as 1000 on this kernel (see crashHZ)",
			want == crashUptimeString(hz.crashSecs) && got == crashUptimeString(hz.trueSecs)
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
				k, err := s.Kernel()
				if err != nil {
					t.Fatal(err)
				}
				var hz *crashHZ
				if c, ok := crashHZOf(t, k); ok {
					hz = &c
				}
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
						if why, ok := sysKnownDifference(mode, which, w[i].label, g[i].value, w[i].value, hz); ok {
							known++
							t.Logf("%s: known difference: %s", w[i].label, why)
							continue
						}
						t.Errorf("%s %s: salvage %q, %s %q", key, w[i].label, g[i].value, which, w[i].value)
					}
					if hz != nil && !strings.HasPrefix(which, "crash-8.0.2:") {
						want = hz.sysText(want)
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

// TestSysFormats checks crash's formatting of sys's numbers at their
// edges (get_memory_size and pages_to_size, get_loadavg, convert_time,
// ctime_tz, translate_nanoseconds), where the corpus's one machine
// cannot reach.
func TestSysFormats(t *testing.T) {
	const gb, mb = 1 << 30, 1 << 20
	for _, c := range []struct {
		bytes uint64
		want  string
	}{
		{0, "0"},
		{512 << 10, "512 KB"},
		{1023 * mb, "1 GB"},    // within 64 MiB of a GiB: rounded up
		{gb - 64*mb, "1 GB"},   // exactly 64 MiB short
		{gb - 65*mb, "959 MB"}, // more than 64 MiB short
		{gb + gb/2, "1.5 GB"},  // never rounded down
		{4 * gb, "4 GB"},       // ".0" dropped
		{100 * mb, "100 MB"},   // MB without decimals when whole
		{100*mb + mb/2, "100.5 MB"},
	} {
		if got := memorySize(c.bytes); got != c.want {
			t.Errorf("memorySize(%d) = %q, want %q", c.bytes, got, c.want)
		}
	}
	// avenrun is fixed point with 11 fractional bits; crash adds 1/200
	// before truncating to hundredths.
	if got := loadAverage([3]uint64{0, 2048, 2048*3 + 1023}); got != "0.00, 1.00, 3.50" {
		t.Errorf("loadAverage: %q", got)
	}
	for _, c := range []struct {
		j    uint64
		hz   int
		want string
	}{
		{0, 250, "00:00:00"},
		{23*250 + 249, 250, "00:00:23"},
		{86399 * 100, 100, "23:59:59"},
		{86400 * 1000, 1000, "1 days, 00:00:00"},
		{(3*86400 + 3661) * 250, 250, "3 days, 01:01:01"},
	} {
		if got := formatJiffies(c.j, c.hz); got != c.want {
			t.Errorf("formatJiffies(%d, %d) = %q, want %q", c.j, c.hz, got, c.want)
		}
	}
	if got := crashDate(1795361711); got != "Sun Nov 22 15:35:11 UTC 2026" {
		t.Errorf("crashDate: %q", got)
	}
	if got := crashDate(0); got != "Thu Jan  1 00:00:00 UTC 1970" {
		t.Errorf("crashDate(0): %q (day of month space-padded, as %%e)", got)
	}
	if got := msecs(90061001000000); got != "1 01:01:01.001" {
		t.Errorf("msecs: %q", got)
	}
	if got := runTime(5e9, 23*250, 250); got != "00:00:18" {
		t.Errorf("runTime: %q", got)
	}
	if got := runTime(30e9, 23*250, 250); got != "00:00:00" {
		t.Errorf("runTime of a task started after the uptime: %q", got)
	}
}

// TestSysBadInput checks that sys, ps and task refuse bad operands with
// one line naming what is wrong, and never panic.
func TestSysBadInput(t *testing.T) {
	m := corpus.Require(t)
	s := taskSession(t, m, pickDump(t, m, "oops", "lzo-d31"), "btf")
	for _, cmd := range []string{
		"sys extra", "sys -q", "ps -z", "ps -S 1", "ps -S -k", "ps -G -l", "ps -a -t",
		"ps 12345678", "ps '('", "task -R", "task -R nosuch 1", "task nosuch",
		"task -R a.b.c 1",
	} {
		out, errs := execCapture(s, cmd)
		if errs == "" || strings.Contains(errs, "\n") || strings.Contains(errs, "internal error") || strings.Contains(errs, "goroutine") {
			t.Errorf("%s: want a one-line error, got %q (output %q)", cmd, errs, out)
		}
	}
}

// sysGoldenSession holds the sys forms the lab's references lack, run by
// the reference crash once per dump and cached in the lab.
const sysGoldenSession = `sys -i > GOLDEN/sys-i.txt
sys -c > GOLDEN/sys-c.txt
sys -c read > GOLDEN/sys-c-read.txt
sys -c 59 > GOLDEN/sys-c-59.txt
sys -c write 0 > GOLDEN/sys-c-write-0.txt
q
`

// sourceColumn is sys -c's FILE AND LINE NUMBER column.
var sourceColumn = regexp.MustCompile(`(?m)\.\./\S+: \d+$`)

func stripTrailing(s string) string {
	lines := strings.Split(s, "\n")
	for i := range lines {
		lines[i] = strings.TrimRight(lines[i], " ")
	}
	return strings.Join(lines, "\n")
}

// TestSysGoldens compares sys -i (the DMI strings) and sys -c (the
// system call table) with crash's on two dumps, with the vmlinux and
// without one (where the DMI array's length comes from enum dmi_field's
// DMI_STRING_MAX and the system call table's from its kallsyms size,
// and there are no source lines).
func TestSysGoldens(t *testing.T) {
	m := corpus.Require(t)
	for _, dv := range [][2]string{{"sysrq", "vmcore-elf"}, {"hung", "lzo-d31"}} {
		d := pickDump(t, m, dv[0], dv[1])
		dir := crashGoldenDir(t, m, d, sysGoldenSession)
		for _, mode := range modes {
			s := taskSession(t, m, d, mode)
			for _, st := range readGoldenSession(sysGoldenSession) {
				b, err := os.ReadFile(filepath.Join(dir, st.file))
				if err != nil {
					t.Fatal(err)
				}
				got, want := runCmd(t, s, st.cmd), string(b)
				if mode == "btf" && strings.HasPrefix(st.cmd, "sys -c") {
					// BTF has no line tables: salvage says so, as crash
					// does without them, and leaves the column empty.
					const note = "sys: line numbers are not available\n"
					if !strings.HasPrefix(got, note) {
						t.Errorf("%s: no note that line numbers are missing: %q", st.cmd, firstLine(got))
					}
					got, want = stripTrailing(strings.TrimPrefix(got, note)), stripTrailing(sourceColumn.ReplaceAllString(want, ""))
				}
				if got != want || len(b) == 0 {
					t.Errorf("%s %s: %s differs from crash:\n%s", mode, d.ID, st.cmd, lineDiff(got, want))
				}
			}
		}
	}
}
