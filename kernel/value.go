package kernel

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"

	"salvage/debuginfo"
)

// Value is a kernel object: an address and a type. Nothing is read until
// a method needs the bytes, so walking member paths and container_of costs
// no I/O.
type Value struct {
	k         *Kernel
	addr      uint64
	typ       *debuginfo.Type
	bitOffset int // bitfields: bit offset within the storage unit at addr
	bitSize   int // 0 unless a bitfield
}

// Address is where the object is in kernel virtual memory.
func (v Value) Address() uint64 { return v.addr }

// Type is the object's declared type (typedefs kept).
func (v Value) Type() *debuginfo.Type { return v.typ }

// Kernel is the kernel the object belongs to.
func (v Value) Kernel() *Kernel { return v.k }

// IsValid reports whether v was produced by a successful lookup.
func (v Value) IsValid() bool { return v.k != nil && v.typ != nil }

// Size is the object's size in bytes.
func (v Value) Size() int64 { return sizeOf(v.typ) }

func (v Value) typeName() string { return debuginfo.TypeName(v.typ) }

func (v Value) typeErr(format string, args ...any) error {
	return &TypeError{Addr: v.addr, Type: v.typeName(), Msg: fmt.Sprintf(format, args...)}
}

// Member is the member at path ("se.vruntime", "pids[1]"). A pointer to
// a struct or union is followed first, as C's -> would, and "->" in the
// path follows the pointers between ("signal->thread_head").
func (v Value) Member(path string) (Value, error) {
	if seg, rest, ok := strings.Cut(path, "->"); ok {
		m, err := v.member(seg)
		if err != nil {
			return Value{}, err
		}
		return m.Member(rest)
	}
	return v.member(path)
}

func (v Value) member(path string) (Value, error) {
	if !v.IsValid() {
		return Value{}, fmt.Errorf("member %s of an invalid value", path)
	}
	base := v
	if r := v.typ.Resolve(); r != nil && r.Kind == debuginfo.KindPointer {
		d, err := v.Deref()
		if err != nil {
			return Value{}, err
		}
		base = d
	}
	r := base.typ.Resolve()
	if r == nil || (r.Kind != debuginfo.KindStruct && r.Kind != debuginfo.KindUnion) {
		return Value{}, base.typeErr("member %s: not a struct or union", path)
	}
	mp, err := lookupMember(base.typ, path)
	if err != nil {
		return Value{}, fmt.Errorf("%s at %#x: %w", base.typeName(), base.addr, err)
	}
	return Value{k: v.k, addr: base.addr + uint64(mp.Offset), typ: mp.Type, bitOffset: mp.BitOffset, bitSize: mp.BitSize}, nil
}

// Deref follows a pointer. A NULL pointer is an error that says so.
func (v Value) Deref() (Value, error) {
	r := v.typ.Resolve()
	if r == nil || r.Kind != debuginfo.KindPointer {
		return Value{}, v.typeErr("dereference: not a pointer")
	}
	p, err := v.k.ReadPointer(v.addr)
	if err != nil {
		return Value{}, v.wrapRead(err)
	}
	if p == 0 {
		return Value{}, v.typeErr("dereference of NULL")
	}
	return Value{k: v.k, addr: p, typ: r.Elem}, nil
}

// Index is element i of an array, or of the array a pointer points to.
func (v Value) Index(i int) (Value, error) {
	r := v.typ.Resolve()
	if r == nil {
		return Value{}, v.typeErr("index: void")
	}
	switch r.Kind {
	case debuginfo.KindArray:
		if i < 0 || (r.Len >= 0 && int64(i) >= r.Len) {
			return Value{}, v.typeErr("index %d out of range [0,%d)", i, r.Len)
		}
		return Value{k: v.k, addr: v.addr + uint64(int64(i)*sizeOf(r.Elem)), typ: r.Elem}, nil
	case debuginfo.KindPointer:
		p, err := v.k.ReadPointer(v.addr)
		if err != nil {
			return Value{}, v.wrapRead(err)
		}
		if p == 0 {
			return Value{}, v.typeErr("index of NULL")
		}
		return Value{k: v.k, addr: p + uint64(int64(i)*sizeOf(r.Elem)), typ: r.Elem}, nil
	}
	return Value{}, v.typeErr("index: not an array or pointer")
}

func (v Value) wrapRead(err error) error {
	if re, ok := err.(*ReadError); ok {
		return &ReadError{Addr: re.Addr, Type: v.typeName(), Size: re.Size, Err: re.Err}
	}
	return err
}

// Bytes reads the whole object.
func (v Value) Bytes() ([]byte, error) {
	n := v.Size()
	if n <= 0 {
		return nil, v.typeErr("has no size")
	}
	if n > 64<<20 {
		return nil, v.typeErr("size %d too large to read at once", n)
	}
	b := make([]byte, n)
	if err := v.k.Read(b, v.addr); err != nil {
		return nil, v.wrapRead(err)
	}
	return b, nil
}

// Uint reads an integer, enum, bool or pointer (bitfields extracted) as
// unsigned.
func (v Value) Uint() (uint64, error) {
	r := v.typ.Resolve()
	if r == nil {
		return 0, v.typeErr("read as integer: void")
	}
	switch r.Kind {
	case debuginfo.KindInt, debuginfo.KindEnum, debuginfo.KindPointer:
	default:
		return 0, v.typeErr("read as integer: %s", r.Kind)
	}
	size := int(sizeOf(r))
	if v.bitSize > 0 {
		// The storage unit may straddle beyond the member's own type for
		// packed layouts; read enough bytes to cover the bits.
		size = (v.bitOffset + v.bitSize + 7) / 8
	}
	if size < 1 || size > 8 {
		return 0, v.typeErr("read as integer: size %d", size)
	}
	var b [8]byte
	if err := v.k.Read(b[:size], v.addr); err != nil {
		return 0, v.wrapRead(err)
	}
	x := binary.LittleEndian.Uint64(b[:])
	if v.bitSize > 0 {
		x = x >> uint(v.bitOffset) & (1<<uint(v.bitSize) - 1)
	}
	return x, nil
}

// Int reads an integer, sign-extended when its type is signed.
func (v Value) Int() (int64, error) {
	x, err := v.Uint()
	if err != nil {
		return 0, err
	}
	r := v.typ.Resolve()
	bits := int(sizeOf(r)) * 8
	if v.bitSize > 0 {
		bits = v.bitSize
	}
	signed := r.Kind == debuginfo.KindInt && (r.Encoding == debuginfo.EncSigned || r.Encoding == debuginfo.EncChar)
	if r.Kind == debuginfo.KindEnum {
		if b := r.Elem.Resolve(); b != nil {
			signed = b.Encoding == debuginfo.EncSigned
		} else {
			for _, e := range r.Enums {
				signed = signed || e.Value < 0
			}
		}
	}
	if signed && bits < 64 && x&(1<<uint(bits-1)) != 0 {
		x |= ^uint64(0) << uint(bits)
	}
	return int64(x), nil
}

// CString reads a NUL-terminated string of at most max bytes: the
// contents of a char array, or what a char pointer points to.
func (v Value) CString(max int) (string, error) {
	r := v.typ.Resolve()
	if r == nil {
		return "", v.typeErr("read as string: void")
	}
	addr := v.addr
	switch r.Kind {
	case debuginfo.KindArray:
		if r.Len >= 0 && int64(max) > r.Len*sizeOf(r.Elem) {
			max = int(r.Len * sizeOf(r.Elem))
		}
	case debuginfo.KindPointer:
		p, err := v.k.ReadPointer(v.addr)
		if err != nil {
			return "", v.wrapRead(err)
		}
		if p == 0 {
			return "", v.typeErr("string at NULL")
		}
		addr = p
	default:
		return "", v.typeErr("read as string: not a char array or pointer")
	}
	return v.k.ReadCString(addr, max)
}

// ReadCString reads a NUL-terminated string of at most max bytes at addr,
// a page at a time so that a string ending before a missing page reads.
func (k *Kernel) ReadCString(addr uint64, max int) (string, error) {
	var out []byte
	for len(out) < max {
		n := 4096 - int(addr&4095)
		if n > max-len(out) {
			n = max - len(out)
		}
		buf := make([]byte, n)
		if err := k.Read(buf, addr); err != nil {
			return string(out), err
		}
		if i := bytes.IndexByte(buf, 0); i >= 0 {
			return string(append(out, buf[:i]...)), nil
		}
		out = append(out, buf...)
		addr += uint64(n)
	}
	return string(out), nil
}

// String describes the value for messages: "(struct task_struct *)0x…".
func (v Value) String() string {
	return fmt.Sprintf("(%s)%#x", v.typeName(), v.addr)
}
