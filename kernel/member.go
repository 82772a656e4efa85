package kernel

import "salvage/debuginfo"

// lookupMember resolves a member path ("se.vruntime", "pids[1].node",
// members of anonymous structs and unions found through them) in struct
// or union t.
func lookupMember(t *debuginfo.Type, path string) (debuginfo.MemberPath, error) {
	return debuginfo.LookupMember(t, path)
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
