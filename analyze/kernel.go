package analyze

import (
	"errors"
	"fmt"

	"salvage/debuginfo"
	"salvage/dump"
	"salvage/kernel"
)

// Kernel is the session's model of the dumped kernel: symbols, types and
// the page-table walker. It is built on first use, from the vmlinux when
// one was given and otherwise from the kallsyms and BTF in the dump, so a
// session that only reads physical memory never pays for it (and works
// on a dump whose kernel cannot be modelled).
func (s *Session) Kernel() (*kernel.Kernel, error) {
	if s.kernDone {
		return s.kern, s.kernErr
	}
	s.kernDone = true
	if s.Dump == nil {
		s.kernErr = errors.New("no dump is open")
		return nil, s.kernErr
	}
	k, err := openKernel(s.Dump, kernel.Options{Vmlinux: s.Vmlinux, SystemMap: s.SystemMap, Types: s.Types})
	if err != nil {
		src := "the dump's kallsyms and BTF"
		if s.Vmlinux != "" {
			src = s.Vmlinux
		}
		s.kernErr = fmt.Errorf("no kernel symbols or types (from %s): %w", src, err)
		return nil, s.kernErr
	}
	s.kern = k
	return k, nil
}

// openKernel is kernel.Open with a panic turned into an error.
func openKernel(d *dump.File, opt kernel.Options) (k *kernel.Kernel, err error) {
	defer func() {
		if r := recover(); r != nil {
			k, err = nil, fmt.Errorf("internal error while reading the kernel (this is a bug in salvage): %v", r)
		}
	}()
	return kernel.Open(d, opt)
}

// symbols is the kernel's symbol table, or an error that says why there
// is none.
func (ctx *Context) symbols() (debuginfo.Symbols, error) {
	k, err := ctx.Session.Kernel()
	if err != nil {
		return nil, err
	}
	if k.Symbols == nil {
		return nil, errors.New("the kernel's symbol table could not be read")
	}
	return k.Symbols, nil
}

// types is the kernel's type information.
func (ctx *Context) types() (debuginfo.Types, error) {
	k, err := ctx.Session.Kernel()
	if err != nil {
		return nil, err
	}
	if k.Types == nil {
		return nil, errors.New("no type information (need a debug vmlinux or the kernel's BTF)")
	}
	return k.Types, nil
}
