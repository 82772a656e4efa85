package debuginfo

import (
	"fmt"
	"strconv"
	"strings"
)

// bitfieldPlacement splits a bitfield's bit position (from the start of
// its struct) into the byte offset of its storage unit — aligned to the
// size of the member's type, as a C compiler lays it out and as crash
// reads it — and the bit offset within that unit. DWARF 5
// (DW_AT_data_bit_offset) and BTF (bit offsets) both give the position,
// so both sources place bitfields identically.
func bitfieldPlacement(bitPos, unitSize int64) (off int64, bitOff int) {
	if unitSize <= 0 {
		unitSize = 1
	}
	off = bitPos / (unitSize * 8) * unitSize
	return off, int(bitPos - off*8)
}

// MemberError says why a member path does not name a member.
type MemberError struct {
	Type   string // the struct or union searched: "struct task_struct"
	Member string // the component that failed: "vruntim"
	Path   string // the whole path: "se.vruntim"
	Msg    string // "no such member", "is not an array"…
}

func (e *MemberError) Error() string {
	if e.Path != "" && e.Path != e.Member {
		return fmt.Sprintf("%s: member %q (of %q): %s", e.Type, e.Member, e.Path, e.Msg)
	}
	return fmt.Sprintf("%s: member %q: %s", e.Type, e.Member, e.Msg)
}

// LookupMember finds a member of a struct or union by path: "se.vruntime",
// "mm.mmap_base" (members of members, not through pointers),
// "cpus_mask.bits[1]" (array elements). Members of anonymous structs and
// unions are found as if they were the enclosing type's own, as in C:
// task_struct's randomized layout puts most members in one.
func LookupMember(t *Type, path string) (MemberPath, error) {
	cur := t
	var res MemberPath
	rest := path
	first := true
	for rest != "" {
		var name string
		switch {
		case rest[0] == '[':
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return MemberPath{}, &MemberError{Type: TypeName(cur), Member: rest, Path: path, Msg: "unclosed ["}
			}
			idx, err := strconv.ParseInt(strings.TrimSpace(rest[1:end]), 0, 64)
			if err != nil || idx < 0 {
				return MemberPath{}, &MemberError{Type: TypeName(cur), Member: rest[:end+1], Path: path, Msg: "bad array index"}
			}
			arr := cur.Resolve()
			if arr == nil || arr.Kind != KindArray {
				return MemberPath{}, &MemberError{Type: TypeName(cur), Member: rest[:end+1], Path: path, Msg: "is not an array"}
			}
			if arr.Len >= 0 && idx >= arr.Len {
				return MemberPath{}, &MemberError{Type: TypeName(cur), Member: rest[:end+1], Path: path, Msg: fmt.Sprintf("index beyond the %d elements", arr.Len)}
			}
			res.Offset += idx * max(typeSize(arr.Elem), 0)
			res.Type, res.BitOffset, res.BitSize = arr.Elem, 0, 0
			cur = arr.Elem
			rest = rest[end+1:]
			first = false
			continue
		case rest[0] == '.' && !first:
			rest = rest[1:]
		}
		end := strings.IndexAny(rest, ".[")
		if end < 0 {
			end = len(rest)
		}
		name, rest = rest[:end], rest[end:]
		first = false
		st := cur.Resolve()
		if st == nil || (st.Kind != KindStruct && st.Kind != KindUnion) {
			msg := "is not a struct or union"
			if st != nil && st.Kind == KindPointer {
				msg = "is a pointer (member paths do not follow pointers)"
			}
			return MemberPath{}, &MemberError{Type: TypeName(cur), Member: name, Path: path, Msg: msg}
		}
		if st.Size < 0 {
			return MemberPath{}, &MemberError{Type: TypeName(st), Member: name, Path: path, Msg: "the type is only declared (incomplete)"}
		}
		m, off, ok := findMember(st, name, 0)
		if !ok {
			return MemberPath{}, &MemberError{Type: TypeName(st), Member: name, Path: path, Msg: "no such member"}
		}
		res.Offset += off
		res.Type, res.BitOffset, res.BitSize = m.Type, m.BitOffset, m.BitSize
		cur = m.Type
	}
	if res.Type == nil && path == "" {
		return MemberPath{}, &MemberError{Type: TypeName(t), Path: path, Msg: "empty member path"}
	}
	return res, nil
}

// findMember finds a direct member of st, or one of an anonymous struct or
// union member, depth first in declaration order (C forbids duplicates, so
// the order only matters for broken debug info). off is the offset of the
// member from the start of st.
func findMember(st *Type, name string, depth int) (m Member, off int64, ok bool) {
	if depth > 32 {
		return Member{}, 0, false
	}
	for _, m := range st.Members {
		if m.Name == name && name != "" {
			return m, m.Offset, true
		}
	}
	for _, m := range st.Members {
		if m.Name != "" {
			continue
		}
		in := m.Type.Resolve()
		if in == nil || (in.Kind != KindStruct && in.Kind != KindUnion) {
			continue
		}
		if found, o, ok := findMember(in, name, depth+1); ok {
			return found, m.Offset + o, true
		}
	}
	return Member{}, 0, false
}
