package kernel

import (
	"encoding/binary"
	"errors"
	"fmt"

	"salvage/arch"
)

// userTranslator is a translator that can walk a process's own page
// tables (arch/amd64's Translator does).
type userTranslator interface {
	VirtToPhysIn(root, va uint64) (arch.Translation, error)
}

// maxArgBytes bounds what TaskArgs reads of each area: the kernel caps
// the argument and environment strings together at a quarter of the
// stack limit, and a corrupt mm should not make salvage read gigabytes.
const maxArgBytes = 1 << 20

// UserReadError is a user address that could not be read: not mapped in
// the process's page tables, or its page is not in the dump (a filtered
// dump leaves out user pages).
type UserReadError struct {
	Addr uint64 // the user virtual address at which reading stopped
	Err  error
}

func (e *UserReadError) Error() string {
	return fmt.Sprintf("cannot read user address %#x: %v", e.Addr, e.Err)
}

func (e *UserReadError) Unwrap() error { return e.Err }

// ReadUser reads len(p) bytes of user memory at va in the address space
// whose top-level page table is at kernel virtual address pgd (an
// mm_struct's pgd), page by page through that table.
func (k *Kernel) ReadUser(pgd uint64, p []byte, va uint64) error {
	ut, ok := k.Arch.(userTranslator)
	if !ok {
		return errors.New("this architecture's translator cannot walk user page tables")
	}
	root, err := k.Arch.VirtToPhys(pgd)
	if err != nil {
		return fmt.Errorf("page table at %#x: %w", pgd, err)
	}
	mem := k.Arch.Memory()
	for done := 0; done < len(p); {
		a := va + uint64(done)
		tr, err := ut.VirtToPhysIn(root.Phys, a)
		if err != nil {
			return &UserReadError{Addr: a, Err: err}
		}
		n := int(4096 - a&4095)
		if n > len(p)-done {
			n = len(p) - done
		}
		if _, err := mem.ReadPhys(p[done:done+n], tr.Phys); err != nil {
			return &UserReadError{Addr: a, Err: fmt.Errorf("physical %#x: %w", tr.Phys, err)}
		}
		done += n
	}
	return nil
}

// TaskArgs reads the argument and environment strings of the process
// whose mm_struct is at mm: the bytes from mm->arg_start to arg_end and
// from env_start to env_end (NUL-separated, as execve laid them on the
// user stack).
func (k *Kernel) TaskArgs(mm uint64) (args, env []byte, err error) {
	m, err := k.ObjectOf(mm, "struct mm_struct")
	if err != nil {
		return nil, nil, err
	}
	get := func(name string) (uint64, error) {
		v, err := m.Member(name)
		if err != nil {
			return 0, err
		}
		return v.Uint()
	}
	var vals [5]uint64
	for i, n := range []string{"pgd", "arg_start", "arg_end", "env_start", "env_end"} {
		if vals[i], err = get(n); err != nil {
			return nil, nil, err
		}
	}
	read := func(start, end uint64, what string) ([]byte, error) {
		if end < start || end-start > maxArgBytes {
			return nil, fmt.Errorf("mm_struct at %#x: implausible %s range %#x-%#x", mm, what, start, end)
		}
		b := make([]byte, end-start)
		if err := k.ReadUser(vals[0], b, start); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		return b, nil
	}
	if args, err = read(vals[1], vals[2], "arguments"); err != nil {
		return nil, nil, err
	}
	if env, err = read(vals[3], vals[4], "environment"); err != nil {
		return args, nil, err
	}
	return args, env, nil
}

// Rlimit is one struct rlimit (include/uapi/linux/resource.h).
type Rlimit struct{ Cur, Max uint64 }

// TaskRlimits reads the task's resource limits: signal->rlim[] (shared
// by the thread group since 2.6.10), or task_struct.rlim[] on kernels
// that keep them there, every element of the array its type declares.
func (k *Kernel) TaskRlimits(task uint64) ([]Rlimit, error) {
	t, err := k.ObjectOf(task, "struct task_struct")
	if err != nil {
		return nil, err
	}
	arr, err := t.Member("signal->rlim")
	if err != nil {
		if arr, err = t.Member("rlim"); err != nil {
			return nil, fmt.Errorf("task_struct at %#x: no rlimit array in signal_struct or task_struct", task)
		}
	}
	b, err := arr.Bytes()
	if err != nil {
		return nil, err
	}
	out := make([]Rlimit, len(b)/16)
	for i := range out {
		out[i] = Rlimit{binary.LittleEndian.Uint64(b[16*i:]), binary.LittleEndian.Uint64(b[16*i+8:])}
	}
	return out, nil
}
