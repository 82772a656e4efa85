package analyze

import (
	"fmt"
	"regexp"
	"strings"

	"salvage/kernel"
)

// foreachCommands are the commands foreach can run on each task: those
// that take a PID or task operand.
var foreachCommands = map[string]bool{"bt": true, "task": true, "set": true, "ps": true}

func foreachCommand() *Command {
	return &Command{
		Name:    "foreach",
		Summary: "run a command on each of a set of tasks",
		Usage:   "[PID|TASK|NAME|\\REGEX|STATE|kernel|user|active]… COMMAND [FLAGS]",
		Help: `Runs COMMAND (bt, task, set or ps) with each selected task as its operand,
in ps order. Without selectors every task is selected. Selectors add up:
a PID, a task_struct address, a command name (or \REGEX, a regular
expression on it), a state as ps shows it (RU, IN, UN, ZO, ID, …), and
"kernel", "user" or "active" (kernel threads, user tasks, the tasks on
each CPU). Flags after COMMAND are passed to it.

Examples:
  foreach bt
  foreach UN bt            (where every uninterruptible task is stuck)
  foreach bash task -R pid,comm
  foreach kernel active bt -f
`,
		RawArgs: true,
		MinArgs: 1,
		MaxArgs: -1,
		Run:     runForeach,
	}
}

// foreachSelector is one task selector of foreach.
type foreachSelector func(t *kernel.TaskInfo) bool

func runForeach(ctx *Context) error {
	var sel []foreachSelector
	var kind []foreachSelector // kernel/user/active narrow the others
	args := ctx.Args
	i := 0
	for ; i < len(args) && !foreachCommands[args[i]]; i++ {
		a := args[i]
		switch {
		case a == "kernel":
			kind = append(kind, func(t *kernel.TaskInfo) bool { return t.KernelThread || t.PID == 0 })
		case a == "user":
			kind = append(kind, func(t *kernel.TaskInfo) bool { return !t.KernelThread && t.PID != 0 })
		case a == "active":
			kind = append(kind, func(t *kernel.TaskInfo) bool { return t.Active })
		case isStateCode(a):
			sel = append(sel, func(t *kernel.TaskInfo) bool { return kernel.StateCode(t.State) == a })
		case isDecimal(a):
			pid := a
			sel = append(sel, func(t *kernel.TaskInfo) bool { return fmt.Sprint(t.PID) == pid })
		case strings.HasPrefix(a, `\`):
			re, err := regexp.Compile(a[1:])
			if err != nil {
				return fmt.Errorf("bad regular expression %q: %v", a[1:], err)
			}
			sel = append(sel, func(t *kernel.TaskInfo) bool { return re.MatchString(t.Comm) })
		case isHex(a) && len(a) >= 8:
			addr, err := parseHex("task", a)
			if err != nil {
				return err
			}
			sel = append(sel, func(t *kernel.TaskInfo) bool { return t.Task == addr })
		case strings.HasPrefix(a, "-"):
			return usagef("%s: options go after the command", a)
		default:
			name := a
			sel = append(sel, func(t *kernel.TaskInfo) bool { return t.Comm == name })
		}
	}
	if i == len(args) {
		return usagef("no command: foreach runs one of bt, task, set, ps")
	}
	cmd, flags := args[i], args[i+1:]
	for _, f := range flags {
		if !strings.HasPrefix(f, "-") {
			return usagef("%s: foreach passes only flags to %s", f, cmd)
		}
	}
	k, err := ctx.Session.Kernel()
	if err != nil {
		return err
	}
	tasks, err := k.TaskTable()
	if err != nil && len(tasks) == 0 {
		return err
	}
	if err != nil {
		fmt.Fprintf(ctx.Session.Err, "foreach: %v (the tasks before it are shown)\n", err)
	}
	n := 0
	for idx := range tasks {
		t := &tasks[idx]
		if !selected(t, sel, kind) {
			continue
		}
		if n > 0 && cmd != "ps" {
			fmt.Fprintln(ctx.Out)
		}
		n++
		words := append(append([]string{cmd}, flags...), fmt.Sprintf("%x", t.Task))
		if ctx.JSON {
			words = append(words, "--json")
		}
		// A task whose command fails reports it and foreach goes on.
		ctx.Session.execWords(words, outputTarget{writer: ctx.Out})
	}
	if n == 0 {
		return fmt.Errorf("no task matches %s", strings.Join(args[:i], " "))
	}
	return nil
}

// selected: any of sel (all when none), and every one of kind.
func selected(t *kernel.TaskInfo, sel, kind []foreachSelector) bool {
	for _, k := range kind {
		if !k(t) {
			return false
		}
	}
	if len(sel) == 0 {
		return true
	}
	for _, s := range sel {
		if s(t) {
			return true
		}
	}
	return false
}

func isStateCode(s string) bool {
	switch s {
	case "RU", "IN", "UN", "ZO", "ST", "TR", "DE", "SW", "WA", "PA", "ID", "NE":
		return true
	}
	return false
}
