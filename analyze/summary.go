package analyze

import (
	"fmt"
	"io"
	"regexp"
	"strings"

	"salvage/kernel"
)

func summaryCommand() *Command {
	return &Command{
		Name:    "summary",
		Summary: "what crashed, where, and what the kernel said: the first things to know",
		Help: `Prints in a few lines what an engineer first wants from a dump: the kernel
and when it died, the panic or oops message, the task and CPU that
crashed and the stack where it did (from the interrupted context of an
oops, past the kdump path), the taint and the modules that caused it,
hung or locked-up tasks the log reports (with where each is stuck), and
the last kernel messages before the panic. salvage's own: crash has no
such command. "salvage analyze --summary DUMP" prints it and exits.

Examples:
  summary
  summary --json
`,
		Run: runSummary,
	}
}

// summaryJSON is summary's --json document.
type summaryJSON struct {
	Dump     []string      `json:"dump"`
	Partial  bool          `json:"partial,omitempty"`
	Release  string        `json:"release"`
	Version  string        `json:"version"`
	Machine  string        `json:"machine"`
	Node     string        `json:"nodename"`
	Date     string        `json:"date"`
	Uptime   string        `json:"uptime"`
	Panic    string        `json:"panic,omitempty"`
	Cause    string        `json:"cause,omitempty"` // the log's BUG:/fault line before an oops
	Task     *summaryTask  `json:"task,omitempty"`
	Tainted  string        `json:"tainted,omitempty"`
	Modules  []string      `json:"tainting_modules,omitempty"`
	Warnings []string      `json:"warnings,omitempty"` // hung, lockup, OOM lines of the log
	Blocked  []summaryTask `json:"blocked,omitempty"`  // tasks in D state
	LastLog  []string      `json:"last_messages"`
	Problems []string      `json:"problems,omitempty"` // what could not be read
}

type summaryTask struct {
	PID   int64    `json:"pid"`
	Comm  string   `json:"command"`
	Task  string   `json:"task"`
	CPU   int      `json:"cpu"`
	State string   `json:"state"`
	Stack []string `json:"stack,omitempty"` // innermost first
}

// crashPath are the functions of the way into kdump: a stack shown from
// the panic task starts after them.
var crashPath = map[string]bool{
	"machine_kexec": true, "__crash_kexec": true, "crash_kexec": true, "panic": true,
	"oops_end": true, "die": true, "die_addr": true, "vpanic": true,
	"crash_nmi_callback": true, "nmi_handle": true, "default_do_nmi": true, "exc_nmi": true,
}

// warningLine recognises log lines that say a task hung, a CPU locked
// up, RCU stalled or the OOM killer ran.
var warningLine = regexp.MustCompile(`blocked for more than|soft lockup|hard LOCKUP|self-detected stall|detected stalls|Out of memory: Killed process|BUG: workqueue lockup`)

// waitFunctions are where every sleeping task is: the frame that says
// why one is stuck is the first after them.
var waitFunctions = regexp.MustCompile(`^(__schedule|schedule|schedule_timeout|schedule_preempt_disabled|io_schedule|io_schedule_timeout|__wait_for_common|wait_for_completion.*|do_wait|__mutex_lock.*|rwsem_down_.*|__down.*|schedule_hrtimeout_range_clock|do_nanosleep|hrtimer_nanosleep)$`)

const summaryLastMessages = 15

// causeLine recognises the line that says what went wrong before an
// oops's "Oops:" line: the kernel's report of the fault or BUG.
var causeLine = regexp.MustCompile(`^(BUG: |kernel BUG at |general protection fault|divide error|invalid opcode|Unable to handle kernel|stack segment|double fault|WARNING: CPU)`)

func runSummary(ctx *Context) error {
	k, err := ctx.Session.Kernel()
	if err != nil {
		return err
	}
	j := summaryJSON{LastLog: []string{}}
	problem := func(what string, err error) { j.Problems = append(j.Problems, fmt.Sprintf("%s: %v", what, err)) }
	if s, err := gatherSys(ctx, k); err == nil {
		j.Dump, j.Partial = s.DumpFiles, s.Partial
		j.Release, j.Version, j.Machine, j.Node = s.Release, s.Version, s.Machine, s.Nodename
		j.Date, j.Uptime, j.Panic = s.DateText, s.Uptime, s.Panic
	} else {
		problem("system data", err)
	}
	if mask, err := k.TaintedMask(); err == nil && mask != 0 {
		flags, _ := k.TaintFlags(mask)
		j.Tainted = fmt.Sprintf("%#x %s", mask, flags)
		if mods, err := k.Modules(); err == nil {
			for _, m := range mods {
				if t := m.TaintString(); t != "" {
					j.Modules = append(j.Modules, fmt.Sprintf("%s(%s)", m.Name, t))
				}
			}
		}
	}
	tasks, err := k.TaskTable()
	if err != nil {
		problem("tasks", err)
	}
	if cur, err := ctx.Session.CurrentTask(); err == nil {
		st := summaryTaskOf(k, &cur, true)
		j.Task = &st
	} else {
		problem("panic task", err)
	}
	for i := range tasks {
		if kernel.StateCode(tasks[i].State) == "UN" {
			j.Blocked = append(j.Blocked, summaryTaskOf(k, &tasks[i], false))
		}
	}
	recs, err := k.Log()
	if err != nil {
		problem("log", err)
	}
	end := len(recs)
	for i, r := range recs {
		if j.Panic != "" && strings.Contains(r.Text, j.Panic) {
			end = i + 1
			break
		}
	}
	for i := end - 1; i >= max(0, end-summaryLastMessages*2); i-- {
		if l := strings.TrimSpace(recs[i].Text); causeLine.MatchString(l) {
			j.Cause = l
			break
		}
	}
	for _, r := range recs[:end] {
		if warningLine.MatchString(r.Text) {
			j.Warnings = append(j.Warnings, strings.TrimSpace(r.Text))
		}
	}
	for _, r := range recs[max(0, end-summaryLastMessages):end] {
		j.LastLog = append(j.LastLog, fmt.Sprintf("[%12s] %s", logSeconds(r.TimeNS), strings.TrimRight(r.Text, "\n")))
	}
	if ctx.JSON {
		return writeJSON(ctx, j)
	}
	writeSummary(ctx.Out, &j)
	return nil
}

// summaryTaskOf describes a task with its stack: for the crashing task,
// from the context an exception interrupted, or past the kdump path;
// for a blocked one, from where it waits.
func summaryTaskOf(k *kernel.Kernel, t *kernel.TaskInfo, crashed bool) summaryTask {
	st := summaryTask{PID: t.PID, Comm: t.Comm, Task: fmt.Sprintf("%x", t.Task), CPU: t.CPU, State: kernel.StateCode(t.State)}
	v, err := k.ObjectOf(t.Task, "struct task_struct")
	if err != nil {
		return st
	}
	bt, err := k.Backtrace(v)
	if err != nil || bt == nil {
		return st
	}
	frames := bt.Frames
	from := 0
	if crashed {
		for i, f := range frames {
			if f.Exception != nil && !f.Exception.User && i+1 < len(frames) {
				from = i + 1
			}
		}
		for from == 0 && len(frames) > 0 && crashPath[frames[0].Symbol] {
			frames = frames[1:]
		}
	} else {
		for from < len(frames)-1 && waitFunctions.MatchString(frames[from].Symbol) {
			from++
		}
	}
	for _, f := range frames[from:] {
		if f.Stale {
			continue // not a frame: a word crash's bt takes for one
		}
		name := f.Symbol
		if name == "" {
			name = fmt.Sprintf("%#x", f.PC)
		} else if f.Exact && f.Offset != 0 {
			name = fmt.Sprintf("%s+%d", name, f.Offset)
		}
		if f.Module != "" {
			name += " [" + f.Module + "]"
		}
		st.Stack = append(st.Stack, name)
	}
	return st
}

func writeSummary(w io.Writer, j *summaryJSON) {
	partial := ""
	if j.Partial {
		partial = "  [PARTIAL DUMP]"
	}
	fmt.Fprintf(w, "     DUMP: %s%s\n", strings.Join(j.Dump, " "), partial)
	fmt.Fprintf(w, "   KERNEL: %s %s (%s), node %s\n", j.Release, j.Version, j.Machine, j.Node)
	fmt.Fprintf(w, "     DATE: %s, up %s\n", j.Date, j.Uptime)
	if j.Panic != "" {
		fmt.Fprintf(w, "    PANIC: %q\n", j.Panic)
		if j.Cause != "" && j.Cause != j.Panic {
			fmt.Fprintf(w, "    CAUSE: %s\n", j.Cause)
		}
	} else {
		fmt.Fprintln(w, "    PANIC: none in the log (a dump of a running system?)")
	}
	if t := j.Task; t != nil {
		fmt.Fprintf(w, "     TASK: PID %d %q on CPU %d (task %s, %s)\n", t.PID, t.Comm, t.CPU, t.Task, t.State)
		if len(t.Stack) > 0 {
			fmt.Fprintf(w, "    STACK: %s\n", strings.Join(t.Stack, " < "))
		}
	}
	if j.Tainted != "" {
		fmt.Fprintf(w, "  TAINTED: %s", j.Tainted)
		if len(j.Modules) > 0 {
			fmt.Fprintf(w, " by %s", strings.Join(j.Modules, " "))
		}
		fmt.Fprintln(w)
	}
	for _, l := range j.Warnings {
		fmt.Fprintf(w, "  WARNING: %s\n", l)
	}
	if n := len(j.Blocked); n > 0 {
		fmt.Fprintf(w, "  BLOCKED: %d task(s) in uninterruptible sleep (D):\n", n)
		for i, t := range j.Blocked {
			if i == 10 {
				fmt.Fprintf(w, "           … and %d more (foreach UN bt shows them all)\n", n-10)
				break
			}
			where := ""
			if len(t.Stack) > 0 {
				where = " in " + strings.Join(t.Stack[:min(4, len(t.Stack))], " < ")
			}
			fmt.Fprintf(w, "           PID %d %q%s\n", t.PID, t.Comm, where)
		}
	}
	for _, p := range j.Problems {
		fmt.Fprintf(w, "  UNREAD: %s\n", p)
	}
	fmt.Fprintf(w, "\nLast kernel messages:\n")
	for _, l := range j.LastLog {
		fmt.Fprintf(w, "  %s\n", l)
	}
}
