package kernel

import (
	"fmt"
	"iter"
)

// Tasks yields every task as crash's ps lists them: each CPU's idle task
// (runqueues.idle; CPU 0's is init_task) first, then every thread group
// on init_task.tasks followed by its other threads. Threads are found on
// signal->thread_head (linked by thread_node, 6.1+) or, on older
// kernels, on the leader's thread_group list.
func (k *Kernel) Tasks() iter.Seq2[Value, error] {
	return func(yield func(Value, error) bool) {
		fail := func(err error) { yield(Value{}, fmt.Errorf("tasks: %w", err)) }
		init, err := k.Global("init_task")
		if err != nil {
			fail(err)
			return
		}
		ncpu, err := k.NrCPUIDs()
		if err != nil {
			fail(err)
			return
		}
		for cpu := 0; cpu < ncpu; cpu++ {
			rq, err := k.PerCPU("runqueues", cpu)
			if err == nil {
				rq, err = rq.Member("idle")
			}
			if err == nil {
				rq, err = rq.Deref()
			}
			if err != nil {
				// A possible CPU that never came online has no idle task.
				continue
			}
			if !yield(rq, nil) {
				return
			}
		}
		head, err := init.Member("tasks")
		if err != nil {
			fail(err)
			return
		}
		_, noThreadNode := lookupMemberErr(k, "struct task_struct", "thread_node")
		for leader, err := range k.ListEntries(head.Address(), "struct task_struct", "tasks") {
			if err != nil {
				fail(err)
				return
			}
			if !yield(leader, nil) {
				return
			}
			var threads iter.Seq2[Value, error]
			if noThreadNode == nil { // 6.1+: signal->thread_head
				th, err := leader.Member("signal->thread_head")
				if err != nil {
					fail(err)
					return
				}
				threads = k.ListEntries(th.Address(), "struct task_struct", "thread_node")
			} else {
				// thread_group is a ring through all threads; walking it
				// from the leader yields the others.
				tg, err := leader.Member("thread_group")
				if err != nil {
					fail(err)
					return
				}
				threads = k.ListEntries(tg.Address(), "struct task_struct", "thread_group")
			}
			for th, err := range threads {
				if err != nil {
					fail(err)
					return
				}
				if th.Address() == leader.Address() {
					continue
				}
				if !yield(th, nil) {
					return
				}
			}
		}
	}
}

func lookupMemberErr(k *Kernel, typ, member string) (int64, error) {
	ts, err := k.types()
	if err != nil {
		return 0, err
	}
	t, err := ts.Named(typ)
	if err != nil {
		return 0, err
	}
	mp, err := lookupMember(t, member)
	return mp.Offset, err
}
