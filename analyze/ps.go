package analyze

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"salvage/kernel"
)

func psCommand() *Command {
	return &Command{
		Name:    "ps",
		Summary: "list the tasks",
		Usage:   "[-k|-u] [-G] [-H] [-s] [-y POLICY] [-t|-p|-c|-a|-g|-l|-m [-C CPUS]|-r|-S|-A|-Y] [PID | TASK | COMMAND | 'REGEX'] ...",
		Help: `Lists the tasks as crash's ps does: PID, parent PID, CPU, task_struct
address, state, share of physical memory, virtual size and resident size
(KiB) and command, ">" marking the task each CPU was running and kernel
threads' commands in brackets. States are crash's: RU running, IN
interruptible, UN uninterruptible, ID idle, ZO zombie, ST stopped, TR
traced, DE dead, SW swapping, PA parked, WA waking, NE new.

Operands select tasks: a decimal PID, a hexadecimal task_struct address,
a command name, or a regular expression matched against command names
(crash's 'REGEX'; as the session removes quotes, any operand holding one
of ^$*+?()[]{}| is taken as one: ps 'ksoftirq.*').

  -k  kernel threads only          -u  user tasks only
  -G  thread group leaders only
  -t  run time, start time, user and system time of each task (sorted by
      start time when listing all)
  -p  each task's chain of parents, from PID 0 down
  -c  each task's children
  -a  each task's command-line arguments and environment, read from its
      user stack through its own page tables
  -g  each thread group: its leader, then its other threads
  -l  each task's last-run timestamp (sched_info.last_arrival, ns),
      most recent first
  -m  the time since each task last ran, as days hh:mm:ss.ms of its
      CPU's run queue clock, most recent first
  -C CPUS  with -l or -m, the tasks of each of these CPUs (a list such
      as 0,2-3, or "all") under a "CPU: N" line; -k and -u apply (crash
      8.0.6 crashes on -C with -k or -u)
  -S  the number of tasks in each state
  -A  only the task each CPU was running
  -H  no header line
  -r  each task's resource limits, current and maximum
  -s  the kernel stack pointer each task saved when it last left its
      CPU (thread.sp) instead of its task address; "--" for running tasks
  -Y  each task's scheduling policy and priority (crash 9's -Y; crash
      8.0.6, the lab's reference, lacks it)
  -y POLICY[,POLICY...]  only tasks of these policies: NORMAL, FIFO, RR,
      BATCH, ISO, IDLE, DEADLINE, or their numbers

--json prints the selected tasks as objects (pid, ppid, cpu, task, state,
pct_mem, vsz_kib, rss_kib, comm, kernel_thread, active; with -t the
times).

Examples:
  ps
  ps -k
  ps 1
  ps bash
  ps -p 414
  ps -t 1
  ps -a 1
`,
		Options: []Option{
			{Name: "k", Help: "kernel threads only"},
			{Name: "u", Help: "user tasks only"},
			{Name: "G", Help: "thread group leaders only"},
			{Name: "t", Help: "run time, start time, user and system time"},
			{Name: "p", Help: "parental hierarchy"},
			{Name: "c", Help: "children"},
			{Name: "a", Help: "arguments and environment"},
			{Name: "g", Help: "thread groups: each leader and its threads"},
			{Name: "l", Help: "last-run timestamps, most recent first"},
			{Name: "m", Help: "time since each task last ran, most recent first"},
			{Name: "S", Help: "number of tasks in each state"},
			{Name: "A", Help: "only the task each CPU was running"},
			{Name: "H", Help: "no header line"},
			{Name: "Y", Help: "scheduling policy and priority"},
			{Name: "r", Help: "resource limits"},
			{Name: "s", Help: "the saved kernel stack pointer instead of the task address"},
			{Name: "C", Arg: "CPUS", Help: "with -l or -m: the tasks of these CPUs, by CPU (1,3 or 0-2 or all)"},
			{Name: "y", Arg: "POLICY", Help: "only tasks of these scheduling policies (comma-separated names or numbers)"},
		},
		MaxArgs: -1,
		Run:     runPS,
	}
}

// psTaskJSON is one task of ps --json.
type psTaskJSON struct {
	PID          int64   `json:"pid"`
	PPID         int64   `json:"ppid"`
	CPU          int     `json:"cpu"`
	Task         string  `json:"task"`
	State        string  `json:"state"`
	PctMem       float64 `json:"pct_mem"`
	VSZKiB       uint64  `json:"vsz_kib"`
	RSSKiB       uint64  `json:"rss_kib"`
	Comm         string  `json:"comm"`
	KernelThread bool    `json:"kernel_thread"`
	Active       bool    `json:"active"`
	// -t
	RunTime   string `json:"run_time,omitempty"`
	StartTime uint64 `json:"start_time_ns,omitempty"`
	UTime     uint64 `json:"utime_ns,omitempty"`
	STime     uint64 `json:"stime_ns,omitempty"`
	// -p: the chain of parents, from PID 0 down to the task.
	Parents []int64 `json:"parents,omitempty"`
	// -c: the children's PIDs.
	Children []int64 `json:"children,omitempty"`
	// -g: the PIDs of the other threads of the group.
	Threads []int64 `json:"threads,omitempty"`
	// -s: the saved kernel stack pointer instead of the task address.
	KStackP string `json:"kstackp,omitempty"`
	// -r: resource limits (RLIM_INFINITY is 18446744073709551615).
	Rlimits []psRlimitJSON `json:"rlimits,omitempty"`
	// -Y: scheduling policy and priority.
	Policy string `json:"policy,omitempty"`
	Prio   int64  `json:"prio,omitempty"`
	// -l, -m: sched_info.last_arrival, nanoseconds of run queue clock.
	LastRun uint64 `json:"last_run_ns,omitempty"`
	// -a
	Args []string `json:"args,omitempty"`
	Env  []string `json:"env,omitempty"`
	// Error says why -a could not read the arguments.
	Error string `json:"error,omitempty"`
}

// psSelector is one operand of ps.
type psSelector struct {
	pid  int64
	task uint64
	comm string
	re   *regexp.Regexp
	kind byte // 'p' pid, 't' task, 'c' command, 'r' regex
}

// psContext is what the ps modes share.
type psContext struct {
	k          *kernel.Kernel
	tasks      []kernel.TaskInfo
	byAddr     map[uint64]int
	totalPages uint64
}

func runPS(ctx *Context) error {
	o := ctx.Opts
	if o.Has("k") && o.Has("u") {
		return usagef("-u and -k are mutually exclusive")
	}
	mode := ""
	for _, m := range []string{"t", "p", "c", "a", "g", "l", "m", "S", "A", "Y", "r"} {
		if o.Has(m) {
			if mode != "" {
				return usagef("-%s and -%s are mutually exclusive", mode, m)
			}
			mode = m
		}
	}
	if mode == "S" {
		if o.Has("k") || o.Has("u") || o.Has("G") {
			return usagef("-S option cannot be used with other options")
		}
		if len(ctx.Args) > 0 {
			return usagef("-S option takes no arguments")
		}
	}
	if o.Has("G") && (mode == "l" || mode == "m") {
		return usagef("-G not supported with -%s option", mode)
	}
	if o.Has("C") {
		if mode != "l" && mode != "m" {
			return usagef("-C option is only applicable with -l and -m")
		}
		if len(ctx.Args) > 0 {
			return usagef("-C option is not applicable with specified tasks")
		}
	}
	var policies uint64
	if v, ok := o.Value("y"); ok {
		p, err := parsePolicies(v)
		if err != nil {
			return err
		}
		policies = p
	}
	k, err := ctx.Session.Kernel()
	if err != nil {
		return err
	}
	if (mode == "l" || mode == "m") && !k.HasLastRun() {
		return errors.New("last-run timestamps do not exist in this kernel")
	}
	tasks, incomplete := k.TaskTable()
	if incomplete != nil && len(tasks) == 0 {
		return incomplete
	}
	pc := &psContext{k: k, tasks: tasks, byAddr: map[uint64]int{}}
	for i := range tasks {
		if _, ok := pc.byAddr[tasks[i].Task]; !ok {
			pc.byAddr[tasks[i].Task] = i
		}
	}
	if pc.totalPages, err = k.TotalPages(); err != nil {
		return fmt.Errorf("total memory for %%MEM: %w", err)
	}
	sels, err := parsePSSelectors(ctx.Args, tasks)
	if err != nil {
		return err
	}
	// crash sorts its task table by last run, most recent first, for -l
	// and -m (sort_context_array_by_last_run), and walks it in that
	// order for listed tasks too.
	order := make([]int, len(tasks))
	for i := range order {
		order[i] = i
	}
	if mode == "l" || mode == "m" {
		sort.SliceStable(order, func(a, b int) bool { return tasks[order[a]].LastRun > tasks[order[b]].LastRun })
	}
	// The tasks to show, in table order (each operand in turn for each
	// task, as crash's show_ps loops).
	var picked []int
	seen := map[int]bool{}
	keep := func(i int) bool {
		t := &tasks[i]
		if o.Has("u") && t.KernelThread || o.Has("k") && !t.KernelThread {
			return false
		}
		if policies != 0 && (t.Policy >= 64 || policies&(1<<t.Policy) == 0) {
			return false
		}
		return true
	}
	group := func(i int) (int, bool) {
		// -G: a thread stands for its leader, shown once.
		t := &tasks[i]
		if t.PID != t.TGID {
			if len(sels) == 0 {
				return 0, false
			}
			j := -1
			for n := range tasks {
				if tasks[n].PID == t.TGID {
					j = n
					break
				}
			}
			if j < 0 {
				return 0, false
			}
			i = j
		}
		if seen[i] {
			return 0, false
		}
		seen[i] = true
		return i, true
	}
	add := func(i int) {
		if !keep(i) {
			return
		}
		if mode == "g" && tasks[i].PID != tasks[i].TGID {
			// show_tgid_list: a listed thread stands for its leader.
			for n := range tasks {
				if tasks[n].PID == tasks[i].TGID {
					i = n
					break
				}
			}
		}
		if o.Has("G") {
			var ok bool
			if i, ok = group(i); !ok {
				return
			}
		}
		picked = append(picked, i)
	}
	leaderOnly := o.Has("G") || mode == "g"
	if len(sels) == 0 {
		for _, i := range order {
			if mode == "g" && tasks[i].PID != tasks[i].TGID {
				continue // -g lists each thread group under its leader
			}
			if mode == "A" && !tasks[i].Active {
				continue
			}
			add(i)
		}
	} else {
		for _, i := range order {
			for _, s := range sels {
				if s.match(&tasks[i], leaderOnly) {
					add(i)
				}
			}
		}
	}
	if mode == "t" && len(sels) == 0 {
		sort.SliceStable(picked, func(a, b int) bool {
			return tasks[picked[a]].StartTime < tasks[picked[b]].StartTime
		})
	}
	var hz int
	var upJiffies uint64
	if mode == "t" {
		hz = k.HZ()
		if upJiffies, err = k.UptimeJiffies(hz); err != nil {
			return fmt.Errorf("uptime for RUN TIME: %w", err)
		}
	}
	var res []psTaskJSON
	w := ctx.Out
	if ctx.JSON {
		w = io.Discard
	}
	taskCol := center(16, "TASK", false)
	if o.Has("s") {
		taskCol = center(16, "KSTACKP", true)
	}
	if (mode == "" || mode == "A") && !o.Has("H") {
		fmt.Fprintf(w, "      PID    PPID  CPU %s  ST  %%MEM      VSZ      RSS  COMM\n", taskCol)
	}
	if mode == "Y" && !o.Has("H") {
		fmt.Fprintf(w, "      PID    PPID  CPU %s  POLICY       PRIO  COMM\n", taskCol)
	}
	if mode == "S" {
		return writePSSummary(ctx, w, tasks, picked)
	}
	lastRunWidth := 0
	if mode == "l" && len(order) > 0 {
		lastRunWidth = len(strconv.FormatUint(tasks[order[0]].LastRun, 10))
	}
	if cpuSpec, ok := o.Value("C"); ok {
		return pc.writeByCPU(ctx, w, mode, cpuSpec, picked, lastRunWidth)
	}
	idleShown := false
	for _, i := range picked {
		t := &tasks[i]
		j := pc.row(t)
		if o.Has("s") {
			// crash's task_pointer_string: the saved kernel stack
			// pointer, "--" for a task on a CPU.
			j.KStackP = center(16, "--", true)
			if !t.Active {
				j.KStackP = center(16, fmt.Sprintf("%x", t.KernelSP), true)
			}
		}
		switch mode {
		case "", "A":
			writePSRow(w, j)
		case "Y":
			j.Policy, j.Prio = policyName(t.Policy), t.Prio
			mark := "  "
			if t.Active {
				mark = "> "
			}
			col := fmt.Sprintf("%-16x", t.Task)
			if j.KStackP != "" {
				col = j.KStackP
			}
			fmt.Fprintf(w, "%s%7d %7d %3d  %s  %-12s %4d  %s\n", mark, t.PID, t.PPID, t.CPU, col, j.Policy, t.Prio, bracketComm(t.Comm, t.KernelThread))
		case "l":
			j.LastRun = t.LastRun
			fmt.Fprintf(w, "[%*d] [%s]  ", lastRunWidth, t.LastRun, j.State)
			writeTaskHeader(w, t, 0)
		case "m":
			j.LastRun = t.LastRun
			clock, err := k.RunQueueClock(t.CPU)
			if err != nil {
				return fmt.Errorf("run queue clock of CPU %d: %w", t.CPU, err)
			}
			delta := uint64(0)
			if clock > t.LastRun {
				delta = clock - t.LastRun
			}
			d := msecs(delta)
			if len(sels) > 0 {
				d = padDays(d, clock)
			}
			fmt.Fprintf(w, "[%s] [%s]  ", d, j.State)
			writeTaskHeader(w, t, 0)
		case "g":
			if t.PID == 0 && idleShown {
				continue
			}
			writeTaskHeader(w, t, 0)
			for n := range tasks {
				if n == i || tasks[n].TGID != t.TGID {
					continue
				}
				writeTaskHeader(w, &tasks[n], 2)
				j.Threads = append(j.Threads, tasks[n].PID)
				if tasks[n].PID == 0 {
					idleShown = true
				}
			}
			if len(j.Threads) == 0 {
				fmt.Fprintln(w, "  (no threads)")
			}
			fmt.Fprintln(w)
		case "t":
			writeTaskHeader(w, t, 0)
			rt := runTime(t.StartTime, upJiffies, hz)
			j.RunTime = rt
			j.StartTime, j.UTime, j.STime = t.StartTime, t.UTime, t.STime
			fmt.Fprintf(w, "    RUN TIME: %s\n  START TIME: %d\n       UTIME: %d\n       STIME: %d\n\n", rt, t.StartTime, t.UTime, t.STime)
		case "p":
			chain := pc.parents(i)
			for d, n := range chain {
				writeTaskHeader(w, &tasks[n], d)
				j.Parents = append(j.Parents, tasks[n].PID)
			}
			fmt.Fprintln(w)
		case "c":
			writeTaskHeader(w, t, 0)
			for n := range tasks {
				if tasks[n].Parent == t.Task {
					writeTaskHeader(w, &tasks[n], 2)
					j.Children = append(j.Children, tasks[n].PID)
				}
			}
			if len(j.Children) == 0 {
				fmt.Fprintln(w, "  (no children)")
			}
			fmt.Fprintln(w)
		case "a":
			writeTaskHeader(w, t, 0)
			pc.writeArgs(w, t, &j)
		case "r":
			lims, err := k.TaskRlimits(t.Task)
			if err != nil {
				return err
			}
			writeTaskHeader(w, t, 0)
			writeRlimits(w, lims)
			for n, l := range lims {
				j.Rlimits = append(j.Rlimits, psRlimitJSON{Name: rlimitName(n), Cur: l.Cur, Max: l.Max})
			}
		}
		res = append(res, j)
	}
	if ctx.JSON {
		if res == nil {
			res = []psTaskJSON{}
		}
		if err := writeJSON(ctx, map[string]any{"tasks": res}); err != nil {
			return err
		}
	}
	return incompleteErr(incomplete)
}

// incompleteErr reports a task table that lacks tasks, after what could
// be shown of it.
func incompleteErr(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("the task list is incomplete: %w", err)
}

// parsePSSelectors reads ps's operands as crash's cmd_ps does: a number
// is a PID when a task has it, otherwise a task_struct address; 'x' is a
// regular expression; anything else a command name.
func parsePSSelectors(args []string, tasks []kernel.TaskInfo) ([]psSelector, error) {
	var sels []psSelector
	for _, a := range args {
		switch {
		case len(a) >= 2 && a[0] == '\'' && a[len(a)-1] == '\'', strings.ContainsAny(a, regexMeta):
			// crash takes 'REGEX' in single quotes; the session's word
			// splitter removes quotes, so an operand with a regular
			// expression's special characters is one too.
			pat := a
			if len(a) >= 2 && a[0] == '\'' && a[len(a)-1] == '\'' {
				pat = a[1 : len(a)-1]
			}
			re, err := regexp.Compile(pat)
			if err != nil {
				return nil, fmt.Errorf("invalid regular expression: %s", pat)
			}
			sels = append(sels, psSelector{re: re, kind: 'r'})
		case isNumberish(a):
			if isDecimal(a) {
				pid, err := strconv.ParseInt(a, 10, 64)
				if err == nil && pidExists(tasks, pid) {
					sels = append(sels, psSelector{pid: pid, kind: 'p'})
					continue
				}
			}
			addr, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(a), "0x"), 16, 64)
			if err != nil || !taskExists(tasks, addr) {
				return nil, fmt.Errorf("invalid task or pid value: %s", a)
			}
			sels = append(sels, psSelector{task: addr, kind: 't'})
		default:
			c := strings.TrimPrefix(a, `\`)
			if len(c) > 15 { // TASK_COMM_LEN - 1
				c = c[:15]
			}
			sels = append(sels, psSelector{comm: c, kind: 'c'})
		}
	}
	return sels, nil
}

// regexMeta are the characters that make a ps operand a regular
// expression rather than a command name.
const regexMeta = "^$*+?()[]{}|"

// isNumberish is crash's IS_A_NUMBER: decimal digits, or hexadecimal
// with or without 0x.
func isNumberish(s string) bool {
	s = strings.TrimPrefix(strings.ToLower(s), "0x")
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func pidExists(tasks []kernel.TaskInfo, pid int64) bool {
	for i := range tasks {
		if tasks[i].PID == pid {
			return true
		}
	}
	return false
}

func taskExists(tasks []kernel.TaskInfo, addr uint64) bool {
	for i := range tasks {
		if tasks[i].Task == addr {
			return true
		}
	}
	return false
}

func (s psSelector) match(t *kernel.TaskInfo, group bool) bool {
	switch s.kind {
	case 'p':
		return t.PID == s.pid
	case 't':
		return t.Task == s.task
	case 'c':
		return t.Comm == s.comm && (!group || t.PID == t.TGID)
	case 'r':
		return s.re.MatchString(t.Comm) && (!group || t.PID == t.TGID)
	}
	return false
}

// row is t as ps --json and the ps line show it. %MEM is RSS over the
// pages below high_memory (crash's get_task_mem_usage).
func (pc *psContext) row(t *kernel.TaskInfo) psTaskJSON {
	j := psTaskJSON{
		PID: t.PID, PPID: t.PPID, CPU: t.CPU, Task: fmt.Sprintf("%x", t.Task),
		State: kernel.StateCode(t.State), VSZKiB: t.TotalVM * 4, RSSKiB: t.RSS * 4,
		Comm: t.Comm, KernelThread: t.KernelThread, Active: t.Active,
	}
	if pc.totalPages > 0 && !(t.KernelThread && t.RSS == 0) {
		j.PctMem = float64(t.RSS*100) / float64(pc.totalPages)
	}
	return j
}

// psRlimitJSON is one resource limit of ps -r --json.
type psRlimitJSON struct {
	Name string `json:"name"`
	Cur  uint64 `json:"cur"`
	Max  uint64 `json:"max"`
}

// rlimitNames are RLIMIT_CPU … RLIMIT_RTTIME (include/uapi/asm-generic/
// resource.h), as crash's rlim_names spells them.
var rlimitNames = []string{"CPU", "FSIZE", "DATA", "STACK", "CORE", "RSS", "NPROC", "NOFILE",
	"MEMLOCK", "AS", "LOCKS", "SIGPENDING", "MSGQUEUE", "NICE", "RTPRIO", "RTTIME"}

func rlimitName(i int) string {
	if i < len(rlimitNames) {
		return rlimitNames[i]
	}
	return "(unknown)"
}

// writeRlimits prints crash's show_task_rlimit table.
func writeRlimits(w io.Writer, lims []kernel.Rlimit) {
	const w1, w2 = 10, len("(unlimited)") // the longest name, SIGPENDING
	val := func(v uint64) string {
		if v == ^uint64(0) {
			return "(unlimited)"
		}
		return center(w2, strconv.FormatUint(v, 10), false)
	}
	fmt.Fprintf(w, "  %*s   %s   %s\n", w1, "RLIMIT", center(w2, "CURRENT", true), center(w2, "MAXIMUM", true))
	for i, l := range lims {
		fmt.Fprintf(w, "  %*s   %s   %s\n", w1, rlimitName(i), val(l.Cur), val(l.Max))
	}
	fmt.Fprintln(w)
}

// schedPolicies are crash's names of the scheduling policies
// (include/uapi/linux/sched.h: SCHED_NORMAL 0 … SCHED_DEADLINE 6).
var schedPolicies = []string{"NORMAL", "FIFO", "RR", "BATCH", "ISO", "IDLE", "DEADLINE"}

func policyName(p uint64) string {
	if p < uint64(len(schedPolicies)) {
		return schedPolicies[p]
	}
	return "UNKNOWN"
}

// parsePolicies reads -y's comma-separated policies, by name (a prefix
// of the name is enough, as in crash) or number, into a bit mask.
func parsePolicies(spec string) (uint64, error) {
	var mask uint64
	for _, p := range strings.Split(spec, ",") {
		u := strings.ToUpper(strings.TrimSpace(p))
		found := false
		for v, name := range schedPolicies {
			if strings.HasPrefix(u, name) || u == strconv.Itoa(v) || u == fmt.Sprintf("0X%X", v) {
				mask |= 1 << uint(v)
				found = true
				break
			}
		}
		if !found {
			return 0, fmt.Errorf("%s: invalid scheduling policy", p)
		}
	}
	return mask, nil
}

// writePSSummary prints ps -S: how many tasks are in each state, in the
// order the states first appear (crash's show_ps_summary).
func writePSSummary(ctx *Context, w io.Writer, tasks []kernel.TaskInfo, picked []int) error {
	var states []string
	counts := map[string]int{}
	for _, i := range picked {
		st := kernel.StateCode(tasks[i].State)
		if counts[st] == 0 {
			states = append(states, st)
		}
		counts[st]++
	}
	for _, st := range states {
		fmt.Fprintf(w, "  %s: %d\n", st, counts[st])
	}
	if ctx.JSON {
		return writeJSON(ctx, map[string]any{"states": counts})
	}
	return nil
}

// padDays right-aligns the days of a -m time with those of the run
// queue clock, as crash does for tasks listed by name or by CPU.
func padDays(d string, clock uint64) string {
	return strings.Repeat(" ", max(0, strings.IndexByte(msecs(clock), ' ')-strings.IndexByte(d, ' '))) + d
}

// writeByCPU prints ps -l or -m -C: for each selected CPU in turn, a
// "CPU: N" line and the tasks last on it, most recent first (crash's
// show_last_run and show_milliseconds with a CPU mask).
func (pc *psContext) writeByCPU(ctx *Context, w io.Writer, mode, spec string, picked []int, width int) error {
	n, err := pc.k.NrCPUIDs()
	if err != nil {
		return err
	}
	cpus, err := parseCPUs(spec, n)
	if err != nil {
		return err
	}
	online := map[int]bool{}
	for _, t := range pc.tasks {
		if t.PID == 0 {
			online[t.CPU] = true // every online CPU has its idle task
		}
	}
	var res []psTaskJSON
	for i, cpu := range cpus {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "CPU: %d", cpu)
		if !online[cpu] {
			fmt.Fprintln(w, " [OFFLINE]")
			continue
		}
		fmt.Fprintln(w)
		clock, err := pc.k.RunQueueClock(cpu)
		if mode == "m" && err != nil {
			return fmt.Errorf("run queue clock of CPU %d: %w", cpu, err)
		}
		for _, ti := range picked {
			t := &pc.tasks[ti]
			if t.CPU != cpu {
				continue
			}
			j := pc.row(t)
			j.LastRun = t.LastRun
			if mode == "l" {
				fmt.Fprintf(w, "[%*d] [%s]  ", width, t.LastRun, j.State)
			} else {
				delta := uint64(0)
				if clock > t.LastRun {
					delta = clock - t.LastRun
				}
				fmt.Fprintf(w, "[%s] [%s]  ", padDays(msecs(delta), clock), j.State)
			}
			writeTaskHeader(w, t, 0)
			res = append(res, j)
		}
	}
	if ctx.JSON {
		if res == nil {
			res = []psTaskJSON{}
		}
		return writeJSON(ctx, map[string]any{"tasks": res})
	}
	return nil
}

// parseCPUs reads a CPU list as crash's make_cpumask does: "all" (or
// "a"), or comma-separated CPUs and ranges ("0,2-3"), each below n.
func parseCPUs(spec string, n int) ([]int, error) {
	if spec == "a" || spec == "all" {
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out, nil
	}
	set := map[int]bool{}
	for _, part := range strings.Split(spec, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.Atoi(lo)
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || a < 0 || b < a {
			return nil, fmt.Errorf("invalid cpu specification: %s", spec)
		}
		if b >= n {
			return nil, fmt.Errorf("invalid cpu specification: %s (the kernel has %d possible CPUs)", spec, n)
		}
		for c := a; c <= b; c++ {
			set[c] = true
		}
	}
	var out []int
	for c := range set {
		out = append(out, c)
	}
	sort.Ints(out)
	return out, nil
}

// msecs is crash's translate_nanoseconds: "D HH:MM:SS.mmm".
func msecs(ns uint64) string {
	ms := ns / 1e6
	return fmt.Sprintf("%d %02d:%02d:%02d.%03d", ms/86400000, ms/3600000%24, ms/60000%60, ms/1000%60, ms%1000)
}

// writePSRow prints one line of crash's ps (show_ps_data in crash's
// task.c).
func writePSRow(w io.Writer, j psTaskJSON) {
	mark := "  "
	if j.Active {
		mark = "> "
	}
	pad := "  "
	if len(j.State) > 3 {
		pad = " "
	}
	pct := fmt.Sprintf("%.1f", j.PctMem)
	if len(pct) == 3 {
		pct = " " + pct
	}
	col := fmt.Sprintf("%-16s", j.Task)
	if j.KStackP != "" {
		col = j.KStackP
	}
	fmt.Fprintf(w, "%s%7d %7d %3d  %s %3s%s%s %8d %8d  %s\n",
		mark, j.PID, j.PPID, j.CPU, col, j.State, pad, pct, j.VSZKiB, j.RSSKiB, bracketComm(j.Comm, j.KernelThread))
}

func bracketComm(comm string, kthread bool) string {
	if kthread {
		return "[" + comm + "]"
	}
	return comm
}

// writeTaskHeader prints crash's task header line (print_task_header),
// indented by indent spaces.
func writeTaskHeader(w io.Writer, t *kernel.TaskInfo, indent int) {
	fmt.Fprintf(w, "%sPID: %-7d  TASK: %-16x  CPU: %-3d  COMMAND: \"%s\"\n", strings.Repeat(" ", indent), t.PID, t.Task, t.CPU, t.Comm)
}

// parents is the chain of i's ancestors through task_struct.parent, from
// the root (the task that is its own parent: PID 0) down to i.
func (pc *psContext) parents(i int) []int {
	chain := []int{i}
	seen := map[int]bool{i: true}
	for {
		t := &pc.tasks[chain[len(chain)-1]]
		p, ok := pc.byAddr[t.Parent]
		if !ok || t.Parent == t.Task || seen[p] {
			break
		}
		seen[p] = true
		chain = append(chain, p)
	}
	for a, b := 0, len(chain)-1; a < b; a, b = a+1, b-1 {
		chain[a], chain[b] = chain[b], chain[a]
	}
	return chain
}

// runTime is crash's RUN TIME: the jiffies since boot less the task's
// start (start_time in nanoseconds, taken in whole seconds), as
// [D days, ]HH:MM:SS.
func runTime(startNS, upJiffies uint64, hz int) string {
	start := startNS / 1e9 * uint64(hz)
	var j uint64
	if start <= upJiffies {
		j = upJiffies - start
	}
	return formatJiffies(j, hz)
}

// formatJiffies is crash's convert_time.
func formatJiffies(j uint64, hz int) string {
	total := j / uint64(hz)
	days := total / 86400
	total %= 86400
	s := ""
	if days > 0 {
		s = fmt.Sprintf("%d days, ", days)
	}
	return s + fmt.Sprintf("%02d:%02d:%02d", total/3600, total%3600/60, total%60)
}

// writeArgs prints the task's arguments and environment as crash's ps -a
// (show_task_args): the NUL-separated strings between mm->arg_start and
// arg_end, and env_start and env_end, read through the task's page tables.
func (pc *psContext) writeArgs(w io.Writer, t *kernel.TaskInfo, j *psTaskJSON) {
	if t.MM == 0 {
		j.Error = "no user stack"
		fmt.Fprintf(w, "ps: no user stack\n\n")
		return
	}
	args, env, err := pc.k.TaskArgs(t.MM)
	if err != nil && args == nil {
		writeArgsError(w, j, err)
		return
	}
	j.Args, j.Env = splitNUL(args), splitNUL(env)
	fmt.Fprint(w, "ARG: ")
	c := 0
	for _, b := range args {
		if b == 0 {
			if c > 0 {
				fmt.Fprint(w, " ")
			}
			c = 0
		} else {
			w.Write([]byte{b})
			c++
		}
	}
	if err != nil {
		// crash reports the environment's failure after the arguments,
		// on the same line.
		writeArgsError(w, j, err)
		return
	}
	fmt.Fprint(w, "\nENV: ")
	c, d := 0, 0
	for i, b := range env {
		if b == 0 {
			if c > 0 {
				fmt.Fprint(w, "\n")
			}
			c = 0
		} else {
			if c == 0 && i != 0 {
				fmt.Fprint(w, "     ")
			}
			w.Write([]byte{b})
			c++
			d++
		}
	}
	if d > 0 {
		fmt.Fprint(w, "\n")
	} else {
		fmt.Fprint(w, "\n\n")
	}
}

// writeArgsError reports an unreadable argument or environment area as
// crash's read_arg_string does: the user address where reading stopped.
func writeArgsError(w io.Writer, j *psTaskJSON, err error) {
	j.Error = err.Error()
	var ue *kernel.UserReadError
	if errors.As(err, &ue) {
		fmt.Fprintf(w, "ps: cannot access user stack address: %x\n\n", ue.Addr)
		return
	}
	fmt.Fprintf(w, "ps: %v\n\n", err)
}

func splitNUL(b []byte) []string {
	var out []string
	for _, s := range strings.Split(string(b), "\x00") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
