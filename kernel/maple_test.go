package kernel

import (
	"strings"
	"testing"

	"salvage/debuginfo"
)

// mapleTestTypes are the maple tree's types as 6.1's BTF has them
// (include/linux/maple_tree.h): struct maple_tree's ma_root after the
// lock, maple_range_64 with 15 pivots and 16 slots, maple_arange_64 with
// 9 pivots and 10 slots.
func mapleTestTypes() fakeTypes {
	ulong := &debuginfo.Type{Kind: debuginfo.KindInt, Name: "unsigned long", Size: 8}
	vp := &debuginfo.Type{Kind: debuginfo.KindPointer, Size: 8}
	arr := func(e *debuginfo.Type, n int64) *debuginfo.Type {
		return &debuginfo.Type{Kind: debuginfo.KindArray, Elem: e, Len: n, Size: n * 8}
	}
	tree := &debuginfo.Type{Kind: debuginfo.KindStruct, Name: "maple_tree", Size: 16,
		Members: []debuginfo.Member{{Name: "ma_root", Type: vp, Offset: 8}}}
	r64 := &debuginfo.Type{Kind: debuginfo.KindStruct, Name: "maple_range_64", Size: 256,
		Members: []debuginfo.Member{{Name: "parent", Type: vp}, {Name: "pivot", Type: arr(ulong, 15), Offset: 8}, {Name: "slot", Type: arr(vp, 16), Offset: 128}}}
	a64 := &debuginfo.Type{Kind: debuginfo.KindStruct, Name: "maple_arange_64", Size: 256,
		Members: []debuginfo.Member{{Name: "parent", Type: vp}, {Name: "pivot", Type: arr(ulong, 9), Offset: 8}, {Name: "slot", Type: arr(vp, 10), Offset: 80}, {Name: "gap", Type: arr(ulong, 10), Offset: 160}}}
	return fakeTypes{"struct maple_tree": tree, "struct maple_range_64": r64, "struct maple_arange_64": a64}
}

const (
	mtAddr    = 0xffff888000100000 // struct maple_tree
	mtRoot    = 0xffff888000101000 // maple_arange_64 node
	mtLeafA   = 0xffff888000102000 // maple_leaf_64
	mtLeafB   = 0xffff888000102100 // maple_leaf_64
	mtMissing = 0xffff888000200000 // a node on a page the dump lacks
)

// mapleEnc encodes a node pointer as the tree stores it (mt_mk_node):
// the type in bits 3-6, bit 1 set.
func mapleEnc(node uint64, typ uint64) uint64 { return node | typ<<3 | 2 }

func mapleKernel(t *testing.T) (*Kernel, fakeVM) {
	vm := fakeVM{}
	vm.put64(mtAddr+8, mapleEnc(mtRoot, mapleARange64))
	// Root: [0, 0x3fff] → leaf A, [0x4000, 0x7fff] → NULL,
	// [0x8000, max] → leaf B.
	vm.put64(mtRoot+8, 0x3fff)
	vm.put64(mtRoot+16, 0x7fff)
	vm.put64(mtRoot+24, ^uint64(0)) // the last entry's pivot is the node's max
	vm.put64(mtRoot+80, mapleEnc(mtLeafA, mapleLeaf64))
	vm.put64(mtRoot+88, 0)
	vm.put64(mtRoot+96, mapleEnc(mtLeafB, mapleLeaf64))
	// Leaf A: [0, 0xfff] NULL, [0x1000, 0x1fff] 0xffff888000a10000, [0x2000, 0x2fff]
	// XA_ZERO_ENTRY (a marker, not an entry), [0x3000, 0x3fff] 0xffff888000a20000.
	for i, p := range []uint64{0xfff, 0x1fff, 0x2fff, 0x3fff} {
		vm.put64(mtLeafA+8+uint64(i)*8, p)
	}
	vm.put64(mtLeafA+128+8, 0xffff888000a10000)
	vm.put64(mtLeafA+128+16, 0x406)
	vm.put64(mtLeafA+128+24, 0xffff888000a20000)
	// Leaf B: [0x8000, 0x8fff] 0xffff888000b10000, then the data ends (pivot 0) with a
	// stale slot after it that must not be read as an entry.
	vm.put64(mtLeafB+8, 0x8fff)
	vm.put64(mtLeafB+128, 0xffff888000b10000)
	vm.put64(mtLeafB+128+16, 0xdead)
	k, err := New(nil, fakeSyms{}, mapleTestTypes(), vm)
	if err != nil {
		t.Fatal(err)
	}
	return k, vm
}

func TestMapleEntries(t *testing.T) {
	k, vm := mapleKernel(t)
	var got []MapleEntry
	for e, err := range k.MapleEntries(mtAddr) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e)
	}
	want := []MapleEntry{{0x1000, 0x1fff, 0xffff888000a10000}, {0x3000, 0x3fff, 0xffff888000a20000}, {0x8000, 0x8fff, 0xffff888000b10000}}
	if len(got) != len(want) {
		t.Fatalf("entries %x, want %x", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d: %x, want %x", i, got[i], want[i])
		}
	}

	// A root that is an entry, not a node: one entry at index 0.
	vm.put64(mtAddr+8, 0xffff888000555000)
	got = nil
	for e, err := range k.MapleEntries(mtAddr) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e)
	}
	if len(got) != 1 || got[0] != (MapleEntry{0, 0, 0xffff888000555000}) {
		t.Errorf("single-entry tree: %x", got)
	}

	// An empty tree.
	vm.put64(mtAddr+8, 0)
	for e, err := range k.MapleEntries(mtAddr) {
		t.Errorf("empty tree yielded %x %v", e, err)
	}
}

func TestMapleEntriesErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		set  func(vm fakeVM)
		want string
	}{
		{"missing node", func(vm fakeVM) { vm.put64(mtRoot+96, mapleEnc(mtMissing, mapleLeaf64)) }, "node 0xffff888000200000"},
		{"dense node", func(vm fakeVM) { vm.put64(mtRoot+96, mapleEnc(mtLeafB, mapleDense)) }, "type 0"},
		// A node that names itself as its child: the walk must stop.
		{"loop", func(vm fakeVM) { vm.put64(mtRoot+96, mapleEnc(mtRoot, mapleARange64)) }, "reached twice"},
		// Pivots that go backwards.
		{"pivots out of order", func(vm fakeVM) { vm.put64(mtLeafA+16, 0x800) }, "outside"},
		// Two slots naming one leaf: a tree reaches each node once.
		{"shared node", func(vm fakeVM) { vm.put64(mtRoot+88, mapleEnc(mtLeafA, mapleLeaf64)) }, "reached twice"},
	} {
		t.Run(c.name, func(t *testing.T) {
			k, vm := mapleKernel(t)
			c.set(vm)
			var errs []error
			n := 0
			for _, err := range k.MapleEntries(mtAddr) {
				if err != nil {
					errs = append(errs, err)
				} else {
					n++
				}
			}
			if len(errs) != 1 || !strings.Contains(errs[0].Error(), c.want) {
				t.Errorf("errors %v after %d entries, want one naming %q", errs, n, c.want)
			}
		})
	}
}

// TestMapleEntriesNoTypes: without the maple tree's types the walk says
// what is missing rather than guess the layout.
func TestMapleEntriesNoTypes(t *testing.T) {
	vm := fakeVM{}
	vm.put64(mtAddr+8, mapleEnc(mtRoot, mapleARange64))
	types := mapleTestTypes()
	delete(types, "struct maple_arange_64")
	k, err := New(nil, fakeSyms{}, types, vm)
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range k.MapleEntries(mtAddr) {
		if err == nil || !strings.Contains(err.Error(), "maple_arange_64") {
			t.Errorf("error %v, want one naming struct maple_arange_64", err)
		}
	}
}

// FuzzMapleEntries writes arbitrary bytes over the root node and a leaf:
// the walk must end, with entries in key order, never panic.
func FuzzMapleEntries(f *testing.F) {
	f.Add(make([]byte, 256), make([]byte, 256))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0x3f}, []byte{1, 2, 3})
	f.Add([]byte("0"), []byte("0000000000")) // a leaf pivot beyond the next one
	f.Fuzz(func(t *testing.T, root, leaf []byte) {
		k, vm := mapleKernel(t)
		if len(root) > 256 {
			root = root[:256]
		}
		if len(leaf) > 256 {
			leaf = leaf[:256]
		}
		vm.write(mtRoot, root)
		vm.write(mtLeafA, leaf)
		last, first := uint64(0), true
		for e, err := range k.MapleEntries(mtAddr) {
			if err != nil {
				break
			}
			if e.Max < e.Min || (!first && e.Min <= last) {
				t.Fatalf("entry %x out of order after %#x", e, last)
			}
			last, first = e.Max, false
		}
	})
}
