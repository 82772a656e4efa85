package kernel

import (
	"encoding/binary"
	"strings"
	"testing"

	"salvage/debuginfo"
)

// TestStateCode checks crash's two-letter states (task_state_string in
// crash's task.c) for the kernel's state bits (include/linux/sched.h),
// including the combinations where crash's later tests win.
func TestStateCode(t *testing.T) {
	for _, c := range []struct {
		state uint64
		want  string
	}{
		{0, "RU"},
		{taskInterruptible, "IN"},
		{taskUninterruptible, "UN"},
		{taskUninterruptible | taskNoload, "ID"}, // TASK_IDLE
		{taskUninterruptible | taskWakekill, "UN"},
		{taskStopped, "ST"},
		{taskStopped | taskWakekill, "ST"}, // TASK_STOPPED
		{taskTraced, "TR"},
		{taskTraced | taskWakekill, "TR"},
		{exitZombie, "ZO"},
		{exitZombie | taskDead, "ZO"}, // a zombie's __state is TASK_DEAD
		{exitDead, "DE"},
		{exitDead | taskDead, "DE"},
		{taskDead, "DE"},
		{taskParked, "PA"},
		{taskWaking, "WA"},
		{taskNew, "NE"},
		{taskWakekill, "??"},
		{1 << 20, "??"},
	} {
		if got := StateCode(c.state); got != c.want {
			t.Errorf("StateCode(%#x) = %s, want %s", c.state, got, c.want)
		}
	}
}

// TestFieldDecode checks the little-endian, sign-aware decoding of
// task_struct fields, and that a field beyond the buffer or absent from
// the kernel reads as 0 instead of panicking.
func TestFieldDecode(t *testing.T) {
	b := []byte{0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x80}
	for _, c := range []struct {
		f    field
		u    uint64
		i    int64
		name string
	}{
		{field{0, 4, true}, 0xffffffff, -1, "int32 -1"},
		{field{4, 4, true}, 0x80000002, -2147483646, "int32 min+2"},
		{field{0, 8, true}, 0x80000002ffffffff, -9223372023969873921, "int64"},
		{field{6, 2, true}, 0x8000, -32768, "int16"},
		{field{7, 1, true}, 0x80, -128, "int8"},
		{field{6, 4, true}, 0, 0, "past the end"},
		{field{0, 3, true}, 0, 0, "odd size"},
		{field{0, 4, false}, 0, 0, "absent"},
	} {
		if u, i := c.f.uint(b), c.f.int(b); u != c.u || i != c.i {
			t.Errorf("%s: uint %#x int %d, want %#x %d", c.name, u, i, c.u, c.i)
		}
	}
}

// TestUptimeJiffiesWrap checks jiffies since boot from jiffies_64 before
// and after the 32-bit wrap that INITIAL_JIFFIES puts five minutes after
// boot.
func TestUptimeJiffiesWrap(t *testing.T) {
	// INITIAL_JIFFIES is -300*HZ as 32 bits: jiffies_64 starts just
	// below 2^32, so the first five minutes since boot read 0..300s.
	const hz = 250
	var initial uint64 = 1<<32 - 300*hz
	for _, c := range []struct{ j64, want uint64 }{
		{initial, 0},
		{initial + 23*hz, 23 * hz},
		{1 << 32, 300 * hz},             // the 32-bit wrap, five minutes in
		{1<<32 + 100*hz, 400 * hz},      // after it
		{1<<33 + 5, 1<<32 + 5 + 300*hz}, // a second wrap of the low word
	} {
		if got := uptimeFromJiffies64(c.j64, hz); got != c.want {
			t.Errorf("jiffies_64 %#x: %d jiffies since boot, want %d", c.j64, got, c.want)
		}
	}
}

// TestRSSPercpuCounter checks the 6.2+ layout of mm_struct.rss_stat, an
// array of struct percpu_counter (commit f1a7941243c1), on a synthetic
// kernel: RSS is each counter's count plus every CPU's s32 delta, a
// negative sum counting as 0 (percpu_counter_sum_positive); and a
// kernel whose task_struct has no rss_stat adds no per-thread counts.
func TestRSSPercpuCounter(t *testing.T) {
	s64 := &debuginfo.Type{Kind: debuginfo.KindInt, Name: "s64", Size: 8, Encoding: debuginfo.EncSigned}
	s32 := &debuginfo.Type{Kind: debuginfo.KindInt, Name: "s32", Size: 4, Encoding: debuginfo.EncSigned}
	ulong := &debuginfo.Type{Kind: debuginfo.KindInt, Name: "unsigned long", Size: 8}
	uint := &debuginfo.Type{Kind: debuginfo.KindInt, Name: "unsigned int", Size: 4}
	char := &debuginfo.Type{Kind: debuginfo.KindInt, Name: "char", Size: 1, Encoding: debuginfo.EncChar}
	pc := &debuginfo.Type{Kind: debuginfo.KindStruct, Name: "percpu_counter", Size: 40, Members: []debuginfo.Member{
		{Name: "count", Type: s64, Offset: 8},
		{Name: "counters", Type: &debuginfo.Type{Kind: debuginfo.KindPointer, Size: 8, Elem: s32}, Offset: 32},
	}}
	mm := &debuginfo.Type{Kind: debuginfo.KindStruct, Name: "mm_struct", Size: 8 + 4*40, Members: []debuginfo.Member{
		{Name: "total_vm", Type: ulong},
		{Name: "rss_stat", Type: &debuginfo.Type{Kind: debuginfo.KindArray, Elem: pc, Len: 4, Size: 160}, Offset: 8},
	}}
	mmp := &debuginfo.Type{Kind: debuginfo.KindPointer, Size: 8, Elem: mm}
	task := &debuginfo.Type{Kind: debuginfo.KindStruct, Name: "task_struct", Size: 64}
	taskp := &debuginfo.Type{Kind: debuginfo.KindPointer, Size: 8, Elem: task}
	task.Members = []debuginfo.Member{
		{Name: "__state", Type: uint}, {Name: "cpu", Type: uint, Offset: 4}, {Name: "flags", Type: uint, Offset: 8},
		{Name: "pid", Type: s32, Offset: 12}, {Name: "tgid", Type: s32, Offset: 16},
		{Name: "mm", Type: mmp, Offset: 24}, {Name: "parent", Type: taskp, Offset: 32},
		{Name: "comm", Type: &debuginfo.Type{Kind: debuginfo.KindArray, Elem: char, Len: 16, Size: 16}, Offset: 40},
	}
	types := fakeTypes{"struct task_struct": task, "struct mm_struct": mm, "struct percpu_counter": pc}
	const (
		mmAddr   = 0xffff888000010000
		cntAddr  = 0x2000 // per-CPU counters: s32[4] at cntAddr + each CPU's offset
		pcpuBase = 0xffffffff81002000
		nrCPUs   = 0xffffffff81003000
	)
	vm := fakeVM{}
	vm.put64(mmAddr, 1234) // total_vm
	counts := []int64{100, 50, 7, -30}
	deltas := [2][4]int32{{5, -60, 1, 10}, {-2, 3, 0, 10}}
	for i, c := range counts {
		base := uint64(mmAddr) + 8 + 40*uint64(i)
		vm.put64(base+8, uint64(c))
		vm.put64(base+32, cntAddr+uint64(4*i))
	}
	for cpu, off := range []uint64{0xffff888100000000, 0xffff888200000000} {
		vm.put64(pcpuBase+uint64(8*cpu), off)
		for i, d := range deltas[cpu] {
			var b [4]byte
			binary.LittleEndian.PutUint32(b[:], uint32(d))
			vm.write(off+cntAddr+uint64(4*i), b[:])
		}
	}
	vm.write(nrCPUs, []byte{2, 0, 0, 0})
	k, err := New(nil, fakeSyms{"__per_cpu_offset": pcpuBase, "nr_cpu_ids": nrCPUs}, types, vm)
	if err != nil {
		t.Fatal(err)
	}
	l, err := k.taskLayout()
	if err != nil {
		t.Fatal(err)
	}
	if !l.mmRSSPercpu || l.haveTaskRSS || l.pcSize != 40 {
		t.Fatalf("layout: percpu %v, task counts %v, counter size %d", l.mmRSSPercpu, l.haveTaskRSS, l.pcSize)
	}
	tasks := []TaskInfo{{PID: 1, TGID: 1, MM: mmAddr}, {PID: 2, TGID: 2}, {PID: 3, TGID: 3, MM: mmAddr, State: exitZombie}}
	k.fillMemory(l, tasks)
	// file 100+5-2, anon max(0, 50-60+3) = 0, shmem -30+10+10 → 0; the
	// swap entries counter (index 2) is not resident.
	if tasks[0].RSS != 103 || tasks[0].TotalVM != 1234 {
		t.Errorf("RSS %d pages, total_vm %d; want 103, 1234", tasks[0].RSS, tasks[0].TotalVM)
	}
	if tasks[1].RSS != 0 || tasks[2].RSS != 0 || tasks[2].TotalVM != 0 {
		t.Errorf("a task without mm, and a zombie, have no memory: %+v %+v", tasks[1], tasks[2])
	}
}

// TestTaskTablePartial walks a synthetic task list in which one
// task_struct's second page is missing from the dump: the table keeps
// the tasks it can read, in crash's order, and says which one it lost,
// instead of failing or panicking.
func TestTaskTablePartial(t *testing.T) {
	s32 := &debuginfo.Type{Kind: debuginfo.KindInt, Name: "int", Size: 4, Encoding: debuginfo.EncSigned}
	uint := &debuginfo.Type{Kind: debuginfo.KindInt, Name: "unsigned int", Size: 4}
	char := &debuginfo.Type{Kind: debuginfo.KindInt, Name: "char", Size: 1, Encoding: debuginfo.EncChar}
	lh := &debuginfo.Type{Kind: debuginfo.KindStruct, Name: "list_head", Size: 16}
	lhp := &debuginfo.Type{Kind: debuginfo.KindPointer, Size: 8, Elem: lh}
	lh.Members = []debuginfo.Member{{Name: "next", Type: lhp}, {Name: "prev", Type: lhp, Offset: 8}}
	task := &debuginfo.Type{Kind: debuginfo.KindStruct, Name: "task_struct", Size: 8192}
	taskp := &debuginfo.Type{Kind: debuginfo.KindPointer, Size: 8, Elem: task}
	task.Members = []debuginfo.Member{
		{Name: "__state", Type: uint}, {Name: "cpu", Type: uint, Offset: 4}, {Name: "flags", Type: uint, Offset: 8},
		{Name: "pid", Type: s32, Offset: 12}, {Name: "tgid", Type: s32, Offset: 16},
		{Name: "mm", Type: &debuginfo.Type{Kind: debuginfo.KindPointer, Size: 8}, Offset: 24},
		{Name: "parent", Type: taskp, Offset: 32},
		{Name: "comm", Type: &debuginfo.Type{Kind: debuginfo.KindArray, Elem: char, Len: 16, Size: 16}, Offset: 40},
		{Name: "tasks", Type: lh, Offset: 64}, {Name: "thread_group", Type: lh, Offset: 80},
		// On the second page: a task whose second page the dump lacks
		// cannot be shown (a missing page past the members ps reads
		// would not matter).
		{Name: "stime", Type: &debuginfo.Type{Kind: debuginfo.KindInt, Name: "u64", Size: 8}, Offset: 4104},
	}
	rq := &debuginfo.Type{Kind: debuginfo.KindStruct, Name: "rq", Size: 16, Members: []debuginfo.Member{
		{Name: "idle", Type: taskp}, {Name: "curr", Type: taskp, Offset: 8}}}
	types := fakeTypes{"struct task_struct": task, "struct rq": rq, "struct list_head": lh,
		"var init_task": task, "var runqueues": rq}
	const (
		initTask = 0xffffffff82000000
		taskA    = 0xffff888000100000
		taskB    = 0xffff888000200000 // its second page, with stime, is not in the dump
		rqLink   = 0x30000
		pcpu     = 0xffffffff81002000
		nrCPUs   = 0xffffffff81003000
		pcpuOff  = 0xffff888100000000
	)
	vm := fakeVM{}
	put32 := func(a uint64, v uint32) {
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], v)
		vm.write(a, b[:])
	}
	mk := func(addr uint64, pid uint32, comm string, next uint64, pages int) {
		for p := 0; p < pages; p++ {
			vm.write(addr+uint64(4096*p), make([]byte, 4096))
		}
		put32(addr+12, pid)
		put32(addr+16, pid)
		vm.put64(addr+32, initTask)
		vm.write(addr+40, []byte(comm+"\x00"))
		vm.put64(addr+64, next+64)
		vm.put64(addr+80, addr+80) // a thread group of one
		vm.put64(addr+88, addr+80)
	}
	mk(initTask, 0, "swapper/0", taskA, 2)
	mk(taskA, 1, "init", taskB, 2)
	mk(taskB, 2, "kthreadd", initTask, 1)
	put32(initTask+8, pfKthread)
	vm.put64(pcpu, pcpuOff)
	vm.write(nrCPUs, []byte{1, 0, 0, 0})
	vm.put64(pcpuOff+rqLink, initTask)
	vm.put64(pcpuOff+rqLink+8, taskA)
	k, err := New(nil, fakeSyms{"init_task": initTask, "runqueues": rqLink, "__per_cpu_offset": pcpu, "nr_cpu_ids": nrCPUs}, types, vm)
	if err != nil {
		t.Fatal(err)
	}
	tt, err := k.TaskTable()
	if err == nil || !strings.Contains(err.Error(), "task_struct at 0xffff888000200000") {
		t.Errorf("error %v, want one naming task B", err)
	}
	if len(tt) != 2 || tt[0].Comm != "swapper/0" || !tt[0].KernelThread || tt[1].PID != 1 || !tt[1].Active || tt[1].PPID != 0 {
		t.Errorf("table %+v", tt)
	}
}
