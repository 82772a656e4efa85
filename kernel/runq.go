package kernel

import (
	"fmt"
	"math/bits"
	"sort"
)

// RunQueue is one CPU's run queue (struct rq, kernel/sched/sched.h) as
// crash's runq shows it: the task on the CPU and the tasks waiting in
// the real-time and the fair (CFS) class.
type RunQueue struct {
	CPU  int
	Addr uint64 // the per-CPU struct rq
	Curr uint64 // rq.curr: the task running on the CPU
	// RTArray is &rq.rt.active (struct rt_prio_array); RT its queued
	// tasks, Prio being the queue's index (the task's priority).
	RTArray uint64
	RT      []QueuedTask
	// CFSRoot is &rq.cfs.tasks_timeline; CFS the tasks queued in the
	// fair class's red-black tree, those of task groups' queues (the
	// entities with a my_q) included, in the order crash visits them.
	CFSRoot uint64
	CFS     []QueuedTask
	// Err says what could not be read of this queue: the tasks listed
	// are those found before it.
	Err error
}

// QueuedTask is a task waiting in a run queue.
type QueuedTask struct {
	Task uint64
	Prio int64
}

// runqMaxTasks bounds a queue's walk, against a corrupt list or tree.
const runqMaxTasks = 1 << 16

// RunQueues returns the run queue of every CPU up to the highest present
// one (crash's kt->cpus: x86_64_per_cpu_init counts to the highest CPU in
// __cpu_present_mask). A queue that cannot be read in full says so in its
// Err; the error is for a kernel with no run queues at all.
func (k *Kernel) RunQueues() ([]RunQueue, error) {
	if _, err := k.SymbolAddr("runqueues"); err != nil {
		return nil, fmt.Errorf("per-cpu runqueues do not exist: %w", err)
	}
	for _, m := range []string{"curr", "rt.active", "cfs.tasks_timeline"} {
		if !k.typeHas("struct rq", m) {
			return nil, fmt.Errorf("struct rq has no %s", m)
		}
	}
	n, err := k.runqCPUs()
	if err != nil {
		return nil, err
	}
	out := make([]RunQueue, 0, n)
	for cpu := 0; cpu < n; cpu++ {
		out = append(out, k.runQueue(cpu))
	}
	return out, nil
}

// runqCPUs is the number of CPUs crash shows: the highest present CPU
// plus one, or nr_cpu_ids when the present mask cannot be read.
func (k *Kernel) runqCPUs() (int, error) {
	n, err := k.NrCPUIDs()
	if err != nil {
		return 0, err
	}
	a, err := k.SymbolAddr("__cpu_present_mask")
	if err != nil {
		return n, nil
	}
	high := -1
	for i := 0; i < (n+63)/64; i++ {
		v, err := k.ReadUint(a+uint64(8*i), 8)
		if err != nil {
			return n, nil
		}
		if rem := n - 64*i; rem < 64 {
			v &= 1<<uint(rem) - 1
		}
		if v != 0 {
			high = 64*i + 63 - bits.LeadingZeros64(v)
		}
	}
	if high < 0 {
		return n, nil
	}
	return high + 1, nil
}

// runQueue reads cpu's run queue.
func (k *Kernel) runQueue(cpu int) RunQueue {
	q := RunQueue{CPU: cpu}
	rq, err := k.PerCPU("runqueues", cpu)
	if err != nil {
		q.Err = err
		return q
	}
	q.Addr = rq.Address()
	if c, err := rq.Member("curr"); err != nil {
		q.Err = err
	} else if q.Curr, err = c.Uint(); err != nil {
		q.Err = fmt.Errorf("CPU %d run queue at %#x: %w", cpu, q.Addr, err)
	}
	active, err := rq.Member("rt.active")
	if err != nil {
		q.Err = err
		return q
	}
	q.RTArray = active.Address()
	cfs, err := rq.Member("cfs")
	if err != nil {
		q.Err = err
		return q
	}
	tl, err := cfs.Member("tasks_timeline")
	if err != nil {
		q.Err = err
		return q
	}
	q.CFSRoot = tl.Address()
	if q.Err != nil {
		return q
	}
	if err := k.rtPrioArray(active, &q.RT, map[uint64]bool{}, 0); err != nil {
		q.Err = fmt.Errorf("CPU %d RT queue: %w", cpu, err)
		return q
	}
	if err := k.cfsTasks(cfs, &q.CFS, map[uint64]bool{}, map[uint64]bool{}, 0); err != nil {
		q.Err = fmt.Errorf("CPU %d CFS queue: %w", cpu, err)
	}
	return q
}

// rtPrioArray appends the tasks queued in a struct rt_prio_array
// (kernel/sched/sched.h): queue[i] lists the sched_rt_entity of the tasks
// of priority i (run_list). An entity with a my_q is a group's
// (CONFIG_RT_GROUP_SCHED) whose own array is read in its place, as
// crash's dump_RT_prio_array does. queues holds the arrays read, against
// a corrupt group that holds itself.
func (k *Kernel) rtPrioArray(arr Value, out *[]QueuedTask, queues map[uint64]bool, depth int) error {
	if depth > 8 {
		return fmt.Errorf("rt_prio_array at %#x: groups nested too deep", arr.Address())
	}
	if queues[arr.Address()] {
		return fmt.Errorf("rt_prio_array at %#x: reached twice", arr.Address())
	}
	queues[arr.Address()] = true
	queue, err := arr.Member("queue")
	if err != nil {
		return err
	}
	r := queue.Type().Resolve()
	if r == nil || r.Len <= 0 {
		return fmt.Errorf("rt_prio_array.queue: not an array")
	}
	groups := k.typeHas("struct sched_rt_entity", "my_q")
	for i := 0; i < int(r.Len); i++ {
		head, err := queue.Index(i)
		if err != nil {
			return err
		}
		for se, err := range k.ListEntries(head.Address(), "struct sched_rt_entity", "run_list") {
			if err != nil {
				return err
			}
			if len(*out) >= runqMaxTasks {
				return fmt.Errorf("more than %d queued tasks", runqMaxTasks)
			}
			if groups {
				if mq, err := se.Member("my_q"); err == nil {
					if p, err := mq.Uint(); err == nil && p != 0 {
						sub, err := k.ObjectOf(p, "struct rt_rq")
						if err == nil {
							sub, err = sub.Member("active")
						}
						if err != nil {
							return err
						}
						if err := k.rtPrioArray(sub, out, queues, depth+1); err != nil {
							return err
						}
						continue
					}
				}
			}
			t, err := k.ContainerOf(se.Address(), "struct task_struct", "rt")
			if err != nil {
				return err
			}
			*out = append(*out, QueuedTask{Task: t.Address(), Prio: int64(i)})
		}
	}
	return nil
}

// cfsTasks appends the tasks queued in a struct cfs_rq, in the order of
// crash's dump_tasks_in_cfs_rq: first the queue of the running group
// entity (curr->my_q), then the red-black tree tasks_timeline in order,
// a group entity's queue (my_q, CONFIG_FAIR_GROUP_SCHED) in its place.
// The running task itself is not in the tree and is not listed. An empty
// rb_leftmost means an empty tree, whatever the root says. seen holds
// the tasks listed (a task twice is crash's "duplicate CFS runqueue
// node"), queues the cfs_rqs read.
func (k *Kernel) cfsTasks(cfs Value, out *[]QueuedTask, seen, queues map[uint64]bool, depth int) error {
	if depth > 16 {
		return fmt.Errorf("cfs_rq at %#x: groups nested too deep", cfs.Address())
	}
	if queues[cfs.Address()] {
		return fmt.Errorf("cfs_rq at %#x: reached twice", cfs.Address())
	}
	queues[cfs.Address()] = true
	groups := k.typeHas("struct sched_entity", "my_q")
	if groups {
		if c, err := cfs.Member("curr"); err == nil {
			if p, err := c.Uint(); err == nil && p != 0 {
				if mq, err := k.entityQueue(p); err != nil {
					return err
				} else if mq.IsValid() {
					if err := k.cfsTasks(mq, out, seen, queues, depth+1); err != nil {
						return err
					}
				}
			}
		}
	}
	lm, err := cfs.Member("tasks_timeline.rb_leftmost")
	if err != nil {
		return err
	}
	leftmost, err := lm.Uint()
	if err != nil {
		return err
	}
	if leftmost == 0 {
		return nil
	}
	tl, err := cfs.Member("tasks_timeline")
	if err != nil {
		return err
	}
	for node, err := range k.RBNodes(tl.Address()) {
		if err != nil {
			return err
		}
		se, err := k.ContainerOf(node, "struct sched_entity", "run_node")
		if err != nil {
			return err
		}
		if groups {
			mq, err := k.entityQueue(se.Address())
			if err != nil {
				return err
			}
			if mq.IsValid() {
				if err := k.cfsTasks(mq, out, seen, queues, depth+1); err != nil {
					return err
				}
				continue
			}
		}
		t, err := k.ContainerOf(se.Address(), "struct task_struct", "se")
		if err != nil {
			return err
		}
		if seen[t.Address()] {
			return fmt.Errorf("duplicate CFS runqueue node: task %x", t.Address())
		}
		seen[t.Address()] = true
		if len(*out) >= runqMaxTasks {
			return fmt.Errorf("more than %d queued tasks", runqMaxTasks)
		}
		pv, err := t.Member("prio")
		if err != nil {
			return err
		}
		prio, err := pv.Int()
		if err != nil {
			return err
		}
		*out = append(*out, QueuedTask{Task: t.Address(), Prio: prio})
	}
	return nil
}

// entityQueue is the cfs_rq a group's sched_entity at se owns (my_q);
// an invalid Value for a task's entity.
func (k *Kernel) entityQueue(se uint64) (Value, error) {
	e, err := k.ObjectOf(se, "struct sched_entity")
	if err != nil {
		return Value{}, err
	}
	mq, err := e.Member("my_q")
	if err != nil {
		return Value{}, err
	}
	p, err := mq.Uint()
	if err != nil || p == 0 {
		return Value{}, err
	}
	return k.ObjectOf(p, "struct cfs_rq")
}

// TaskGroup is a CFS task group (struct task_group, kernel/sched/sched.h):
// the root group, a cgroup's or an autogroup's.
type TaskGroup struct {
	Addr  uint64
	Depth int    // 0 for root_task_group
	Name  string // the cgroup's directory name ("/" for the root); "" if none
	// Parent indexes the parent group in the list TaskGroups returns; -1
	// for the root.
	Parent int
}

// GroupLine is one line of crash's runq -g for a CPU's fair class: a
// group's header, a queued task, or an empty queue. Depth is the
// nesting, which sets the indent.
type GroupLine struct {
	Depth int
	// Group >= 0 makes a header: the group (an index into TaskGroups'
	// list) and its queue on this CPU.
	Group     int
	CfsRq     uint64
	Throttled bool
	// Task, with Prio and Current (the CPU's running task, not in the
	// tree), makes a task's line; neither Group nor Task, an empty queue.
	Task    uint64
	Prio    int64
	Current bool
}

// TaskGroups lists the task groups from root_task_group down its
// children, ordered by depth (crash's fill_task_group_info_array, then
// sort_task_group_info_array, which keeps the walk's order within a
// depth).
func (k *Kernel) TaskGroups() ([]TaskGroup, error) {
	root, err := k.SymbolAddr("root_task_group")
	if err != nil {
		return nil, fmt.Errorf("cannot determine root task_group: %w", err)
	}
	var out []TaskGroup
	var walk func(addr uint64, depth, parent int) error
	walk = func(addr uint64, depth, parent int) error {
		if len(out) >= runqMaxTasks || depth > 64 {
			return fmt.Errorf("task_group at %#x: more groups than any kernel has", addr)
		}
		g, err := k.ObjectOf(addr, "struct task_group")
		if err != nil {
			return err
		}
		me := len(out)
		out = append(out, TaskGroup{Addr: addr, Depth: depth, Name: k.taskGroupName(g), Parent: parent})
		ch, err := g.Member("children")
		if err != nil {
			return err
		}
		for c, err := range k.ListEntries(ch.Address(), "struct task_group", "siblings") {
			if err != nil {
				return err
			}
			if err := walk(c.Address(), depth+1, me); err != nil {
				return err
			}
		}
		return nil
	}
	err = walk(root, 0, -1)
	// A stable sort by depth keeps parents' indices valid only if they
	// are remapped.
	idx := make([]int, len(out))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return out[idx[a]].Depth < out[idx[b]].Depth })
	where := make([]int, len(out))
	sorted := make([]TaskGroup, len(out))
	for n, i := range idx {
		where[i] = n
		sorted[n] = out[i]
	}
	for n := range sorted {
		if p := sorted[n].Parent; p >= 0 {
			sorted[n].Parent = where[p]
		}
	}
	return sorted, err
}

// taskGroupName is the name of the group's cgroup directory, as crash's
// get_task_group_name reads it: css.cgroup->kn->name, "/" for a kernfs
// node without a parent; "" when there is none.
func (k *Kernel) taskGroupName(g Value) string {
	cg, err := g.Member("css.cgroup")
	if err != nil {
		return ""
	}
	if p, err := cg.Uint(); err != nil || p == 0 {
		return ""
	}
	kn, err := cg.Member("kn")
	if err != nil {
		return ""
	}
	if p, err := kn.Uint(); err != nil || p == 0 {
		return ""
	}
	parent, err := kn.Member("parent")
	if err != nil {
		parent, err = kn.Member("__parent") // 6.15 renamed it
	}
	if err != nil {
		return ""
	}
	if p, err := parent.Uint(); err == nil && p == 0 {
		return "/"
	}
	nm, err := kn.Member("name")
	if err != nil {
		return ""
	}
	p, err := nm.Uint()
	if err != nil || p == 0 {
		return ""
	}
	s, err := k.ReadCString(p, 1500)
	if err != nil {
		return ""
	}
	return s
}

// groupCfsRq is group's cfs_rq on cpu: task_group.cfs_rq[cpu].
func (k *Kernel) groupCfsRq(group uint64, cpu int) (uint64, error) {
	g, err := k.ObjectOf(group, "struct task_group")
	if err != nil {
		return 0, err
	}
	arr, err := g.Member("cfs_rq")
	if err != nil {
		return 0, err
	}
	p, err := arr.Index(cpu)
	if err != nil {
		return 0, err
	}
	return p.Uint()
}

// groupWalk is the state of one CPU's runq -g walk.
type groupWalk struct {
	k      *Kernel
	cpu    int
	groups []TaskGroup
	use    []bool // crash's tgi->use: a header still to print
	curr   uint64 // the CPU's running task
	lines  []GroupLine
	seen   map[uint64]bool
}

// CFSGroupLines returns the lines of crash's runq -g for cpu's fair class
// (task.c dump_tasks_by_task_group, dump_tasks_in_task_group_cfs_rq):
// the root group's queue, each group entity's queue in its place, and
// the groups with queued tasks whose entities are not queued (a
// throttled group's) after their parent's tasks, their headers printed
// with those of their parents when first needed.
func (k *Kernel) CFSGroupLines(groups []TaskGroup, cpu int, curr uint64) (rootCfsRq uint64, lines []GroupLine, err error) {
	if len(groups) == 0 {
		return 0, nil, fmt.Errorf("no task groups")
	}
	w := &groupWalk{k: k, cpu: cpu, groups: groups, use: make([]bool, len(groups)), curr: curr, seen: map[uint64]bool{}}
	for i, g := range groups {
		w.use[i] = g.Depth != 0
	}
	if rootCfsRq, err = k.groupCfsRq(groups[0].Addr, cpu); err != nil {
		return 0, nil, err
	}
	_, err = w.queue(0, rootCfsRq)
	return rootCfsRq, w.lines, err
}

// queue lists one group queue at depth and returns how many lines of
// tasks and groups it gave.
func (w *groupWalk) queue(depth int, cfsRq uint64) (int, error) {
	if depth > 64 || w.seen[cfsRq] {
		return 0, fmt.Errorf("cfs_rq at %#x: reached twice", cfsRq)
	}
	w.seen[cfsRq] = true
	k := w.k
	rq, err := k.ObjectOf(cfsRq, "struct cfs_rq")
	if err != nil {
		return 0, err
	}
	if depth > 0 {
		tg, err := memberUint(rq, "tg")
		if err != nil {
			return 0, err
		}
		for i, g := range w.groups {
			if g.Addr == tg {
				w.lines = append(w.lines, w.header(depth, i, cfsRq))
				w.use[i] = false
				break
			}
		}
	}
	total := 0
	var currMyQ uint64
	curr, err := memberUint(rq, "curr")
	if err != nil {
		return 0, err
	}
	if curr != 0 {
		if currMyQ, err = k.entityMyQ(curr); err != nil {
			return 0, err
		}
		if currMyQ != 0 {
			total++
			n, err := w.queue(depth+1, currMyQ)
			if total += n; err != nil {
				return total, err
			}
		}
	}
	if currMyQ == 0 && curr != 0 && w.curr != 0 {
		if t, err := k.ContainerOf(curr, "struct task_struct", "se"); err == nil && t.Address() == w.curr {
			prio, err := runqPrio(t)
			if err != nil {
				return total, err
			}
			total++
			w.lines = append(w.lines, GroupLine{Depth: depth, Group: -1, Task: w.curr, Prio: prio, Current: true})
		}
	}
	leftmost, err := memberUint(rq, "tasks_timeline.rb_leftmost")
	if err != nil {
		return total, err
	}
	if leftmost != 0 {
		tl, err := rq.Member("tasks_timeline")
		if err != nil {
			return total, err
		}
		for node, err := range k.RBNodes(tl.Address()) {
			if err != nil {
				return total, err
			}
			se, err := k.ContainerOf(node, "struct sched_entity", "run_node")
			if err != nil {
				return total, err
			}
			myQ, err := k.entityMyQ(se.Address())
			if err != nil {
				return total, err
			}
			if myQ != 0 {
				total++
				n, err := w.queue(depth+1, myQ)
				if total += n; err != nil {
					return total, err
				}
				continue
			}
			t, err := k.ContainerOf(se.Address(), "struct task_struct", "se")
			if err != nil {
				return total, err
			}
			prio, err := runqPrio(t)
			if err != nil {
				return total, err
			}
			w.lines = append(w.lines, GroupLine{Depth: depth, Group: -1, Task: t.Address(), Prio: prio})
			total++
		}
	}
	n, err := w.dequeued(depth, cfsRq)
	if total += n; err != nil {
		return total, err
	}
	if total == 0 {
		w.lines = append(w.lines, GroupLine{Depth: depth, Group: -1})
	}
	return total, nil
}

// dequeued lists the child groups of the queue's group whose entity is
// not queued but whose own queue (or a descendant's) holds tasks, as
// crash's dump_tasks_in_lower_dequeued_cfs_rq.
func (w *groupWalk) dequeued(depth int, cfsRq uint64) (int, error) {
	k := w.k
	total := 0
	rq, err := k.ObjectOf(cfsRq, "struct cfs_rq")
	if err != nil {
		return 0, err
	}
	tg, err := memberUint(rq, "tg")
	if err != nil {
		return 0, err
	}
	for i, g := range w.groups {
		if !w.use[i] || g.Depth-depth != 1 || g.Parent < 0 || w.groups[g.Parent].Addr != tg {
			continue
		}
		child, err := k.groupCfsRq(g.Addr, w.cpu)
		if err != nil {
			return total, err
		}
		if child == cfsRq || w.seen[child] {
			continue
		}
		crq, err := k.ObjectOf(child, "struct cfs_rq")
		if err != nil {
			return total, err
		}
		nr, err := memberUint(crq, "nr_running")
		if err != nil {
			nr, err = memberUint(crq, "nr_queued") // renamed in 6.14
		}
		if err != nil {
			return total, err
		}
		if uint32(nr) == 0 {
			n, err := w.dequeued(depth+1, child)
			if total += n; err != nil {
				return total, err
			}
			continue
		}
		if err := w.parents(i); err != nil {
			return total, err
		}
		total++
		n, err := w.queue(depth+1, child)
		if total += n; err != nil {
			return total, err
		}
	}
	return total, nil
}

// parents prints the headers of group i's ancestors not yet shown,
// outermost first (crash's print_parent_task_group_fair).
func (w *groupWalk) parents(i int) error {
	p := w.groups[i].Parent
	if p < 0 || !w.use[p] {
		return nil
	}
	if err := w.parents(p); err != nil {
		return err
	}
	rq, err := w.k.groupCfsRq(w.groups[p].Addr, w.cpu)
	if err != nil {
		return err
	}
	w.lines = append(w.lines, w.header(w.groups[p].Depth, p, rq))
	w.use[p] = false
	return nil
}

// header is a group's header line; a cfs_rq's throttled flag comes with
// CONFIG_CFS_BANDWIDTH.
func (w *groupWalk) header(depth, group int, cfsRq uint64) GroupLine {
	l := GroupLine{Depth: depth, Group: group, CfsRq: cfsRq}
	if rq, err := w.k.ObjectOf(cfsRq, "struct cfs_rq"); err == nil {
		if th, err := memberUint(rq, "throttled"); err == nil {
			l.Throttled = uint32(th) != 0
		}
	}
	return l
}

// entityMyQ is sched_entity.my_q of the entity at se (0 for a task's, or
// without CONFIG_FAIR_GROUP_SCHED).
func (k *Kernel) entityMyQ(se uint64) (uint64, error) {
	if !k.typeHas("struct sched_entity", "my_q") {
		return 0, nil
	}
	e, err := k.ObjectOf(se, "struct sched_entity")
	if err != nil {
		return 0, err
	}
	return memberUint(e, "my_q")
}

// runqPrio is task_struct.prio of the task t.
func runqPrio(t Value) (int64, error) {
	p, err := t.Member("prio")
	if err != nil {
		return 0, err
	}
	return p.Int()
}
