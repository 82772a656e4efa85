package analyze

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"salvage/lab/corpus"
)

var btFrameRe = regexp.MustCompile(`(?m)^\s*#\d+ \[[0-9a-f]+\] (\S+) at [0-9a-f]+`)

// btFrameSPRe is btFrameRe with the frame's stack address first.
var btFrameSPRe = regexp.MustCompile(`(?m)^\s*#\d+ \[([0-9a-f]+)\] (\S+) at [0-9a-f]+`)

// TestSummary checks summary on every crash of the corpus, with the
// vmlinux and without, against crash's answers: the PANIC of sys, the
// panic task of bt, the stack of bt from the oops's exception frame (or
// past the kdump path), the D-state tasks of ps, and the log's last
// line before the panic.
func TestSummary(t *testing.T) {
	m := corpus.Require(t)
	n := 0
	for _, d := range m.Dumps {
		if d.Scenario == "live" {
			continue
		}
		sys, ok1, _ := m.Ref(d, "sys")
		bt, ok2, _ := m.Ref(d, "bt")
		ps, ok3, _ := m.Ref(d, "ps")
		if !ok1 || !ok2 || !ok3 {
			t.Fatalf("%s: the corpus lacks crash's sys, bt or ps", d.ID)
		}
		n++
		for _, withVmlinux := range []bool{true, false} {
			s := corpusSession(t, m, d, withVmlinux)
			out, errs := execCapture(s, "summary --json")
			if errs != "" {
				t.Fatalf("%s: summary: %s", d.ID, errs)
			}
			var j summaryJSON
			if err := json.Unmarshal([]byte(out), &j); err != nil {
				t.Fatalf("%s: summary --json: %v\n%s", d.ID, err, out)
			}
			// crash adds " (check log for details)" after an oops.
			if want := strings.TrimSuffix(crashField(sys, "PANIC"), " (check log for details)"); `"`+j.Panic+`"` != want {
				t.Errorf("%s: panic %q, crash's sys: %s", d.ID, j.Panic, want)
			}
			hdr := strings.SplitN(bt, "\n", 2)[0] // PID: 494 TASK: … CPU: 0 COMMAND: "sh"
			if j.Task == nil || !strings.Contains(hdr, "TASK: "+j.Task.Task) || !strings.HasPrefix(hdr, "PID: "+itoa(j.Task.PID)+" ") {
				t.Errorf("%s: task %+v, crash's bt: %s", d.ID, j.Task, hdr)
				continue
			}
			// crash's frames from the interrupted context on: after the
			// exception frame's RIP line, or past the kdump path.
			var want []string
			if i := strings.Index(bt, "[exception RIP: "); i >= 0 {
				rip := bt[i+len("[exception RIP: "):]
				want = append(want, rip[:strings.Index(rip, "]")])
				// A frame crash shows below the exception's RSP is the
				// stack-alignment word above the register frame, not a
				// frame: salvage's bt shows it too (a stale frame), its
				// summary does not.
				var rsp uint64
				if mm := regexp.MustCompile(`RSP: ([0-9a-f]{16})`).FindStringSubmatch(rip); mm != nil {
					rsp, _ = strconv.ParseUint(mm[1], 16, 64)
				}
				for _, mm := range btFrameSPRe.FindAllStringSubmatch(bt[i:], -1) {
					if sp, _ := strconv.ParseUint(mm[1], 16, 64); sp < rsp && len(want) == 1 {
						continue
					}
					want = append(want, mm[2])
				}
			} else {
				for _, mm := range btFrameRe.FindAllStringSubmatch(bt, -1) {
					if len(want) == 0 && crashPath[mm[1]] {
						continue
					}
					want = append(want, mm[1])
				}
			}
			var got []string
			for _, f := range j.Task.Stack {
				got = append(got, strings.Fields(f)[0]) // without " [module]"
			}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("%s vmlinux=%v: stack\n  %v\ncrash's bt:\n  %v", d.ID, withVmlinux, got, want)
			}
			var un []string
			for _, l := range strings.Split(ps, "\n") {
				if f := strings.Fields(strings.TrimPrefix(l, ">")); len(f) > 4 && f[4] == "UN" {
					un = append(un, f[0])
				}
			}
			var blocked []string
			for _, b := range j.Blocked {
				blocked = append(blocked, itoa(b.PID))
			}
			if strings.Join(blocked, " ") != strings.Join(un, " ") {
				t.Errorf("%s: blocked tasks %v, crash's ps UN: %v", d.ID, blocked, un)
			}
			if d.Scenario == "hung" && (len(j.Warnings) == 0 || len(j.Blocked) == 0 || len(j.Blocked[0].Stack) == 0) {
				t.Errorf("%s: the hung task is not reported: warnings %q, blocked %+v", d.ID, j.Warnings, j.Blocked)
			}
			if d.Scenario == "oops" && !strings.HasPrefix(j.Cause, "BUG: kernel NULL pointer dereference") {
				t.Errorf("%s: the oops's cause is %q", d.ID, j.Cause)
			}
			if len(j.LastLog) == 0 || !strings.HasSuffix(j.LastLog[len(j.LastLog)-1], j.Panic) {
				t.Errorf("%s: the last message is not the panic: %q", d.ID, j.LastLog)
			}
		}
	}
	if n == 0 {
		t.Fatal("no crash dumps in the corpus")
	}
}

// crashField is a "NAME: value" line of crash's sys.
func crashField(sys, name string) string {
	for _, l := range strings.Split(sys, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
