package debuginfo

import (
	"errors"
	"fmt"

	"salvage/dump"
)

// x86_64's kernel-image map (Documentation/arch/x86/x86_64/mm.rst): the
// kernel text, data and bss are mapped from __START_KERNEL_map, with the
// physical address displaced by phys_base (where the image was loaded,
// minus where it was linked to load).
const (
	startKernelMap         = 0xffffffff80000000
	defaultKernelImageSize = 1 << 30 // KERNEL_IMAGE_SIZE with KASLR
)

// KernelImageReader reads kernel virtual memory of the kernel image —
// text, rodata (kallsyms, BTF), data, bss — from the dump's physical
// memory, without page tables: on x86_64,
//
//	phys = virt - 0xffffffff80000000 + phys_base
//
// for virt in [0xffffffff80000000, +KERNEL_IMAGE_SIZE), with phys_base and
// KERNEL_IMAGE_SIZE from VMCOREINFO (NUMBER(phys_base), NUMBER(
// KERNEL_IMAGE_SIZE)). Other addresses (direct map, vmalloc, modules)
// need the page-table walk of package arch. arm64 (NUMBER(kimage_voffset)
// in VMCOREINFO) uses phys = virt - kimage_voffset; that path has not met
// a real arm64 dump yet.
func KernelImageReader(mem dump.Memory, vi *dump.VMCoreInfo) VirtReader {
	r := &kernelImageReader{mem: mem, start: startKernelMap, size: defaultKernelImageSize}
	if vo, ok := vi.Number("kimage_voffset"); ok {
		// arm64: the image lies above kimage_voffset; no fixed window.
		r.start, r.size, r.delta = uint64(vo), ^uint64(vo), uint64(vo)
		return r
	}
	if n, ok := vi.Number("KERNEL_IMAGE_SIZE"); ok && n > 0 {
		r.size = uint64(n)
	}
	pb, ok := vi.Number("phys_base")
	if !ok {
		r.err = errors.New("VMCOREINFO has no NUMBER(phys_base)")
	}
	// phys = virt - start + phys_base  ⇒  delta = start - phys_base
	r.delta = startKernelMap - uint64(pb)
	return r
}

// FileKernelImageReader is KernelImageReader for an opened dump, taking
// phys_base from f.PhysBase(): VMCOREINFO's, or for a QEMU dump without
// it, found by a page-table walk of a CPU's rip.
func FileKernelImageReader(f *dump.File) VirtReader {
	if f.Arch == dump.ArchX86_64 {
		if _, ok := f.VMCoreInfo.Number("phys_base"); !ok {
			r := &kernelImageReader{mem: f.Memory, start: startKernelMap, size: defaultKernelImageSize}
			pb, _, ok := f.PhysBase()
			if !ok {
				r.err = errors.New("neither VMCOREINFO NUMBER(phys_base) nor a CPU state to find phys_base from")
				return r
			}
			r.delta = startKernelMap - pb
			if n, ok := f.VMCoreInfo.Number("KERNEL_IMAGE_SIZE"); ok && n > 0 {
				r.size = uint64(n)
			}
			return r
		}
	}
	return KernelImageReader(f.Memory, f.VMCoreInfo)
}

type kernelImageReader struct {
	mem         dump.Memory
	start, size uint64
	delta       uint64 // phys = virt - delta
	err         error  // set when VMCOREINFO lacks what the map needs
}

// KernelImageError is a failed read through the kernel-image map. When
// the page is not in the dump, Err is the *dump.PageError saying why.
type KernelImageError struct {
	Addr uint64 // the virtual address of the first byte not read
	Phys uint64 // its physical address, when it has one
	Msg  string
	Err  error
}

func (e *KernelImageError) Error() string {
	s := fmt.Sprintf("kernel virtual address %#x", e.Addr)
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	if e.Err != nil {
		var pe *dump.PageError
		if errors.As(e.Err, &pe) {
			s += fmt.Sprintf(" (physical %#x: page %s)", pe.Addr, pe.State)
		} else {
			s += ": " + e.Err.Error()
		}
	}
	return s
}

func (e *KernelImageError) Unwrap() error { return e.Err }

func (r *kernelImageReader) ReadVirt(p []byte, addr uint64) (int, error) {
	if r.err != nil {
		return 0, &KernelImageError{Addr: addr, Msg: "no kernel-image map", Err: r.err}
	}
	if addr < r.start || addr-r.start >= r.size {
		return 0, &KernelImageError{Addr: addr, Msg: fmt.Sprintf("not in the kernel-image map [%#x, %#x)", r.start, r.start+r.size)}
	}
	if room := r.size - (addr - r.start); uint64(len(p)) > room {
		n, err := r.ReadVirt(p[:room], addr)
		if err != nil {
			return n, err
		}
		return n, &KernelImageError{Addr: addr + room, Msg: "past the end of the kernel-image map"}
	}
	phys := addr - r.delta
	n, err := r.mem.ReadPhys(p, phys)
	if err != nil {
		return n, &KernelImageError{Addr: addr + uint64(n), Phys: phys + uint64(n), Err: err}
	}
	return n, nil
}
