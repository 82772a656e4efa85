package analyze

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"

	"salvage/debuginfo"
	"salvage/kernel"
)

func taskCommand() *Command {
	return &Command{
		Name:    "task",
		Summary: "show a task's task_struct and thread_info",
		Usage:   "[-R MEMBER[,MEMBER...]] [-x|-d] [PID | TASK] ...",
		Help: `Prints each task's header line (PID, task address, CPU, command) and its
struct task_struct, then its struct thread_info (on x86_64 the one
embedded at the start of the task_struct), as crash's task does through
gdb. Without a PID or TASK, the current task: the one set chose, else
the task that panicked (or, in a dump of a live system, the task running
on the lowest-numbered CPU).

-R prints only the named members (comma-separated, or given as
operands), each found in the printed task_struct and thread_info as
crash finds them: every top-level line "MEMBER = …", with its nested
lines; a member path (se.on_rq, pids[0]) prints as "se.on_rq = 0,".
-x prints integers in hexadecimal, -d in decimal.

--json prints, for each task, its header and the selected (or all)
members of task_struct as text values.

Examples:
  task
  task 414
  task -R pid,comm,__state 414
  task -x ffff8884bf59b000
`,
		Options: []Option{
			{Name: "R", Arg: "MEMBERS", Help: "only these task_struct or thread_info members"},
			{Name: "x", Help: "integers in hexadecimal"},
			{Name: "d", Help: "integers in decimal"},
		},
		MaxArgs: -1,
		Run:     runTask,
	}
}

// taskJSON is one task of task --json.
type taskJSON struct {
	PID        int64             `json:"pid"`
	Task       string            `json:"task"`
	CPU        int               `json:"cpu"`
	Command    string            `json:"command"`
	TaskStruct structJSON        `json:"task_struct"`
	ThreadInfo *structJSON       `json:"thread_info,omitempty"`
	Members    map[string]string `json:"members,omitempty"` // -R: each member's printed lines
}

func runTask(ctx *Context) error {
	k, err := ctx.Session.Kernel()
	if err != nil {
		return err
	}
	ts, err := ctx.types()
	if err != nil {
		return err
	}
	taskT, err := ts.Struct("task_struct")
	if err != nil {
		return err
	}
	// struct thread_info is printed too where the kernel has one (crash's
	// THREAD_INFO flag): inside the task_struct with THREAD_INFO_IN_TASK,
	// else where task_struct.stack points.
	tiT, _ := ts.Struct("thread_info")
	_, tiErr := debuginfo.LookupMember(taskT, "thread_info")
	tiInTask := tiErr == nil

	var refs []string
	for _, o := range ctx.Opts {
		if o.Name == "R" {
			refs = append(refs, splitRefs(o.Value)...)
		}
	}
	tasks, incomplete := k.TaskTable()
	if incomplete != nil && len(tasks) == 0 {
		return incomplete
	}
	var picked []*kernel.TaskInfo
	bogus := 0
	for _, a := range ctx.Args {
		if isNumberish(a) {
			found := false
			if isDecimal(a) {
				pid, _ := strconv.ParseInt(a, 10, 64)
				for i := range tasks {
					if tasks[i].PID == pid {
						picked = append(picked, &tasks[i])
						found = true
					}
				}
			}
			if !found {
				addr, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(a), "0x"), 16, 64)
				for i := range tasks {
					if err == nil && tasks[i].Task == addr {
						picked = append(picked, &tasks[i])
						found = true
					}
				}
			}
			if !found {
				bogus++
				if !ctx.JSON {
					fmt.Fprintf(ctx.Out, "task: invalid task or pid value: %s\n\n", a)
				}
			}
			continue
		}
		if _, err := debuginfo.LookupMember(taskT, a); err == nil || strings.ContainsAny(a, ",.[") {
			refs = append(refs, splitRefs(a)...)
			continue
		}
		return fmt.Errorf("invalid task, pid, or task_struct member: %s", a)
	}
	if len(picked) == 0 && bogus == 0 {
		// crash's CURRENT_TASK: the one set chose, else the panic task.
		cur, err := ctx.Session.CurrentTask()
		if err != nil {
			return err
		}
		for i := range tasks {
			if tasks[i].Task == cur.Task {
				picked = append(picked, &tasks[i])
				break
			}
		}
		if len(picked) == 0 {
			return fmt.Errorf("the current task %#x is not in the task list", cur.Task)
		}
	}
	for _, r := range refs {
		if strings.ContainsAny(r, ".[") {
			if _, err := debuginfo.LookupMember(taskT, r); err != nil {
				return fmt.Errorf("%s: not a task_struct member", r)
			}
			continue
		}
		_, e1 := debuginfo.LookupMember(taskT, r)
		e2 := fmt.Errorf("no thread_info")
		if tiT != nil {
			_, e2 = debuginfo.LookupMember(tiT, r)
		}
		if e1 != nil && e2 != nil {
			return fmt.Errorf("%s: not a task_struct or thread_info member", r)
		}
	}
	hex := ctx.Opts.Last("x", "d") == "x"
	p := &valuePrinter{k: k, hex: hex}
	var res []taskJSON
	for _, t := range picked {
		var text bytes.Buffer
		tctx := *ctx
		tctx.Out = &text
		if err := writeObject(&tctx, p, taskT, nil, t.Task); err != nil {
			return fmt.Errorf("task_struct of PID %d at %#x: %w", t.PID, t.Task, err)
		}
		taskText := text.String()
		tiText := ""
		tiAddr := uint64(0)
		if tiT != nil {
			tiAddr = t.Task
			if !tiInTask {
				if sv, err := k.Object(t.Task, taskT).Member("stack"); err == nil {
					tiAddr, _ = sv.Uint()
				}
			}
			text.Reset()
			if err := writeObject(&tctx, p, tiT, nil, tiAddr); err != nil {
				return fmt.Errorf("thread_info of PID %d at %#x: %w", t.PID, tiAddr, err)
			}
			tiText = text.String()
		}
		if ctx.JSON {
			j := taskJSON{PID: t.PID, Task: fmt.Sprintf("%x", t.Task), CPU: t.CPU, Command: t.Comm}
			if refs != nil {
				j.Members = map[string]string{}
				for _, r := range refs {
					j.Members[r] = findTaskMember(taskText+tiText, r)
				}
				j.TaskStruct = structToJSON(k, taskT, nil, false, 0, hex)
				j.TaskStruct.Members = nil
			} else {
				j.TaskStruct = structToJSON(k, taskT, nil, true, t.Task, hex)
				if tiT != nil {
					ti := structToJSON(k, tiT, nil, true, tiAddr, hex)
					j.ThreadInfo = &ti
				}
			}
			res = append(res, j)
			continue
		}
		writeTaskHeader(ctx.Out, t, 0)
		if refs != nil {
			for _, r := range refs {
				if strings.ContainsAny(r, ".[") {
					// crash's parse_for_member_extended: "  a.b = value,".
					if err := writeObject(ctx, p, taskT, []string{r}, t.Task); err != nil {
						return err
					}
					continue
				}
				io.WriteString(ctx.Out, findTaskMember(taskText+tiText, r))
			}
		} else {
			io.WriteString(ctx.Out, taskText)
			if tiT != nil {
				fmt.Fprintln(ctx.Out)
				io.WriteString(ctx.Out, tiText)
			}
		}
		fmt.Fprintln(ctx.Out)
	}
	if ctx.JSON {
		if res == nil {
			res = []taskJSON{}
		}
		if err := writeJSON(ctx, map[string]any{"tasks": res}); err != nil {
			return err
		}
	}
	return incompleteErr(incomplete)
}

func splitRefs(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		out = append(out, f)
	}
	return out
}

// findTaskMember picks member's lines out of the printed task_struct and
// thread_info, as crash's parse_task_thread does: every line
// "  MEMBER = …" at the top level of either, with the lines of a nested
// structure up to its closing brace.
func findTaskMember(text, member string) string {
	var b strings.Builder
	lines := strings.SplitAfter(text, "\n")
	want := "  " + member + " = "
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if !strings.HasPrefix(l, want) {
			continue
		}
		b.WriteString(l)
		switch {
		case strings.Contains(l, "{{\n"):
			for i++; i < len(lines); i++ {
				b.WriteString(lines[i])
				if strings.HasPrefix(lines[i], "    }},") {
					break
				}
			}
		case strings.HasSuffix(l, " = {\n"):
			end := strings.Repeat(" ", len(l)-len(strings.TrimLeft(l, " "))) + "}"
			for i++; i < len(lines); i++ {
				b.WriteString(lines[i])
				if strings.HasPrefix(lines[i], end) {
					break
				}
			}
		case strings.Contains(l, "{"):
			for i++; i < len(lines); i++ {
				b.WriteString(lines[i])
				if strings.Contains(lines[i], "},") {
					break
				}
			}
		}
	}
	return b.String()
}
