package debuginfo

import (
	"debug/dwarf"
	"fmt"
	"path"
	"sort"
	"strings"
)

// dwarfConverter turns DIEs into Types, memoized by DIE offset. It is not
// safe for concurrent use: dwarfTypes holds a mutex around it.
//
// Every compile unit carries its own copy of the types it uses, so the
// converter canonicalizes: a named struct, union, enum or typedef whose
// size and declaration line equal those of the DIE the index chose for
// the name is the same type, and becomes that one Type; a declaration
// (DW_AT_declaration) becomes the index's complete definition. Without
// that, task_struct would drag in one copy of list_head per unit.
type dwarfConverter struct {
	t       *dwarfTypes
	cur     *unitReader // positioned after the last entry read
	byOff   map[dwarf.Offset]*Type
	files   map[dwarf.Offset][]string // CU DIE offset → file names for Decl
	pending []qualified               // qualified copies to refresh when the outermost conversion ends
	depth   int
	stack   []dwarf.Offset // DIEs being converted, outermost first
	filling []*Type        // their Types
	// broken is a type cycle that no struct or union breaks (a pointer
	// to itself): malformed DWARF. Sticky, as memoized types hold it.
	broken error
}

type qualified struct {
	copy, base *Type
	qual       Qual
}

func newDwarfConverter(t *dwarfTypes) *dwarfConverter {
	return &dwarfConverter{t: t, byOff: map[dwarf.Offset]*Type{}, files: map[dwarf.Offset][]string{}}
}

// convertTop converts the DIE at off and everything it reaches.
func (c *dwarfConverter) convertTop(off dwarf.Offset) (*Type, error) {
	t, err := c.convert(off)
	if err == nil {
		err = c.broken
	}
	if err != nil {
		c.pending = nil
		return nil, err
	}
	c.flush()
	return t, nil
}

// checkCycle is called when off is met again: fine if a struct or union
// is being filled in between (list_head's next), malformed if not.
func (c *dwarfConverter) checkCycle(off dwarf.Offset) {
	for i := len(c.stack) - 1; i >= 0; i-- {
		if k := c.filling[i].Kind; k == KindStruct || k == KindUnion {
			return
		}
		if c.stack[i] == off {
			c.broken = fmt.Errorf("DIE at %#x: a type cycle that no struct or union breaks", off)
			return
		}
	}
}

// typeOfTop converts the DW_AT_type of the DIE at off (a variable).
func (c *dwarfConverter) typeOfTop(off dwarf.Offset) (*Type, error) {
	e, err := c.entry(off)
	if err != nil {
		return nil, err
	}
	to, ok := e.Val(dwarf.AttrType).(dwarf.Offset)
	if !ok {
		// A definition that repeats its declaration's type leaves it
		// to the declaration.
		if spec, ok := e.Val(dwarf.AttrSpecification).(dwarf.Offset); ok && spec != off {
			return c.typeOfTop(spec)
		}
		return nil, fmt.Errorf("DIE at %#x has no type", off)
	}
	return c.convertTop(to)
}

// flush completes qualified copies (const struct x is a copy of struct x
// with Qual set) made while their base was still being filled in.
func (c *dwarfConverter) flush() {
	for _, q := range c.pending {
		*q.copy = *q.base
		q.copy.Qual |= q.qual
	}
	c.pending = c.pending[:0]
}

func (c *dwarfConverter) entry(off dwarf.Offset) (*dwarf.Entry, error) {
	r, err := c.t.readerAt(off)
	if err != nil {
		return nil, err
	}
	c.cur = r
	e, err := r.next()
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, fmt.Errorf("no DIE at %#x", off)
	}
	return e, nil
}

// children reads the direct children of the entry just read.
func (c *dwarfConverter) children(e *dwarf.Entry) ([]*dwarf.Entry, error) {
	if !e.Children {
		return nil, nil
	}
	var out []*dwarf.Entry
	for {
		k, err := c.cur.next()
		if err != nil {
			return nil, err
		}
		if k == nil || k.Tag == 0 {
			return out, nil
		}
		out = append(out, k)
		if k.Children {
			c.cur.rd.SkipChildren()
		}
	}
}

// canonical returns the index's DIE for a named type entry when it is the
// same type, or off itself.
func (c *dwarfConverter) canonical(e *dwarf.Entry, ns nameSpace) dwarf.Offset {
	name, _ := e.Val(dwarf.AttrName).(string)
	if name == "" {
		return e.Offset
	}
	r, ok := c.t.ix.names[ns][name]
	if !ok || dwarf.Offset(r.Off) == e.Offset {
		return e.Offset
	}
	if decl, _ := e.Val(dwarf.AttrDeclaration).(bool); decl {
		return dwarf.Offset(r.Off) // a definition if there is one, or the first declaration
	}
	if ns == nsBase {
		return dwarf.Offset(r.Off)
	}
	if r.Decl {
		return e.Offset
	}
	size, ok := e.Val(dwarf.AttrByteSize).(int64)
	if !ok {
		size = -1
	}
	line, _ := e.Val(dwarf.AttrDeclLine).(int64)
	if size == r.Size && uint32(line) == r.Line && c.sameMembers(e.Offset, dwarf.Offset(r.Off)) {
		return dwarf.Offset(r.Off)
	}
	return e.Offset
}

// sameMembers compares the names and offsets of the children of two DIEs:
// two drivers' file-local "struct priv" may share a size and a line, but
// hardly their members as well. It uses its own readers (c.cur is
// positioned for the caller).
func (c *dwarfConverter) sameMembers(a, b dwarf.Offset) bool {
	sig := func(off dwarf.Offset) (string, bool) {
		rd, err := c.t.readerAt(off)
		if err != nil {
			return "", false
		}
		e, err := rd.next()
		if err != nil || e == nil {
			return "", false
		}
		var sb strings.Builder
		if !e.Children {
			return "", true
		}
		for {
			k, err := rd.next()
			if err != nil {
				return "", false
			}
			if k == nil || k.Tag == 0 {
				return sb.String(), true
			}
			n, _ := k.Val(dwarf.AttrName).(string)
			loc, _ := attrInt(k, dwarf.AttrDataMemberLoc)
			bit, _ := attrInt(k, dwarf.AttrDataBitOffset)
			v, _ := attrInt(k, dwarf.AttrConstValue)
			fmt.Fprintf(&sb, "%s@%d.%d=%d;", n, loc, bit, v)
			if k.Children {
				rd.rd.SkipChildren()
			}
		}
	}
	sa, ok1 := sig(a)
	sb, ok2 := sig(b)
	return ok1 && ok2 && sa == sb
}

func (c *dwarfConverter) typeAttr(e *dwarf.Entry) (*Type, error) {
	to, ok := e.Val(dwarf.AttrType).(dwarf.Offset)
	if !ok {
		return nil, nil // void
	}
	return c.convert(to)
}

func (c *dwarfConverter) convert(off dwarf.Offset) (*Type, error) {
	if t, ok := c.byOff[off]; ok {
		c.checkCycle(off)
		return t, nil
	}
	c.depth++
	defer func() { c.depth-- }()
	if c.depth > 10000 {
		return nil, fmt.Errorf("DIE at %#x: types nest too deeply", off)
	}
	e, err := c.entry(off)
	if err != nil {
		return nil, err
	}
	if ns := tagNamespace(e.Tag); ns != nsCount && ns != nsVar && ns != nsFunc {
		if co := c.canonical(e, ns); co != off {
			t, err := c.convert(co)
			if err != nil {
				return nil, err
			}
			c.byOff[off] = t
			return t, nil
		}
	}
	t := &Type{}
	c.byOff[off] = t
	c.stack, c.filling = append(c.stack, off), append(c.filling, t)
	err = c.fill(t, e)
	c.stack, c.filling = c.stack[:len(c.stack)-1], c.filling[:len(c.filling)-1]
	if err != nil {
		delete(c.byOff, off)
		return nil, fmt.Errorf("DIE at %#x (%v): %w", off, e.Tag, err)
	}
	return t, nil
}

func attrInt(e *dwarf.Entry, a dwarf.Attr) (int64, bool) {
	switch v := e.Val(a).(type) {
	case int64:
		return v, true
	case uint64:
		return int64(v), true
	}
	return 0, false
}

func (c *dwarfConverter) fill(t *Type, e *dwarf.Entry) error {
	name, _ := e.Val(dwarf.AttrName).(string)
	size, hasSize := attrInt(e, dwarf.AttrByteSize)
	switch e.Tag {
	case dwarf.TagBaseType:
		enc, _ := attrInt(e, dwarf.AttrEncoding)
		t.Name, t.Size = cBaseName(name), size
		t.Kind = KindInt
		switch enc {
		case 0x04, 0x03: // DW_ATE_float, complex_float
			t.Kind = KindFloat
		case 0x02:
			t.Encoding = EncBool
		case 0x05, 0x0d: // signed, signed_fixed
			t.Encoding = EncSigned
		case 0x06, 0x08: // signed_char, unsigned_char
			t.Encoding = EncUnsigned
			if enc == 0x06 {
				t.Encoding = EncSigned
			}
			if name == "char" {
				t.Encoding = EncChar
			}
		default:
			t.Encoding = EncUnsigned
		}
	case dwarf.TagUnspecifiedType:
		t.Kind, t.Name = KindVoid, name
	case dwarf.TagPointerType, dwarf.TagReferenceType, dwarf.TagRvalueReferenceType:
		t.Kind, t.Size = KindPointer, 8
		if hasSize {
			t.Size = size
		} else if e.Offset >= 0 {
			t.Size = int64(c.addrSize())
		}
		elem, err := c.typeAttr(e)
		if err != nil {
			return err
		}
		t.Elem = elem
	case dwarf.TagConstType, dwarf.TagVolatileType, dwarf.TagRestrictType, dwarf.TagAtomicType:
		base, err := c.typeAttr(e)
		if err != nil {
			return err
		}
		var q Qual
		switch e.Tag {
		case dwarf.TagConstType:
			q = QualConst
		case dwarf.TagVolatileType:
			q = QualVolatile
		case dwarf.TagRestrictType:
			q = QualRestrict
		}
		if base == nil {
			*t = Type{Kind: KindVoid, Qual: q}
			return nil
		}
		*t = *base
		t.Qual |= q
		c.pending = append(c.pending, qualified{t, base, q})
	case dwarf.TagTypedef:
		t.Kind, t.Name = KindTypedef, name
		t.Decl = c.decl(e)
		elem, err := c.typeAttr(e)
		if err != nil {
			return err
		}
		t.Elem = elem
		t.Size = typeSize(elem)
	case dwarf.TagArrayType:
		return c.fillArray(t, e)
	case dwarf.TagStructType, dwarf.TagUnionType:
		t.Kind, t.Name = KindStruct, name
		if e.Tag == dwarf.TagUnionType {
			t.Kind = KindUnion
		}
		t.Decl = c.decl(e)
		if decl, _ := e.Val(dwarf.AttrDeclaration).(bool); decl || !hasSize {
			t.Size = -1
			return nil
		}
		t.Size = size
		kids, err := c.children(e)
		if err != nil {
			return err
		}
		for _, k := range kids {
			if k.Tag != dwarf.TagMember {
				continue
			}
			m, err := c.member(k)
			if err != nil {
				return err
			}
			t.Members = append(t.Members, m)
		}
	case dwarf.TagEnumerationType:
		t.Kind, t.Name, t.Size = KindEnum, name, size
		t.Decl = c.decl(e)
		if decl, _ := e.Val(dwarf.AttrDeclaration).(bool); decl || !hasSize {
			t.Size = -1
		}
		kids, err := c.children(e)
		if err != nil {
			return err
		}
		for _, k := range kids {
			if k.Tag != dwarf.TagEnumerator {
				continue
			}
			n, _ := k.Val(dwarf.AttrName).(string)
			v, _ := attrInt(k, dwarf.AttrConstValue)
			t.Enums = append(t.Enums, Enumerator{Name: n, Value: v})
		}
		elem, err := c.typeAttr(e)
		if err != nil {
			return err
		}
		t.Elem = elem
	case dwarf.TagSubroutineType, dwarf.TagSubprogram:
		t.Kind = KindFunc
		if e.Tag == dwarf.TagSubprogram {
			t.Decl = c.decl(e)
		}
		kids, err := c.children(e)
		if err != nil {
			return err
		}
		ret, err := c.typeAttr(e)
		if err != nil {
			return err
		}
		t.Elem = ret
		for _, k := range kids {
			switch k.Tag {
			case dwarf.TagFormalParameter:
				pt, err := c.typeAttr(k)
				if err != nil {
					return err
				}
				n, _ := k.Val(dwarf.AttrName).(string)
				t.Params = append(t.Params, Param{Name: n, Type: pt})
			case dwarf.TagUnspecifiedParameters:
				t.Variadic = true
			}
		}
	default:
		return fmt.Errorf("not a type")
	}
	return nil
}

func (c *dwarfConverter) addrSize() int {
	return 8
}

func (c *dwarfConverter) fillArray(t *Type, e *dwarf.Entry) error {
	kids, err := c.children(e)
	if err != nil {
		return err
	}
	elem, err := c.typeAttr(e)
	if err != nil {
		return err
	}
	var dims []int64
	for _, k := range kids {
		if k.Tag != dwarf.TagSubrangeType {
			continue
		}
		n := int64(-1)
		if v, ok := attrInt(k, dwarf.AttrCount); ok {
			n = v
		} else if v, ok := attrInt(k, dwarf.AttrUpperBound); ok {
			lo, _ := attrInt(k, dwarf.AttrLowerBound)
			n = v - lo + 1
		}
		dims = append(dims, n)
	}
	if len(dims) == 0 {
		dims = []int64{-1}
	}
	// int a[2][3] is an array of 2 arrays of 3: build from the inside.
	for i := len(dims) - 1; i > 0; i-- {
		elem = &Type{Kind: KindArray, Elem: elem, Len: dims[i], Size: arraySize(elem, dims[i])}
	}
	t.Kind, t.Elem, t.Len = KindArray, elem, dims[0]
	t.Size = arraySize(elem, dims[0])
	return nil
}

func arraySize(elem *Type, n int64) int64 {
	if n < 0 {
		return 0
	}
	return n * max(typeSize(elem), 0)
}

// typeSize is the size of t through typedefs and qualifiers.
func typeSize(t *Type) int64 {
	seen := 0
	for t != nil && t.Kind == KindTypedef && seen < 64 {
		t = t.Elem
		seen++
	}
	if t == nil {
		return 0
	}
	return t.Size
}

func (c *dwarfConverter) member(k *dwarf.Entry) (Member, error) {
	mt, err := c.typeAttr(k)
	if err != nil {
		return Member{}, err
	}
	name, _ := k.Val(dwarf.AttrName).(string)
	m := Member{Name: name, Type: mt}
	var byteOff int64
	switch v := k.Val(dwarf.AttrDataMemberLoc).(type) {
	case int64:
		byteOff = v
	case []byte: // DWARF 2 location expression: DW_OP_plus_uconst n
		if len(v) > 1 && v[0] == 0x23 {
			u, _ := uleb(v[1:])
			byteOff = int64(u)
		}
	}
	bitSize, _ := attrInt(k, dwarf.AttrBitSize)
	if bitSize == 0 {
		m.Offset = byteOff
		return m, nil
	}
	var bitPos int64
	if v, ok := attrInt(k, dwarf.AttrDataBitOffset); ok {
		bitPos = v
	} else if v, ok := attrInt(k, dwarf.AttrBitOffset); ok {
		// DWARF 2/3: big-endian numbering within a storage unit of
		// DW_AT_byte_size bytes at DW_AT_data_member_location.
		unit, ok := attrInt(k, dwarf.AttrByteSize)
		if !ok {
			unit = typeSize(mt)
		}
		bitPos = byteOff*8 + unit*8 - v - bitSize
	} else {
		bitPos = byteOff * 8
	}
	m.Offset, m.BitOffset = bitfieldPlacement(bitPos, typeSize(mt))
	m.BitSize = int(bitSize)
	return m, nil
}

// decl renders DW_AT_decl_file:DW_AT_decl_line relative to the kernel
// source tree, or "" when the DIE lacks them.
func (c *dwarfConverter) decl(e *dwarf.Entry) string {
	file, ok := attrInt(e, dwarf.AttrDeclFile)
	if !ok {
		return ""
	}
	line, _ := attrInt(e, dwarf.AttrDeclLine)
	files := c.unitFiles(e.Offset)
	if file < 0 || int(file) >= len(files) || files[file] == "" {
		return ""
	}
	return fmt.Sprintf("%s:%d", files[file], line)
}

func (c *dwarfConverter) unitFiles(off dwarf.Offset) []string {
	cus := c.t.cus
	i := sort.Search(len(cus), func(i int) bool { return cus[i] > off }) - 1
	if i < 0 {
		return nil
	}
	cu := cus[i]
	if f, ok := c.files[cu]; ok {
		return f
	}
	var names []string
	// A private reader: c.cur is positioned inside the caller's entry.
	// LineReader wants the entry as its own dwarf.Data numbers it.
	rd, err := c.t.readerAt(cu)
	if err != nil {
		c.files[cu] = nil
		return nil
	}
	if e, err := rd.rd.Next(); err == nil && e != nil {
		if lr, err := rd.data.LineReader(e); err == nil && lr != nil {
			for _, f := range lr.Files() {
				if f == nil {
					names = append(names, "")
					continue
				}
				names = append(names, sourceRelative(f.Name))
			}
		}
	}
	c.files[cu] = names
	return names
}

// sourceRelative makes a file name from the line table relative to the
// kernel's source tree: Debian builds in
// /build/reproducible-path/linux-6.1.192 with objects under
// debian/build/build_amd64_none_cloud-amd64, so a header may be named
// "/build/…/linux-6.1.192/include/linux/sched.h" or
// "debian/build/build_amd64_none_cloud-amd64/include/linux/sched.h"
// (generated or copied headers); the tree starts at its first top-level
// kernel directory.
func sourceRelative(name string) string {
	name = path.Clean(name)
	if !path.IsAbs(name) {
		name = "/" + name
	}
	{
		best := -1
		for _, marker := range []string{"/include/", "/arch/", "/kernel/", "/mm/", "/fs/", "/net/", "/drivers/", "/lib/", "/block/", "/security/", "/crypto/", "/ipc/", "/init/", "/virt/", "/sound/"} {
			if i := strings.Index(name, marker); i >= 0 && (best < 0 || i < best) {
				best = i
			}
		}
		if best >= 0 {
			return name[best+1:]
		}
	}
	return strings.TrimPrefix(name, "/")
}
