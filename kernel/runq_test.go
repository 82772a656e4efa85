package kernel

import (
	"encoding/binary"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"salvage/debuginfo"
)

// runqTestTypes are the members runq reads (kernel/sched/sched.h,
// include/linux/sched.h) at made-up offsets, with four RT priorities.
func runqTestTypes() fakeTypes {
	ulong := &debuginfo.Type{Kind: debuginfo.KindInt, Name: "unsigned long", Size: 8}
	sint := &debuginfo.Type{Kind: debuginfo.KindInt, Name: "int", Size: 4, Encoding: debuginfo.EncSigned}
	ptr := func(t *debuginfo.Type) *debuginfo.Type {
		return &debuginfo.Type{Kind: debuginfo.KindPointer, Size: 8, Elem: t}
	}
	arr := func(t *debuginfo.Type, n int64) *debuginfo.Type {
		return &debuginfo.Type{Kind: debuginfo.KindArray, Elem: t, Len: n, Size: n * t.Size}
	}
	st := func(name string, size int64) *debuginfo.Type {
		return &debuginfo.Type{Kind: debuginfo.KindStruct, Name: name, Size: size}
	}
	lh := st("list_head", 16)
	lh.Members = []debuginfo.Member{{Name: "next", Type: ptr(lh)}, {Name: "prev", Type: ptr(lh), Offset: 8}}
	rb := st("rb_node", 24)
	rb.Members = []debuginfo.Member{{Name: "__rb_parent_color", Type: ulong}, {Name: "rb_right", Type: ptr(rb), Offset: 8}, {Name: "rb_left", Type: ptr(rb), Offset: 16}}
	rbRoot := st("rb_root", 8)
	rbRoot.Members = []debuginfo.Member{{Name: "rb_node", Type: ptr(rb)}}
	cached := st("rb_root_cached", 16)
	cached.Members = []debuginfo.Member{{Name: "rb_root", Type: rbRoot}, {Name: "rb_leftmost", Type: ptr(rb), Offset: 8}}
	cfsRq := st("cfs_rq", 48)
	se := st("sched_entity", 64)
	se.Members = []debuginfo.Member{{Name: "run_node", Type: rb}, {Name: "my_q", Type: ptr(cfsRq), Offset: 32}}
	uint := &debuginfo.Type{Kind: debuginfo.KindInt, Name: "unsigned int", Size: 4}
	char := &debuginfo.Type{Kind: debuginfo.KindInt, Name: "char", Size: 1, Encoding: debuginfo.EncChar}
	kn := st("kernfs_node", 24)
	kn.Members = []debuginfo.Member{{Name: "parent", Type: ptr(kn), Offset: 8}, {Name: "name", Type: ptr(char), Offset: 16}}
	cgroup := st("cgroup", 16)
	cgroup.Members = []debuginfo.Member{{Name: "kn", Type: ptr(kn), Offset: 8}}
	css := st("cgroup_subsys_state", 16)
	css.Members = []debuginfo.Member{{Name: "cgroup", Type: ptr(cgroup)}}
	tg := st("task_group", 80)
	tg.Members = []debuginfo.Member{{Name: "css", Type: css}, {Name: "cfs_rq", Type: ptr(ptr(cfsRq)), Offset: 16},
		{Name: "parent", Type: ptr(tg), Offset: 24}, {Name: "siblings", Type: lh, Offset: 32}, {Name: "children", Type: lh, Offset: 48}}
	cfsRq.Members = []debuginfo.Member{{Name: "curr", Type: ptr(se)}, {Name: "tasks_timeline", Type: cached, Offset: 8},
		{Name: "tg", Type: ptr(tg), Offset: 24}, {Name: "nr_running", Type: uint, Offset: 32}, {Name: "throttled", Type: sint, Offset: 36}}
	prioArray := st("rt_prio_array", 80)
	prioArray.Members = []debuginfo.Member{{Name: "bitmap", Type: arr(ulong, 2)}, {Name: "queue", Type: arr(lh, 4), Offset: 16}}
	rtRq := st("rt_rq", 96)
	rtRq.Members = []debuginfo.Member{{Name: "active", Type: prioArray}}
	rtSE := st("sched_rt_entity", 32)
	rtSE.Members = []debuginfo.Member{{Name: "run_list", Type: lh}, {Name: "my_q", Type: ptr(rtRq), Offset: 16}}
	task := st("task_struct", 256)
	task.Members = []debuginfo.Member{{Name: "prio", Type: sint}, {Name: "se", Type: se, Offset: 64}, {Name: "rt", Type: rtSE, Offset: 128}}
	rq := st("rq", 256)
	rq.Members = []debuginfo.Member{{Name: "curr", Type: ptr(task)}, {Name: "cfs", Type: cfsRq, Offset: 16}, {Name: "rt", Type: rtRq, Offset: 64}}
	return fakeTypes{"struct list_head": lh, "struct rb_node": rb, "struct cfs_rq": cfsRq, "struct sched_entity": se,
		"struct rt_rq": rtRq, "struct sched_rt_entity": rtSE, "struct task_struct": task, "struct rq": rq, "var runqueues": rq,
		"struct task_group": tg, "struct cgroup": cgroup, "struct kernfs_node": kn}
}

const (
	rtRunqueues = 0xffffffff82000000
	rtPerCPU    = 0xffffffff82001000 // __per_cpu_offset[4]
	rtNrCPUIDs  = 0xffffffff82002000
	rtPresent   = 0xffffffff82002100
	rtHeap      = 0xffff888000100000 // task i at rtHeap + i*0x100
	rtGroups    = 0xffff888000200000 // group queues and entities
)

// TestRunQueuesSynthetic: two present CPUs of four possible. CPU 0 has
// RT tasks in two priorities and one in an RT group's queue, listed by
// priority with the group's in its place; its CFS queue runs a group
// whose queue holds a task (listed first, as crash does) and has a tree
// of a task, a group entity (its task listed in its place) and a task.
// CPU 1's tree is empty by rb_leftmost though its root is stale.
func TestRunQueuesSynthetic(t *testing.T) {
	vm := fakeVM{}
	put32 := func(addr uint64, v uint32) {
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], v)
		vm.write(addr, b[:])
	}
	task := func(i int) uint64 { return rtHeap + uint64(i)*0x100 }
	for i := 0; i < 12; i++ {
		vm.write(task(i), make([]byte, 0x100))
		put32(task(i), uint32(100+i))
	}
	vm.write(rtGroups, make([]byte, 0x1000))
	vm.put64(rtPerCPU, 0)
	vm.put64(rtPerCPU+8, 0x10000)
	put32(rtNrCPUIDs, 4)
	vm.put64(rtPresent, 0b11)
	rq := func(cpu int) uint64 { return rtRunqueues + uint64(cpu)*0x10000 }
	for cpu := 0; cpu < 2; cpu++ {
		vm.write(rq(cpu), make([]byte, 256))
	}
	// A circular list_head at head through the given nodes.
	list := func(head uint64, nodes ...uint64) {
		prev := head
		for _, n := range nodes {
			vm.put64(prev, n)
			vm.put64(n+8, prev)
			prev = n
		}
		vm.put64(prev, head)
		vm.put64(head+8, prev)
	}
	queue := func(prioArray uint64, i int) uint64 { return prioArray + 16 + uint64(i)*16 }
	rtOf := func(i int) uint64 { return task(i) + 128 }
	seOf := func(i int) uint64 { return task(i) + 64 }

	// CPU 0: curr task 0.
	vm.put64(rq(0), task(0))
	active := rq(0) + 64
	groupRq := uint64(rtGroups)         // an rt_rq of an RT group
	groupSE := uint64(rtGroups + 0x100) // its sched_rt_entity
	for i := 0; i < 4; i++ {
		list(queue(active, i))
		list(queue(groupRq, i))
	}
	list(queue(active, 1), rtOf(1), groupSE)
	vm.put64(groupSE+16, groupRq)
	list(queue(groupRq, 2), rtOf(2))
	list(queue(active, 3), rtOf(3))
	// CFS: curr is a group entity whose queue holds task 4; the tree has
	// task 5 (left), a group entity (root) whose queue holds task 6, and
	// task 7 (right).
	cfs := rq(0) + 16
	currGroupSE := uint64(rtGroups + 0x200)
	currGroupRq := uint64(rtGroups + 0x300)
	treeGroupSE := uint64(rtGroups + 0x400)
	treeGroupRq := uint64(rtGroups + 0x500)
	vm.put64(cfs, currGroupSE)
	vm.put64(currGroupSE+32, currGroupRq)
	vm.put64(currGroupRq+8, seOf(4))
	vm.put64(currGroupRq+16, seOf(4))
	vm.put64(cfs+8, treeGroupSE)
	vm.put64(cfs+16, seOf(5))
	vm.put64(treeGroupSE+16, seOf(5))
	vm.put64(treeGroupSE+8, seOf(7))
	vm.put64(treeGroupSE+32, treeGroupRq)
	vm.put64(treeGroupRq+8, seOf(6))
	vm.put64(treeGroupRq+16, seOf(6))

	// CPU 1: curr task 8; empty RT queues; a stale CFS root.
	vm.put64(rq(1), task(8))
	for i := 0; i < 4; i++ {
		list(queue(rq(1)+64, i))
	}
	vm.put64(rq(1)+16+8, seOf(9))

	syms := fakeSyms{"runqueues": rtRunqueues, "__per_cpu_offset": rtPerCPU, "nr_cpu_ids": rtNrCPUIDs, "__cpu_present_mask": rtPresent}
	k, err := New(nil, syms, runqTestTypes(), vm)
	if err != nil {
		t.Fatal(err)
	}
	qs, err := k.RunQueues()
	if err != nil {
		t.Fatal(err)
	}
	want := []RunQueue{
		{CPU: 0, Addr: rq(0), Curr: task(0), RTArray: active, CFSRoot: cfs + 8,
			RT:  []QueuedTask{{task(1), 1}, {task(2), 2}, {task(3), 3}},
			CFS: []QueuedTask{{task(4), 104}, {task(5), 105}, {task(6), 106}, {task(7), 107}}},
		{CPU: 1, Addr: rq(1), Curr: task(8), RTArray: rq(1) + 64, CFSRoot: rq(1) + 24},
	}
	if !reflect.DeepEqual(qs, want) {
		t.Errorf("run queues:\n got %+v\nwant %+v", qs, want)
	}

	// A task twice in a tree is crash's "duplicate CFS runqueue node",
	// an error of that CPU's queue; an unreadable list is one too.
	vm.put64(currGroupRq+8, seOf(5))
	vm.put64(currGroupRq+16, seOf(5))
	vm.put64(queue(rq(1)+64, 2), 0xffff888000900000)
	qs, err = k.RunQueues()
	if err != nil || len(qs) != 2 {
		t.Fatalf("%d queues, %v", len(qs), err)
	}
	if qs[0].Err == nil || !strings.Contains(qs[0].Err.Error(), "duplicate CFS runqueue node") {
		t.Errorf("CPU 0: %v", qs[0].Err)
	}
	if qs[1].Err == nil || !strings.Contains(qs[1].Err.Error(), "0xffff888000900000") {
		t.Errorf("CPU 1: %v", qs[1].Err)
	}

	// A group whose queue is the queue holding it ends in an error.
	vm.put64(currGroupRq+8, 0)
	vm.put64(currGroupRq+16, 0)
	vm.put64(treeGroupSE+32, cfs)
	if qs, err = k.RunQueues(); err != nil || qs[0].Err == nil || !strings.Contains(qs[0].Err.Error(), "reached twice") {
		t.Errorf("CFS group holding itself: %v %v", qs[0].Err, err)
	}
	vm.put64(groupSE+16, active) // an RT group whose queue is the root's
	if qs, err = k.RunQueues(); err != nil || qs[0].Err == nil || !strings.Contains(qs[0].Err.Error(), "reached twice") {
		t.Errorf("RT group holding itself: %v %v", qs[0].Err, err)
	}
}

// TestCFSGroupLinesSynthetic: runq -g's walk of one CPU. The root queue
// runs group A (whose queue runs the CPU's current task and holds group
// B's entity, B's queue a task) and holds task 1; group C is throttled
// (its entity dequeued, its queue holding task 4); group D's queue is
// empty but its child E's holds task 5. Expected, in crash's order
// (dump_tasks_in_task_group_cfs_rq, then the dequeued groups with the
// headers of parents not yet shown): A, current, B, task 3, task 1, C
// (throttled), task 4, D, E, task 5. The lab's guests have no groups
// below the root.
func TestCFSGroupLinesSynthetic(t *testing.T) {
	vm := fakeVM{}
	task := func(i int) uint64 { return rtHeap + uint64(i)*0x100 }
	for i := 0; i < 8; i++ {
		vm.write(task(i), make([]byte, 0x100))
		vm.write(task(i), []byte{byte(100 + i)})
	}
	seOf := func(i int) uint64 { return task(i) + 64 }
	obj := func(i int) uint64 { return rtGroups + uint64(i)*0x100 }
	vm.write(rtGroups, make([]byte, 0x3000))
	// Groups root, A..E at obj(0..5); their cfs_rq pointer arrays at
	// obj(10+g), their queues at obj(20+g); group entities at obj(30+g);
	// cgroups at obj(40+g), kernfs nodes at obj(50+g) (names at +0x80).
	names := []string{"", "a", "b", "c", "d", "e"}
	parent := []int{-1, 0, 1, 0, 0, 4}
	for g := 0; g < 6; g++ {
		vm.put64(obj(g)+16, obj(10+g))
		vm.put64(obj(10+g), obj(20+g))
		vm.put64(obj(20+g)+24, obj(g))
		vm.put64(obj(g), obj(40+g))
		vm.put64(obj(40+g)+8, obj(50+g))
		if g > 0 {
			vm.put64(obj(50+g)+8, obj(50))
			vm.put64(obj(50+g)+16, obj(50+g)+0x80)
			vm.write(obj(50+g)+0x80, []byte(names[g]+"\x00"))
			vm.put64(obj(30+g)+32, obj(20+g)) // the group entity's my_q
			vm.put64(obj(g)+24, obj(parent[g]))
		}
	}
	children := func(g int, kids ...int) {
		head := obj(g) + 48
		prev := head
		for _, c := range kids {
			vm.put64(prev, obj(c)+32)
			vm.put64(obj(c)+32+8, prev)
			prev = obj(c) + 32
		}
		vm.put64(prev, head)
		vm.put64(head+8, prev)
	}
	children(0, 1, 3, 4)
	children(1, 2)
	children(2)
	children(3)
	children(4, 5)
	children(5)
	// A queue holding one rb node (and nr_running 1).
	holds := func(q, se uint64) {
		vm.put64(q+8, se)
		vm.put64(q+16, se)
		vm.write(q+32, []byte{1})
	}
	root := obj(20)
	vm.put64(root, obj(31)) // running: group A's entity
	holds(root, seOf(1))
	vm.put64(obj(21), seOf(2)) // A runs task 2, the CPU's current task
	holds(obj(21), obj(32))    // and holds B's entity
	holds(obj(22), seOf(3))
	holds(obj(23), seOf(4)) // C: throttled, its entity in no tree
	vm.write(obj(23)+36, []byte{1})
	holds(obj(25), seOf(5)) // E, under D whose queue is empty

	syms := fakeSyms{"root_task_group": obj(0), "runqueues": rtRunqueues, "__per_cpu_offset": rtPerCPU, "nr_cpu_ids": rtNrCPUIDs}
	k, err := New(nil, syms, runqTestTypes(), vm)
	if err != nil {
		t.Fatal(err)
	}
	groups, err := k.TaskGroups()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, g := range groups {
		got = append(got, fmt.Sprintf("%s/%d", g.Name, g.Depth))
	}
	if want := "//0 a/1 c/1 d/1 b/2 e/2"; strings.Join(got, " ") != want {
		t.Fatalf("groups %s, want %s", strings.Join(got, " "), want)
	}
	idx := map[string]int{}
	for i, g := range groups {
		idx[g.Name] = i
	}
	rootRq, lines, err := k.CFSGroupLines(groups, 0, task(2))
	if err != nil || rootRq != root {
		t.Fatalf("root cfs_rq %x, want %x: %v", rootRq, root, err)
	}
	hdr := func(d int, name string, q int, th bool) GroupLine {
		return GroupLine{Depth: d, Group: idx[name], CfsRq: obj(20 + q), Throttled: th}
	}
	tsk := func(d, i int, cur bool) GroupLine {
		return GroupLine{Depth: d, Group: -1, Task: task(i), Prio: int64(100 + i), Current: cur}
	}
	want := []GroupLine{hdr(1, "a", 1, false), tsk(1, 2, true), hdr(2, "b", 2, false), tsk(2, 3, false), tsk(0, 1, false),
		hdr(1, "c", 3, true), tsk(1, 4, false), hdr(1, "d", 4, false), hdr(2, "e", 5, false), tsk(2, 5, false)}
	if !reflect.DeepEqual(lines, want) {
		t.Errorf("lines:\n got %+v\nwant %+v", lines, want)
	}
}
