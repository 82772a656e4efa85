package kernel

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"salvage/debuginfo"
	"salvage/lab/corpus"
)

var dwarfTypes sync.Map // vmlinux path → debuginfo.Types

// openTypedKernel is openKernel with the debug vmlinux's DWARF types.
func openTypedKernel(t testing.TB, m *corpus.Manifest, d corpus.Dump) *Kernel {
	t.Helper()
	k := openKernel(t, m, d)
	path := m.Path(m.Kernel(d.Release).DebugVmlinux)
	ts, ok := dwarfTypes.Load(path)
	if !ok {
		loaded, err := debuginfo.LoadDWARF(path)
		if err != nil {
			t.Fatal(err)
		}
		ts, _ = dwarfTypes.LoadOrStore(path, loaded)
	}
	k.Types = ts.(debuginfo.Types)
	return k
}

// allTasks maps each task of k.Tasks to its PID, and checks that each
// CPU's run queue says which CPU it belongs to.
func allTasks(t *testing.T, k *Kernel) map[uint64]int64 {
	t.Helper()
	tasks := map[uint64]int64{}
	for v, err := range k.Tasks() {
		if err != nil {
			t.Fatal(err)
		}
		pid, err := v.Member("pid")
		if err != nil {
			t.Fatal(err)
		}
		n, err := pid.Int()
		if err != nil {
			t.Fatal(err)
		}
		if _, dup := tasks[v.Address()]; dup {
			t.Errorf("task %#x (pid %d) yielded twice", v.Address(), n)
		}
		tasks[v.Address()] = n
	}
	ncpu, err := k.NrCPUIDs()
	if err != nil {
		t.Fatal(err)
	}
	for cpu := 0; cpu < ncpu; cpu++ {
		rq, err := k.PerCPU("runqueues", cpu)
		if err != nil {
			t.Fatal(err)
		}
		c, err := rq.Member("cpu")
		if err != nil {
			t.Fatal(err)
		}
		if n, err := c.Int(); err != nil || n != int64(cpu) {
			t.Errorf("runqueues of CPU %d says cpu %d, %v", cpu, n, err)
		}
	}
	return tasks
}

var psLine = regexp.MustCompile(`^[> ]\s*(\d+)\s+\d+\s+\d+\s+([0-9a-f]+)\s`)

// TestTasksMatchCrashPS walks the task list and finds exactly the tasks
// (address and PID) of crash's ps.
func TestTasksMatchCrashPS(t *testing.T) {
	m := corpus.Require(t)
	n := 0
	for _, d := range m.Dumps {
		ps, ok, err := m.Ref(d, "ps")
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			continue
		}
		n++
		t.Run(d.ID, func(t *testing.T) {
			k := openTypedKernel(t, m, d)
			want := map[uint64]int64{}
			for _, l := range strings.Split(ps, "\n") {
				if s := psLine.FindStringSubmatch(l); s != nil {
					pid, _ := strconv.ParseInt(s[1], 10, 64)
					a, _ := strconv.ParseUint(s[2], 16, 64)
					want[a] = pid
				}
			}
			if len(want) < 10 {
				t.Fatalf("crash ps lists %d tasks", len(want))
			}
			got := allTasks(t, k)
			var diffs []string
			for a, pid := range want {
				if g, ok := got[a]; !ok || g != pid {
					diffs = append(diffs, fmt.Sprintf("missing %#x pid %d (got %d)", a, pid, g))
				}
			}
			for a, pid := range got {
				if _, ok := want[a]; !ok {
					diffs = append(diffs, fmt.Sprintf("extra %#x pid %d", a, pid))
				}
			}
			sort.Strings(diffs)
			if len(diffs) > 0 {
				t.Errorf("%d tasks differ from crash's ps (%d tasks):\n%s", len(diffs), len(want), strings.Join(diffs[:min(len(diffs), 20)], "\n"))
			}
		})
	}
	if n == 0 {
		t.Fatal("no dump has a ps reference")
	}
}

var structTaskCmd = regexp.MustCompile(`^struct task_struct ([0-9a-f]+)$`)

// TestStructTask reads members of the task crash printed with `struct
// task_struct ADDR` and compares the top-level scalars.
func TestStructTask(t *testing.T) {
	m := corpus.Require(t)
	n := 0
	for _, d := range m.Dumps {
		ref, ok, err := m.Ref(d, "struct-task")
		if err != nil {
			t.Fatal(err)
		}
		c := structTaskCmd.FindStringSubmatch(d.RefCommands["struct-task"])
		if !ok || c == nil {
			continue
		}
		n++
		t.Run(d.ID, func(t *testing.T) {
			k := openTypedKernel(t, m, d)
			addr, _ := strconv.ParseUint(c[1], 16, 64)
			task, err := k.ObjectOf(addr, "struct task_struct")
			if err != nil {
				t.Fatal(err)
			}
			checked := 0
			for _, name := range []string{"pid", "tgid", "prio", "static_prio", "normal_prio", "flags", "__state", "exit_code", "stack", "on_cpu", "thread_info.cpu"} {
				want, ok := crashMember(ref, name)
				if !ok {
					t.Errorf("crash output lacks %s", name)
					continue
				}
				v, err := task.Member(name)
				if err != nil {
					t.Errorf("%s: %v", name, err)
					continue
				}
				var got string
				if r := v.Type().Resolve(); r.Kind == debuginfo.KindPointer {
					u, err := v.Uint()
					if err != nil {
						t.Errorf("%s: %v", name, err)
						continue
					}
					got = fmt.Sprintf("%#x", u)
				} else {
					i, err := v.Int()
					if err != nil {
						t.Errorf("%s: %v", name, err)
						continue
					}
					got = strconv.FormatInt(i, 10)
				}
				if got != want {
					t.Errorf("%s = %s, crash says %s", name, got, want)
				}
				checked++
			}
			comm, _ := task.Member("comm")
			s, err := comm.CString(16)
			if want, _ := crashMember(ref, "comm"); err != nil || !strings.HasPrefix(want, `"`+s) {
				t.Errorf("comm %q, %v; crash says %s", s, err, want)
			}
			if checked < 8 {
				t.Errorf("only %d members compared", checked)
			}
		})
	}
	if n == 0 {
		t.Fatal("no dump has a struct-task reference")
	}
}

// crashMember finds "  name = value," at the given nesting of crash's
// struct output ("thread_info.cpu" looks inside thread_info = {…}).
func crashMember(out, path string) (string, bool) {
	parts := strings.Split(path, ".")
	depth := 1
	lines := strings.Split(out, "\n")
	want := 0
	for _, l := range lines {
		indent := len(l) - len(strings.TrimLeft(l, " "))
		if indent != depth*2 {
			continue
		}
		name, val, ok := strings.Cut(strings.TrimSpace(l), " = ")
		if !ok || name != parts[want] {
			continue
		}
		if want == len(parts)-1 {
			return strings.TrimSuffix(val, ","), true
		}
		want++
		depth++
	}
	return "", false
}
