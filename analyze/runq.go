package analyze

import (
	"fmt"
	"io"
	"strings"

	"salvage/kernel"
)

func init() { register(runqCommand) }

func runqCommand() *Command {
	return &Command{
		Name:    "runq",
		Summary: "show each CPU's run queue",
		Help: `Shows each CPU's run queue as crash's runq does: the struct rq, the task
running on the CPU, the real-time priority array with its queued tasks
(by priority, in brackets) and the fair class's red-black tree with its
queued tasks (the task's prio in brackets); the tasks of task groups'
queues are listed in their place. "[no tasks queued]" says a queue is
empty.

Examples:
  runq
  runq --json
`,
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
	tasks, _ := k.TaskTable()
	byTask := make(map[uint64]*kernel.TaskInfo, len(tasks))
	for i := range tasks {
		byTask[tasks[i].Task] = &tasks[i]
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
