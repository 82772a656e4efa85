package kernel

import (
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"

	"salvage/debuginfo"
	"salvage/dump"
)

// irqTestTypes are the few members irq reads, at made-up offsets: struct
// irq_desc (irq_data.irq, action), struct irqaction (next, name), the
// XArray (struct xarray, struct xa_node) and the maple tree (struct
// maple_tree, struct maple_node with its mr64 and ma64 views), laid out
// as include/linux/xarray.h and include/linux/maple_tree.h declare them.
func irqTestTypes() fakeTypes {
	ulong := &debuginfo.Type{Kind: debuginfo.KindInt, Name: "unsigned long", Size: 8}
	uint := &debuginfo.Type{Kind: debuginfo.KindInt, Name: "unsigned int", Size: 4}
	uchar := &debuginfo.Type{Kind: debuginfo.KindInt, Name: "unsigned char", Size: 1}
	char := &debuginfo.Type{Kind: debuginfo.KindInt, Name: "char", Size: 1, Encoding: debuginfo.EncChar}
	void := &debuginfo.Type{Kind: debuginfo.KindVoid}
	ptr := func(t *debuginfo.Type) *debuginfo.Type {
		return &debuginfo.Type{Kind: debuginfo.KindPointer, Size: 8, Elem: t}
	}
	arr := func(t *debuginfo.Type, n int64) *debuginfo.Type {
		return &debuginfo.Type{Kind: debuginfo.KindArray, Elem: t, Len: n, Size: n * t.Size}
	}
	st := func(name string, size int64, ms ...debuginfo.Member) *debuginfo.Type {
		return &debuginfo.Type{Kind: debuginfo.KindStruct, Name: name, Size: size, Members: ms}
	}
	irqData := st("irq_data", 16, debuginfo.Member{Name: "mask", Type: uint}, debuginfo.Member{Name: "irq", Type: uint, Offset: 4})
	action := st("irqaction", 64)
	action.Members = []debuginfo.Member{{Name: "next", Type: ptr(action), Offset: 24}, {Name: "name", Type: ptr(char), Offset: 48}}
	desc := st("irq_desc", 256, debuginfo.Member{Name: "irq_data", Type: irqData, Offset: 8}, debuginfo.Member{Name: "action", Type: ptr(action), Offset: 40})
	xa := st("xarray", 16, debuginfo.Member{Name: "xa_head", Type: ptr(void), Offset: 8})
	node := st("xa_node", 576, debuginfo.Member{Name: "shift", Type: uchar}, debuginfo.Member{Name: "slots", Type: arr(ptr(void), 64), Offset: 40})
	mt := st("maple_tree", 16, debuginfo.Member{Name: "ma_flags", Type: uint, Offset: 4}, debuginfo.Member{Name: "ma_root", Type: ptr(void), Offset: 8})
	mr64 := st("maple_range_64", 256, debuginfo.Member{Name: "pivot", Type: arr(ulong, 15), Offset: 8}, debuginfo.Member{Name: "slot", Type: arr(ptr(void), 16), Offset: 128})
	ma64 := st("maple_arange_64", 248, debuginfo.Member{Name: "pivot", Type: arr(ulong, 9), Offset: 8},
		debuginfo.Member{Name: "slot", Type: arr(ptr(void), 10), Offset: 80}, debuginfo.Member{Name: "gap", Type: arr(ulong, 10), Offset: 160})
	dense := &debuginfo.Type{Kind: debuginfo.KindStruct, Size: 256, Members: []debuginfo.Member{{Name: "slot", Type: arr(ptr(void), 31), Offset: 8}}}
	mnUnion := &debuginfo.Type{Kind: debuginfo.KindUnion, Size: 256, Members: []debuginfo.Member{{Type: dense}, {Name: "mr64", Type: mr64}, {Name: "ma64", Type: ma64}}}
	mn := st("maple_node", 256, debuginfo.Member{Type: mnUnion})
	sint := &debuginfo.Type{Kind: debuginfo.KindInt, Name: "int", Size: 4, Encoding: debuginfo.EncSigned}
	return fakeTypes{"struct irq_desc": desc, "struct irqaction": action, "struct xa_node": node, "struct maple_node": mn,
		"var irq_desc_tree": xa, "var sparse_irqs": mt, "var nr_irqs": sint}
}

const (
	itRoot    uint64 = 0xffffffff82000000 // irq_desc_tree or sparse_irqs
	itNrIRQs         = 0xffffffff82000100
	itDescs          = 0xffff888000100000 // irq_desc i at itDescs + i*0x100
	itActions        = 0xffff888000200000
	itNodes          = 0xffff888000300000 // XArray and maple nodes, 0x400 apart
	itMissing        = 0xffff888000900000 // not in the dump
)

// irqTestVM holds nr_irqs, the descriptors of irqs and their actions:
// IRQ 3 has two (one whose name the dump lacks), the others one each.
func irqTestVM(irqs []int) fakeVM {
	vm := fakeVM{}
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], 300)
	vm.write(itNrIRQs, b[:])
	for n, irq := range irqs {
		d := itDescs + uint64(irq)*0x100
		vm.write(d, make([]byte, 0x100))
		binary.LittleEndian.PutUint32(b[:], uint32(irq))
		vm.write(d+8+4, b[:])
		a := itActions + uint64(n)*0x100
		vm.write(a, make([]byte, 0x100))
		vm.put64(d+40, a)
		vm.put64(a+48, a+0x80)
		vm.write(a+0x80, []byte("dev"+string(rune('a'+n))+"\x00"))
		if irq == 3 {
			vm.put64(a+24, a+0xc0)
			vm.write(a+0xc0, make([]byte, 64))
			vm.put64(a+0xc0+48, itMissing)
		}
	}
	return vm
}

func irqTestKernel(t *testing.T, vm fakeVM, root string) *Kernel {
	t.Helper()
	syms := fakeSyms{root: itRoot, "nr_irqs": itNrIRQs}
	k, err := New(nil, syms, irqTestTypes(), vm)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func irqNumbers(irqs []IRQ) []int {
	var out []int
	for _, q := range irqs {
		out = append(out, q.IRQ)
	}
	return out
}

// checkIRQ3 checks the two actions of IRQ 3: the second's name is in a
// page the dump lacks, so it has none.
func checkIRQ3(t *testing.T, irqs []IRQ) {
	t.Helper()
	for _, q := range irqs {
		if q.IRQ != 3 {
			if len(q.Actions) != 1 || !q.Actions[0].NameOK || !strings.HasPrefix(q.Actions[0].Name, "dev") {
				t.Errorf("IRQ %d: actions %+v", q.IRQ, q.Actions)
			}
			continue
		}
		if q.Desc != itDescs+3*0x100 || len(q.Actions) != 2 || !q.Actions[0].NameOK || q.Actions[1].NameOK {
			t.Errorf("IRQ 3: %+v", q)
		}
	}
}

// TestIRQsXArray: a two-level irq_desc_tree (a node of shift 6 over
// leaves of shift 0) gives each descriptor its index; sibling and retry
// entries are no descriptors. The corpus's trees have one level.
func TestIRQsXArray(t *testing.T) {
	want := []int{0, 3, 63, 64, 130}
	vm := irqTestVM(want)
	node := func(i int) uint64 { return itNodes + uint64(i)*0x400 }
	for i := 0; i < 4; i++ {
		vm.write(node(i), make([]byte, 576))
	}
	slot := func(n, i int, v uint64) { vm.put64(node(n)+40+uint64(i)*8, v) }
	vm.put64(itRoot+8, node(0)|2)
	vm.write(node(0), []byte{6})
	slot(0, 0, node(1)|2) // indices 0-63
	slot(0, 1, node(2)|2) // 64-127
	slot(0, 2, node(3)|2) // 128-191
	desc := func(irq int) uint64 { return itDescs + uint64(irq)*0x100 }
	slot(1, 0, desc(0))
	slot(1, 3, desc(3))
	slot(1, 4, 2|3<<2) // a sibling entry pointing back to slot 3
	slot(1, 63, desc(63))
	slot(2, 0, desc(64))
	slot(2, 1, 0x402) // the retry entry (256 << 2 | 2)
	slot(3, 2, desc(130))
	k := irqTestKernel(t, vm, "irq_desc_tree")
	nr, irqs, err := k.IRQs()
	if err != nil {
		t.Fatal(err)
	}
	if nr != 300 || !reflect.DeepEqual(irqNumbers(irqs), want) {
		t.Fatalf("nr_irqs %d, IRQs %v; want 300, %v", nr, irqNumbers(irqs), want)
	}
	checkIRQ3(t, irqs)
	// A single descriptor is the head itself: the entry of index 0.
	vm.put64(itRoot+8, desc(0))
	if _, irqs, err = k.IRQs(); err != nil || !reflect.DeepEqual(irqNumbers(irqs), []int{0}) {
		t.Errorf("head entry: %v %v", irqNumbers(irqs), err)
	}
}

// TestIRQsMapleTree: a three-level sparse_irqs (an arange root over a
// range node over leaves) yields the descriptors of every leaf, each
// numbered by its irq_data.irq; slots past a node's last pivot are stale
// and are not read, and a leaf's internal entries are no descriptors.
// The corpus's 6.12 tree has two levels.
func TestIRQsMapleTree(t *testing.T) {
	want := []int{0, 1, 3, 24, 25, 200}
	vm := irqTestVM(want)
	node := func(i int) uint64 { return itNodes + uint64(i)*0x400 }
	for i := 0; i < 6; i++ {
		vm.write(node(i), make([]byte, 256))
	}
	// IRQ 7's descriptor is only in stale slots: it must not be found.
	stale := uint64(itDescs) + 7*0x100
	vm.write(stale, make([]byte, 0x100))
	vm.write(stale+12, []byte{7})
	vm.put64(node(5)+128, stale)
	enc := func(i int, typ uint64) uint64 { return node(i) | typ<<3 }
	desc := func(irq int) uint64 { return itDescs + uint64(irq)*0x100 }
	// mr64: pivot[i] at 8+8i, slot[i] at 128+8i; ma64: slot[i] at 80+8i.
	pivot := func(n, i int, v uint64) { vm.put64(node(n)+8+uint64(i)*8, v) }
	r64 := func(n, i int, v uint64) { vm.put64(node(n)+128+uint64(i)*8, v) }
	a64 := func(n, i int, v uint64) { vm.put64(node(n)+80+uint64(i)*8, v) }
	vm.put64(itRoot+8, enc(0, irqMapleARange)|2) // the root pointer carries MAPLE_ROOT_NODE
	pivot(0, 0, 99)
	pivot(0, 1, ^uint64(0))
	a64(0, 0, enc(1, irqMapleRange64))
	a64(0, 1, enc(4, irqMapleLeaf64))
	a64(0, 2, enc(5, irqMapleLeaf64)) // stale: past the pivot that reaches the max
	// node 1, indices 0-99: leaves 2 (0-9) and 3 (10-99).
	pivot(1, 0, 9)
	pivot(1, 1, 99) // a pivot equal to the node's max ends its data
	r64(1, 0, enc(2, irqMapleLeaf64))
	r64(1, 1, enc(3, irqMapleLeaf64))
	// leaf 2: 0, 1, [2], 3, [4-9]
	pivot(2, 0, 0)
	r64(2, 0, desc(0))
	pivot(2, 1, 1)
	r64(2, 1, desc(1))
	pivot(2, 2, 2)
	r64(2, 2, 0x402) // an internal entry, no descriptor
	pivot(2, 3, 3)
	r64(2, 3, desc(3))
	r64(2, 4, 0)
	r64(2, 6, stale) // stale: after the zero pivot[4] that ends the data
	// leaf 3: [10-23], 24, 25, [26-99]; a stale entry after the end.
	pivot(3, 3, 99)
	pivot(3, 0, 23)
	pivot(3, 1, 24)
	r64(3, 1, desc(24))
	pivot(3, 2, 25)
	r64(3, 2, desc(25))
	pivot(3, 4, 120)
	r64(3, 4, stale) // stale, pivot and all: after pivot[3], which reaches the max
	// leaf 4: [100-199], 200, [201-max]
	pivot(4, 0, 199)
	pivot(4, 1, 200)
	r64(4, 1, desc(200))
	k := irqTestKernel(t, vm, "sparse_irqs")
	nr, irqs, err := k.IRQs()
	if err != nil {
		t.Fatal(err)
	}
	if nr != 300 || !reflect.DeepEqual(irqNumbers(irqs), want) {
		t.Fatalf("nr_irqs %d, IRQs %v; want 300, %v", nr, irqNumbers(irqs), want)
	}
	checkIRQ3(t, irqs)
}

// TestIRQsUnreadable: a descriptor or node the dump lacks is an error
// naming the address, not a panic; so is a kernel with no descriptor
// table at all.
func TestIRQsUnreadable(t *testing.T) {
	vm := irqTestVM([]int{5})
	vm.put64(itRoot+8, itDescs+5*0x100)
	vm.put64(itDescs+5*0x100+40, itMissing)
	k := irqTestKernel(t, vm, "irq_desc_tree")
	_, irqs, err := k.IRQs()
	var pe *dump.PageError
	if err != nil || len(irqs) != 1 {
		t.Fatalf("missing irqaction: %v %v", irqs, err)
	}
	if err = irqs[0].Err; err == nil || !errors.As(err, &pe) || !strings.Contains(err.Error(), "IRQ 0") || !strings.Contains(err.Error(), "0xffff888000900018") {
		t.Errorf("missing irqaction: %v", err)
	}
	// A leaf the dump lacks: the descriptors of the other leaves, and
	// the error.
	node := uint64(itNodes)
	vm.write(node, make([]byte, 576))
	vm.put64(itRoot+8, node|2)
	vm.write(node, []byte{6})
	vm.put64(node+40, itMissing|2)
	vm.put64(node+48, itDescs+5*0x100)
	if _, irqs, err = k.IRQs(); err == nil || !strings.Contains(err.Error(), "ffff888000900000") || len(irqs) != 1 || irqs[0].IRQ != 64 {
		t.Errorf("missing XArray node: %v %v", irqNumbers(irqs), err)
	}
	k = irqTestKernel(t, vm, "no_such_table")
	if _, _, err = k.IRQs(); err == nil || !strings.Contains(err.Error(), "sparse_irqs") {
		t.Errorf("no table: %v", err)
	}
}

// FuzzIRQTrees: whatever the dump holds where the XArray and maple tree
// nodes should be, IRQs ends (every node is read once) and does not
// panic. The fuzzer's bytes are four nodes, each of which may point at
// any of the others (or itself) and at the descriptors.
func FuzzIRQTrees(f *testing.F) {
	seed := make([]byte, 4*0x400)
	seed[0] = 6
	binary.LittleEndian.PutUint64(seed[40:], itNodes+0x400|2)
	binary.LittleEndian.PutUint64(seed[0x400+40:], itDescs)
	f.Add(seed, false)
	f.Add(seed, true)
	f.Fuzz(func(t *testing.T, nodes []byte, maple bool) {
		vm := irqTestVM([]int{0, 3, 24})
		vm.write(itNodes, nodes[:min(len(nodes), 4*0x400)])
		root := "irq_desc_tree"
		if maple {
			root = "sparse_irqs"
		}
		vm.put64(itRoot+8, itNodes|2|1<<3*uint64(len(nodes)&3))
		k := irqTestKernel(t, vm, root)
		nr, irqs, _ := k.IRQs()
		if nr != 300 {
			t.Fatalf("nr_irqs %d", nr)
		}
		for _, q := range irqs {
			if q.IRQ < 0 {
				t.Fatalf("IRQ %d", q.IRQ)
			}
		}
	})
}
