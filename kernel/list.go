package kernel

import (
	"fmt"
	"iter"
)

// maxListLen bounds a walk of a linked structure: a corrupted list in a
// crashed kernel must end in an error, not a hang.
const maxListLen = 1 << 24

// ListError is a linked structure that could not be walked to its end.
type ListError struct {
	Kind string // "list_head", "hlist", "rb_tree"
	Head uint64
	At   uint64 // the node where the walk stopped
	Msg  string
	Err  error
}

func (e *ListError) Error() string {
	s := fmt.Sprintf("%s at %#x: node %#x: %s", e.Kind, e.Head, e.At, e.Msg)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *ListError) Unwrap() error { return e.Err }

// ListNodes walks the circular list_head at head (list_head.next is at
// offset 0 in every kernel) and yields each node's address, the head
// excluded. A read error, a NULL or a loop that never returns to head is
// yielded once as an error, ending the walk.
func (k *Kernel) ListNodes(head uint64) iter.Seq2[uint64, error] {
	return func(yield func(uint64, error) bool) {
		seen := map[uint64]bool{}
		prev := head
		node, err := k.ReadPointer(head)
		for n := 0; ; n++ {
			if err != nil {
				yield(0, &ListError{Kind: "list_head", Head: head, At: prev, Msg: "reading next", Err: err})
				return
			}
			if node == head {
				return
			}
			switch {
			case node == 0:
				yield(0, &ListError{Kind: "list_head", Head: head, At: prev, Msg: "next is NULL"})
				return
			case seen[node]:
				yield(0, &ListError{Kind: "list_head", Head: head, At: prev, Msg: fmt.Sprintf("loops back to %#x without reaching the head", node)})
				return
			case n >= maxListLen:
				yield(0, &ListError{Kind: "list_head", Head: head, At: node, Msg: fmt.Sprintf("longer than %d nodes", maxListLen)})
				return
			}
			seen[node] = true
			if !yield(node, nil) {
				return
			}
			prev = node
			node, err = k.ReadPointer(node)
		}
	}
}

// ListEntries walks the list_head at head and yields the objects of type
// typ that contain each node as member ("struct task_struct", "tasks").
func (k *Kernel) ListEntries(head uint64, typ, member string) iter.Seq2[Value, error] {
	return func(yield func(Value, error) bool) {
		ts, err := k.types()
		if err != nil {
			yield(Value{}, err)
			return
		}
		t, err := ts.Named(typ)
		if err != nil {
			yield(Value{}, err)
			return
		}
		mp, err := lookupMember(t, member)
		if err != nil {
			yield(Value{}, err)
			return
		}
		for node, err := range k.ListNodes(head) {
			if err != nil {
				yield(Value{}, err)
				return
			}
			if !yield(k.Object(node-uint64(mp.Offset), t), nil) {
				return
			}
		}
	}
}

// HListNodes walks the hlist_head at head (first at offset 0; each
// hlist_node's next at offset 0), yielding node addresses.
func (k *Kernel) HListNodes(head uint64) iter.Seq2[uint64, error] {
	return func(yield func(uint64, error) bool) {
		seen := map[uint64]bool{}
		prev := head
		node, err := k.ReadPointer(head)
		for n := 0; ; n++ {
			if err != nil {
				yield(0, &ListError{Kind: "hlist", Head: head, At: prev, Msg: "reading next", Err: err})
				return
			}
			if node == 0 {
				return
			}
			if seen[node] || n >= maxListLen {
				yield(0, &ListError{Kind: "hlist", Head: head, At: prev, Msg: fmt.Sprintf("loops at %#x", node)})
				return
			}
			seen[node] = true
			if !yield(node, nil) {
				return
			}
			prev = node
			node, err = k.ReadPointer(node)
		}
	}
}

// rb_node layout (include/linux/rbtree_types.h): __rb_parent_color,
// rb_right, rb_left — unchanged since 2.6.
const (
	rbRight = 8
	rbLeft  = 16
)

// RBNodes walks the rb_root at root in order (smallest key first),
// yielding each rb_node's address.
func (k *Kernel) RBNodes(root uint64) iter.Seq2[uint64, error] {
	return func(yield func(uint64, error) bool) {
		top, err := k.ReadPointer(root)
		if err != nil {
			yield(0, &ListError{Kind: "rb_tree", Head: root, At: root, Msg: "reading rb_node", Err: err})
			return
		}
		var stack []uint64
		seen := map[uint64]bool{}
		node := top
		for node != 0 || len(stack) > 0 {
			for node != 0 {
				if seen[node] || len(seen) >= maxListLen {
					yield(0, &ListError{Kind: "rb_tree", Head: root, At: node, Msg: "node reached twice"})
					return
				}
				seen[node] = true
				stack = append(stack, node)
				node, err = k.ReadPointer(node + rbLeft)
				if err != nil {
					yield(0, &ListError{Kind: "rb_tree", Head: root, At: stack[len(stack)-1], Msg: "reading rb_left", Err: err})
					return
				}
			}
			node = stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if !yield(node, nil) {
				return
			}
			cur := node
			node, err = k.ReadPointer(node + rbRight)
			if err != nil {
				yield(0, &ListError{Kind: "rb_tree", Head: root, At: cur, Msg: "reading rb_right", Err: err})
				return
			}
		}
	}
}
