package kernel

import (
	"fmt"
	"iter"
)

// The maple tree (lib/maple_tree.c, include/linux/maple_tree.h, 6.1+)
// holds ranges [min, max] of unsigned long keys. struct maple_tree's
// ma_root is either an entry (a tree of one entry at index 0) or an
// encoded node pointer: the 256-byte aligned struct maple_node with, in
// its low byte, bit 1 set (an "internal" entry, as in the XArray) and the
// node type (enum maple_type) in bits 3-6. A node's pivots bound its
// slots' ranges: slot i covers [previous pivot + 1, pivot[i]], the last
// slot up to the node's max; a zero pivot after the first ends the
// node's data. Leaves (maple_leaf_64) hold the entries, the other nodes
// (maple_range_64, maple_arange_64) hold child node pointers.

// enum maple_type (include/linux/maple_tree.h).
const (
	mapleDense    = 0
	mapleLeaf64   = 1
	mapleRange64  = 2
	mapleARange64 = 3
)

const (
	mapleNodeMask      = 0xff // MAPLE_NODE_MASK: the encoding's low bits
	mapleNodeTypeShift = 3    // MAPLE_NODE_TYPE_SHIFT
	mapleNodeTypeMask  = 0x0f // MAPLE_NODE_TYPE_MASK
	mapleReserved      = 4096 // MAPLE_RESERVED_RANGE: internal values below
	mapleMaxHeight     = 31   // MAPLE_HEIGHT_MAX
)

// MapleEntry is one entry of a maple tree: the range of keys it covers
// and its value (a pointer, for the trees the kernel keeps objects in).
type MapleEntry struct {
	Min, Max uint64
	Value    uint64
}

// mapleLayout is where the pivots and slots of the two node layouts
// are (struct maple_range_64 and struct maple_arange_64).
type mapleLayout struct {
	rPivot, rSlot, rPivots, rSlots int64
	aPivot, aSlot, aPivots, aSlots int64
}

func (k *Kernel) mapleLayout() (*mapleLayout, error) {
	ts, err := k.types()
	if err != nil {
		return nil, err
	}
	l := &mapleLayout{}
	for _, n := range []struct {
		typ                 string
		pivot, slot, np, ns *int64
	}{
		{"struct maple_range_64", &l.rPivot, &l.rSlot, &l.rPivots, &l.rSlots},
		{"struct maple_arange_64", &l.aPivot, &l.aSlot, &l.aPivots, &l.aSlots},
	} {
		t, err := ts.Named(n.typ)
		if err != nil {
			return nil, fmt.Errorf("maple tree: %w", err)
		}
		p, err := lookupMember(t, "pivot")
		if err != nil {
			return nil, fmt.Errorf("maple tree: %s: %w", n.typ, err)
		}
		s, err := lookupMember(t, "slot")
		if err != nil {
			return nil, fmt.Errorf("maple tree: %s: %w", n.typ, err)
		}
		pr, sr := p.Type.Resolve(), s.Type.Resolve()
		if pr == nil || sr == nil || pr.Len <= 0 || sr.Len <= 0 {
			return nil, fmt.Errorf("maple tree: %s: pivot and slot are not arrays", n.typ)
		}
		*n.pivot, *n.slot, *n.np, *n.ns = p.Offset, s.Offset, pr.Len, sr.Len
	}
	return l, nil
}

// MapleEntries yields the non-NULL entries of the maple tree at tree (a
// struct maple_tree) in key order. A node that cannot be read, or a
// tree deeper than the kernel allows, is yielded as an error that ends
// the walk.
func (k *Kernel) MapleEntries(tree uint64) iter.Seq2[MapleEntry, error] {
	return func(yield func(MapleEntry, error) bool) {
		rootOff, err := lookupMemberErr(k, "struct maple_tree", "ma_root")
		if err != nil {
			yield(MapleEntry{}, fmt.Errorf("maple tree: %w", err))
			return
		}
		root, err := k.ReadPointer(tree + uint64(rootOff))
		if err != nil {
			yield(MapleEntry{}, fmt.Errorf("maple tree at %#x: ma_root: %w", tree, err))
			return
		}
		if root == 0 {
			return
		}
		if !mapleIsNode(root) {
			yield(MapleEntry{Min: 0, Max: 0, Value: root}, nil)
			return
		}
		l, err := k.mapleLayout()
		if err != nil {
			yield(MapleEntry{}, err)
			return
		}
		w := &mapleWalk{k: k, l: l, tree: tree, yield: yield, seen: map[uint64]bool{}}
		w.node(root, 0, ^uint64(0), 0)
	}
}

// mapleIsNode is xa_is_node: an internal entry above the reserved range.
func mapleIsNode(e uint64) bool { return e&3 == 2 && e > mapleReserved }

type mapleWalk struct {
	k     *Kernel
	l     *mapleLayout
	tree  uint64
	yield func(MapleEntry, error) bool
	stop  bool
	// seen holds the nodes walked: in a tree each is reached once, so a
	// node reached again is corruption, and the walk stops there rather
	// than go round (or fan out) forever.
	seen map[uint64]bool
}

// node walks the node that entry encodes, covering [min, max].
func (w *mapleWalk) node(entry, min, max uint64, depth int) {
	if w.stop {
		return
	}
	fail := func(err error) {
		w.stop = true
		w.yield(MapleEntry{}, err)
	}
	if depth > mapleMaxHeight {
		fail(fmt.Errorf("maple tree at %#x: deeper than %d levels at node %#x", w.tree, mapleMaxHeight, entry))
		return
	}
	addr := entry &^ mapleNodeMask
	typ := (entry >> mapleNodeTypeShift) & mapleNodeTypeMask
	if w.seen[addr] {
		fail(fmt.Errorf("maple tree at %#x: node %#x reached twice", w.tree, addr))
		return
	}
	if len(w.seen) >= maxListLen {
		fail(fmt.Errorf("maple tree at %#x: more than %d nodes", w.tree, maxListLen))
		return
	}
	w.seen[addr] = true
	var pivotOff, slotOff, npiv, nslot int64
	switch typ {
	case mapleLeaf64, mapleRange64:
		pivotOff, slotOff, npiv, nslot = w.l.rPivot, w.l.rSlot, w.l.rPivots, w.l.rSlots
	case mapleARange64:
		pivotOff, slotOff, npiv, nslot = w.l.aPivot, w.l.aSlot, w.l.aPivots, w.l.aSlots
	default:
		// maple_dense holds no pivots; the kernel's trees of VMAs never
		// use it.
		fail(fmt.Errorf("maple tree at %#x: node %#x has type %d, not a range node", w.tree, addr, typ))
		return
	}
	buf := make([]byte, slotOff+nslot*8)
	if err := w.k.Read(buf, addr); err != nil {
		fail(fmt.Errorf("maple tree at %#x: node %#x: %w", w.tree, addr, err))
		return
	}
	word := func(off int64) uint64 {
		var x uint64
		for i := int64(7); i >= 0; i-- {
			x = x<<8 | uint64(buf[off+i])
		}
		return x
	}
	leaf := typ == mapleLeaf64
	lo := min
	for i := int64(0); i < nslot; i++ {
		hi := max
		if i < npiv {
			hi = word(pivotOff + i*8)
			if i > 0 && hi == 0 {
				break // the node's data ended
			}
		}
		if hi < lo || hi > max {
			fail(fmt.Errorf("maple tree at %#x: node %#x: pivot %d (%#x) outside [%#x, %#x]", w.tree, addr, i, hi, lo, max))
			return
		}
		slot := word(slotOff + i*8)
		if slot != 0 {
			if leaf {
				// Internal values (XA_ZERO_ENTRY and the like) are
				// markers, not entries.
				if !(slot&3 == 2 && slot <= mapleReserved) {
					if !w.yield(MapleEntry{Min: lo, Max: hi, Value: slot}, nil) {
						w.stop = true
						return
					}
				}
			} else {
				w.node(slot, lo, hi, depth+1)
				if w.stop {
					return
				}
			}
		}
		if hi >= max {
			break
		}
		lo = hi + 1
	}
}
