package analyze

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"salvage/lab/corpus"
)

// TestTaskCorpus compares task PID (the workload's task_struct and
// thread_info, every member as gdb prints it) and task -R
// pid,comm,__state PID with crash 8.0.6's, byte for byte, on every dump
// it could read, with the debug vmlinux and without one.
func TestTaskCorpus(t *testing.T) {
	m := corpus.Require(t)
	counts := map[string]int{}
	lines := map[string]int{}
	forEachRef(t, m, []string{"task", "task-R"}, func(t *testing.T, mode string, d corpus.Dump, key, cmd, want string) {
		got := runCmd(t, taskSession(t, m, d, mode), cmd)
		if got != want {
			t.Errorf("%s differs from crash:\n%s", cmd, lineDiff(got, want))
			return
		}
		counts[mode+" "+key]++
		lines[mode+" "+key] += strings.Count(want, "\n")
	})
	var ks []string
	for k := range counts {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	for _, k := range ks {
		t.Logf("%s: %d dumps identical to crash (%d lines)", k, counts[k], lines[k])
	}
}

// TestTaskSelection checks task's operands on one dump against ps: the
// task of a PID and of a task address are the same object, no operand
// means the panic task (the active task ps marks on the CPU that
// panicked), -R finds thread_info's members too, --json carries the
// header, and bad operands are one-line errors.
func TestTaskSelection(t *testing.T) {
	m := corpus.Require(t)
	d := pickDump(t, m, "sysrq", "vmcore-elf")
	for _, mode := range modes {
		s := taskSession(t, m, d, mode)
		rows := parsePSRows(t, runCmd(t, s, "ps 1"))
		byPID := runCmd(t, s, "task 1")
		byAddr := runCmd(t, s, "task "+rows[0].Task)
		if byPID != byAddr || !strings.HasPrefix(byPID, fmt.Sprintf("PID: 1        TASK: %s  CPU: %s", rows[0].Task, rows[0].CPU)) {
			t.Errorf("%s: task 1 and task %s differ or have the wrong header:\n%s", mode, rows[0].Task, firstLine(byPID))
		}
		cur := runCmd(t, s, "task -R pid")
		var active []psRow
		for _, r := range parsePSRows(t, runCmd(t, s, "ps")) {
			if r.Active && r.PID != "0" {
				active = append(active, r)
			}
		}
		// sysrq: the shell that wrote to /proc/sysrq-trigger panicked.
		if len(active) != 1 || !strings.Contains(firstLine(cur), "TASK: "+active[0].Task) {
			t.Errorf("%s: task without operands: %q, active non-idle tasks %v", mode, firstLine(cur), active)
		}
		// set makes another task current; set -p the panic task again.
		runCmd(t, s, "set 1")
		if got := firstLine(runCmd(t, s, "task -R pid")); !strings.HasPrefix(got, "PID: 1 ") {
			t.Errorf("%s: after set 1, task shows %q", mode, got)
		}
		runCmd(t, s, "set -p")
		if got := firstLine(runCmd(t, s, "task -R pid")); got != firstLine(cur) {
			t.Errorf("%s: after set -p, task shows %q, want %q", mode, got, firstLine(cur))
		}
		// 6.1 keeps cpu in thread_info (x86, since 5.16): -R finds it in
		// the printed struct thread_info, as crash does ("  cpu = 0",
		// its last member); a member path prints on its own line.
		if got, want := runCmd(t, s, "task -R cpu,se.on_rq 1"), firstLine(byPID)+"\n  cpu = "+rows[0].CPU+"\n  se.on_rq = 0,\n\n"; got != want {
			t.Errorf("%s: task -R cpu,se.on_rq 1:\n%s", mode, lineDiff(got, want))
		}
		var js struct {
			Tasks []taskJSON `json:"tasks"`
		}
		if err := json.Unmarshal([]byte(runCmd(t, s, "task --json -R comm 1")), &js); err != nil {
			t.Fatal(err)
		}
		if len(js.Tasks) != 1 || js.Tasks[0].PID != 1 || !strings.HasPrefix(js.Tasks[0].Members["comm"], `  comm = "init`) {
			t.Errorf("%s: task --json -R comm 1: %+v", mode, js.Tasks)
		}
		for _, bad := range []string{"task nosuchmember", "task -R nosuchmember 1"} {
			_, errs := execCapture(s, bad)
			if errs == "" || strings.Contains(errs, "panic") || strings.Count(errs, "\n") > 0 {
				t.Errorf("%s: want a one-line error, got %q", bad, errs)
			}
		}
		out, _ := execCapture(s, "task 99999999")
		if !strings.Contains(out, "invalid task or pid value: 99999999") {
			t.Errorf("task 99999999: %q", out)
		}
	}
}

// taskGoldenSession holds the task forms the lab's references lack, run
// by the reference crash once per dump and cached in the lab (see
// crashGoldenDir).
const taskGoldenSession = `task > GOLDEN/task.txt
task -x 1 > GOLDEN/task-x-1.txt
task 2 1 > GOLDEN/task-2-1.txt
task 0 > GOLDEN/task-0.txt
task -R flags,mm 1 > GOLDEN/task-R-flags-mm.txt
task -R se.on_rq 1 > GOLDEN/task-R-se-on_rq.txt
task -R thread_info,cpu 1 > GOLDEN/task-R-thread_info.txt
task -R sched_info 1 > GOLDEN/task-R-sched_info.txt
task -d -R pid,tgid 2 > GOLDEN/task-d-R.txt
task comm 1 > GOLDEN/task-comm.txt
q
`

// TestTaskGoldens runs taskGoldenSession in salvage, with the debug
// vmlinux and without one, and compares every output with crash's.
func TestTaskGoldens(t *testing.T) {
	m := corpus.Require(t)
	for _, dv := range [][2]string{{"sysrq", "vmcore-elf"}, {"oops", "lzo-d31"}} {
		d := pickDump(t, m, dv[0], dv[1])
		dir := crashGoldenDir(t, m, d, taskGoldenSession)
		steps := readGoldenSession(taskGoldenSession)
		for _, mode := range modes {
			t.Run(mode+"/"+d.ID, func(t *testing.T) {
				s := taskSession(t, m, d, mode)
				same, known := 0, 0
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
					if got != string(b) {
						if why, ok := valuePrintingDifference(got, string(b)); ok {
							known++
							t.Logf("%s: known difference: %s", st.cmd, why)
							continue
						}
						t.Errorf("%s differs from crash:\n%s", st.cmd, lineDiff(got, string(b)))
						continue
					}
					same++
				}
				t.Logf("%d of %d task commands identical to crash, %d with known value-printing differences", same, len(steps), known)
			})
		}
	}
}

// valuePrintingDifference accepts the differences of task output that
// come from the shared gdb-style value printer (analyze/gdbvalue.go), not
// from task, and says which; every other line must be identical:
//   - gdb's 200-element limit on a char array counts a run of repeated
//     characters as one element, so crash prints more of the FPU state's
//     __padding before "...";
//   - gdb names a pointer into a data object <init_task+6208>;
//   - with -x, gdb prints a char as 0x0 without its character literal,
//     and an enum by its enumerator's name, not in hexadecimal.
func valuePrintingDifference(got, want string) (string, bool) {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	if len(g) != len(w) {
		return "", false
	}
	var whys []string
	add := func(s string) {
		for _, x := range whys {
			if x == s {
				return
			}
		}
		whys = append(whys, s)
	}
	for i := range g {
		switch {
		case g[i] == w[i]:
		case strings.Contains(g[i], "__padding = \"") && strings.Contains(w[i], "__padding = \"") && strings.HasSuffix(g[i], "\"...") && strings.HasPrefix(strings.TrimSuffix(w[i], "\"..."), strings.TrimSuffix(g[i], "\"...")):
			add("gdb's element limit counts repeated characters once")
		case strings.Contains(w[i], " <") && strings.Replace(w[i], w[i][strings.Index(w[i], " <"):strings.Index(w[i], ">")+1], "", 1) == g[i]:
			add("gdb names pointers into data objects")
		case strings.Contains(g[i], " '") && strings.TrimSuffix(w[i], ",") == g[i][:strings.Index(g[i], " '")]:
			add("gdb prints chars in hexadecimal without their literal")
		case hexForEnum(g[i], w[i]):
			add("gdb prints enums by name even in hexadecimal")
		default:
			return "", false
		}
	}
	return strings.Join(whys, "; "), true
}

// hexForEnum reports a line "name = 0x0," where gdb printed "name =
// ENUMERATOR,".
func hexForEnum(got, want string) bool {
	gn, gv, ok1 := strings.Cut(got, " = ")
	wn, wv, ok2 := strings.Cut(want, " = ")
	if !ok1 || !ok2 || gn != wn || strings.HasSuffix(gv, ",") != strings.HasSuffix(wv, ",") {
		return false
	}
	gv, wv = strings.TrimSuffix(gv, ","), strings.TrimSuffix(wv, ",")
	if !strings.HasPrefix(gv, "0x") || wv == "" || !(wv[0] >= 'A' && wv[0] <= 'Z' || wv[0] == '_') {
		return false
	}
	for _, c := range wv {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
