package analyze

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"salvage/kernel"
)

func init() { register(runqCommand) }

func runqCommand() *Command {
	return &Command{
		Name:    "runq",
		Summary: "show each CPU's run queue",
		Usage:   "[-t] [-T] [-m] [-d] [-g] [-c CPUS]",
		Help: `Shows each CPU's run queue as crash's runq does: the struct rq, the task
running on the CPU, the real-time priority array with its queued tasks
(by priority, in brackets) and the fair class's red-black tree with its
queued tasks (the task's prio in brackets); the tasks of task groups'
queues are listed in their place. "[no tasks queued]" says a queue is
empty.

-t shows each CPU's run queue clock (rq.clock) and when its current task
last began to run (sched_info.last_arrival), in nanoseconds; -m how long
the current task has been running; -T how far each CPU's clock lags the
latest one. -d lists, by CPU, every task the kernel marks queued
(task_struct.on_rq), from the task table rather than the queues. -g
shows the fair class by task group: the root group's queue, each group's
queue (its cgroup's name in angle brackets) nested in its place, and the
CPU's running task marked [CURRENT].

Examples:
  runq
  runq -c 1
  runq -m
  runq --json
`,
		Options: []Option{
			{Name: "t", Help: "show the run queue clocks and the current tasks' last arrival"},
			{Name: "T", Help: "show each CPU's lag behind the latest run queue clock"},
			{Name: "m", Help: "show how long each current task has been running"},
			{Name: "d", Help: "show the tasks marked queued (on_rq), by CPU"},
			{Name: "g", Help: "show the fair class's queues by task group"},
			{Name: "c", Arg: "CPUS", Help: `show the given CPUs only: "1", "0,2-3", "all"`},
		},
		Run: runRunq,
	}
}

// runqJSON is one CPU's run queue as runq --json shows it.
type runqJSON struct {
	CPU     int            `json:"cpu"`
	RunQ    uint64         `json:"runqueue"`
	Current *runqTaskJSON  `json:"current"`
	RTArray uint64         `json:"rt_prio_array"`
	RT      []runqTaskJSON `json:"rt"`
	CFSRoot uint64         `json:"cfs_rb_root"`
	CFS     []runqTaskJSON `json:"cfs"`
	Error   string         `json:"error,omitempty"`
}

// runqTaskJSON is a task of a run queue.
type runqTaskJSON struct {
	Task    uint64 `json:"task"`
	PID     int64  `json:"pid"`
	Command string `json:"command"`
	Prio    *int64 `json:"prio,omitempty"`
}

func runRunq(ctx *Context) error {
	k, err := ctx.Session.Kernel()
	if err != nil {
		return err
	}
	qs, err := k.RunQueues()
	if err != nil {
		return err
	}
	all := qs
	if spec, ok := ctx.Opts.Value("c"); ok {
		cpus, err := parseCPUs(spec, len(qs))
		if err != nil {
			return fmt.Errorf("invalid cpu specification: %s", spec) // crash's words
		}
		sel := make([]kernel.RunQueue, 0, len(cpus))
		for _, c := range cpus {
			sel = append(sel, qs[c])
		}
		qs = sel
	}
	// crash names the queued tasks from its task table, and leaves out
	// those it lacks; without a table every queue would look empty.
	tasks, terr := k.TaskTable()
	if len(tasks) == 0 && terr != nil {
		return fmt.Errorf("runq: no task table: %w", terr)
	}
	byTask := make(map[uint64]*kernel.TaskInfo, len(tasks))
	for i := range tasks {
		byTask[tasks[i].Task] = &tasks[i]
	}
	switch {
	case ctx.Opts.Has("t"), ctx.Opts.Has("m"):
		return runqClocks(ctx, k, qs, len(all), byTask)
	case ctx.Opts.Has("T"):
		// crash's -T shows every CPU, whatever -c says
		return runqClocks(ctx, k, all, len(all), byTask)
	case ctx.Opts.Has("d"):
		return runqOnRQ(ctx, k, qs, tasks)
	case ctx.Opts.Has("g"):
		return runqGroups(ctx, k, qs, byTask)
	}
	if ctx.JSON {
		out := []runqJSON{}
		for _, q := range qs {
			j := runqJSON{CPU: q.CPU, RunQ: q.Addr, RTArray: q.RTArray, CFSRoot: q.CFSRoot, RT: []runqTaskJSON{}, CFS: []runqTaskJSON{}}
			if q.Curr != 0 {
				c := runqTaskJ(byTask, q.Curr, nil)
				j.Current = &c
			}
			for _, t := range q.RT {
				j.RT = append(j.RT, runqTaskJ(byTask, t.Task, &t.Prio))
			}
			for _, t := range q.CFS {
				j.CFS = append(j.CFS, runqTaskJ(byTask, t.Task, &t.Prio))
			}
			if q.Err != nil {
				j.Error = q.Err.Error()
			}
			out = append(out, j)
		}
		return writeJSON(ctx, out)
	}
	var failed []string
	for i, q := range qs {
		if i > 0 {
			fmt.Fprintln(ctx.Out)
		}
		writeRunQueue(ctx.Out, q, byTask)
		if q.Err != nil {
			failed = append(failed, q.Err.Error())
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("runq: %s", strings.Join(failed, "; "))
	}
	return nil
}

// runqTaskJ is a queued task for --json; PID and command come from the
// task table (a task missing from it shows PID -1).
func runqTaskJ(byTask map[uint64]*kernel.TaskInfo, task uint64, prio *int64) runqTaskJSON {
	j := runqTaskJSON{Task: task, PID: -1}
	if prio != nil {
		p := *prio
		j.Prio = &p
	}
	if t, ok := byTask[task]; ok {
		j.PID, j.Command = t.PID, t.Comm
	}
	return j
}

// writeRunQueue prints one CPU's queue as crash's dump_CFS_runqueues
// does (task.c): a task crash's task table lacks is skipped in the
// queues, and shown by address alone as CURRENT.
func writeRunQueue(w io.Writer, q kernel.RunQueue, byTask map[uint64]*kernel.TaskInfo) {
	fmt.Fprintf(w, "CPU %d RUNQUEUE: %x\n", q.CPU, q.Addr)
	fmt.Fprintf(w, "  CURRENT: ")
	if t, ok := byTask[q.Curr]; ok {
		fmt.Fprintf(w, "PID: %-5d  TASK: %x  COMMAND: \"%s\"\n", t.PID, t.Task, t.Comm)
	} else {
		fmt.Fprintf(w, "%x\n", q.Curr)
	}
	fmt.Fprintf(w, "  RT PRIO_ARRAY: %x\n", q.RTArray)
	writeQueued(w, q.RT, byTask)
	fmt.Fprintf(w, "  CFS RB_ROOT: %x\n", q.CFSRoot)
	writeQueued(w, q.CFS, byTask)
}

// writeQueued prints a queue's tasks, five columns in: "[PRIO] PID: …".
func writeQueued(w io.Writer, ts []kernel.QueuedTask, byTask map[uint64]*kernel.TaskInfo) {
	n := 0
	for _, qt := range ts {
		t, ok := byTask[qt.Task]
		if !ok {
			continue
		}
		fmt.Fprintf(w, "     [%3d] PID: %-5d  TASK: %x  COMMAND: \"%s\"\n", qt.Prio, t.PID, t.Task, t.Comm)
		n++
	}
	if n == 0 {
		fmt.Fprintf(w, "     [no tasks queued]\n")
	}
}

// runqClockJSON is one CPU's clocks as runq -t, -T or -m --json show them.
type runqClockJSON struct {
	CPU   int    `json:"cpu"`
	Clock uint64 `json:"clock_ns"` // rq.clock
	// LagNS is how far the clock is behind the latest CPU's.
	LagNS   uint64        `json:"lag_ns"`
	Current *runqTaskJSON `json:"current,omitempty"`
	// LastArrival is the current task's sched_info.last_arrival;
	// RunningNS the clock's lead on it (0 when behind).
	LastArrival uint64 `json:"last_arrival_ns"`
	RunningNS   uint64 `json:"running_ns"`
}

// runqClocks prints what -t, -T and -m show, as crash's
// dump_on_rq_timestamp, dump_on_rq_lag and dump_on_rq_milliseconds do
// (task.c); crash gives precedence to -t, then -T, then -m.
func runqClocks(ctx *Context, k *kernel.Kernel, qs []kernel.RunQueue, ncpus int, byTask map[uint64]*kernel.TaskInfo) error {
	if !k.HasLastRun() {
		return fmt.Errorf("runq: tasks record no last arrival (sched_info.last_arrival, CONFIG_SCHED_INFO)")
	}
	clocks := make([]uint64, len(qs))
	var latest uint64
	for i, q := range qs {
		c, err := k.RunQueueClock(q.CPU)
		if err != nil {
			return fmt.Errorf("runq: CPU %d rq.clock: %w", q.CPU, err)
		}
		clocks[i] = c
		latest = max(latest, c)
	}
	mode := "m"
	switch {
	case ctx.Opts.Has("t"):
		mode = "t"
	case ctx.Opts.Has("T"):
		mode = "T"
	}
	if ctx.JSON {
		out := []runqClockJSON{}
		for i, q := range qs {
			j := runqClockJSON{CPU: q.CPU, Clock: clocks[i], LagNS: latest - clocks[i]}
			if t, ok := byTask[q.Curr]; ok {
				c := runqTaskJ(byTask, q.Curr, nil)
				j.Current = &c
				j.LastArrival = t.LastRun
				if clocks[i] > t.LastRun {
					j.RunningNS = clocks[i] - t.LastRun
				}
			}
			out = append(out, j)
		}
		return writeJSON(ctx, out)
	}
	w := ctx.Out
	switch mode {
	case "t":
		for i, q := range qs {
			ts := strconv.FormatUint(clocks[i], 10)
			pad := ""
			if q.CPU < 10 {
				pad = " "
			}
			fmt.Fprintf(w, "%sCPU %d: %s\n", pad, q.CPU, ts)
			t, ok := byTask[q.Curr]
			if !ok {
				fmt.Fprintln(w)
				continue
			}
			indent := 9
			switch {
			case q.CPU < 100:
				indent = 8
			case q.CPU < 1000:
				indent = 9
			}
			fmt.Fprintf(w, "%s%0*d  PID: %-5d  TASK: %x  COMMAND: \"%s\"\n", strings.Repeat(" ", indent), len(ts), t.LastRun, t.PID, t.Task, t.Comm)
		}
	case "T":
		// latest clock first
		order := make([]int, len(clocks))
		for i := range order {
			order[i] = i
		}
		sort.SliceStable(order, func(a, b int) bool { return clocks[order[a]] > clocks[order[b]] })
		for _, i := range order {
			pad := 2 + digits(ncpus) - digits(qs[i].CPU)
			fmt.Fprintf(w, "%sCPU %d: %.2f secs\n", strings.Repeat(" ", pad), qs[i].CPU, float64(latest-clocks[i])/1e9)
		}
	case "m":
		maxIndent := 4
		switch {
		case ncpus < 10:
			maxIndent = 1
		case ncpus < 100:
			maxIndent = 2
		case ncpus < 1000:
			maxIndent = 3
		}
		// crash pads the days to the width of the first CPU's clock's.
		maxDays := 0
		for i, q := range qs {
			if maxDays == 0 {
				maxDays = daysWidth(msecs(clocks[i]))
			}
			indent := maxIndent
			switch {
			case q.CPU < 10:
			case q.CPU < 100:
				indent--
			case q.CPU < 1000:
				indent -= 2
			default:
				indent -= 4
			}
			sp := strings.Repeat(" ", max(indent, 0))
			t, ok := byTask[q.Curr]
			if !ok {
				fmt.Fprintf(w, "%sCPU %d: [unknown]\n", sp, q.CPU)
				continue
			}
			var d uint64
			if clocks[i] > t.LastRun {
				d = clocks[i] - t.LastRun
			}
			s := msecs(d)
			fmt.Fprintf(w, "%sCPU %d: [%s%s]  PID: %-5d  TASK: %x  COMMAND: \"%s\"\n", sp, q.CPU,
				strings.Repeat(" ", max(maxDays-daysWidth(s), 0)), s, t.PID, t.Task, t.Comm)
		}
	}
	return nil
}

// digits is crash's __log10ul: the number of decimal digits of x.
func digits(x int) int {
	n := 1
	for ; x > 9; x /= 10 {
		n++
	}
	return n
}

// daysWidth is the width of the days field of a "D HH:MM:SS.mmm" time.
func daysWidth(s string) int {
	if i := strings.IndexByte(s, ' '); i >= 0 {
		return i
	}
	return len(s)
}

// onRQJSON is one CPU's tasks as runq -d --json shows them.
type onRQJSON struct {
	CPU   int            `json:"cpu"`
	Tasks []runqTaskJSON `json:"tasks"`
}

// runqOnRQ prints every task of the task table whose on_rq is set, under
// its CPU, as crash's dump_on_rq_tasks does (task.c): in task-table
// order, a blank line before every CPU but CPU 0.
func runqOnRQ(ctx *Context, k *kernel.Kernel, qs []kernel.RunQueue, tasks []kernel.TaskInfo) error {
	byCPU := map[int][]runqTaskJSON{}
	var failed []string
	for _, t := range tasks {
		v, err := k.ObjectOf(t.Task, "struct task_struct")
		if err == nil {
			v, err = v.Member("on_rq")
		}
		var on int64
		if err == nil {
			on, err = v.Int()
		}
		if err != nil {
			failed = append(failed, fmt.Sprintf("PID %d: %v", t.PID, err))
			continue
		}
		if on != 0 {
			p := t.Prio
			byCPU[t.CPU] = append(byCPU[t.CPU], runqTaskJSON{Task: t.Task, PID: t.PID, Command: t.Comm, Prio: &p})
		}
	}
	if ctx.JSON {
		out := []onRQJSON{}
		for _, q := range qs {
			out = append(out, onRQJSON{CPU: q.CPU, Tasks: append([]runqTaskJSON{}, byCPU[q.CPU]...)})
		}
		return writeJSON(ctx, out)
	}
	for _, q := range qs {
		if q.CPU != 0 {
			fmt.Fprintln(ctx.Out)
		}
		fmt.Fprintf(ctx.Out, "CPU %d\n", q.CPU)
		for _, t := range byCPU[q.CPU] {
			fmt.Fprintf(ctx.Out, "     [%3d] PID: %-5d  TASK: %x  COMMAND: \"%s\"\n", *t.Prio, t.PID, t.Task, t.Command)
		}
		if len(byCPU[q.CPU]) == 0 {
			fmt.Fprintf(ctx.Out, "     [no tasks queued]\n")
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("runq: on_rq unreadable: %s", strings.Join(failed, "; "))
	}
	return nil
}

// runqGroupJSON is one CPU's fair class by task group, as runq -g --json
// shows it.
type runqGroupJSON struct {
	CPU       int                 `json:"cpu"`
	Current   *runqTaskJSON       `json:"current"`
	RootGroup uint64              `json:"root_task_group"`
	CfsRq     uint64              `json:"cfs_rq"`
	Lines     []runqGroupLineJSON `json:"lines"`
	Error     string              `json:"error,omitempty"`
}

// runqGroupLineJSON is a group's header, a task or an empty queue.
type runqGroupLineJSON struct {
	Depth     int           `json:"depth"`
	Group     uint64        `json:"task_group,omitempty"`
	Name      string        `json:"name,omitempty"`
	CfsRq     uint64        `json:"cfs_rq,omitempty"`
	Throttled bool          `json:"throttled,omitempty"`
	Task      *runqTaskJSON `json:"task,omitempty"`
	Current   bool          `json:"current,omitempty"`
}

// runqGroups prints crash's runq -g (task.c dump_tasks_by_task_group) for
// kernels without RT group scheduling: per CPU, the running task, the
// root group's cfs_rq, then the groups' queues nested three columns a
// level. A queued task crash's task table lacks is left out.
func runqGroups(ctx *Context, k *kernel.Kernel, qs []kernel.RunQueue, byTask map[uint64]*kernel.TaskInfo) error {
	groups, err := k.TaskGroups()
	if len(groups) == 0 {
		return err
	}
	if g, gerr := k.ObjectOf(groups[0].Addr, "struct task_group"); gerr == nil {
		if _, rerr := g.Member("rt_rq"); rerr == nil {
			return fmt.Errorf("runq -g: RT group scheduling (task_group.rt_rq, CONFIG_RT_GROUP_SCHED) is not supported")
		}
	}
	var failed []string
	if err != nil {
		failed = append(failed, err.Error())
	}
	var out []runqGroupJSON
	for _, q := range qs {
		j := runqGroupJSON{CPU: q.CPU, RootGroup: groups[0].Addr, Lines: []runqGroupLineJSON{}}
		if _, ok := byTask[q.Curr]; ok {
			c := runqTaskJ(byTask, q.Curr, nil)
			j.Current = &c
		}
		var lines []kernel.GroupLine
		var lerr error
		j.CfsRq, lines, lerr = k.CFSGroupLines(groups, q.CPU, q.Curr)
		for _, l := range lines {
			jl := runqGroupLineJSON{Depth: l.Depth, Current: l.Current}
			switch {
			case l.Group >= 0:
				jl.Group, jl.Name, jl.CfsRq, jl.Throttled = groups[l.Group].Addr, groups[l.Group].Name, l.CfsRq, l.Throttled
			case l.Task != 0:
				if _, ok := byTask[l.Task]; !ok {
					continue
				}
				p := l.Prio
				t := runqTaskJ(byTask, l.Task, &p)
				jl.Task = &t
			}
			j.Lines = append(j.Lines, jl)
		}
		if lerr != nil {
			j.Error = lerr.Error()
			failed = append(failed, fmt.Sprintf("CPU %d: %v", q.CPU, lerr))
		}
		out = append(out, j)
	}
	if ctx.JSON {
		return writeJSON(ctx, out)
	}
	writeRunqGroups(ctx.Out, out, qs)
	if len(failed) > 0 {
		return fmt.Errorf("runq -g: %s", strings.Join(failed, "; "))
	}
	return nil
}

// writeRunqGroups prints runq -g's text: header and task lines indented
// three columns a level (task.c print_group_header_fair,
// dump_task_runq_entry), a header's name after two spaces.
func writeRunqGroups(w io.Writer, out []runqGroupJSON, qs []kernel.RunQueue) {
	for i, j := range out {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "CPU %d\n  CURRENT: ", j.CPU)
		if j.Current != nil {
			fmt.Fprintf(w, "PID: %-5d  TASK: %x  COMMAND: \"%s\"\n", j.Current.PID, j.Current.Task, j.Current.Command)
		} else {
			fmt.Fprintf(w, "%x\n", qs[i].Curr)
		}
		fmt.Fprintf(w, "  ROOT_TASK_GROUP: %x  CFS_RQ: %x\n", j.RootGroup, j.CfsRq)
		for _, l := range j.Lines {
			switch {
			case l.Group != 0:
				fmt.Fprintf(w, "%sTASK_GROUP: %x  CFS_RQ: %x ", strings.Repeat(" ", 2+3*l.Depth), l.Group, l.CfsRq)
				if l.Name != "" {
					fmt.Fprintf(w, " <%s>", l.Name)
				}
				if l.Throttled {
					fmt.Fprint(w, " (THROTTLED)")
				}
				fmt.Fprintln(w)
			case l.Task != nil:
				fmt.Fprintf(w, "%s[%3d] PID: %-5d  TASK: %x  COMMAND: \"%s\"", strings.Repeat(" ", 5+3*l.Depth), *l.Task.Prio, l.Task.PID, l.Task.Task, l.Task.Command)
				if l.Current {
					fmt.Fprint(w, " [CURRENT]")
				}
				fmt.Fprintln(w)
			default:
				fmt.Fprintf(w, "%s[no tasks queued]\n", strings.Repeat(" ", 5+3*l.Depth))
			}
		}
	}
}
