package kernel

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"salvage/dump"
	"salvage/lab/corpus"
)

// sysinfoKernels opens one dump of every crash of the corpus (its first
// variant) twice: with the debug vmlinux's symbols and DWARF, and with
// nothing but the dump (kallsyms and BTF).
func sysinfoKernels(t *testing.T, m *corpus.Manifest) map[string]map[string]*Kernel {
	t.Helper()
	out := map[string]map[string]*Kernel{}
	seen := map[string]bool{}
	for _, d := range m.Dumps {
		if seen[d.Crash] {
			continue
		}
		seen[d.Crash] = true
		f, err := dump.Open(m.Paths(d)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		btf, err := Open(f, Options{})
		if err != nil {
			t.Fatalf("%s without vmlinux: %v", d.ID, err)
		}
		out[d.ID] = map[string]*Kernel{"vmlinux": openTypedKernel(t, m, d), "btf": btf}
	}
	return out
}

func dumpByID(m *corpus.Manifest, id string) corpus.Dump {
	for _, d := range m.Dumps {
		if d.ID == id {
			return d
		}
	}
	return corpus.Dump{}
}

// TestSysinfoMatchesGuest checks the system facts against the guest and
// its kernel build: HZ against CONFIG_HZ in the lab kernel's config, the
// date against the guest's date +%s taken just before the crash, the
// memory against /proc/meminfo's MemTotal, the panic CPU and task
// against the dump's NT_PRSTATUS notes (kdump writes one per CPU, with
// the PID of the task it interrupted) — in both modes, which must agree.
func TestSysinfoMatchesGuest(t *testing.T) {
	m := corpus.Require(t)
	for id, ks := range sysinfoKernels(t, m) {
		d := dumpByID(m, id)
		cfg, err := os.ReadFile(filepath.Join(filepath.Dir(m.Path(m.Kernel(d.Release).DebugVmlinux)), "config"))
		if err != nil {
			t.Fatalf("the lab kernel's config: %v", err)
		}
		wantHZ := 0
		for _, l := range strings.Split(string(cfg), "\n") {
			if v, ok := strings.CutPrefix(l, "CONFIG_HZ="); ok {
				wantHZ, _ = strconv.Atoi(v)
			}
		}
		truth := func(name string) string { return truthFile(t, m, d, name) }
		date, _ := strconv.ParseInt(truth("date"), 10, 64)
		var memTotal uint64
		for _, l := range strings.Split(truth("meminfo"), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
				memTotal, _ = strconv.ParseUint(f[1], 10, 64)
			}
		}
		var taints []string
		for _, mode := range []string{"vmlinux", "btf"} {
			k := ks[mode]
			t.Run(mode+"/"+id, func(t *testing.T) {
				if hz := k.HZ(); hz != wantHZ || hz == 0 {
					t.Errorf("HZ %d, CONFIG_HZ %d", hz, wantHZ)
				}
				if got, err := k.Date(); err != nil || got < date || got > date+60 {
					t.Errorf("date %d (%v), guest's %d", got, err, date)
				}
				if mem, err := k.MemoryBytes(); err != nil || mem < memTotal*1024 || mem > 2*memTotal*1024 {
					t.Errorf("memory %d bytes (%v), MemTotal %d kB", mem, err, memTotal)
				}
				up, err := k.UptimeJiffies(k.HZ())
				if err != nil || up == 0 || up > 3600*uint64(wantHZ) {
					t.Errorf("uptime %d jiffies, %v: the lab's guests crash within minutes", up, err)
				}
				mask, err := k.TaintedMask()
				if err != nil {
					t.Fatal(err)
				}
				// Every flag set (the 18 of 6.1), and the dump's own mask.
				all, err := k.TaintFlags(1<<18 - 1)
				if err != nil || all != "PFSRMBUDAWCIOELKXT" {
					t.Errorf("all taint flags: %q, %v", all, err)
				}
				flags, _ := k.TaintFlags(mask)
				taints = append(taints, flags)
				cpu, ok := k.PanicCPU()
				task := k.PanickedTask()
				if ok != (d.Scenario != "live") || (task != 0) != ok {
					t.Fatalf("%s dump: panic CPU %d (%v), task %#x", d.Scenario, cpu, ok, task)
				}
				if !ok {
					return
				}
				tasks, err := k.TaskTable()
				if err != nil {
					t.Fatal(err)
				}
				var pid int64 = -1
				for _, ti := range tasks {
					if ti.Task == task {
						pid = ti.PID
						if !ti.Active || ti.CPU != cpu {
							t.Errorf("panic task %d: active %v on CPU %d, panic CPU %d", pid, ti.Active, ti.CPU, cpu)
						}
					}
				}
				found := false
				for _, pr := range k.Dump.PRStatus {
					found = found || int64(pr.PID) == pid
				}
				if pid <= 0 || !found {
					t.Errorf("panic task PID %d is in no NT_PRSTATUS note (%d notes)", pid, len(k.Dump.PRStatus))
				}
			})
		}
		if len(taints) == 2 && taints[0] != taints[1] {
			t.Errorf("%s: taint flags %q with DWARF, %q with BTF", id, taints[0], taints[1])
		}
	}
}

// labRSSLayouts are the rss_stat layouts of the lab's kernels: 6.1's
// struct mm_rss_stat of atomic_long_t plus the per-task int counts of
// SPLIT_RSS_COUNTING; 6.12's struct percpu_counter rss_stat[] (6.2+) and
// no per-task counts.
var labRSSLayouts = map[string]struct {
	percpu, task         bool
	rssElem, taskRSSElem int64
}{
	"6.1":  {false, true, 8, 4},
	"6.12": {true, false, 0, 0},
}

// TestTaskTableModes reads the task table with DWARF and with BTF and
// requires the same rows: the two type sources must lead to the same
// offsets, including the rss_stat layout, detected from the types.
func TestTaskTableModes(t *testing.T) {
	m := corpus.Require(t)
	for id, ks := range sysinfoKernels(t, m) {
		var tables [][]TaskInfo
		name := m.Kernel(dumpByID(m, id).Release).Name
		if name == "" {
			name = "6.1" // a manifest from before kernels had names
		}
		want, ok := labRSSLayouts[name]
		if !ok {
			t.Errorf("%s: no known rss layout for lab kernel %q", id, name)
		}
		for _, mode := range []string{"vmlinux", "btf"} {
			k := ks[mode]
			l, err := k.taskLayout()
			if err != nil {
				t.Fatal(err)
			}
			if l.mmRSSPercpu != want.percpu || l.haveTaskRSS != want.task || (!want.percpu && l.rssElem != want.rssElem) || (want.task && l.taskRSSElem != want.taskRSSElem) {
				t.Errorf("%s %s: rss layout percpu=%v task=%v elem=%d/%d; kernel %s has %+v",
					mode, id, l.mmRSSPercpu, l.haveTaskRSS, l.rssElem, l.taskRSSElem, name, want)
			}
			tt, err := k.TaskTable()
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for range k.Tasks() {
				n++
			}
			if len(tt) != n || n < 300 {
				t.Errorf("%s %s: %d rows, %d tasks", mode, id, len(tt), n)
			}
			active := 0
			for i, ti := range tt {
				if ti.Active {
					active++
				}
				if i > 0 && (tt[i-1].PID > ti.PID || tt[i-1].PID == ti.PID && ti.PID == 0 && tt[i-1].CPU >= ti.CPU) {
					t.Errorf("%s %s: rows %d and %d out of crash's order", mode, id, i-1, i)
				}
			}
			if c, _ := k.CPUsOnline(); active != c {
				t.Errorf("%s %s: %d active tasks, %d CPUs online", mode, id, active, c)
			}
			tables = append(tables, tt)
		}
		if len(tables) == 2 {
			a, b := tables[0], tables[1]
			if len(a) != len(b) {
				t.Errorf("%s: %d rows with DWARF, %d with BTF", id, len(a), len(b))
				continue
			}
			for i := range a {
				if a[i] != b[i] {
					t.Errorf("%s row %d: DWARF %+v, BTF %+v", id, i, a[i], b[i])
				}
			}
		}
	}
}

// BenchmarkTaskTable reads every task's ps row (task_struct, mm
// counters, active tasks) of the sysrq vmcore-elf dump with DWARF.
func BenchmarkTaskTable(b *testing.B) {
	m := corpus.Require(b)
	var d corpus.Dump
	for _, x := range m.Dumps {
		if x.Scenario == "sysrq" && x.Variant == "vmcore-elf" {
			d = x
		}
	}
	if d.ID == "" {
		b.Fatal("corpus has no sysrq/vmcore-elf dump")
	}
	k := openTypedKernel(b, m, d)
	for b.Loop() {
		tt, err := k.TaskTable()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(len(tt)), "tasks")
	}
}

// TestTaskStateArray reads the kernel's own task_state_array[]
// (fs/proc/array.c: "R (running)", "S (sleeping)", …), whose entry i
// names state bit i-1, and checks the state bits StateCode assumes, as
// crash's initialize_task_state derives them; then that TASK_DEAD,
// TASK_WAKEKILL, TASK_WAKING, TASK_NOLOAD and TASK_NEW follow
// TASK_PARKED, as crash assumes for 4.14+.
func TestTaskStateArray(t *testing.T) {
	m := corpus.Require(t)
	for id, ks := range sysinfoKernels(t, m) {
		k := ks["vmlinux"]
		a, err := k.SymbolAddr("task_state_array")
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]uint64{"running": taskRunning, "sleeping": taskInterruptible, "disk sleep": taskUninterruptible,
			"stopped": taskStopped, "tracing stop": taskTraced, "dead": exitDead, "zombie": exitZombie, "parked": taskParked}
		seen := 0
		for i := 0; i < 16; i++ {
			p, err := k.ReadPointer(a + uint64(8*i))
			if err != nil {
				t.Fatal(err)
			}
			s, err := k.ReadCString(p, 32)
			if err != nil || !strings.Contains(s, " (") {
				break
			}
			name := strings.TrimSuffix(s[strings.Index(s, "(")+1:], ")")
			bit := uint64(0)
			if i > 0 {
				bit = 1 << uint(i-1)
			}
			if w, ok := want[name]; ok {
				seen++
				if w != bit {
					t.Errorf("%s: %q is bit %#x, salvage assumes %#x", id, s, bit, w)
				}
			}
		}
		if seen != len(want) {
			t.Errorf("%s: found %d of the %d states in task_state_array", id, seen, len(want))
		}
		if taskDead != taskParked<<1 || taskWakekill != taskParked<<2 || taskWaking != taskParked<<3 || taskNoload != taskParked<<4 || taskNew != taskParked<<5 {
			t.Error("the states after TASK_PARKED are not crash's")
		}
	}
}
