package debuginfo

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/cilium/ebpf/btf"
)

// btfTypes is Types over BTF, parsed by github.com/cilium/ebpf/btf
// (format: the kernel's Documentation/bpf/btf.rst). BTF is deduplicated,
// so one btf.Type becomes one Type; conversion is on demand and
// memoized. BTF has no types for most global variables (only per-CPU
// ones and a few others): WithWellKnownVars fills in those the analyzer
// needs.
type btfTypes struct {
	source string

	mu      sync.Mutex // guards everything below: btf.Spec decodes lazily
	spec    *btf.Spec
	conv    map[btf.Type]*Type
	pending []qualified
	stack   []btf.Type // types being converted, outermost first
	// broken is a type cycle that does not pass through a struct or
	// union; once found, every lookup fails with it, as the memoized
	// types may hold the cycle.
	broken error
	// fullNames indexes the types whose names contain "___" (see byName).
	fullNames map[string][]btf.Type
}

// maxBTFSize bounds BTF read from a dump: vmlinux BTF is a few MB (6.1:
// 4 MB); the bound catches a __start_BTF/__stop_BTF pair from another
// kernel.
const maxBTFSize = 64 << 20

// LoadBTF parses vmlinux BTF (raw .BTF bytes). source names where the
// bytes came from, for messages ("BTF of vmlinux-6.1", "BTF in the dump").
func LoadBTF(raw []byte, source string) (Types, error) {
	t, err := loadBTF(raw, nil, source)
	if err != nil {
		return nil, err
	}
	return t, nil
}

func loadBTF(raw []byte, base *btf.Spec, source string) (*btfTypes, error) {
	var spec *btf.Spec
	var err error
	if base != nil {
		spec, err = btf.LoadSplitSpecFromReader(bytes.NewReader(raw), base)
	} else {
		spec, err = btf.LoadSpecFromReader(bytes.NewReader(raw))
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	return &btfTypes{source: source, spec: spec, conv: map[btf.Type]*Type{}}, nil
}

// LoadModuleBTF parses a module's split BTF (its .BTF section, or the
// btf_data of its struct module) on top of the vmlinux BTF that vmlinux
// came from. Types the module shares with the kernel are the kernel's.
func LoadModuleBTF(raw []byte, vmlinux Types, source string) (Types, error) {
	base, ok := BaseBTF(vmlinux).(*btfTypes)
	if !ok {
		return nil, fmt.Errorf("%s: module BTF needs the vmlinux BTF as its base, not %s", source, vmlinux.Source())
	}
	t, err := loadBTF(raw, base.spec, source)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// LoadModuleBTFFromELF reads the split BTF of a module file (.ko) on top
// of the vmlinux BTF.
func LoadModuleBTFFromELF(koPath string, vmlinux Types) (Types, error) {
	raw, err := elfBTF(koPath)
	if err != nil {
		return nil, err
	}
	return LoadModuleBTF(raw, vmlinux, "BTF of module "+koPath)
}

// LoadBTFFromELF reads the .BTF section of a vmlinux (debug or not) or of
// a module (then without its base: use LoadModuleBTF).
func LoadBTFFromELF(path string) (Types, error) {
	raw, module, err := elfBTFKind(path)
	if err != nil {
		return nil, err
	}
	if module {
		return nil, fmt.Errorf("%s: a module's BTF is split BTF on top of the kernel's: load it with LoadModuleBTFFromELF", path)
	}
	return LoadBTF(raw, "BTF of "+path)
}

func elfBTF(path string) ([]byte, error) {
	raw, _, err := elfBTFKind(path)
	return raw, err
}

// elfBTFKind also says whether the file is relocatable (a module, whose
// BTF is split: it needs the vmlinux BTF under it).
func elfBTFKind(path string) ([]byte, bool, error) {
	f, err := elf.Open(path)
	if err != nil {
		var fe *elf.FormatError
		if errors.As(err, &fe) {
			return nil, false, fmt.Errorf("%s: not an ELF file (a compressed vmlinuz?): %w", path, err)
		}
		return nil, false, err
	}
	defer f.Close()
	s := f.Section(".BTF")
	if s == nil {
		return nil, false, fmt.Errorf("%s: no .BTF section (kernel built without CONFIG_DEBUG_INFO_BTF)", path)
	}
	raw, err := s.Data()
	if err != nil {
		return nil, false, fmt.Errorf("%s: section .BTF: %w", path, err)
	}
	return raw, f.Type == elf.ET_REL, nil
}

// LoadBTFFromMemory reads the vmlinux BTF that the kernel keeps in its
// own memory between the symbols __start_BTF and __stop_BTF.
func LoadBTFFromMemory(r VirtReader, start, stop uint64) (Types, error) {
	if stop <= start || stop-start > maxBTFSize {
		return nil, fmt.Errorf("BTF in memory: __start_BTF %#x and __stop_BTF %#x do not bound a BTF blob (at most %d MB)", start, stop, maxBTFSize>>20)
	}
	// cilium/ebpf reads a raw blob with io.ReadAll, which grows its
	// buffer step by step (garbage twice the blob's size, and in a
	// capture kernel every fresh page counts), but an ELF file's .BTF
	// section into one buffer of the section's size: the blob is handed
	// over as the .BTF section of an ELF object made up around it, read
	// straight from the dump's memory.
	var magic [2]byte
	if _, err := r.ReadVirt(magic[:], start); err != nil {
		return nil, fmt.Errorf("BTF in memory: reading __start_BTF %#x: %w", start, err)
	}
	source := fmt.Sprintf("BTF in memory at %#x", start)
	spec, err := btf.LoadSpecFromReader(newBTFObject(r, start, stop-start, magic))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	return &btfTypes{source: source, spec: spec, conv: map[btf.Type]*Type{}}, nil
}

func readBTFFromMemory(r VirtReader, start, stop uint64) ([]byte, error) {
	if stop <= start || stop-start > maxBTFSize {
		return nil, fmt.Errorf("BTF in memory: __start_BTF %#x and __stop_BTF %#x do not bound a BTF blob (at most %d MB)", start, stop, maxBTFSize>>20)
	}
	raw := make([]byte, stop-start)
	const chunk = 1 << 20
	for off := 0; off < len(raw); {
		n := min(chunk, len(raw)-off)
		got, err := r.ReadVirt(raw[off:off+n], start+uint64(off))
		if err != nil {
			return nil, fmt.Errorf("BTF in memory: reading %#x (%d bytes after __start_BTF %#x): %w", start+uint64(off)+uint64(max(got, 0)), off+max(got, 0), start, err)
		}
		if got <= 0 {
			return nil, fmt.Errorf("BTF in memory: short read at %#x", start+uint64(off))
		}
		off += got
	}
	return raw, nil
}

func (t *btfTypes) Source() string { return t.source }

// byName lists the types named name; t.mu held. cilium/ebpf matches
// names through their "essential" part, the part before "___" (CO-RE
// flavors), so that kernel names with "___" in them (___d_drop,
// ___bpf_prog_run) are not found: those go through an index of full
// names, built the first time one is asked for.
func (t *btfTypes) byName(name string) ([]btf.Type, error) {
	if !strings.Contains(name, "___") {
		return t.spec.AnyTypesByName(name)
	}
	if t.fullNames == nil {
		t.fullNames = map[string][]btf.Type{}
		for ty, err := range t.spec.All() {
			if err != nil {
				return nil, err
			}
			if n := ty.TypeName(); strings.Contains(n, "___") {
				t.fullNames[n] = append(t.fullNames[n], ty)
			}
		}
	}
	if c := t.fullNames[name]; len(c) > 0 {
		return c, nil
	}
	return nil, fmt.Errorf("%s: %w", name, btf.ErrNotFound)
}

// byNameOf returns the first type of kind T named name, or nil; t.mu held.
func byNameOf[T btf.Type](t *btfTypes, name string) (T, error) {
	var zero T
	cands, err := t.byName(name)
	if err != nil && !errors.Is(err, btf.ErrNotFound) {
		return zero, err
	}
	for _, c := range cands {
		if x, ok := c.(T); ok {
			return x, nil
		}
	}
	return zero, nil
}

func (t *btfTypes) notFound(what string) error {
	return &NotFoundError{What: what, Source: t.source}
}

// find returns the first type named name for which keep is true,
// preferring one that keep calls complete.
func (t *btfTypes) find(what, name string, keep func(btf.Type) (ok, complete bool)) (*Type, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	cands, err := t.byName(name)
	if err != nil && !errors.Is(err, btf.ErrNotFound) {
		return nil, fmt.Errorf("%s %s in %s: %w", what, name, t.source, err)
	}
	var pick btf.Type
	for _, c := range cands {
		ok, complete := keep(c)
		if !ok {
			continue
		}
		if complete {
			pick = c
			break
		}
		if pick == nil {
			pick = c
		}
	}
	if pick == nil {
		return nil, t.notFound(what + " " + name)
	}
	return t.finish(t.convert(pick))
}

func (t *btfTypes) Struct(name string) (*Type, error) {
	return t.find("struct", name, func(b btf.Type) (bool, bool) {
		switch b := b.(type) {
		case *btf.Struct:
			return true, true
		case *btf.Fwd:
			return b.Kind == btf.FwdStruct, false
		}
		return false, false
	})
}

func (t *btfTypes) Union(name string) (*Type, error) {
	return t.find("union", name, func(b btf.Type) (bool, bool) {
		switch b := b.(type) {
		case *btf.Union:
			return true, true
		case *btf.Fwd:
			return b.Kind == btf.FwdUnion, false
		}
		return false, false
	})
}

func (t *btfTypes) Enum(name string) (*Type, error) {
	return t.find("enum", name, func(b btf.Type) (bool, bool) {
		e, ok := b.(*btf.Enum)
		return ok, ok && e.Size > 0
	})
}

func (t *btfTypes) Typedef(name string) (*Type, error) {
	return t.find("typedef", name, func(b btf.Type) (bool, bool) {
		_, ok := b.(*btf.Typedef)
		return ok, true
	})
}

func (t *btfTypes) base(name string) (*Type, error) {
	want := name
	if dn, ok := dwarfBaseName[name]; ok {
		want = dn
	}
	return t.find("type", want, func(b btf.Type) (bool, bool) {
		switch b.(type) {
		case *btf.Int, *btf.Float:
			return true, true
		}
		return false, false
	})
}

func (t *btfTypes) Named(spelling string) (*Type, error) {
	return namedType(t, spelling, t.base)
}

func (t *btfTypes) Var(name string) (*Type, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	v, err := byNameOf[*btf.Var](t, name)
	if err != nil {
		return nil, fmt.Errorf("variable %s in %s: %w", name, t.source, err)
	}
	if v == nil {
		return nil, t.notFound("variable " + name)
	}
	return t.finish(t.convert(v.Type))
}

func (t *btfTypes) Func(name string) (*Type, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f, err := byNameOf[*btf.Func](t, name)
	if err != nil {
		return nil, fmt.Errorf("function %s in %s: %w", name, t.source, err)
	}
	if f == nil {
		return nil, t.notFound("function " + name)
	}
	return t.finish(t.convert(f))
}

// finish completes a conversion; t.mu held.
func (t *btfTypes) finish(ty *Type) (*Type, error) {
	t.flush()
	if t.broken != nil {
		return nil, t.broken
	}
	return ty, nil
}

func (t *btfTypes) flush() {
	for _, q := range t.pending {
		*q.copy = *q.base
		q.copy.Qual |= q.qual
	}
	t.pending = t.pending[:0]
}

// convert turns a btf.Type into a Type; void is nil, as in DWARF. t.mu held.
func (t *btfTypes) convert(b btf.Type) *Type {
	if b == nil {
		return nil
	}
	if _, ok := b.(*btf.Void); ok {
		return nil
	}
	if ty, ok := t.conv[b]; ok {
		t.checkCycle(b)
		return ty
	}
	switch b.(type) {
	case *btf.TypeTag, *btf.Var, *btf.Typedef, *btf.Pointer, *btf.Const, *btf.Volatile, *btf.Restrict:
		if slices.Contains(t.stack, b) {
			t.broken = fmt.Errorf("%s: the type graph has a cycle through %v that no struct or union breaks", t.source, b)
			return nil
		}
	}
	t.stack = append(t.stack, b)
	defer func() { t.stack = t.stack[:len(t.stack)-1] }()
	// Types that stand for another: converted without a Type of their
	// own (cycles through them meet the other's memo entry).
	switch b := b.(type) {
	case *btf.Fwd:
		if full := t.complete(b); full != nil {
			res := t.convert(full)
			t.conv[b] = res
			return res
		}
	case *btf.TypeTag:
		// __user, __rcu, __percpu: annotations that DWARF does not show.
		res := t.convert(b.Type)
		t.conv[b] = res
		return res
	case *btf.Var:
		res := t.convert(b.Type)
		t.conv[b] = res
		return res
	}
	ty := &Type{}
	t.conv[b] = ty
	switch b := b.(type) {
	case *btf.Int:
		ty.Kind, ty.Name, ty.Size = KindInt, cBaseName(b.Name), int64(b.Size)
		switch {
		case b.Encoding&btf.Bool != 0:
			ty.Encoding = EncBool
		case b.Name == "char":
			ty.Encoding = EncChar
		case b.Encoding&btf.Signed != 0:
			ty.Encoding = EncSigned
		default:
			ty.Encoding = EncUnsigned
		}
	case *btf.Float:
		ty.Kind, ty.Name, ty.Size = KindFloat, b.Name, int64(b.Size)
	case *btf.Pointer:
		ty.Kind, ty.Size = KindPointer, 8
		ty.Elem = t.convert(b.Target)
	case *btf.Array:
		ty.Kind, ty.Len = KindArray, int64(b.Nelems)
		ty.Elem = t.convert(b.Type)
		ty.Size = arraySize(ty.Elem, ty.Len)
	case *btf.Struct:
		ty.Kind, ty.Name, ty.Size = KindStruct, b.Name, int64(b.Size)
		ty.Members = t.members(b.Members)
	case *btf.Union:
		ty.Kind, ty.Name, ty.Size = KindUnion, b.Name, int64(b.Size)
		ty.Members = t.members(b.Members)
	case *btf.Enum:
		ty.Kind, ty.Name, ty.Size = KindEnum, b.Name, int64(b.Size)
		if b.Size == 0 {
			ty.Size = -1 // enum forward declaration
		}
		for _, v := range b.Values {
			val := int64(v.Value)
			if !b.Signed && b.Size < 8 && b.Size > 0 {
				val = int64(v.Value & (1<<(8*b.Size) - 1))
			}
			ty.Enums = append(ty.Enums, Enumerator{Name: v.Name, Value: val})
		}
	case *btf.Typedef:
		ty.Kind, ty.Name = KindTypedef, b.Name
		ty.Elem = t.convert(b.Type)
		ty.Size = typeSize(ty.Elem)
	case *btf.Const, *btf.Volatile, *btf.Restrict:
		var q Qual
		var target btf.Type
		switch b := b.(type) {
		case *btf.Const:
			q, target = QualConst, b.Type
		case *btf.Volatile:
			q, target = QualVolatile, b.Type
		case *btf.Restrict:
			q, target = QualRestrict, b.Type
		}
		base := t.convert(target)
		if base == nil {
			*ty = Type{Kind: KindVoid, Qual: q}
			break
		}
		*ty = *base
		ty.Qual |= q
		t.pending = append(t.pending, qualified{ty, base, q})
	case *btf.Func:
		t.fillFunc(ty, b.Type)
	case *btf.FuncProto:
		t.fillFunc(ty, b)
	case *btf.Fwd: // no definition anywhere
		ty.Kind, ty.Name, ty.Size = KindStruct, b.Name, -1
		if b.Kind == btf.FwdUnion {
			ty.Kind = KindUnion
		}
	default:
		ty.Kind = KindVoid
	}
	return ty
}

// checkCycle notes a cycle in the type graph that C cannot write (a
// pointer to itself, a typedef of itself): every C cycle passes through a
// struct or union. Left in, it would send TypeName and Resolve round it
// for ever.
func (t *btfTypes) checkCycle(b btf.Type) {
	for i := len(t.stack) - 1; i >= 0; i-- {
		switch t.stack[i].(type) {
		case *btf.Struct, *btf.Union:
			return
		}
		if t.stack[i] == b {
			t.broken = fmt.Errorf("%s: the type graph has a cycle through %v that no struct or union breaks", t.source, b)
			return
		}
	}
}

// complete finds the definition of a forward declaration.
func (t *btfTypes) complete(f *btf.Fwd) btf.Type {
	cands, err := t.byName(f.Name)
	if err != nil {
		return nil
	}
	for _, c := range cands {
		switch c.(type) {
		case *btf.Struct:
			if f.Kind == btf.FwdStruct {
				return c
			}
		case *btf.Union:
			if f.Kind == btf.FwdUnion {
				return c
			}
		}
	}
	return nil
}

func (t *btfTypes) fillFunc(ty *Type, b btf.Type) {
	ty.Kind = KindFunc
	fp, ok := b.(*btf.FuncProto)
	if !ok {
		return
	}
	ty.Elem = t.convert(fp.Return)
	for i, p := range fp.Params {
		if _, void := p.Type.(*btf.Void); void && p.Name == "" && i == len(fp.Params)-1 {
			ty.Variadic = true // BTF ends a variadic prototype with a void parameter
			continue
		}
		ty.Params = append(ty.Params, Param{Name: p.Name, Type: t.convert(p.Type)})
	}
}

func (t *btfTypes) members(ms []btf.Member) []Member {
	out := make([]Member, 0, len(ms))
	for _, m := range ms {
		mt := t.convert(m.Type)
		mm := Member{Name: m.Name, Type: mt, Offset: int64(m.Offset / 8)}
		if m.BitfieldSize > 0 {
			mm.Offset, mm.BitOffset = bitfieldPlacement(int64(m.Offset), typeSize(mt))
			mm.BitSize = int(m.BitfieldSize)
		}
		out = append(out, mm)
	}
	return out
}
