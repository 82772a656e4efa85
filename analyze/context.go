package analyze

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"salvage/kernel"
)

// taskContext is the session's current task, which commands such as bt
// and task use when given none: the panic task until `set` chooses
// another.
type taskContext struct {
	task uint64 // 0: the default
}

// CurrentTask returns the session's current task: the one `set` chose,
// else the task that panicked, else (a dump of a running system) the
// task running on the lowest-numbered CPU.
func (s *Session) CurrentTask() (kernel.TaskInfo, error) {
	k, err := s.Kernel()
	if err != nil {
		return kernel.TaskInfo{}, err
	}
	tasks, err := k.TaskTable()
	if err != nil && len(tasks) == 0 {
		return kernel.TaskInfo{}, err
	}
	want := s.context.task
	if want == 0 {
		want = k.PanickedTask()
	}
	var first *kernel.TaskInfo
	for i := range tasks {
		t := &tasks[i]
		if want != 0 && t.Task == want {
			return *t, nil
		}
		if want == 0 && t.Active && (first == nil || t.CPU < first.CPU) {
			first = t
		}
	}
	if first != nil {
		return *first, nil
	}
	return kernel.TaskInfo{}, errors.New("no current task: no task panicked and none is running on any CPU")
}

func setCommand() *Command {
	return &Command{
		Name:    "set",
		Summary: "show or change the current task",
		Usage:   "[-p] [PID|TASK]",
		Help: `Without an argument, shows the current task: the one commands such as bt and
task use when given none. With a PID or a task_struct address, makes that
task current; -p makes the panic task current again.

Examples:
  set
  set 1
  set ffff8884bf59b000
  set -p
`,
		Options: []Option{{Name: "p", Help: "make the panic task the current task again"}},
		MaxArgs: 1,
		Run:     runSet,
	}
}

// setJSON is the current task as set --json shows it.
type setJSON struct {
	PID     int64  `json:"pid"`
	Command string `json:"command"`
	Task    uint64 `json:"task"`
	CPU     int    `json:"cpu"`
	State   string `json:"state"`
	Panic   bool   `json:"panic,omitempty"`
	Active  bool   `json:"active,omitempty"`
}

func runSet(ctx *Context) error {
	s := ctx.Session
	if ctx.Opts.Has("p") {
		if len(ctx.Args) > 0 {
			return usagef("-p takes no PID or task")
		}
		s.context.task = 0
	}
	if len(ctx.Args) == 1 {
		arg := ctx.Args[0]
		if !isDecimal(arg) && !isHex(arg) {
			return fmt.Errorf("salvage keeps no variables: %q is neither a PID nor a task address", arg)
		}
		k, err := s.Kernel()
		if err != nil {
			return err
		}
		tasks, err := k.TaskTable()
		if err != nil && len(tasks) == 0 {
			return err
		}
		t, ok := lookupTask(tasks, arg)
		if !ok {
			return fmt.Errorf("invalid task or pid value: %s", arg)
		}
		s.context.task = t.Task
	}
	t, err := s.CurrentTask()
	if err != nil {
		return err
	}
	k, _ := s.Kernel()
	panicTask := k.PanickedTask() == t.Task
	j := setJSON{PID: t.PID, Command: t.Comm, Task: t.Task, CPU: t.CPU, State: longStateName(kernel.StateCode(t.State)), Panic: panicTask, Active: t.Active}
	if ctx.JSON {
		return writeJSON(ctx, j)
	}
	writeTaskContext(ctx.Out, j)
	return nil
}

// lookupTask finds a task by PID (decimal) or task_struct address
// (hexadecimal), as crash reads a PID|TASK operand.
func lookupTask(tasks []kernel.TaskInfo, arg string) (kernel.TaskInfo, bool) {
	if isDecimal(arg) {
		pid, err := strconv.ParseInt(arg, 10, 64)
		if err == nil {
			for _, t := range tasks {
				if t.PID == pid {
					return t, true
				}
			}
		}
	}
	if a, err := parseHex("task", arg); err == nil {
		for _, t := range tasks {
			if t.Task == a {
				return t, true
			}
		}
	}
	return kernel.TaskInfo{}, false
}

// writeTaskContext prints a task as crash's set does.
func writeTaskContext(w interface{ Write([]byte) (int, error) }, j setJSON) {
	state := j.State + " "
	switch {
	case j.Panic:
		state = j.State + " (PANIC)"
	case j.Active:
		state = j.State + " (ACTIVE)"
	}
	fmt.Fprintf(w, "    PID: %d\nCOMMAND: %q\n   TASK: %x  [THREAD_INFO: %x]\n    CPU: %d\n  STATE: %s\n",
		j.PID, j.Command, j.Task, j.Task, j.CPU, state)
}

// longStateName is crash's name of a two-letter state (its
// task_state_string with verbose output).
func longStateName(code string) string {
	switch code {
	case "RU":
		return "TASK_RUNNING"
	case "IN":
		return "TASK_INTERRUPTIBLE"
	case "UN":
		return "TASK_UNINTERRUPTIBLE"
	case "ZO":
		return "EXIT_ZOMBIE"
	case "ST":
		return "TASK_STOPPED"
	case "TR":
		return "TASK_TRACED"
	case "DE":
		return "EXIT_DEAD"
	case "SW", "WA":
		return "TASK_WAKING"
	case "PA":
		return "TASK_PARKED"
	case "ID":
		return "TASK_IDLE"
	case "NE":
		return "TASK_NEW"
	}
	return "(unknown)"
}

// builtinAliases are crash's built-in aliases of commands salvage has.
var builtinAliases = [][2]string{
	{"man", "help"}, {"px", "p -x"}, {"pd", "p -d"}, {"for", "foreach"}, {"dmesg", "log"}, {"lsmod", "mod"},
}

func aliasCommand() *Command {
	return &Command{
		Name:    "alias",
		Summary: "list aliases, or define one",
		Usage:   "[NAME [COMMAND…]]",
		Help: `Without arguments, lists the aliases: crash's built-in ones and those
defined in this session. "alias NAME COMMAND…" makes NAME run COMMAND with
whatever follows NAME appended; "alias NAME" shows one alias.

Examples:
  alias
  alias kp ps -k
  kp
`,
		RawArgs: true,
		MaxArgs: -1,
		Run:     runAlias,
	}
}

type aliasJSON struct {
	Origin  string `json:"origin"`
	Alias   string `json:"alias"`
	Command string `json:"command"`
}

func runAlias(ctx *Context) error {
	s := ctx.Session
	if s.aliases == nil {
		s.aliases = map[string]string{}
	}
	if len(ctx.Args) >= 2 {
		name := ctx.Args[0]
		if s.commands.Lookup(name) != nil {
			return fmt.Errorf("%s is a command: an alias cannot replace it", name)
		}
		target := strings.Join(ctx.Args[1:], " ")
		if first := strings.Fields(target)[0]; s.commands.Lookup(first) == nil && s.aliasFor(first) == "" {
			return fmt.Errorf("%s: no such command", first)
		}
		s.aliases[name] = target
	}
	var list []aliasJSON
	for _, a := range builtinAliases {
		list = append(list, aliasJSON{"builtin", a[0], a[1]})
	}
	names := make([]string, 0, len(s.aliases))
	for n := range s.aliases {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		list = append(list, aliasJSON{"runtime", n, s.aliases[n]})
	}
	if len(ctx.Args) >= 1 {
		var one []aliasJSON
		for _, a := range list {
			if a.Alias == ctx.Args[0] {
				one = append(one, a)
			}
		}
		if len(one) == 0 {
			return fmt.Errorf("alias does not exist: %s", ctx.Args[0])
		}
		list = one[len(one)-1:]
	}
	if ctx.JSON {
		return writeJSON(ctx, list)
	}
	fmt.Fprintln(ctx.Out, "ORIGIN   ALIAS    COMMAND")
	for _, a := range list {
		fmt.Fprintf(ctx.Out, "%-8s %-8s %s \n", a.Origin, a.Alias, a.Command)
	}
	return nil
}

// aliasFor returns what an alias stands for; "" when name is none.
func (s *Session) aliasFor(name string) string {
	if c, ok := s.aliases[name]; ok {
		return c
	}
	for _, a := range builtinAliases {
		if a[0] == name {
			return a[1]
		}
	}
	return ""
}
