package kernel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"salvage/arch"
	"salvage/debuginfo"
	"salvage/dump"
)

// fakeVM is kernel virtual memory made of 4K pages written by the test;
// other pages read as excluded by the dump filter.
type fakeVM map[uint64]*[4096]byte

func (m fakeVM) ReadVirt(p []byte, addr uint64) (int, error) {
	n := 0
	for n < len(p) {
		a := addr + uint64(n)
		pg, ok := m[a>>12]
		if !ok {
			return n, &dump.PageError{Addr: a, State: dump.PageExcluded}
		}
		n += copy(p[n:], pg[a&0xfff:])
	}
	return n, nil
}
func (m fakeVM) write(addr uint64, b []byte) {
	for i, c := range b {
		a := addr + uint64(i)
		pg, ok := m[a>>12]
		if !ok {
			pg = new([4096]byte)
			m[a>>12] = pg
		}
		pg[a&0xfff] = c
	}
}
func (m fakeVM) put64(addr, v uint64) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	m.write(addr, b[:])
}
func (m fakeVM) VirtToPhys(addr uint64) (arch.Translation, error) {
	return arch.Translation{Virt: addr, Phys: addr, PageSize: 4096}, nil
}
func (m fakeVM) PhysToVirt(p uint64) uint64 { return p }
func (m fakeVM) Layout() arch.Layout        { return arch.Layout{} }
func (m fakeVM) Memory() dump.Memory        { return nil }

type fakeTypes map[string]*debuginfo.Type

func (f fakeTypes) get(n string) (*debuginfo.Type, error) {
	if t, ok := f[n]; ok {
		return t, nil
	}
	return nil, &debuginfo.NotFoundError{What: n, Source: "fake"}
}
func (f fakeTypes) Struct(n string) (*debuginfo.Type, error)  { return f.get("struct " + n) }
func (f fakeTypes) Union(n string) (*debuginfo.Type, error)   { return f.get("union " + n) }
func (f fakeTypes) Enum(n string) (*debuginfo.Type, error)    { return f.get("enum " + n) }
func (f fakeTypes) Typedef(n string) (*debuginfo.Type, error) { return f.get(n) }
func (f fakeTypes) Named(n string) (*debuginfo.Type, error)   { return f.get(n) }
func (f fakeTypes) Var(n string) (*debuginfo.Type, error)     { return f.get("var " + n) }
func (f fakeTypes) Func(n string) (*debuginfo.Type, error)    { return f.get("func " + n) }
func (f fakeTypes) Source() string                            { return "fake types" }

type fakeSyms map[string]uint64

func (s fakeSyms) Lookup(n string) (debuginfo.Symbol, bool) {
	a, ok := s[n]
	return debuginfo.Symbol{Name: n, Addr: a}, ok
}
func (s fakeSyms) ByAddr(uint64) (debuginfo.Symbol, uint64, bool) {
	return debuginfo.Symbol{}, 0, false
}
func (s fakeSyms) Match(string) []debuginfo.Symbol { return nil }
func (s fakeSyms) All(func(debuginfo.Symbol) bool) {}
func (s fakeSyms) Source() string                  { return "fake symbols" }

// The test's types: struct item is a list and tree member with a
// bitfield, an anonymous union and a string pointer.
func testTypes() fakeTypes {
	ulong := &debuginfo.Type{Kind: debuginfo.KindInt, Name: "unsigned long", Size: 8}
	sint := &debuginfo.Type{Kind: debuginfo.KindInt, Name: "int", Size: 4, Encoding: debuginfo.EncSigned}
	uint := &debuginfo.Type{Kind: debuginfo.KindInt, Name: "unsigned int", Size: 4}
	char := &debuginfo.Type{Kind: debuginfo.KindInt, Name: "char", Size: 1, Encoding: debuginfo.EncChar}
	lh := &debuginfo.Type{Kind: debuginfo.KindStruct, Name: "list_head", Size: 16}
	lhp := &debuginfo.Type{Kind: debuginfo.KindPointer, Size: 8, Elem: lh}
	lh.Members = []debuginfo.Member{{Name: "next", Type: lhp}, {Name: "prev", Type: lhp, Offset: 8}}
	rb := &debuginfo.Type{Kind: debuginfo.KindStruct, Name: "rb_node", Size: 24}
	rbp := &debuginfo.Type{Kind: debuginfo.KindPointer, Size: 8, Elem: rb}
	rb.Members = []debuginfo.Member{{Name: "__rb_parent_color", Type: ulong}, {Name: "rb_right", Type: rbp, Offset: 8}, {Name: "rb_left", Type: rbp, Offset: 16}}
	name := &debuginfo.Type{Kind: debuginfo.KindArray, Elem: char, Len: 8, Size: 8}
	anon := &debuginfo.Type{Kind: debuginfo.KindUnion, Size: 8, Members: []debuginfo.Member{{Name: "a", Type: ulong}, {Name: "name", Type: name}}}
	item := &debuginfo.Type{Kind: debuginfo.KindStruct, Name: "item", Size: 64}
	item.Members = []debuginfo.Member{
		{Name: "id", Type: sint},
		{Name: "flags", Type: uint, Offset: 4, BitOffset: 3, BitSize: 4},
		{Type: anon, Offset: 8},
		{Name: "link", Type: lh, Offset: 16},
		{Name: "node", Type: rb, Offset: 32},
		{Name: "label", Type: &debuginfo.Type{Kind: debuginfo.KindPointer, Size: 8, Elem: char}, Offset: 56},
	}
	arr := &debuginfo.Type{Kind: debuginfo.KindArray, Elem: item, Len: 4, Size: 256}
	return fakeTypes{"struct list_head": lh, "struct item": item, "struct rb_node": rb,
		"var items": arr, "var head": lh, "var counter": sint, "var item_ptr": &debuginfo.Type{Kind: debuginfo.KindPointer, Size: 8, Elem: item}}
}

const (
	itemsAddr = 0xffffffff81000000 // struct item items[4]
	headAddr  = 0xffffffff81001000 // struct list_head head
	rootAddr  = 0xffffffff81001010 // struct rb_root
	labelAddr = 0xffffffff81004ff8 // a string across a page boundary
	ptrAddr   = 0xffffffff81001100 // struct item *item_ptr
	pcpuBase  = 0xffffffff81002000 // __per_cpu_offset[2]
)

func testKernel(t *testing.T) (*Kernel, fakeVM) {
	vm := fakeVM{}
	item := func(i int) uint64 { return itemsAddr + uint64(i)*64 }
	// List: head → item0 → item2 → item1 → head (item3 not on it).
	order := []int{0, 2, 1}
	prev := uint64(headAddr)
	for _, i := range order {
		vm.put64(prev, item(i)+16)
		prev = item(i) + 16
	}
	vm.put64(prev, headAddr)
	for i := 0; i < 4; i++ {
		var b [8]byte
		binary.LittleEndian.PutUint32(b[:], uint32(int32(-i)))
		binary.LittleEndian.PutUint32(b[4:], uint32(i+9)<<3|0x7) // flags = i+9 in bits 3..6
		vm.write(item(i), b[:])
		vm.write(item(i)+8, []byte(fmt.Sprintf("item%d\x00", i)))
		vm.put64(item(i)+56, labelAddr)
	}
	vm.write(labelAddr, []byte("across a page\x00"))
	// rb tree keyed by index: root item1, left item0, right item3.
	vm.put64(rootAddr, item(1)+32)
	vm.put64(item(1)+32+16, item(0)+32)
	vm.put64(item(1)+32+8, item(3)+32)
	vm.put64(ptrAddr, item(2))
	vm.put64(pcpuBase, 0x100000)
	vm.put64(pcpuBase+8, 0x200000)
	vm.write(0xffffffff81003000, []byte{2, 0, 0, 0}) // nr_cpu_ids
	vm.write(0x100040+itemsAddr, []byte{7})          // per-CPU counter of CPU 0
	syms := fakeSyms{"items": itemsAddr, "head": headAddr, "item_ptr": ptrAddr, "__per_cpu_offset": pcpuBase,
		"nr_cpu_ids": 0xffffffff81003000, "counter": itemsAddr + 0x40, "untyped": itemsAddr}
	k, err := New(nil, syms, testTypes(), vm)
	if err != nil {
		t.Fatal(err)
	}
	return k, vm
}

func TestValues(t *testing.T) {
	k, _ := testKernel(t)
	items, err := k.Global("items")
	if err != nil {
		t.Fatal(err)
	}
	it2, err := items.Index(2)
	if err != nil || it2.Address() != itemsAddr+128 {
		t.Fatalf("items[2]: %v %v", it2, err)
	}
	id, err := it2.Member("id")
	if n, err2 := id.Int(); err != nil || err2 != nil || n != -2 {
		t.Errorf("items[2].id = %d, %v %v", n, err, err2)
	}
	fl, _ := it2.Member("flags")
	if n, err := fl.Uint(); err != nil || n != 11 {
		t.Errorf("flags = %d, %v", n, err)
	}
	nm, err := it2.Member("name") // through the anonymous union
	if err != nil {
		t.Fatal(err)
	}
	if s, err := nm.CString(100); err != nil || s != "item2" {
		t.Errorf("name = %q, %v", s, err)
	}
	lb, _ := it2.Member("label")
	if s, err := lb.CString(100); err != nil || s != "across a page" {
		t.Errorf("label = %q, %v", s, err)
	}
	if s, err := lb.CString(6); err != nil || s != "across" {
		t.Errorf("label max 6 = %q, %v", s, err)
	}
	// A pointer to a struct: Member follows it; Deref too.
	p, _ := k.Global("item_ptr")
	if v, err := p.Member("id"); err != nil || v.Address() != itemsAddr+128 {
		t.Errorf("item_ptr->id: %v %v", v, err)
	}
	// "->" follows a pointer inside a path: items[2].label is a char *.
	if v, err := it2.Member("label->"); err == nil {
		t.Errorf("empty member after ->: %v", v)
	}
	next, err := items.Member("x")
	if err == nil {
		t.Errorf("member of an array: %v", next)
	}
	if v, err := k.Global("items"); err == nil {
		if v, err := v.Index(4); err == nil {
			t.Errorf("items[4] out of range gave %v", v)
		}
	}
	if b, err := it2.Bytes(); err != nil || len(b) != 64 {
		t.Errorf("Bytes: %d %v", len(b), err)
	}
	if v, err := k.ContainerOf(itemsAddr+64+16, "struct item", "link"); err != nil || v.Address() != itemsAddr+64 {
		t.Errorf("container_of: %v %v", v, err)
	}
	if v, err := k.ContainerOf(itemsAddr+64+48, "struct item", "node.rb_left"); err != nil || v.Address() != itemsAddr+64 {
		t.Errorf("container_of nested: %v %v", v, err)
	}
	// Errors name the missing part.
	if _, err := k.Global("untyped"); err == nil || !strings.Contains(err.Error(), "has no type") {
		t.Errorf("untyped global: %v", err)
	}
	if _, err := k.Global("nosuch"); err == nil || !strings.Contains(err.Error(), "symbol nosuch") {
		t.Errorf("missing symbol: %v", err)
	}
	// A read of a page the dump lacks carries the type, the address and
	// the page state.
	bad := k.Object(0xffff888000000000, testTypes()["struct item"])
	_, err = bad.Member("id")
	if err != nil {
		t.Fatal(err)
	}
	idv, _ := bad.Member("id")
	_, err = idv.Int()
	var re *ReadError
	st, ok := PageState(err)
	if !errors.As(err, &re) || !ok || st != dump.PageExcluded || !strings.Contains(err.Error(), "0xffff888000000000") {
		t.Errorf("missing page: %v", err)
	}
	t.Log(err)
}

func TestPerCPUSynthetic(t *testing.T) {
	k, _ := testKernel(t)
	if a, err := k.PerCPUAddr("counter", 1); err != nil || a != itemsAddr+0x40+0x200000 {
		t.Errorf("counter@1 = %#x, %v", a, err)
	}
	v, err := k.PerCPU("counter", 0)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := v.Int(); err != nil || n != 7 {
		t.Errorf("counter@0 = %d, %v", n, err)
	}
	if _, err := k.PerCPU("counter", 2); err == nil {
		t.Error("CPU 2 of 2")
	}
}

func TestLists(t *testing.T) {
	k, vm := testKernel(t)
	var got []uint64
	for v, err := range k.ListEntries(headAddr, "struct item", "link") {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, (v.Address()-itemsAddr)/64)
	}
	if fmt.Sprint(got) != "[0 2 1]" {
		t.Errorf("list order %v", got)
	}
	got = nil
	for n, err := range k.RBNodes(rootAddr) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, (n-itemsAddr-32)/64)
	}
	if fmt.Sprint(got) != "[0 1 3]" {
		t.Errorf("rb order %v", got)
	}
	// A loop that never returns to the head ends in an error.
	vm.put64(itemsAddr+64+16, itemsAddr+16) // item1.next = item0
	var err error
	n := 0
	for _, e := range k.ListNodes(headAddr) {
		n++
		err = e
	}
	if err == nil || !strings.Contains(err.Error(), "loops") || n != 4 {
		t.Errorf("loop: %d nodes, %v", n, err)
	}
	// hlist: item0 → item3 → NULL using link.next as hlist_node.next.
	vm.put64(headAddr, itemsAddr+16)
	vm.put64(itemsAddr+16, itemsAddr+3*64+16)
	vm.put64(itemsAddr+3*64+16, 0)
	got = nil
	for node, err := range k.HListNodes(headAddr) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, (node-itemsAddr-16)/64)
	}
	if fmt.Sprint(got) != "[0 3]" {
		t.Errorf("hlist %v", got)
	}
}
