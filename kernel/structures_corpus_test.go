package kernel

import (
	"fmt"
	"testing"

	"salvage/lab/corpus"
)

// TestRBTreeMatchesList walks the kernel's two indexes of vmalloc areas,
// an rb_tree and a sorted list: in order, they hold the same areas. Before
// 6.9 they are the globals vmap_area_root and vmap_area_list; since, each
// node of vmap_nodes has its own (busy.root, busy.head: struct rb_list in
// mm/vmalloc.c), and the test walks the first node's.
func TestRBTreeMatchesList(t *testing.T) {
	m := corpus.Require(t)
	for _, d := range m.Dumps {
		t.Run(d.ID, func(t *testing.T) {
			k := openTypedKernel(t, m, d)
			var rootAddr, headAddr uint64
			if root, err := k.Global("vmap_area_root"); err == nil {
				head, err := k.Global("vmap_area_list")
				if err != nil {
					t.Fatal(err)
				}
				rootAddr, headAddr = root.Address(), head.Address()
			} else {
				nodes, nerr := k.Global("vmap_nodes")
				if nerr != nil {
					t.Fatalf("%v; %v", err, nerr)
				}
				node, err := nodes.Deref()
				if err != nil {
					t.Fatal(err)
				}
				root, err := node.Member("busy.root")
				if err != nil {
					t.Fatal(err)
				}
				head, err := node.Member("busy.head")
				if err != nil {
					t.Fatal(err)
				}
				rootAddr, headAddr = root.Address(), head.Address()
			}
			var byTree, byList []uint64
			for node, err := range k.RBNodes(rootAddr) {
				if err != nil {
					t.Fatal(err)
				}
				va, err := k.ContainerOf(node, "struct vmap_area", "rb_node")
				if err != nil {
					t.Fatal(err)
				}
				byTree = append(byTree, va.Address())
			}
			for va, err := range k.ListEntries(headAddr, "struct vmap_area", "list") {
				if err != nil {
					t.Fatal(err)
				}
				byList = append(byList, va.Address())
			}
			if len(byTree) < 10 || fmt.Sprint(byTree) != fmt.Sprint(byList) {
				t.Errorf("rb_tree has %d areas, list %d; they differ", len(byTree), len(byList))
			}
			// In address order.
			prev := uint64(0)
			for _, a := range byTree {
				va, _ := k.ObjectOf(a, "struct vmap_area")
				s, _ := va.Member("va_start")
				start, err := s.Uint()
				if err != nil {
					t.Fatal(err)
				}
				if start <= prev {
					t.Fatalf("vmap_area %#x starts at %#x, not after %#x", a, start, prev)
				}
				prev = start
			}
		})
	}
}

// TestHListPidLinks finds each task on the hlist of its struct pid
// (thread_pid->tasks[PIDTYPE_PID], linked through pid_links[0]).
func TestHListPidLinks(t *testing.T) {
	m := corpus.Require(t)
	for _, d := range m.Dumps {
		t.Run(d.ID, func(t *testing.T) {
			k := openTypedKernel(t, m, d)
			init, err := k.Global("init_task")
			if err != nil {
				t.Fatal(err)
			}
			head, _ := init.Member("tasks")
			n := 0
			for task, err := range k.ListEntries(head.Address(), "struct task_struct", "tasks") {
				if err != nil {
					t.Fatal(err)
				}
				hl, err := task.Member("thread_pid->tasks[0]")
				if err != nil {
					t.Fatal(err)
				}
				link, err := task.Member("pid_links[0]")
				if err != nil {
					t.Fatal(err)
				}
				found := false
				for node, err := range k.HListNodes(hl.Address()) {
					if err != nil {
						t.Fatal(err)
					}
					found = found || node == link.Address()
				}
				if !found {
					t.Errorf("task %#x is not on its pid's hlist %#x", task.Address(), hl.Address())
				}
				n++
			}
			if n < 10 {
				t.Errorf("only %d tasks", n)
			}
		})
	}
}
