package kernel

import (
	"fmt"
)

// VMA is one struct vm_area_struct of a process's address space
// (include/linux/mm_types.h).
type VMA struct {
	Addr       uint64 // the vm_area_struct
	Start, End uint64
	Flags      uint64 // vm_flags
	File       uint64 // vm_file; 0 for anonymous memory
	// Path is the mapped file's path (crash's get_pathname of
	// vm_file->f_path), "" for anonymous memory.
	Path string
	// PathErr is set when the file's path could not be read to its end.
	PathErr error
	Err     error // what could not be read of this VMA, PathErr included
}

// MMInfo is what crash's vm shows of an mm_struct before its VMAs.
type MMInfo struct {
	MM  uint64 // the mm_struct
	PGD uint64 // mm_struct.pgd
}

// VMAs lists the VMAs of the mm_struct at mm in address order: from the
// maple tree mm_mt (6.1+), or along the mmap list of older kernels
// (vm_area_struct.vm_next), whichever the kernel's types have.
func (k *Kernel) VMAs(mm uint64) ([]VMA, error) {
	r := &layoutReader{k: k}
	start := r.off("struct vm_area_struct", "vm_start")
	end := r.off("struct vm_area_struct", "vm_end")
	flags := r.off("struct vm_area_struct", "vm_flags")
	file := r.off("struct vm_area_struct", "vm_file")
	if r.err != nil {
		return nil, r.err
	}
	var addrs []uint64
	switch {
	case r.has("struct mm_struct", "mm_mt"):
		mt := r.off("struct mm_struct", "mm_mt")
		for e, err := range k.MapleEntries(mm + uint64(mt)) {
			if err != nil {
				return nil, fmt.Errorf("VMAs of mm_struct %#x: %w", mm, err)
			}
			addrs = append(addrs, e.Value)
		}
	case r.has("struct mm_struct", "mmap") && r.has("struct vm_area_struct", "vm_next"):
		next := r.off("struct vm_area_struct", "vm_next")
		mmap := r.off("struct mm_struct", "mmap")
		v, err := k.ReadPointer(mm + uint64(mmap))
		for n := 0; v != 0; n++ {
			if err != nil {
				return nil, fmt.Errorf("VMAs of mm_struct %#x: %w", mm, err)
			}
			if n > maxListLen {
				return nil, fmt.Errorf("VMAs of mm_struct %#x: more than %d", mm, maxListLen)
			}
			addrs = append(addrs, v)
			v, err = k.ReadPointer(v + uint64(next))
		}
	default:
		return nil, fmt.Errorf("mm_struct has neither mm_mt nor mmap: cannot find the VMAs")
	}
	var l *vfsLayout
	out := make([]VMA, 0, len(addrs))
	for _, a := range addrs {
		v := VMA{Addr: a}
		var err error
		read := func(off int64) uint64 {
			if err != nil {
				return 0
			}
			var x uint64
			x, err = k.ReadPointer(a + uint64(off))
			return x
		}
		v.Start, v.End, v.Flags, v.File = read(start), read(end), read(flags), read(file)
		if err != nil {
			v.Err = fmt.Errorf("vm_area_struct %#x: %w", a, err)
		} else if v.File != 0 {
			if l == nil {
				if l, err = k.vfsLayout(); err != nil {
					return nil, err
				}
			}
			v.Path, v.PathErr = k.filePath(l, v.File)
			v.Err = v.PathErr
		}
		out = append(out, v)
	}
	return out, nil
}

// filePath is the path of an open file as crash's vm shows it: its
// dentry's path through its own mount (f_path.mnt).
func (k *Kernel) filePath(l *vfsLayout, file uint64) (string, error) {
	d, err := k.ReadPointer(file + uint64(l.fDentry))
	if err != nil {
		return "", fmt.Errorf("file %#x: f_path.dentry: %w", file, err)
	}
	if d == 0 {
		return "", nil
	}
	m, err := k.ReadPointer(file + uint64(l.fMnt))
	if err != nil {
		return "", fmt.Errorf("file %#x: f_path.mnt: %w", file, err)
	}
	return k.dentryPath(l, d, m)
}

// MM reads the mm_struct address and page directory of the task at
// task; MM is 0 for a kernel thread.
func (k *Kernel) MM(task uint64) (MMInfo, error) {
	t, err := k.ObjectOf(task, "struct task_struct")
	if err != nil {
		return MMInfo{}, err
	}
	mv, err := t.Member("mm")
	if err != nil {
		return MMInfo{}, err
	}
	mm, err := mv.Uint()
	if err != nil {
		return MMInfo{}, fmt.Errorf("task %#x: mm: %w", task, err)
	}
	if mm == 0 {
		return MMInfo{}, nil
	}
	pv, err := mv.Member("pgd")
	if err != nil {
		return MMInfo{}, err
	}
	pgd, err := pv.Uint()
	if err != nil {
		return MMInfo{MM: mm}, fmt.Errorf("mm_struct %#x: pgd: %w", mm, err)
	}
	return MMInfo{MM: mm, PGD: pgd}, nil
}
