package kernel

import (
	"encoding/binary"
	"errors"
	"fmt"

	"salvage/arch"
	"salvage/debuginfo"
	"salvage/dump"
)

// Kernel is one dumped kernel: its memory through the translator, its
// symbols and, when loaded, its types.
type Kernel struct {
	Dump    *dump.File
	Symbols debuginfo.Symbols // may be nil: VMCOREINFO's SYMBOL() entries then serve
	Types   debuginfo.Types   // may be nil: typed access then fails with a clear error
	Arch    arch.Translator

	order   binary.ByteOrder
	ptrSize int

	mods moduleState // the loaded modules, read on first need
	// kaslr is the KASLR offset the vmlinux's symbols were moved by:
	// DWARF's addresses are the link's.
	kaslr uint64
}

// SourceLine returns the source file and line of a kernel code address,
// from the vmlinux's DWARF line tables; ok is false without them (BTF
// has none) or for code outside vmlinux (modules).
func (k *Kernel) SourceLine(addr uint64) (file string, line int, ok bool) {
	ll, isLL := k.Types.(debuginfo.LineLookup)
	if !isLL {
		return "", 0, false
	}
	return ll.LineAt(addr - k.kaslr)
}

// New assembles a Kernel. Symbols and types may be nil; the translator
// may not. k.Symbols is syms with the loaded modules' symbols added
// lazily, once types are known.
func New(f *dump.File, syms debuginfo.Symbols, types debuginfo.Types, tr arch.Translator) (*Kernel, error) {
	if tr == nil {
		return nil, errors.New("kernel: no address translator")
	}
	// Every architecture salvage reads (x86_64, arm64) is little-endian
	// with 8-byte pointers.
	k := &Kernel{Dump: f, Types: types, Arch: tr, order: binary.LittleEndian, ptrSize: 8}
	// The modules' symbols join syms when first needed (a name or an
	// address vmlinux does not have): see Modules.
	k.Symbols = syms
	if syms != nil {
		k.Symbols = &moduleSymbols{base: syms, k: k}
	}
	return k, nil
}

// VMCoreInfo returns the dump's VMCOREINFO (nil-safe).
func (k *Kernel) VMCoreInfo() *dump.VMCoreInfo {
	if k.Dump == nil {
		return nil
	}
	return k.Dump.VMCoreInfo
}

// SymbolAddr finds a symbol's run-time address in the symbol table, then
// in VMCOREINFO's SYMBOL() entries.
func (k *Kernel) SymbolAddr(name string) (uint64, error) {
	if k.Symbols != nil {
		if s, ok := k.Symbols.Lookup(name); ok {
			return s.Addr, nil
		}
	}
	if a, ok := k.VMCoreInfo().Symbol(name); ok {
		return a, nil
	}
	src := "VMCOREINFO"
	if k.Symbols != nil {
		src = k.Symbols.Source() + " or VMCOREINFO"
	}
	return 0, &debuginfo.NotFoundError{What: "symbol " + name, Source: src}
}

func (k *Kernel) types() (debuginfo.Types, error) {
	if k.Types == nil {
		return nil, errors.New("no type information loaded (need a debug vmlinux or the kernel's BTF)")
	}
	return k.Types, nil
}

// Read reads raw kernel virtual memory.
func (k *Kernel) Read(p []byte, addr uint64) error {
	if _, err := k.Arch.ReadVirt(p, addr); err != nil {
		return &ReadError{Addr: addr, Size: len(p), Err: err}
	}
	return nil
}

// ReadUint reads an unsigned little-endian integer of size 1, 2, 4 or 8.
func (k *Kernel) ReadUint(addr uint64, size int) (uint64, error) {
	var b [8]byte
	if size < 1 || size > 8 {
		return 0, fmt.Errorf("reading %d-byte integer at %#x: unsupported size", size, addr)
	}
	if err := k.Read(b[:size], addr); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b[:]), nil
}

// ReadPointer reads a pointer-sized value.
func (k *Kernel) ReadPointer(addr uint64) (uint64, error) { return k.ReadUint(addr, k.ptrSize) }

// Object is the value of type t at addr.
func (k *Kernel) Object(addr uint64, t *debuginfo.Type) Value {
	return Value{k: k, addr: addr, typ: t}
}

// ObjectOf is the value at addr of the type spelled in C ("struct
// task_struct", "unsigned long").
func (k *Kernel) ObjectOf(addr uint64, spelling string) (Value, error) {
	ts, err := k.types()
	if err != nil {
		return Value{}, err
	}
	t, err := ts.Named(spelling)
	if err != nil {
		return Value{}, err
	}
	return k.Object(addr, t), nil
}

// Global is the global variable name: its symbol's address and its
// declared type. The error says which of the two is missing.
func (k *Kernel) Global(name string) (Value, error) {
	addr, err := k.SymbolAddr(name)
	if err != nil {
		return Value{}, err
	}
	ts, err := k.types()
	if err != nil {
		return Value{}, fmt.Errorf("global %s at %#x: %w", name, addr, err)
	}
	t, err := ts.Var(name)
	if err != nil {
		return Value{}, fmt.Errorf("global %s at %#x has no type: %w", name, addr, err)
	}
	return k.Object(addr, t), nil
}

// PerCPUOffset is __per_cpu_offset[cpu]: the displacement of cpu's copy
// of every per-CPU variable from the variable's link-time address.
func (k *Kernel) PerCPUOffset(cpu int) (uint64, error) {
	if cpu < 0 {
		return 0, fmt.Errorf("per-CPU offset of CPU %d: no such CPU", cpu)
	}
	if n, err := k.NrCPUIDs(); err == nil && cpu >= n {
		return 0, fmt.Errorf("per-CPU offset of CPU %d: the kernel has %d possible CPUs (nr_cpu_ids)", cpu, n)
	}
	base, err := k.SymbolAddr("__per_cpu_offset")
	if err != nil {
		return 0, err
	}
	off, err := k.ReadPointer(base + uint64(cpu*k.ptrSize))
	if err != nil {
		return 0, fmt.Errorf("__per_cpu_offset[%d]: %w", cpu, err)
	}
	return off, nil
}

// NrCPUIDs reads nr_cpu_ids, the number of possible CPU ids.
func (k *Kernel) NrCPUIDs() (int, error) {
	a, err := k.SymbolAddr("nr_cpu_ids")
	if err != nil {
		return 0, err
	}
	n, err := k.ReadUint(a, 4)
	return int(n), err
}

// PerCPUAddr is the address of cpu's copy of the per-CPU variable name.
func (k *Kernel) PerCPUAddr(name string, cpu int) (uint64, error) {
	a, err := k.SymbolAddr(name)
	if err != nil {
		return 0, err
	}
	off, err := k.PerCPUOffset(cpu)
	if err != nil {
		return 0, err
	}
	return a + off, nil
}

// PerCPU is cpu's copy of the per-CPU variable name, typed.
func (k *Kernel) PerCPU(name string, cpu int) (Value, error) {
	addr, err := k.PerCPUAddr(name, cpu)
	if err != nil {
		return Value{}, err
	}
	ts, err := k.types()
	if err != nil {
		return Value{}, fmt.Errorf("per-CPU %s of CPU %d at %#x: %w", name, cpu, addr, err)
	}
	t, err := ts.Var(name)
	if err != nil {
		return Value{}, fmt.Errorf("per-CPU %s of CPU %d at %#x has no type: %w", name, cpu, addr, err)
	}
	return k.Object(addr, t), nil
}

// ContainerOf is the kernel's container_of: the object of the type
// spelled typ whose member (a path such as "tasks" or "se.run_node") is at
// addr.
func (k *Kernel) ContainerOf(addr uint64, typ, member string) (Value, error) {
	ts, err := k.types()
	if err != nil {
		return Value{}, err
	}
	t, err := ts.Named(typ)
	if err != nil {
		return Value{}, err
	}
	mp, err := lookupMember(t, member)
	if err != nil {
		return Value{}, err
	}
	return k.Object(addr-uint64(mp.Offset), t), nil
}

// PerCPUPtr is the kernel's per_cpu_ptr: the address of cpu's copy of the
// per-CPU object that a __percpu pointer ptr designates.
func (k *Kernel) PerCPUPtr(ptr uint64, cpu int) (uint64, error) {
	off, err := k.PerCPUOffset(cpu)
	if err != nil {
		return 0, err
	}
	return ptr + off, nil
}
