package kernel

import (
	"fmt"
	"strconv"
	"strings"

	"salvage/debuginfo"
)

// lookupMember resolves a member path ("se.vruntime", "pids[1].node",
// members of anonymous structs and unions found through them) in struct
// or union t.
func lookupMember(t *debuginfo.Type, path string) (debuginfo.MemberPath, error) {
	mp := debuginfo.MemberPath{Type: t}
	if path == "" {
		return mp, fmt.Errorf("empty member path in %s", debuginfo.TypeName(t))
	}
	for _, part := range strings.Split(path, ".") {
		name, idx, err := splitIndex(part)
		if err != nil {
			return mp, fmt.Errorf("member %q of %s: %v", path, debuginfo.TypeName(t), err)
		}
		cur := mp.Type.Resolve()
		if cur == nil || (cur.Kind != debuginfo.KindStruct && cur.Kind != debuginfo.KindUnion) {
			return mp, fmt.Errorf("member %q of %s: %s is %s, not a struct or union", path, debuginfo.TypeName(t), name, debuginfo.TypeName(mp.Type))
		}
		m, off, ok := findMember(cur, name, map[*debuginfo.Type]bool{})
		if !ok {
			return mp, &debuginfo.NotFoundError{What: fmt.Sprintf("member %s of %s", name, debuginfo.TypeName(cur)), Source: "its type"}
		}
		mp.Offset += off
		mp.Type, mp.BitOffset, mp.BitSize = m.Type, m.BitOffset, m.BitSize
		for _, i := range idx {
			at := mp.Type.Resolve()
			if at == nil || at.Kind != debuginfo.KindArray {
				return mp, fmt.Errorf("member %q of %s: %s is not an array", path, debuginfo.TypeName(t), name)
			}
			if at.Len >= 0 && int64(i) >= at.Len {
				return mp, fmt.Errorf("member %q of %s: index %d out of range [0,%d)", path, debuginfo.TypeName(t), i, at.Len)
			}
			mp.Offset += int64(i) * sizeOf(at.Elem)
			mp.Type = at.Elem
		}
	}
	return mp, nil
}

// findMember finds a named member, descending into anonymous members.
func findMember(t *debuginfo.Type, name string, seen map[*debuginfo.Type]bool) (debuginfo.Member, int64, bool) {
	if seen[t] {
		return debuginfo.Member{}, 0, false
	}
	seen[t] = true
	for _, m := range t.Members {
		if m.Name == name {
			return m, m.Offset, true
		}
	}
	for _, m := range t.Members {
		if m.Name != "" {
			continue
		}
		inner := m.Type.Resolve()
		if inner == nil || (inner.Kind != debuginfo.KindStruct && inner.Kind != debuginfo.KindUnion) {
			continue
		}
		if found, off, ok := findMember(inner, name, seen); ok {
			return found, m.Offset + off, true
		}
	}
	return debuginfo.Member{}, 0, false
}

func splitIndex(part string) (string, []int, error) {
	name, rest, ok := strings.Cut(part, "[")
	if !ok {
		return part, nil, nil
	}
	var idx []int
	rest = "[" + rest
	for rest != "" {
		if rest[0] != '[' {
			return "", nil, fmt.Errorf("bad index in %q", part)
		}
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return "", nil, fmt.Errorf("unclosed [ in %q", part)
		}
		i, err := strconv.ParseUint(rest[1:end], 0, 31)
		if err != nil {
			return "", nil, fmt.Errorf("bad index in %q", part)
		}
		idx = append(idx, int(i))
		rest = rest[end+1:]
	}
	return name, idx, nil
}

// sizeOf is a type's size in bytes, through typedefs (qualifiers and
// typedefs keep the size of what they name).
func sizeOf(t *debuginfo.Type) int64 {
	for t != nil {
		if t.Kind == debuginfo.KindTypedef {
			t = t.Elem
			continue
		}
		if t.Kind == debuginfo.KindPointer {
			return 8
		}
		if t.Kind == debuginfo.KindArray && t.Size <= 0 && t.Len > 0 {
			return t.Len * sizeOf(t.Elem)
		}
		return t.Size
	}
	return 0
}
