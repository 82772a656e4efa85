package analyze

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"salvage/kernel"
	"salvage/lab/corpus"
)

func init() {
	jsonCommands["irq"] = "irq --json"
	jsonCommands["runq"] = "runq --json"
}

// irqRunqRef is crash's output of cmd on d: crash 8.0.6's, else (the
// live dumps, which 8.0.6 cannot open) bookworm's crash 8.0.2's, whose
// irq and runq are the same code.
func irqRunqRef(t *testing.T, m *corpus.Manifest, d corpus.Dump, cmd string) (ref, which string) {
	t.Helper()
	for _, key := range []string{cmd, "crash-8.0.2:" + cmd} {
		text, ok, err := m.Ref(d, key)
		if err != nil {
			t.Fatalf("%s: reference %s: %v", d.ID, key, err)
		}
		if ok {
			return text, map[bool]string{true: "crash 8.0.6", false: "crash 8.0.2"}[key == cmd]
		}
	}
	t.Fatalf("%s: no %s reference from crash 8.0.6 or 8.0.2", d.ID, cmd)
	return "", ""
}

// irqMatchingLines counts the lines of got equal to crash's at the same
// place, and crash's line count.
func irqMatchingLines(got, want string) (same, total int) {
	g, w := strings.Split(strings.TrimSuffix(got, "\n"), "\n"), strings.Split(strings.TrimSuffix(want, "\n"), "\n")
	for i := range w {
		if i < len(g) && g[i] == w[i] {
			same++
		}
	}
	return same, len(w)
}

// TestIRQRunqCorpus: irq and runq print crash's text byte for byte on
// every corpus dump, with the debug vmlinux and from the dump's BTF
// alone. The dumps cover the XArray irq_desc_tree (6.1) and the maple
// tree sparse_irqs (6.12, with SALVAGE_LAB_CACHE naming the 6.12 lab),
// 4- and 5-level paging, filtered dumps (-d 31 keeps the slab pages
// irq_desc and the run queues live in), and a queued CFS task (la57 on
// 6.1, sysrq on 6.12). There is no known difference.
func TestIRQRunqCorpus(t *testing.T) {
	m := corpus.Require(t)
	// crash runs meanwhile, for the options the lab's references lack.
	opts := startRunqOptionsCrash(t, m)
	for _, d := range m.Dumps {
		refs := map[string]string{}
		which := map[string]string{}
		for _, cmd := range []string{"irq", "runq"} {
			refs[cmd], which[cmd] = irqRunqRef(t, m, d, cmd)
		}
		for _, mode := range modes {
			s := taskSession(t, m, d, mode)
			for _, cmd := range []string{"irq", "runq"} {
				got, errs := execCapture(s, cmd)
				same, total := irqMatchingLines(got, refs[cmd])
				t.Logf("%s %s %s: %d of %d lines as %s's", d.ID, mode, cmd, same, total, which[cmd])
				if got != refs[cmd] || errs != "" {
					t.Errorf("%s %s: %s differs from crash (%s) [%s]:\n%s", d.ID, mode, cmd, which[cmd], errs, lineDiff(got, refs[cmd]))
				}
			}
			checkRunqJSON(t, s, d, mode, refs["runq"])
			checkIRQOperands(t, s, d, mode, refs["irq"])
		}
	}
	opts.check(t, m)
}

// runqOptionsCrash is the lab's reference crash running runq's options
// on one dump, each command's output redirected to a file of its own.
type runqOptionsCrash struct {
	d    corpus.Dump
	cmd  *exec.Cmd
	dir  string
	cmds map[string]string // file name → command
	out  bytes.Buffer
}

// runqOptionFiles are the options' output files, in the order crash runs
// them: -c last, since crash keeps its CPU mask for the session's later
// commands.
var runqOptionFiles = []string{"t", "m", "T", "d", "g", "c"}

// startRunqOptionsCrash starts crash 8.0.6 on the sysrq vmcore-elf dump
// of the corpus's newest kernel: runq -t, -m, -T, -d, -g and -c (crash takes one
// -c a session: a second says "only one -c option allowed", a crash bug
// salvage does not copy).
func startRunqOptionsCrash(t *testing.T, m *corpus.Manifest) *runqOptionsCrash {
	t.Helper()
	var r runqOptionsCrash
	for _, d := range m.Dumps {
		if d.Scenario == "sysrq" && d.Variant == "vmcore-elf" && (r.d.ID == "" || d.Release > r.d.Release) {
			r.d = d
		}
	}
	if r.d.ID == "" {
		t.Fatal("the corpus has no sysrq vmcore-elf dump")
	}
	r.dir = t.TempDir()
	r.cmds = map[string]string{"t": "runq -t", "m": "runq -m", "T": "runq -T", "d": "runq -d", "g": "runq -g", "c": "runq -c 1"}
	var script strings.Builder
	for _, f := range runqOptionFiles {
		script.WriteString(r.cmds[f] + " > " + filepath.Join(r.dir, f) + "\n")
	}
	script.WriteString("q\n")
	in := filepath.Join(r.dir, "cmds")
	if err := os.WriteFile(in, []byte(script.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd, err := m.Crash(context.Background(), r.d, in)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = &r.out, &r.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("crash: %v", err)
	}
	r.cmd = cmd
	return &r
}

// check waits for crash and compares salvage's output of each command
// with crash's, with the vmlinux and without.
func (r *runqOptionsCrash) check(t *testing.T, m *corpus.Manifest) {
	t.Helper()
	if err := r.cmd.Wait(); err != nil {
		t.Fatalf("crash on %s: %v\n%s", r.d.ID, err, r.out.String())
	}
	for _, mode := range modes {
		s := taskSession(t, m, r.d, mode)
		for _, f := range runqOptionFiles {
			want, err := os.ReadFile(filepath.Join(r.dir, f))
			if err != nil || len(want) == 0 {
				t.Fatalf("crash printed no %s on %s (%v):\n%s", r.cmds[f], r.d.ID, err, r.out.String())
			}
			got, errs := execCapture(s, r.cmds[f])
			same, total := irqMatchingLines(got, string(want))
			t.Logf("%s %s %s: %d of %d lines as crash 8.0.6's", r.d.ID, mode, r.cmds[f], same, total)
			if got != string(want) || errs != "" {
				t.Errorf("%s %s: %s differs from crash [%s]:\n%s", r.d.ID, mode, r.cmds[f], errs, lineDiff(got, string(want)))
			}
		}
	}
}

// checkRunqJSON: runq --json names the same queues, current tasks and
// queued tasks as crash's text.
func checkRunqJSON(t *testing.T, s *Session, d corpus.Dump, mode, ref string) {
	t.Helper()
	out, errs := execCapture(s, "runq --json")
	var qs []runqJSON
	if err := json.Unmarshal([]byte(out), &qs); err != nil || errs != "" {
		t.Fatalf("%s %s: runq --json: %v %s", d.ID, mode, err, errs)
	}
	var b bytes.Buffer
	for i, q := range qs {
		if i > 0 {
			b.WriteString("\n")
		}
		rq := kernel.RunQueue{CPU: q.CPU, Addr: q.RunQ, RTArray: q.RTArray, CFSRoot: q.CFSRoot}
		byTask := map[uint64]*kernel.TaskInfo{}
		if q.Current != nil {
			rq.Curr = q.Current.Task
			byTask[q.Current.Task] = &kernel.TaskInfo{Task: q.Current.Task, PID: q.Current.PID, Comm: q.Current.Command}
		}
		for _, l := range []struct {
			in  []runqTaskJSON
			out *[]kernel.QueuedTask
		}{{q.RT, &rq.RT}, {q.CFS, &rq.CFS}} {
			for _, j := range l.in {
				if j.Prio == nil {
					t.Errorf("%s %s: runq --json: queued task %x without prio", d.ID, mode, j.Task)
					continue
				}
				*l.out = append(*l.out, kernel.QueuedTask{Task: j.Task, Prio: *j.Prio})
				byTask[j.Task] = &kernel.TaskInfo{Task: j.Task, PID: j.PID, Comm: j.Command}
			}
		}
		writeRunQueue(&b, rq, byTask)
	}
	if b.String() != ref {
		t.Errorf("%s %s: runq --json, printed as text, differs from crash's runq:\n%s", d.ID, mode, lineDiff(b.String(), ref))
	}
	// The options' JSON: one document, a CPU an element, no errors.
	for _, line := range []string{"runq -t --json", "runq -d --json", "runq -g --json", "irq 0 24 --json"} {
		out, errs := execCapture(s, line)
		var v []map[string]any
		if line[:3] == "irq" {
			var irq irqTableJSON
			if err := json.Unmarshal([]byte(out), &irq); err != nil || errs != "" || len(irq.IRQs) != 2 || irq.IRQs[1].IRQ != 24 {
				t.Errorf("%s %s: %s: %v %s\n%.300s", d.ID, mode, line, err, errs, out)
			}
			continue
		}
		if err := json.Unmarshal([]byte(out), &v); err != nil || errs != "" || len(v) != len(qs) {
			t.Errorf("%s %s: %s: %v %s\n%.300s", d.ID, mode, line, err, errs, out)
		}
	}
}

// checkIRQOperands: irq with IRQ numbers prints crash's rows of those
// IRQs under one header (crash's "irq 24" takes the same code), and an
// IRQ at or above nr_irqs is crash's one-line error.
func checkIRQOperands(t *testing.T, s *Session, d corpus.Dump, mode, ref string) {
	t.Helper()
	lines := strings.SplitAfter(ref, "\n")
	if len(lines) < 30 {
		t.Fatalf("%s: crash's irq has %d lines", d.ID, len(lines))
	}
	nr := len(lines) - 2 // the header, and the empty string after the last newline
	want := lines[0] + lines[1+24] + lines[1+3] + lines[1+0]
	got, errs := execCapture(s, "irq 24 3 0")
	if got != want || errs != "" {
		t.Errorf("%s %s: irq 24 3 0 [%s]:\n%s", d.ID, mode, errs, lineDiff(got, want))
	}
	got, errs = execCapture(s, "irq 2 "+strconv.Itoa(nr))
	if got != lines[0]+lines[1+2] || errs != "irq: invalid IRQ value: "+strconv.Itoa(nr)+"  ("+strconv.Itoa(nr-1)+" max)" {
		t.Errorf("%s %s: irq 2 %d: %q, error %q", d.ID, mode, nr, got, errs)
	}
	if got, errs = execCapture(s, "irq x1"); got != "" || !strings.Contains(errs, "x1") || strings.Count(errs, "\n") != 0 {
		t.Errorf("%s %s: irq x1: %q, error %q", d.ID, mode, got, errs)
	}
}

// TestIRQTableSharedLine: a line with several handlers (none of the lab's
// guests shares one) prints each further irqaction on a line of its own,
// indented past the IRQ and descriptor columns, as crash's
// generic_dump_irq does (kernel.c, the do_linked_action_v2 loop); an
// action whose name cannot be read shows no name; a descriptor without
// an action and an IRQ without a descriptor show "(unused)".
func TestIRQTableSharedLine(t *testing.T) {
	irqs := []kernel.IRQ{
		{IRQ: 9, Desc: 0xffff8ed2811b1e00, Actions: []kernel.IRQAction{
			{Addr: 0xffff8ed2be141000, Name: "acpi", NameOK: true},
			{Addr: 0xffff8ed2be141080, Name: "virtio1", NameOK: true},
			{Addr: 0xffff8ed2be141100},
		}},
		{IRQ: 10, Desc: 0xffff8ed2811b0e00},
	}
	var b bytes.Buffer
	writeIRQTable(&b, []int{9, 10, 11, 100}, irqs)
	want := " IRQ   IRQ_DESC/_DATA      IRQACTION      NAME\n" +
		"  9   ffff8ed2811b1e00  ffff8ed2be141000  \"acpi\"\n" +
		"                        ffff8ed2be141080  \"virtio1\"\n" +
		"                        ffff8ed2be141100  \n" +
		" 10   ffff8ed2811b0e00      (unused)      \n" +
		" 11       (unused)          (unused)      \n" +
		" 100      (unused)          (unused)      \n"
	if b.String() != want {
		t.Errorf("shared IRQ line:\n%s", lineDiff(b.String(), want))
	}
}

// TestRunqQueuedLines: queued real-time tasks (none of the lab's dumps
// has one) print with their queue's index, CFS tasks with their prio,
// both five columns in (task.c dump_RT_prio_array, dump_task_runq_entry);
// a queued task crash's task table lacks is left out, and a current task
// it lacks shows by address alone.
func TestRunqQueuedLines(t *testing.T) {
	byTask := map[uint64]*kernel.TaskInfo{
		0xffff8ed2bebc3000: {Task: 0xffff8ed2bebc3000, PID: 490, Comm: "sh"},
		0xffff8ed281253000: {Task: 0xffff8ed281253000, PID: 12, Comm: "migration/1"},
		0xffff8ed281254000: {Task: 0xffff8ed281254000, PID: 123456, Comm: "kworker/1:2"},
	}
	q := kernel.RunQueue{CPU: 1, Addr: 0xffff8ed2be131980, Curr: 0xffff8ed2bebc3000,
		RTArray: 0xffff8ed2be131bc0, CFSRoot: 0xffff8ed2be131a30,
		RT:  []kernel.QueuedTask{{Task: 0xffff8ed281253000, Prio: 0}, {Task: 0xdead000000000000, Prio: 5}},
		CFS: []kernel.QueuedTask{{Task: 0xffff8ed281254000, Prio: 100}},
	}
	var b bytes.Buffer
	writeRunQueue(&b, q, byTask)
	q.Curr, q.RT, q.CFS = 0xffff8ed2bebc4000, nil, nil
	writeRunQueue(&b, q, byTask)
	want := "CPU 1 RUNQUEUE: ffff8ed2be131980\n" +
		"  CURRENT: PID: 490    TASK: ffff8ed2bebc3000  COMMAND: \"sh\"\n" +
		"  RT PRIO_ARRAY: ffff8ed2be131bc0\n" +
		"     [  0] PID: 12     TASK: ffff8ed281253000  COMMAND: \"migration/1\"\n" +
		"  CFS RB_ROOT: ffff8ed2be131a30\n" +
		"     [100] PID: 123456  TASK: ffff8ed281254000  COMMAND: \"kworker/1:2\"\n" +
		"CPU 1 RUNQUEUE: ffff8ed2be131980\n" +
		"  CURRENT: ffff8ed2bebc4000\n" +
		"  RT PRIO_ARRAY: ffff8ed2be131bc0\n" +
		"     [no tasks queued]\n" +
		"  CFS RB_ROOT: ffff8ed2be131a30\n" +
		"     [no tasks queued]\n"
	if b.String() != want {
		t.Errorf("queued tasks:\n%s", lineDiff(b.String(), want))
	}
}

// TestIRQErrorsOneLine: what irq could not read (a tree node, an IRQ's
// actions) is one line after the table, naming only the IRQs shown.
func TestIRQErrorsOneLine(t *testing.T) {
	irqs := []kernel.IRQ{
		{IRQ: 3, Err: errors.New("IRQ 3: reading struct irqaction at 0xffff888000900000: page excluded by the dump filter")},
		{IRQ: 4, Err: errors.New("IRQ 4: reading struct irqaction at 0xffff888000900100: page excluded by the dump filter")},
		{IRQ: 5},
	}
	err := irqErrors([]int{3, 5}, irqs, errors.New("sparse_irqs: reading struct maple_node at 0xffff888000a00000: page excluded by the dump filter"))
	want := "incomplete: sparse_irqs: reading struct maple_node at 0xffff888000a00000: page excluded by the dump filter; " +
		"IRQ 3: reading struct irqaction at 0xffff888000900000: page excluded by the dump filter"
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
	if err := irqErrors([]int{5}, irqs, nil); err != nil {
		t.Errorf("no error shown: %v", err)
	}
}

// TestRunqGroupLines: runq -g's group headers (the lab's guests have no
// groups below the root) as crash's print_group_header_fair prints them:
// indented 2+3×depth, the cgroup's name in angle brackets after two
// spaces, "(THROTTLED)" for a throttled queue; tasks indented 5+3×depth.
func TestRunqGroupLines(t *testing.T) {
	prio := int64(120)
	out := []runqGroupJSON{{CPU: 0, RootGroup: 0xffffffff84131ac0, CfsRq: 0xffff8b3ffd235f00,
		Current: &runqTaskJSON{Task: 0xffff8b3ffe7bb080, PID: 534, Command: "sh"},
		Lines: []runqGroupLineJSON{
			{Depth: 1, Group: 0xffff8b3fc2000000, Name: "user.slice", CfsRq: 0xffff8b3fc2001000},
			{Depth: 1, Task: &runqTaskJSON{Task: 0xffff8b3ffe7bb080, PID: 534, Command: "sh", Prio: &prio}, Current: true},
			{Depth: 2, Group: 0xffff8b3fc2002000, CfsRq: 0xffff8b3fc2003000, Throttled: true},
			{Depth: 2},
		}}}
	var b bytes.Buffer
	writeRunqGroups(&b, out, []kernel.RunQueue{{CPU: 0}})
	want := "CPU 0\n" +
		"  CURRENT: PID: 534    TASK: ffff8b3ffe7bb080  COMMAND: \"sh\"\n" +
		"  ROOT_TASK_GROUP: ffffffff84131ac0  CFS_RQ: ffff8b3ffd235f00\n" +
		"     TASK_GROUP: ffff8b3fc2000000  CFS_RQ: ffff8b3fc2001000  <user.slice>\n" +
		"        [120] PID: 534    TASK: ffff8b3ffe7bb080  COMMAND: \"sh\" [CURRENT]\n" +
		"        TASK_GROUP: ffff8b3fc2002000  CFS_RQ: ffff8b3fc2003000  (THROTTLED)\n" +
		"           [no tasks queued]\n"
	if b.String() != want {
		t.Errorf("group lines:\n%s", lineDiff(b.String(), want))
	}
}
