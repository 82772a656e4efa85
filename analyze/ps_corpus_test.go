package analyze

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"salvage/debuginfo"
	"salvage/dump"
	"salvage/kernel"
	"salvage/lab/corpus"
)

// taskSessions caches one session per dump and mode for the sys, ps and
// task tests: opening a dump and its kernel model is the slow part, and
// these commands only read. The dumps stay open until the test binary
// exits.
var taskSessions sync.Map // mode+" "+dump ID → *Session

// modes are the two ways salvage models a kernel: with the debug vmlinux
// (DWARF, ELF symbols) and without one (the dump's BTF and kallsyms).
var modes = []string{"vmlinux", "btf"}

// taskSession returns the cached session on dump d in mode.
func taskSession(t testing.TB, m *corpus.Manifest, d corpus.Dump, mode string) *Session {
	t.Helper()
	key := mode + " " + d.ID
	if s, ok := taskSessions.Load(key); ok {
		return s.(*Session)
	}
	f, err := dump.Open(m.Paths(d)...)
	if err != nil {
		t.Fatalf("open %s: %v", d.ID, err)
	}
	vmlinux := ""
	tkey := "btf:" + d.Release
	if mode == "vmlinux" {
		kern := m.Kernel(d.Release)
		if kern == nil {
			t.Fatalf("corpus has no kernel %s", d.Release)
		}
		vmlinux = m.Path(kern.DebugVmlinux)
		tkey = "dwarf:" + d.Release
	}
	var out, errw bytes.Buffer
	s := NewSession(f, vmlinux, &out, &errw)
	if ts, ok := sharedTypes.Load(tkey); ok {
		s.Types = ts.(debuginfo.Types)
	}
	k, err := s.Kernel()
	if err != nil {
		t.Fatalf("%s (%s): kernel: %v", d.ID, mode, err)
	}
	sharedTypes.LoadOrStore(tkey, k.Types)
	got, _ := taskSessions.LoadOrStore(key, s)
	return got.(*Session)
}

// refFor returns crash's reference for key on d: crash 8.0.6's, or
// bookworm's 8.0.2's where only it ran (the live dumps), and which one.
func refFor(t testing.TB, m *corpus.Manifest, d corpus.Dump, key string) (text, which string, ok bool) {
	t.Helper()
	for _, k := range []string{key, "crash-8.0.2:" + key} {
		if _, has := d.Refs[k]; !has {
			continue
		}
		text, ok, err := m.Ref(d, k)
		if err != nil {
			t.Fatalf("%s: reference %s: %v", d.ID, k, err)
		}
		if ok {
			return text, k, true
		}
	}
	return "", "", false
}

// runCmd runs cmd and fails the test on an error line.
func runCmd(t testing.TB, s *Session, cmd string) string {
	t.Helper()
	out, errs := execCapture(s, cmd)
	if errs != "" {
		t.Fatalf("%s: %s", cmd, errs)
	}
	return out
}

// psRow is one row of ps, split into crash's columns.
type psRow struct {
	Active                             bool
	PID, PPID, CPU, Task, ST, Mem, VSZ string
	RSS, Comm                          string
}

func parsePSRows(t testing.TB, out string) []psRow {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "      PID    PPID  CPU") {
		t.Fatalf("ps output has no header: %q", firstLine(out))
	}
	var rows []psRow
	for _, l := range lines[1:] {
		f := strings.Fields(l[2:])
		if len(f) < 9 {
			t.Fatalf("ps row with %d columns: %q", len(f), l)
		}
		rows = append(rows, psRow{Active: l[0] == '>', PID: f[0], PPID: f[1], CPU: f[2], Task: f[3], ST: f[4], Mem: f[5], VSZ: f[6], RSS: f[7], Comm: strings.Join(f[8:], " ")})
	}
	return rows
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// TestPSCorpus compares every row of salvage's ps with crash's, column by
// column, on every dump in both modes, and then the whole text byte for
// byte. On the two live dumps the only reference is crash 8.0.2, which
// cannot gather the task table of this kernel (the 6.1 stable series'
// struct pid change; fixed in crash 8.0.4) and lists only the idle tasks:
// there the rows it does list must be salvage's first rows, and the
// whole list is checked against the guest's own ps (TestPSGuestTruth).
func TestPSCorpus(t *testing.T) {
	m := corpus.Require(t)
	var report []string
	for _, mode := range modes {
		for _, d := range m.Dumps {
			want, which, ok := refFor(t, m, d, "ps")
			if !ok {
				t.Errorf("%s: no ps reference", d.ID)
				continue
			}
			t.Run(mode+"/"+d.ID, func(t *testing.T) {
				s := taskSession(t, m, d, mode)
				got := runCmd(t, s, "ps")
				g, w := parsePSRows(t, got), parsePSRows(t, want)
				if strings.HasPrefix(which, "crash-8.0.2:") {
					if len(w) >= len(g) {
						t.Fatalf("crash 8.0.2 lists %d tasks, salvage %d: expected 8.0.2 to miss most", len(w), len(g))
					}
					g = g[:len(w)]
				}
				if len(g) != len(w) {
					t.Errorf("salvage lists %d tasks, crash %d", len(g), len(w))
				}
				same := 0
				for i := 0; i < min(len(g), len(w)); i++ {
					if g[i] == w[i] {
						same++
					} else {
						t.Errorf("row %d differs:\n  salvage %+v\n  crash   %+v", i, g[i], w[i])
					}
				}
				if which == "ps" && got != want {
					t.Errorf("ps text differs from crash:\n%s", lineDiff(got, want))
				}
				report = append(report, fmt.Sprintf("%s %s: %d/%d rows identical to %s", mode, d.ID, same, len(w), which))
			})
		}
	}
	for _, r := range report {
		t.Log(r)
	}
}

// psKnownDifferences are the reference outputs salvage legitimately
// differs from, by dump variant and reference key, with a check of the
// exact shape of the difference.
var psKnownDifferences = map[string]struct {
	why   string
	check func(got, want string) bool
}{
	// makedumpfile -E -d 31 ends a PT_LOAD's file data before its memory
	// where it excluded pages (user pages among them). crash's ELF reader
	// reads that tail as zeroes, so ps -a shows empty arguments; salvage
	// knows the pages were excluded, not zero, and says it cannot read them.
	"elf-d31 ps-a": {
		why: "excluded user pages: crash reads zeroes, salvage reports them unreadable",
		check: func(got, want string) bool {
			gh, gr, _ := strings.Cut(got, "\n")
			wh, wr, _ := strings.Cut(want, "\n")
			return gh == wh && wr == "ARG: \nENV: \n\n" &&
				strings.HasPrefix(gr, "ps: cannot access user stack address: ") && strings.HasSuffix(gr, "\n\n")
		},
	},
}

// TestPSModesCorpus compares ps -t (every task, by start time), ps -p
// (a workload task's parents), ps -c (init's children) and ps -a (the
// workload's arguments and environment, read from its user stack) with
// crash's, byte for byte, on every dump that has the references, in both
// modes.
func TestPSModesCorpus(t *testing.T) {
	m := corpus.Require(t)
	counts := map[string]int{}
	forEachRef(t, m, []string{"ps-t", "ps-p", "ps-c", "ps-a"}, func(t *testing.T, mode string, d corpus.Dump, key, cmd, want string) {
		s := taskSession(t, m, d, mode)
		got := runCmd(t, s, cmd)
		if got == want {
			counts[mode+" "+key]++
			return
		}
		if key == "ps-t" {
			k, err := s.Kernel()
			if err != nil {
				t.Fatal(err)
			}
			if hz, ok := crashHZOf(t, k); ok && hz.psT(got) == want {
				// crash's HZ on 6.12: see crashHZ.
				counts[mode+" "+key+" (crash's HZ)"]++
				return
			}
		}
		if kd, ok := psKnownDifferences[d.Variant+" "+key]; ok && kd.check(got, want) {
			t.Logf("%s: known difference: %s", cmd, kd.why)
			counts[mode+" "+key+" (known difference)"]++
			return
		}
		t.Errorf("%s differs from crash:\n%s", cmd, lineDiff(got, want))
	})
	var ks []string
	for k := range counts {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	for _, k := range ks {
		t.Logf("%s: %d dumps identical to crash", k, counts[k])
	}
}

// TestPSGuestTruth compares ps with the guest's own process list, taken
// just before the crash (busybox ps: PID, PPID, state, command): every
// process must be in salvage's ps, with its parent and command. Known
// differences: the busybox ps that made the list has exited by the
// crash; and /proc names a workqueue worker "kworker/0:1-events" (the
// work it runs, appended by proc_task_name and cut at 15 characters),
// where the task's comm is "kworker/0:1".
func TestPSGuestTruth(t *testing.T) {
	m := corpus.Require(t)
	for _, mode := range modes {
		for _, d := range m.Dumps {
			t.Run(mode+"/"+d.ID, func(t *testing.T) {
				b, err := os.ReadFile(filepath.Join(m.Path(d.Truth), "ps"))
				if err != nil {
					t.Fatal(err)
				}
				rows := parsePSRows(t, runCmd(t, taskSession(t, m, d, mode), "ps"))
				byPID := map[string][]psRow{}
				for _, r := range rows {
					byPID[r.PID] = append(byPID[r.PID], r)
				}
				lines := strings.Split(strings.TrimSpace(string(b)), "\n")[1:]
				matched, gone := 0, 0
				for _, l := range lines {
					f := strings.Fields(l)
					if len(f) < 4 {
						t.Fatalf("guest ps line %q", l)
					}
					pid, ppid, comm := f[0], f[1], strings.Join(f[3:], " ")
					cands := byPID[pid]
					if len(cands) == 0 {
						if comm == "ps" {
							gone++
							continue
						}
						t.Errorf("guest process %s (%s) is not in salvage's ps", pid, comm)
						continue
					}
					r := cands[0]
					// /proc shows a busy kworker's workqueue after its
					// comm (wq_worker_comm: "kworker/u4:1+flush-254:0"),
					// cut to 15 characters by busybox ps.
					name := strings.TrimSuffix(strings.TrimPrefix(r.Comm, "["), "]")
					if r.PPID != ppid || !(name == comm || strings.HasPrefix(name, "kworker/") && (strings.HasPrefix(comm, name+"-") || strings.HasPrefix(comm, name+"+"))) {
						t.Errorf("guest process %s: PPID %s command %q; salvage: PPID %s command %q", pid, ppid, comm, r.PPID, r.Comm)
						continue
					}
					matched++
				}
				if gone > 1 {
					t.Errorf("%d guest processes named ps are gone; only the one that listed them should be", gone)
				}
				t.Logf("%d of %d guest processes match (PID, PPID, command)", matched, len(lines))
			})
		}
	}
}

// TestPSFilters checks the operand and option forms of ps against ps's
// own full list on one dump: a PID, a task address, a command name, a
// regular expression, -k, -u and -G pick exactly the rows they should.
// (crash's ps reference covers the rows themselves; this covers the
// selection.)
func TestPSFilters(t *testing.T) {
	m := corpus.Require(t)
	d := pickDump(t, m, "sysrq", "vmcore-elf")
	s := taskSession(t, m, d, "vmlinux")
	all := parsePSRows(t, runCmd(t, s, "ps"))
	pick := func(keep func(psRow) bool) []psRow {
		var out []psRow
		for _, r := range all {
			if keep(r) {
				out = append(out, r)
			}
		}
		return out
	}
	kthread := func(r psRow) bool { return strings.HasPrefix(r.Comm, "[") }
	init := pick(func(r psRow) bool { return r.PID == "1" })[0]
	tgids := map[string]bool{}
	for _, r := range all {
		tgids[r.PID] = true
	}
	cases := []struct {
		cmd  string
		want []psRow
	}{
		{"ps 1", pick(func(r psRow) bool { return r.PID == "1" })},
		{"ps 0", pick(func(r psRow) bool { return r.PID == "0" })},
		{"ps " + init.Task, []psRow{init}},
		{"ps sleep", pick(func(r psRow) bool { return r.Comm == "sleep" })},
		{"ps 'ksoftirq.*'", pick(func(r psRow) bool { return strings.Contains(r.Comm, "ksoftirq") })},
		// (kthreads both lab kernels have: 6.12 has no rcu_gp kthread)
		{"ps '^(rcu_preempt|kthreadd)$'", pick(func(r psRow) bool { return r.Comm == "[rcu_preempt]" || r.Comm == "[kthreadd]" })},
		{"ps -k", pick(kthread)},
		{"ps -u", pick(func(r psRow) bool { return !kthread(r) })},
		{"ps 1 2", pick(func(r psRow) bool { return r.PID == "1" || r.PID == "2" })},
	}
	for _, c := range cases {
		got := parsePSRows(t, runCmd(t, s, c.cmd))
		if len(got) == 0 || fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s: got %d rows, want %d:\n%v\n%v", c.cmd, len(got), len(c.want), got, c.want)
		}
	}
	// -G: thread-group leaders only; the workload has threads, so -G
	// lists fewer tasks than ps, and each of them only once.
	g := parsePSRows(t, runCmd(t, s, "ps -G"))
	if len(g) >= len(all) {
		t.Errorf("ps -G lists %d tasks, ps %d: threads were not dropped", len(g), len(all))
	}
	wl := parsePSRows(t, runCmd(t, s, "ps -G workload"))
	if len(wl) != 1 {
		t.Errorf("ps -G workload: %d rows, want the one leader", len(wl))
	}
	for _, bad := range []string{"ps 99999999", "ps -k -u", "ps -t -p 1"} {
		_, errs := execCapture(s, bad)
		if errs == "" || strings.Contains(errs, "panic") || strings.Count(errs, "\n") > 1 {
			t.Errorf("%s: want a one-line error, got %q", bad, errs)
		}
	}
	// --json carries the same rows.
	js := runCmd(t, s, "ps --json 1")
	if !strings.Contains(js, `"pid": 1,`) || !strings.Contains(js, `"task": "`+init.Task+`"`) {
		t.Errorf("ps --json 1: %s", js)
	}
	if n, _ := strconv.Atoi(init.PID); n != 1 {
		t.Errorf("init's PID %q", init.PID)
	}
}

// pickDump finds the corpus dump of a scenario and variant.
func pickDump(t testing.TB, m *corpus.Manifest, scenario, variant string) corpus.Dump {
	t.Helper()
	for _, d := range m.Dumps {
		if d.Scenario == scenario && d.Variant == variant {
			return d
		}
	}
	t.Fatalf("corpus has no %s/%s dump", scenario, variant)
	return corpus.Dump{}
}

// BenchmarkPS runs ps (every task's row: task_struct, mm counters,
// active tasks) on the sysrq vmcore-elf dump with the debug vmlinux.
func BenchmarkPS(b *testing.B) {
	m := corpus.Require(b)
	s := taskSession(b, m, pickDump(b, m, "sysrq", "vmcore-elf"), "vmlinux")
	for b.Loop() {
		out, errs := execCapture(s, "ps")
		if errs != "" || len(out) == 0 {
			b.Fatal(errs)
		}
	}
}

// psGoldenSession is a crash session of the ps forms the lab's
// references lack, run by the reference crash once per dump and cached
// in the lab (see crashGoldenDir). Its order matters to crash, whose ps
// leaves state behind for the rest of a session: once a ps has named
// tasks, a later ps -g lists every thread's group again; -l and -m leave
// the task table sorted by last run. So ps -g comes first, -l and -m last.
const psGoldenSession = `ps -g > GOLDEN/ps-g.txt
ps -S > GOLDEN/ps-S.txt
ps -A > GOLDEN/ps-A.txt
ps -H 1 2 > GOLDEN/ps-H.txt
ps -k -H 2 1 > GOLDEN/ps-k.txt
ps -u 1 2 > GOLDEN/ps-u.txt
ps -G > GOLDEN/ps-G.txt
ps -G workload > GOLDEN/ps-G-workload.txt
ps sleep > GOLDEN/ps-sleep.txt
ps -y FIFO > GOLDEN/ps-y-fifo.txt
ps -y 0,fifo -k > GOLDEN/ps-y-0-fifo-k.txt
ps -g workload > GOLDEN/ps-g-workload.txt
ps -g 1 > GOLDEN/ps-g-1.txt
ps -t 2 1 > GOLDEN/ps-t-21.txt
ps -p 2 > GOLDEN/ps-p-2.txt
ps -c 2 > GOLDEN/ps-c-2.txt
ps -a 1 > GOLDEN/ps-a-1.txt
ps -a 2 > GOLDEN/ps-a-2.txt
ps -r 1 2 > GOLDEN/ps-r-12.txt
ps -s > GOLDEN/ps-s.txt
ps -r workload > GOLDEN/ps-r-workload.txt
ps -l 1 2 > GOLDEN/ps-l-12.txt
ps -m 1 2 > GOLDEN/ps-m-12.txt
ps -l > GOLDEN/ps-l.txt
ps -m > GOLDEN/ps-m.txt
ps -l -C 1 > GOLDEN/ps-l-C1.txt
ps -m -C all > GOLDEN/ps-m-Call.txt
q
`

// TestPSGoldens runs psGoldenSession in salvage, with the debug vmlinux
// and without one, on a full and a filtered dump of two crashes, and
// compares every command's output with crash's byte for byte.
func TestPSGoldens(t *testing.T) {
	m := corpus.Require(t)
	for _, dv := range [][2]string{{"sysrq", "vmcore-elf"}, {"oops", "lzo-d31"}, {"hung", "lzo-d31"}} {
		d := pickDump(t, m, dv[0], dv[1])
		dir := crashGoldenDir(t, m, d, psGoldenSession)
		steps := readGoldenSession(psGoldenSession)
		for _, mode := range modes {
			t.Run(mode+"/"+d.ID, func(t *testing.T) {
				s := taskSession(t, m, d, mode)
				k, err := s.Kernel()
				if err != nil {
					t.Fatal(err)
				}
				hz, hzWrong := crashHZOf(t, k)
				same := 0
				for _, st := range steps {
					b, err := os.ReadFile(filepath.Join(dir, st.file))
					if err != nil {
						t.Fatal(err)
					}
					got, errs := execCapture(s, st.cmd)
					if errs != "" {
						t.Errorf("%s: %s", st.cmd, errs)
						continue
					}
					if hzWrong && strings.HasPrefix(st.cmd, "ps -t") && hz.psT(got) == string(b) {
						same++ // crash's HZ on 6.12: see crashHZ
						continue
					}
					if got != string(b) {
						t.Errorf("%s differs from crash:\n%s", st.cmd, lineDiff(got, string(b)))
						continue
					}
					same++
				}
				t.Logf("%d of %d ps commands identical to crash", same, len(steps))
			})
		}
	}
}

// TestPSPolicy checks ps -Y against ps and task: crash 8.0.6 lacks -Y,
// so its rows are checked against the task_struct's policy and prio as
// crash's own task prints them, and its selection against ps.
func TestPSPolicy(t *testing.T) {
	m := corpus.Require(t)
	s := taskSession(t, m, pickDump(t, m, "sysrq", "vmcore-elf"), "btf")
	ps := parsePSRows(t, runCmd(t, s, "ps 1 2"))
	out := strings.Split(strings.TrimRight(runCmd(t, s, "ps -Y 1 2"), "\n"), "\n")
	if len(out) != 3 || !strings.HasPrefix(out[0], "      PID    PPID  CPU       TASK        POLICY       PRIO  COMM") {
		t.Fatalf("ps -Y 1 2:\n%s", strings.Join(out, "\n"))
	}
	for i, r := range ps {
		task := runCmd(t, s, "task -R policy,prio "+r.PID)
		var policy, prio string
		for _, l := range strings.Split(task, "\n") {
			if v, ok := strings.CutPrefix(l, "  policy = "); ok {
				policy = strings.TrimSuffix(v, ",")
			}
			if v, ok := strings.CutPrefix(l, "  prio = "); ok {
				prio = strings.TrimSuffix(v, ",")
			}
		}
		n, _ := strconv.Atoi(policy)
		want := fmt.Sprintf("  %7s %7s %3s  %-16s  %-12s %4s  %s", r.PID, r.PPID, r.CPU, r.Task, schedPolicies[n], prio, r.Comm)
		if out[i+1] != want {
			t.Errorf("ps -Y row %d:\n  got  %q\n  want %q", i, out[i+1], want)
		}
	}
	if _, errs := execCapture(s, "ps -y nosuch"); !strings.Contains(errs, "invalid scheduling policy") {
		t.Errorf("ps -y nosuch: %q", errs)
	}
}

// FuzzPSOperands feeds arbitrary operands and CPU lists to ps's parsers
// over a small synthetic task table: they return selectors or an error,
// never panic, and every selector matches only tasks its operand names.
func FuzzPSOperands(f *testing.F) {
	for _, s := range []string{"1", "0", "ffff8884811fe000", "0x10", "sleep", "'^k.*'", "(", "\\1", "-", "all", "0-1", "1,0", "3-2", ""} {
		f.Add(s)
	}
	tasks := []kernel.TaskInfo{
		{Task: 0xffffffff81000000, PID: 0, Comm: "swapper/0", KernelThread: true},
		{Task: 0xffff8884811fe000, PID: 1, TGID: 1, Comm: "init"},
		{Task: 0xffff8884811f9800, PID: 2, TGID: 2, Comm: "kthreadd", KernelThread: true},
		{Task: 0xffff888400000010, PID: 16, TGID: 1, Comm: "init"},
	}
	f.Fuzz(func(t *testing.T, arg string) {
		sels, err := parsePSSelectors([]string{arg}, tasks)
		if err == nil {
			if len(sels) != 1 {
				t.Fatalf("%q: %d selectors", arg, len(sels))
			}
			for i := range tasks {
				if n, _ := strconv.ParseInt(arg, 10, 64); sels[0].match(&tasks[i], false) && sels[0].kind == 'p' && tasks[i].PID != n {
					t.Fatalf("%q matched PID %d", arg, tasks[i].PID)
				}
			}
		}
		if cpus, err := parseCPUs(arg, 4); err == nil {
			for _, c := range cpus {
				if c < 0 || c >= 4 {
					t.Fatalf("%q: CPU %d out of range", arg, c)
				}
			}
		}
		_, _ = parsePolicies(arg)
		_ = findTaskMember("  pid = 1,\n  se = {\n    on_rq = 0\n  },\n", arg)
	})
}

// forEachRef runs check, as a subtest, for every reference of keys on
// every corpus dump in both modes, with the command crash ran and its
// output. A dump lacking a reference fails, but for the live dumps crash
// 8.0.6 cannot read and the commands crash itself failed on; no
// reference at all fails the test.
func forEachRef(t *testing.T, m *corpus.Manifest, keys []string, check func(t *testing.T, mode string, d corpus.Dump, key, cmd, want string)) {
	t.Helper()
	total := 0
	for _, mode := range modes {
		for _, d := range m.Dumps {
			for _, key := range keys {
				want, ok, err := m.Ref(d, key)
				if err != nil {
					t.Fatal(err)
				}
				if !ok {
					if _, failed := d.RefErrors[key]; failed || d.Scenario == "live" {
						continue // crash 8.0.6 cannot read the live dumps
					}
					t.Errorf("%s: no %s reference", d.ID, key)
					continue
				}
				total++
				cmd := d.RefCommands[key]
				t.Run(mode+"/"+d.ID+"/"+key, func(t *testing.T) { check(t, mode, d, key, cmd, want) })
			}
		}
	}
	if total == 0 {
		t.Fatalf("no %s references in the corpus: rebuild the lab", strings.Join(keys, ", "))
	}
}
