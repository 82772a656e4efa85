package kernel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strings"

	"salvage/debuginfo"
)

// TaskInfo is what ps shows of one task, read once from its task_struct
// and mm_struct.
type TaskInfo struct {
	Task   uint64 // task_struct address
	PID    int64
	TGID   int64
	Parent uint64 // task_struct.parent: the task ps shows as PPID
	PPID   int64
	CPU    int
	// State is task_struct.__state (or .state) ORed with exit_state, as
	// crash's task_state() combines them.
	State uint64
	Flags uint64 // task_struct.flags (PF_*)
	Comm  string
	MM    uint64 // task_struct.mm; 0 for kernel threads
	// KernelThread is PF_KTHREAD: ps shows the command in brackets.
	KernelThread bool
	// Active is set for the task that was running on its CPU
	// (runqueues.curr of that CPU) when the dump was taken.
	Active bool
	// StartTime is task_struct.start_time: nanoseconds of monotonic time
	// since boot when the task was created.
	StartTime uint64
	// UTime and STime are task_struct.utime and .stime, in nanoseconds.
	UTime, STime uint64
	// Policy is task_struct.policy (SCHED_NORMAL 0, FIFO 1, RR 2,
	// BATCH 3, IDLE 5, DEADLINE 6); Prio is task_struct.prio.
	Policy uint64
	Prio   int64
	// KernelSP is thread.sp: the kernel stack pointer switch_to saved
	// when the task last left its CPU (stale for an active task).
	KernelSP uint64
	// LastRun is sched_info.last_arrival (CONFIG_SCHED_INFO): the run
	// queue clock, in nanoseconds, when the task last went on a CPU.
	LastRun uint64
	// TotalVM and RSS are in pages: mm_struct.total_vm and the resident
	// file, anonymous and shmem pages (see rss).
	TotalVM, RSS uint64
}

// IsIdle reports whether t is a per-CPU idle task (PID 0).
func (t *TaskInfo) IsIdle() bool { return t.PID == 0 }

// Task state bits (include/linux/sched.h, 4.14+). They are macros, not
// types, so neither DWARF nor BTF has them; crash derives them from the
// kernel's task_state_array[] (fs/proc/array.c), and TestTaskStateArray
// checks them against that array in every corpus dump.
const (
	taskRunning         = 0x0000
	taskInterruptible   = 0x0001
	taskUninterruptible = 0x0002
	taskStopped         = 0x0004
	taskTraced          = 0x0008
	exitDead            = 0x0010
	exitZombie          = 0x0020
	taskParked          = 0x0040
	taskDead            = 0x0080
	taskWakekill        = 0x0100
	taskWaking          = 0x0200
	taskNoload          = 0x0400
	taskNew             = 0x0800
)

// pfKthread is PF_KTHREAD (include/linux/sched.h, since 2.6.27).
const pfKthread = 0x00200000

// StateCode is crash's two-letter state (task_state_string in crash's
// task.c): RU IN UN ID ZO ST TR SW DE PA WA NE, "??" for none of them.
// Later tests win, as in crash: a zombie that is also dead is ZO.
func StateCode(state uint64) string {
	s := "??"
	set := false
	if state == taskRunning {
		s = "RU"
	}
	if state&taskInterruptible != 0 {
		s, set = "IN", true
	}
	if state&taskUninterruptible != 0 {
		s, set = "UN", true
		if state&taskNoload != 0 {
			s = "ID"
		}
	}
	if state&exitZombie != 0 {
		s, set = "ZO", true
	}
	if state&taskStopped != 0 {
		s, set = "ST", true
	}
	if state&taskTraced != 0 {
		s, set = "TR", true
	}
	if state&(exitDead|taskDead) != 0 && !set {
		s = "DE"
	}
	switch state {
	case taskParked:
		s = "PA"
	case taskWaking:
		s = "WA"
	case taskNew:
		s = "NE"
	}
	return s
}

// taskLayout holds the offsets ps reads, resolved once per table from
// the kernel's types (DWARF or BTF), so each task costs one read of its
// task_struct.
type taskLayout struct {
	size                          int64
	pid, tgid, comm, flags, mm    field
	state, exitState              field
	parent, cpu                   field
	startTime, utime, stime       field
	lastRun                       field // sched_info.last_arrival
	policy, prio                  field
	kernelSP                      field // thread.sp
	taskRSS                       field // task_struct.rss_stat.count (SPLIT_RSS_COUNTING, before 6.2); absent later
	mmTotalVM, mmRSS              field // mm_struct.total_vm, .rss_stat
	mmRSSPercpu                   bool  // rss_stat is struct percpu_counter[] (6.2+), not mm_rss_stat
	pcCount, pcCounters, pcSize   int64 // struct percpu_counter: count, counters, size
	fileIdx, anonIdx, shmemIdx    int   // MM_FILEPAGES, MM_ANONPAGES, MM_SHMEMPAGES
	mmSize                        int64 // bytes of mm_struct to read
	rssElem                       int64 // size of one rss_stat count (atomic_long_t)
	taskRSSElem                   int64 // size of one task_rss_stat count (int)
	haveTaskRSS, haveMM, haveTime bool
}

// field is one member's offset and size; ok is false when the member is
// absent from this kernel.
type field struct {
	off, size int64
	ok        bool
}

func (f field) uint(b []byte) uint64 {
	if !f.ok || f.off+f.size > int64(len(b)) {
		return 0
	}
	switch f.size {
	case 1:
		return uint64(b[f.off])
	case 2:
		return uint64(binary.LittleEndian.Uint16(b[f.off:]))
	case 4:
		return uint64(binary.LittleEndian.Uint32(b[f.off:]))
	case 8:
		return binary.LittleEndian.Uint64(b[f.off:])
	}
	return 0
}

func (f field) int(b []byte) int64 {
	v := f.uint(b)
	switch f.size {
	case 1:
		return int64(int8(v))
	case 2:
		return int64(int16(v))
	case 4:
		return int64(int32(v))
	}
	return int64(v)
}

func memberField(t *debuginfo.Type, path string) field {
	mp, err := debuginfo.LookupMember(t, path)
	if err != nil {
		return field{}
	}
	return field{off: mp.Offset, size: sizeOf(mp.Type), ok: true}
}

func (k *Kernel) taskLayout() (*taskLayout, error) {
	ts, err := k.types()
	if err != nil {
		return nil, err
	}
	task, err := ts.Struct("task_struct")
	if err != nil {
		return nil, err
	}
	l := &taskLayout{size: sizeOf(task)}
	need := func(f *field, paths ...string) error {
		for _, p := range paths {
			if *f = memberField(task, p); f.ok {
				return nil
			}
		}
		return fmt.Errorf("task_struct has none of %s (%s)", strings.Join(paths, ", "), ts.Source())
	}
	for _, n := range []struct {
		f     *field
		paths []string
	}{
		{&l.pid, []string{"pid"}},
		{&l.tgid, []string{"tgid"}},
		{&l.comm, []string{"comm"}},
		{&l.flags, []string{"flags"}},
		{&l.mm, []string{"mm"}},
		// __state since 5.14 (commit 2f064a59a1), state before.
		{&l.state, []string{"__state", "state"}},
		{&l.parent, []string{"parent"}},
		// cpu is in task_struct with THREAD_INFO_IN_TASK (x86_64 since
		// 4.9), else in thread_info.
		{&l.cpu, []string{"cpu", "thread_info.cpu"}},
	} {
		if err := need(n.f, n.paths...); err != nil {
			return nil, err
		}
	}
	l.exitState = memberField(task, "exit_state")
	l.startTime = memberField(task, "start_time")
	l.utime = memberField(task, "utime")
	l.stime = memberField(task, "stime")
	l.haveTime = l.startTime.ok
	l.lastRun = memberField(task, "sched_info.last_arrival")
	l.policy = memberField(task, "policy")
	l.kernelSP = memberField(task, "thread.sp")
	l.prio = memberField(task, "prio")
	// MM_FILEPAGES, MM_ANONPAGES, MM_SHMEMPAGES: an anonymous enum in
	// include/linux/mm_types_task.h, unchanged since 4.5.
	l.fileIdx, l.anonIdx, l.shmemIdx = 0, 1, 3
	if tr := memberField(task, "rss_stat.count"); tr.ok {
		l.taskRSS, l.haveTaskRSS = tr, true
		l.taskRSSElem = 4
		if mp, err := debuginfo.LookupMember(task, "rss_stat.count"); err == nil {
			if r := mp.Type.Resolve(); r != nil && r.Kind == debuginfo.KindArray {
				l.taskRSSElem = sizeOf(r.Elem)
			}
		}
	}
	mm, err := ts.Struct("mm_struct")
	if err == nil {
		l.haveMM = true
		l.mmSize = sizeOf(mm)
		l.mmTotalVM = memberField(mm, "total_vm")
		// rss_stat is struct mm_rss_stat { atomic_long_t count[] } up to
		// 6.1 and struct percpu_counter rss_stat[] since 6.2 (commit
		// f1a7941243c1): tell them apart by the member's type.
		if f := memberField(mm, "rss_stat.count"); f.ok {
			l.mmRSS = f
			l.rssElem = 8
			if mp, err := debuginfo.LookupMember(mm, "rss_stat.count"); err == nil {
				if r := mp.Type.Resolve(); r != nil && r.Kind == debuginfo.KindArray {
					l.rssElem = sizeOf(r.Elem)
				}
			}
		} else if mp, err := debuginfo.LookupMember(mm, "rss_stat"); err == nil {
			r := mp.Type.Resolve()
			if r != nil && r.Kind == debuginfo.KindArray {
				pc := r.Elem.Resolve()
				l.mmRSS = field{off: mp.Offset, size: sizeOf(r), ok: true}
				l.mmRSSPercpu = true
				l.pcSize = sizeOf(pc)
				c := memberField(pc, "count")
				cs := memberField(pc, "counters")
				if !c.ok || !cs.ok {
					return nil, errors.New("struct percpu_counter lacks count or counters")
				}
				l.pcCount, l.pcCounters = c.off, cs.off
			}
		}
	}
	// Read only as far as the last member ps uses: a task_struct spans
	// pages (9.5 KiB on 6.1) and a filtered dump may lack the page of its
	// tail, which crash, reading member by member, never asks for.
	l.size = 0
	for _, f := range []field{l.pid, l.tgid, l.comm, l.flags, l.mm, l.state, l.exitState, l.parent, l.cpu,
		l.startTime, l.utime, l.stime, l.lastRun, l.policy, l.prio, l.kernelSP, l.taskRSS} {
		if f.ok {
			l.size = max(l.size, f.off+f.size)
		}
	}
	return l, nil
}

// TaskTable reads every task with what ps shows of it, sorted as crash
// sorts its task table (sort_by_pid in crash's task.c): by PID, the
// per-CPU idle tasks (all PID 0) by CPU. With an error, the table holds
// the tasks that could be read.
func (k *Kernel) TaskTable() ([]TaskInfo, error) {
	l, err := k.taskLayout()
	if err != nil {
		return nil, fmt.Errorf("task table: %w", err)
	}
	active := k.activeTasks()
	var out []TaskInfo
	buf := make([]byte, l.size)
	// A task_struct that cannot be read (a damaged or incomplete dump) is
	// left out and reported; so is a broken task list, after the tasks
	// found before the break.
	var bad error
	skipped := 0
	for v, err := range k.Tasks() {
		if err != nil {
			bad = err
			break
		}
		addr := v.Address()
		if err := k.Read(buf, addr); err != nil {
			if bad == nil {
				bad = fmt.Errorf("task_struct at %#x: %w", addr, err)
			}
			skipped++
			continue
		}
		t := TaskInfo{
			Task:      addr,
			PID:       l.pid.int(buf),
			TGID:      l.tgid.int(buf),
			Parent:    l.parent.uint(buf),
			CPU:       int(l.cpu.uint(buf)),
			State:     l.state.uint(buf) | l.exitState.uint(buf),
			Flags:     l.flags.uint(buf),
			MM:        l.mm.uint(buf),
			StartTime: l.startTime.uint(buf),
			UTime:     l.utime.uint(buf),
			STime:     l.stime.uint(buf),
			LastRun:   l.lastRun.uint(buf),
			Policy:    l.policy.uint(buf),
			Prio:      l.prio.int(buf),
			KernelSP:  l.kernelSP.uint(buf),
		}
		comm := buf[l.comm.off : l.comm.off+l.comm.size]
		if i := indexByte(comm, 0); i >= 0 {
			comm = comm[:i]
		}
		t.Comm = string(comm)
		t.KernelThread = t.Flags&pfKthread != 0
		t.Active = active[addr]
		out = append(out, t)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := &out[i], &out[j]
		if a.PID == 0 && b.PID == 0 {
			return a.CPU < b.CPU
		}
		return a.PID < b.PID
	})
	// PPID is the parent's PID; the parent is normally in the table.
	byAddr := make(map[uint64]int, len(out))
	for i := range out {
		if _, dup := byAddr[out[i].Task]; !dup {
			byAddr[out[i].Task] = i
		}
	}
	for i := range out {
		if j, ok := byAddr[out[i].Parent]; ok {
			out[i].PPID = out[j].PID
		} else if out[i].Parent != 0 {
			if n, err := k.ReadUint(out[i].Parent+uint64(l.pid.off), 4); err == nil {
				out[i].PPID = int64(int32(n))
			}
		}
	}
	k.fillMemory(l, out)
	if skipped > 1 {
		bad = fmt.Errorf("%d task_structs could not be read, the first: %w", skipped, bad)
	}
	return out, bad
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// activeTasks is each CPU's running task: runqueues.curr of every
// possible CPU whose run queue can be read.
func (k *Kernel) activeTasks() map[uint64]bool {
	m := map[uint64]bool{}
	for _, t := range k.runningTasks() {
		if t != 0 {
			m[t] = true
		}
	}
	return m
}

// runningTasks is the task running on each CPU (runqueues.curr), indexed
// by CPU; 0 where a CPU's run queue cannot be read.
func (k *Kernel) runningTasks() []uint64 {
	n, err := k.NrCPUIDs()
	if err != nil {
		return nil
	}
	out := make([]uint64, n)
	for cpu := 0; cpu < n; cpu++ {
		rq, err := k.PerCPU("runqueues", cpu)
		if err != nil {
			continue
		}
		c, err := rq.Member("curr")
		if err != nil {
			continue
		}
		if p, err := c.Uint(); err == nil {
			out[cpu] = p
		}
	}
	return out
}

// HasLastRun reports whether tasks record when they last ran
// (task_struct.sched_info.last_arrival, CONFIG_SCHED_INFO).
func (k *Kernel) HasLastRun() bool {
	l, err := k.taskLayout()
	return err == nil && l.lastRun.ok
}

// RunQueueClock is runqueues.clock of cpu: the run queue's time in
// nanoseconds, against which LastRun is measured.
func (k *Kernel) RunQueueClock(cpu int) (uint64, error) {
	rq, err := k.PerCPU("runqueues", cpu)
	if err != nil {
		return 0, err
	}
	c, err := rq.Member("clock")
	if err != nil {
		return 0, err
	}
	return c.Uint()
}

// fillMemory sets TotalVM and RSS the way crash's get_task_mem_usage
// does: the mm's file, anonymous and shmem counters (negative ones
// count as 0), plus, with SPLIT_RSS_COUNTING (task_struct.rss_stat,
// before 6.2), every thread's not yet folded per-task counts.
func (k *Kernel) fillMemory(l *taskLayout, tasks []TaskInfo) {
	if !l.haveMM {
		return
	}
	// Per-thread-group sum of the threads' cached counts.
	split := map[int64]uint64{}
	if l.haveTaskRSS {
		b := make([]byte, 4*l.taskRSSElem)
		for _, t := range tasks {
			if t.MM == 0 {
				continue
			}
			if err := k.Read(b, t.Task+uint64(l.taskRSS.off)); err != nil {
				continue
			}
			for _, idx := range []int{l.fileIdx, l.anonIdx, l.shmemIdx} {
				f := field{off: int64(idx) * l.taskRSSElem, size: l.taskRSSElem, ok: true}
				if v := f.int(b); v > 0 {
					split[t.TGID] += uint64(v)
				}
			}
		}
	}
	type usage struct{ vm, rss uint64 }
	cache := map[uint64]usage{}
	mmBuf := make([]byte, l.mmSize)
	for i := range tasks {
		t := &tasks[i]
		if t.MM == 0 || t.State&exitZombie != 0 {
			continue
		}
		u, ok := cache[t.MM]
		if !ok {
			if err := k.Read(mmBuf, t.MM); err != nil {
				continue
			}
			u.vm = l.mmTotalVM.uint(mmBuf)
			var rss int64
			for _, idx := range []int{l.fileIdx, l.anonIdx, l.shmemIdx} {
				var c int64
				if l.mmRSSPercpu {
					c = k.percpuCounterSum(t.MM+uint64(l.mmRSS.off)+uint64(int64(idx)*l.pcSize), l)
				} else {
					f := field{off: l.mmRSS.off + int64(idx)*l.rssElem, size: l.rssElem, ok: true}
					c = f.int(mmBuf)
				}
				if c > 0 {
					rss += c
				}
			}
			u.rss = uint64(rss)
			cache[t.MM] = u
		}
		t.TotalVM = u.vm
		t.RSS = u.rss + split[t.TGID]
	}
}

// percpuCounterSum is percpu_counter_sum_positive of the counter at
// addr: its count plus each possible CPU's s32 delta.
func (k *Kernel) percpuCounterSum(addr uint64, l *taskLayout) int64 {
	count, err := k.ReadUint(addr+uint64(l.pcCount), 8)
	if err != nil {
		return 0
	}
	sum := int64(count)
	ptr, err := k.ReadPointer(addr + uint64(l.pcCounters))
	if err == nil && ptr != 0 {
		n, _ := k.NrCPUIDs()
		for cpu := 0; cpu < n; cpu++ {
			a, err := k.PerCPUPtr(ptr, cpu)
			if err != nil {
				continue
			}
			if v, err := k.ReadUint(a, 4); err == nil {
				sum += int64(int32(v))
			}
		}
	}
	if sum < 0 {
		return 0
	}
	return sum
}

// TotalPages is what crash divides RSS by for %MEM (vt->total_pages in
// crash's memory.c): the pages below high_memory in the direct map.
func (k *Kernel) TotalPages() (uint64, error) {
	a, err := k.SymbolAddr("high_memory")
	if err != nil {
		return 0, err
	}
	hm, err := k.ReadPointer(a)
	if err != nil {
		return 0, fmt.Errorf("high_memory: %w", err)
	}
	po := k.Arch.Layout().PageOffset
	if hm < po {
		return 0, fmt.Errorf("high_memory %#x is below the direct map at %#x", hm, po)
	}
	return (hm - po) >> 12, nil
}
