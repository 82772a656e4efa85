package analyze

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"salvage/kernel"
)

// defaultTask is the task bt shows when given none: the session's
// current task (see set), which is the panic task unless set chose
// another; without the task table, the kernel's own view of the panic
// task or the lowest CPU's running task.
func defaultTask(s *Session, k *kernel.Kernel) (kernel.Value, error) {
	if cur, err := s.CurrentTask(); err == nil && cur.Task != 0 {
		return k.ObjectOf(cur.Task, "struct task_struct")
	}
	t, _, ok, err := k.PanicTask()
	if err != nil {
		return kernel.Value{}, err
	}
	if ok {
		return t, nil
	}
	act, err := k.ActiveTasks()
	if err != nil {
		return kernel.Value{}, err
	}
	cpus := make([]int, 0, len(act))
	for c := range act {
		cpus = append(cpus, c)
	}
	sort.Ints(cpus)
	return act[cpus[0]], nil
}

// parseCPUList reads crash's CPU lists: "3", "1,8,9", "1-23", "1,8,9-14".
func parseCPUList(s string) ([]int, error) {
	var out []int
	seen := map[int]bool{}
	for _, f := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(f, "-")
		a, err := strconv.Atoi(lo)
		b := a
		if err == nil && isRange {
			b, err = strconv.Atoi(hi)
		}
		if err != nil || a < 0 || b < a || b-a > 1<<16 {
			return nil, usagef("invalid CPU list %q: expected forms like 3, 1,8,9, 1-23", s)
		}
		for c := a; c <= b; c++ {
			if !seen[c] {
				seen[c] = true
				out = append(out, c)
			}
		}
	}
	sort.Ints(out)
	return out, nil
}

// threadGroup is t's thread group as crash's bt -g shows it: the leader
// first, then the other threads in task-list order.
func threadGroup(k *kernel.Kernel, t kernel.Value) ([]kernel.Value, error) {
	tgid, err := memberInt(t, "tgid")
	if err != nil {
		return nil, err
	}
	var leader []kernel.Value
	var rest []kernel.Value
	for task, err := range k.Tasks() {
		if err != nil {
			return nil, err
		}
		g, err := memberInt(task, "tgid")
		if err != nil || g != tgid {
			continue
		}
		pid, _ := memberInt(task, "pid")
		if pid == tgid {
			leader = append(leader, task)
		} else {
			rest = append(rest, task)
		}
	}
	return append(leader, rest...), nil
}

func memberInt(v kernel.Value, path string) (int64, error) {
	m, err := v.Member(path)
	if err != nil {
		return 0, err
	}
	return m.Int()
}

// btReferences reports whether a backtrace refers to ref, as crash's
// bt -R decides: a frame's function is named ref, or ref is a number
// equal to a frame's address or to a register an exception frame saved.
func btReferences(k *kernel.Kernel, bt *kernel.Backtrace, ref string) bool {
	val, numErr := parseHex("reference", ref)
	for _, f := range bt.Frames {
		if f.Symbol != "" && (f.Symbol == ref || crashSymbolName(f.Symbol) == ref) {
			return true
		}
		if numErr != nil {
			continue
		}
		if f.PC == val {
			return true
		}
		if e := f.Exception; e != nil {
			for _, r := range e.Regs {
				if r == val {
					return true
				}
			}
		}
	}
	return false
}

// runBtOverflow is bt -v: every task's stack must end (at its lowest
// address) with STACK_END_MAGIC, which the kernel writes there and a
// stack overflow tramples (crash's check_stack_overflow).
func runBtOverflow(ctx *Context, k *kernel.Kernel) error {
	type overflow struct {
		PID      int64  `json:"pid"`
		Task     uint64 `json:"task"`
		Location uint64 `json:"location"`
		Value    uint64 `json:"value"`
	}
	init, _ := k.SymbolAddr("init_task")
	found := []overflow{}
	for t, err := range k.Tasks() {
		if err != nil {
			return err
		}
		if t.Address() == init {
			continue // the boot stack carries no magic
		}
		loc, magic, err := k.StackEndMagic(t)
		if err != nil || magic == kernel.StackEndMagic {
			continue
		}
		pid, _ := memberInt(t, "pid")
		found = append(found, overflow{PID: pid, Task: t.Address(), Location: loc, Value: magic})
		if !ctx.JSON {
			printBtHeader(ctx.Out, t, nil)
			fmt.Fprintf(ctx.Out, "  possible stack overflow: %x: %x != STACK_END_MAGIC\n\n", loc, magic)
		}
	}
	if ctx.JSON {
		return writeJSON(ctx, found)
	}
	if len(found) == 0 {
		fmt.Fprintln(ctx.Out, "No stack overflows detected")
	}
	return nil
}
