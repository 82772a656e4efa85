package kernel

import (
	"fmt"
	"math/bits"
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
