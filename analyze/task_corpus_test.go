package analyze

import (
	"encoding/json"
	"fmt"
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
	total := 0
	for _, mode := range modes {
		for _, d := range m.Dumps {
			for _, key := range []string{"task", "task-R"} {
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
				t.Run(mode+"/"+d.ID+"/"+key, func(t *testing.T) {
					got := runCmd(t, taskSession(t, m, d, mode), cmd)
					if got != want {
						t.Errorf("%s differs from crash:\n%s", cmd, lineDiff(got, want))
						return
					}
					counts[mode+" "+key]++
					lines[mode+" "+key] += strings.Count(want, "\n")
				})
			}
		}
	}
	if total == 0 {
		t.Fatal("no task references in the corpus: rebuild the lab")
	}
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
