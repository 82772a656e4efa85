package kernel

import (
	"errors"
	"fmt"
	"sort"

	"salvage/debuginfo"
)

// IRQ is one interrupt line's descriptor (struct irq_desc,
// include/linux/irqdesc.h) and the handlers installed on it.
type IRQ struct {
	IRQ  int    // the Linux IRQ number (irq_desc.irq_data.irq)
	Desc uint64 // the struct irq_desc
	// Actions are the irqaction chain (irq_desc.action, then ->next):
	// one per handler sharing the line, in the order the kernel calls them.
	Actions []IRQAction
	// Err says what of the chain could not be read (a page the dump
	// lacks): Actions holds those read before it.
	Err error
}

// IRQAction is one struct irqaction (include/linux/interrupt.h): a
// handler requested with request_irq and the name it gave.
type IRQAction struct {
	Addr uint64
	Name string
	// NameOK is false when the name could not be read (no name, or its
	// page is missing from the dump).
	NameOK bool
}

// irqMaxActions bounds an action chain, against a corrupt next pointer
// that loops.
const irqMaxActions = 256

// IRQs returns nr_irqs, the number of IRQs the kernel can hand out, and
// the allocated descriptors sorted by IRQ number. With CONFIG_SPARSE_IRQ
// the descriptors live in a tree (kernel/irq/irqdesc.c): the XArray
// irq_desc_tree before 6.5, the maple tree sparse_irqs since; without
// it, in the array irq_desc[NR_IRQS]. Which global exists says which.
// An IRQ whose actions cannot all be read says so in its Err; a tree
// that cannot be walked in full is an error returned with the
// descriptors found elsewhere in it.
func (k *Kernel) IRQs() (nr int, irqs []IRQ, err error) {
	descs := map[int]uint64{}
	switch {
	case k.irqHasSymbol("sparse_irqs"):
		if nr, err = k.nrIRQs(); err != nil {
			return 0, nil, err
		}
		err = k.sparseIRQDescs(descs)
	case k.irqHasSymbol("irq_desc_tree"):
		if nr, err = k.nrIRQs(); err != nil {
			return 0, nil, err
		}
		err = k.irqDescTree(descs)
	case k.irqHasSymbol("irq_desc"):
		arr, err := k.Global("irq_desc")
		if err != nil {
			return 0, nil, err
		}
		r := arr.Type().Resolve()
		if r == nil || r.Kind != debuginfo.KindArray || r.Len <= 0 {
			return 0, nil, fmt.Errorf("irq_desc: not an array of struct irq_desc (%s)", arr.typeName())
		}
		nr = int(r.Len)
		for i := 0; i < nr; i++ {
			d, err := arr.Index(i)
			if err != nil {
				return 0, nil, err
			}
			descs[i] = d.Address()
		}
	default:
		return 0, nil, errors.New("irq: the kernel has none of sparse_irqs, irq_desc_tree or irq_desc")
	}
	for irq, desc := range descs {
		q := IRQ{IRQ: irq, Desc: desc}
		if q.Actions, q.Err = k.irqActions(desc); q.Err != nil {
			q.Err = fmt.Errorf("IRQ %d: %w", irq, q.Err)
		}
		irqs = append(irqs, q)
	}
	sort.Slice(irqs, func(i, j int) bool { return irqs[i].IRQ < irqs[j].IRQ })
	return nr, irqs, err
}

// irqHasSymbol reports whether the kernel has a symbol name.
func (k *Kernel) irqHasSymbol(name string) bool {
	_, err := k.SymbolAddr(name)
	return err == nil
}

// nrIRQs reads nr_irqs (kernel/irq/irqdesc.c), an int.
func (k *Kernel) nrIRQs() (int, error) {
	a, err := k.SymbolAddr("nr_irqs")
	if err != nil {
		return 0, err
	}
	n, err := k.ReadUint(a, 4)
	if err != nil {
		return 0, fmt.Errorf("nr_irqs: %w", err)
	}
	if n == 0 || n > 1<<24 {
		return 0, fmt.Errorf("nr_irqs is %d: not a number of IRQs", n)
	}
	return int(n), nil
}

// irqActions follows irq_desc.action and irqaction.next.
func (k *Kernel) irqActions(desc uint64) ([]IRQAction, error) {
	d, err := k.ObjectOf(desc, "struct irq_desc")
	if err != nil {
		return nil, err
	}
	a, err := d.Member("action")
	if err != nil {
		return nil, err
	}
	p, err := a.Uint()
	if err != nil {
		return nil, err
	}
	var out []IRQAction
	for p != 0 && len(out) < irqMaxActions {
		act, err := k.ObjectOf(p, "struct irqaction")
		if err != nil {
			return nil, err
		}
		ia := IRQAction{Addr: p}
		if n, err := act.Member("name"); err == nil {
			if np, err := n.Uint(); err == nil && np != 0 {
				if s, err := k.ReadCString(np, 1500); err == nil {
					ia.Name, ia.NameOK = s, true
				}
			}
		}
		out = append(out, ia)
		nx, err := act.Member("next")
		if err != nil {
			return nil, err
		}
		if p, err = nx.Uint(); err != nil {
			return out, err
		}
	}
	return out, nil
}

// irqXAIsNode is the XArray's (and the maple tree's) xa_is_node
// (include/linux/xarray.h): an internal entry (low bits 10) above 4096,
// the small internal values being retry, zero and sibling markers.
func irqXAIsNode(e uint64) bool { return e&3 == 2 && e > 4096 }

// irqObjectEntry reports an entry that is an object's address: in the
// kernel's half and aligned (a value entry or an internal one is not).
func irqObjectEntry(e uint64) bool { return e >= 1<<63 && e&7 == 0 }

// irqDescTree collects the descriptors of the XArray irq_desc_tree (a
// radix_tree_root, which since 4.20 is struct xarray): xa_head is the
// entry of index 0 or a node; a node's slots each cover 1<<shift
// indices.
func (k *Kernel) irqDescTree(descs map[int]uint64) error {
	root, err := k.Global("irq_desc_tree")
	if err != nil {
		return err
	}
	h, err := root.Member("xa_head")
	if err != nil {
		return fmt.Errorf("irq_desc_tree: not an XArray: %w", err)
	}
	head, err := h.Uint()
	if err != nil {
		return fmt.Errorf("irq_desc_tree: %w", err)
	}
	return k.irqXArrayWalk(head, 0, 0, map[uint64]bool{}, func(index, entry uint64) {
		if irqObjectEntry(entry) && index < 1<<31 {
			descs[int(index)] = entry
		}
	})
}

// irqXArrayWalk calls fn with the index and entry of every entry under e,
// which covers the indices from base. seen holds the nodes visited: a
// corrupt tree whose nodes point back up must end, not fan out forever.
func (k *Kernel) irqXArrayWalk(e, base uint64, depth int, seen map[uint64]bool, fn func(index, entry uint64)) error {
	if e == 0 {
		return nil
	}
	if !irqXAIsNode(e) {
		if depth == 0 {
			fn(base, e)
		}
		return nil
	}
	if depth > 12 {
		return fmt.Errorf("XArray node %#x: deeper than any XArray", e-2)
	}
	if seen[e] {
		return fmt.Errorf("XArray node %#x: reached twice", e-2)
	}
	seen[e] = true
	node, err := k.ObjectOf(e-2, "struct xa_node")
	if err != nil {
		return err
	}
	sv, err := node.Member("shift")
	if err != nil {
		return err
	}
	shift, err := sv.Uint()
	if err != nil {
		return err
	}
	slots, err := node.Member("slots")
	if err != nil {
		return err
	}
	r := slots.Type().Resolve()
	if r == nil || r.Kind != debuginfo.KindArray || shift >= 64 {
		return fmt.Errorf("XArray node %#x: no slots array or a bad shift %d", e-2, shift)
	}
	var first error
	for i := 0; i < int(r.Len); i++ {
		s, err := slots.Index(i)
		if err != nil {
			return err
		}
		c, err := s.Uint()
		if err != nil {
			return err
		}
		idx := base + uint64(i)<<shift
		switch {
		case c == 0:
		case irqXAIsNode(c):
			if shift == 0 {
				continue // a leaf holds no nodes
			}
			// a child the dump lacks loses its indices only
			if err := k.irqXArrayWalk(c, idx, depth+1, seen, fn); err != nil && first == nil {
				first = err
			}
		case c&3 == 2:
			// a sibling or retry entry
		default:
			fn(idx, c)
		}
	}
	return first
}

// Maple tree node types (include/linux/maple_tree.h enum maple_type),
// kept in bits 3-6 of an encoded node pointer (MAPLE_NODE_TYPE_SHIFT,
// MAPLE_NODE_TYPE_MASK); the node itself is 256-byte aligned
// (MAPLE_NODE_MASK).
const (
	irqMapleDense   = 0
	irqMapleLeaf64  = 1
	irqMapleRange64 = 2
	irqMapleARange  = 3
)

// sparseIRQDescs collects the descriptors of the maple tree sparse_irqs
// (6.5+). The maple tree's indices are the IRQ numbers, but as crash does
// the number is taken from each descriptor (irq_data.irq), which needs no
// range arithmetic to trust. This is a small walker private to irq:
// enough for a read of every leaf entry.
func (k *Kernel) sparseIRQDescs(descs map[int]uint64) error {
	mt, err := k.Global("sparse_irqs")
	if err != nil {
		return err
	}
	rv, err := mt.Member("ma_root")
	if err != nil {
		return fmt.Errorf("sparse_irqs: not a maple tree: %w", err)
	}
	root, err := rv.Uint()
	if err != nil {
		return fmt.Errorf("sparse_irqs: %w", err)
	}
	var entries []uint64
	add := func(e uint64) { entries = append(entries, e) }
	var walkErr error
	if irqXAIsNode(root) {
		if err := k.irqMapleWalk(root, ^uint64(0), 0, map[uint64]bool{}, add); err != nil {
			walkErr = fmt.Errorf("sparse_irqs: %w", err)
		}
	} else if irqObjectEntry(root) {
		add(root)
	}
	for _, e := range entries {
		d, err := k.ObjectOf(e, "struct irq_desc")
		if err != nil {
			return err
		}
		n, err := d.Member("irq_data.irq")
		if err != nil {
			return err
		}
		irq, err := n.Uint()
		if err != nil {
			if walkErr == nil {
				walkErr = fmt.Errorf("sparse_irqs entry %#x: %w", e, err)
			}
			continue
		}
		if irq < 1<<31 {
			descs[int(irq)] = e
		}
	}
	return walkErr
}

// irqMapleWalk calls fn with every leaf entry under the encoded node e,
// whose indices end at max. A range node's slot i covers up to pivot[i]
// (the last slot up to the node's max); a zero pivot after the first
// slot, or one reaching max, ends the node's data (lib/maple_tree.c
// ma_data_end). seen holds the nodes visited, against a corrupt tree.
func (k *Kernel) irqMapleWalk(e, max uint64, depth int, seen map[uint64]bool, fn func(uint64)) error {
	if depth > 16 {
		return fmt.Errorf("maple node %#x: deeper than any maple tree", e&^0xff)
	}
	addr := e &^ 0xff
	typ := (e >> 3) & 0xf
	if seen[addr] {
		return fmt.Errorf("maple node %#x: reached twice", addr)
	}
	seen[addr] = true
	node, err := k.ObjectOf(addr, "struct maple_node")
	if err != nil {
		return err
	}
	var pivots, slots Value
	switch typ {
	case irqMapleDense:
		if slots, err = node.Member("slot"); err != nil {
			return err
		}
	case irqMapleLeaf64, irqMapleRange64:
		if pivots, err = node.Member("mr64.pivot"); err == nil {
			slots, err = node.Member("mr64.slot")
		}
	case irqMapleARange:
		if pivots, err = node.Member("ma64.pivot"); err == nil {
			slots, err = node.Member("ma64.slot")
		}
	default:
		return fmt.Errorf("maple node %#x: unknown type %d", addr, typ)
	}
	if err != nil {
		return err
	}
	sr := slots.Type().Resolve()
	if sr == nil || sr.Kind != debuginfo.KindArray {
		return fmt.Errorf("maple node %#x: slots are not an array", addr)
	}
	n := int(sr.Len)
	leaf := typ == irqMapleDense || typ == irqMapleLeaf64
	var first error // a child the dump lacks loses its entries only
	for i := 0; i < n; i++ {
		end := max
		if typ != irqMapleDense && i < n-1 {
			pv, err := pivots.Index(i)
			if err != nil {
				return err
			}
			if end, err = pv.Uint(); err != nil {
				return err
			}
			if end == 0 && i > 0 {
				break
			}
		}
		sv, err := slots.Index(i)
		if err != nil {
			return err
		}
		c, err := sv.Uint()
		if err != nil {
			return err
		}
		switch {
		case c == 0:
		case leaf:
			if irqObjectEntry(c) {
				fn(c)
			}
		case c >= 1<<63:
			// a child: an encoded node (the type in its low bits); only
			// the root pointer carries the xa_is_node tag (MAPLE_ROOT_NODE)
			if err := k.irqMapleWalk(c, end, depth+1, seen, fn); err != nil && first == nil {
				first = err
			}
		}
		if typ != irqMapleDense && end >= max {
			break
		}
	}
	return first
}
