package debuginfo

import (
	"errors"
	"fmt"

	"salvage/dump"
)

// Where a KASLR offset was found (KASLR.Source).
const (
	KASLRFromKernelOffset = "VMCOREINFO KERNELOFFSET"
	KASLRFromStext        = "computed from _stext"
)

// KASLR is the displacement of the kernel image from its link-time
// address: run-time address = vmlinux address + Offset.
type KASLR struct {
	Offset uint64
	Source string // KASLRFromKernelOffset or KASLRFromStext
}

// KASLROffset finds the KASLR offset of the dumped kernel: VMCOREINFO's
// KERNELOFFSET when the kernel wrote it (x86_64 and arm64 since 4.x), or
// else the difference between VMCOREINFO's SYMBOL(_stext) (a run-time
// address) and _stext in vmlinux, the symbols of the vmlinux at its
// link-time addresses (loaded with offset 0; may be nil when there is no
// vmlinux, and then only KERNELOFFSET can answer).
func KASLROffset(vi *dump.VMCoreInfo, vmlinux Symbols) (KASLR, error) {
	if vi == nil {
		return KASLR{}, errors.New("KASLR offset: the dump has no VMCOREINFO")
	}
	if off, ok := vi.KernelOffset(); ok {
		return KASLR{Offset: off, Source: KASLRFromKernelOffset}, nil
	}
	run, ok := vi.Symbol("_stext")
	if !ok {
		return KASLR{}, errors.New("KASLR offset: VMCOREINFO has neither KERNELOFFSET nor SYMBOL(_stext)")
	}
	if vmlinux == nil {
		return KASLR{}, errors.New("KASLR offset: VMCOREINFO has no KERNELOFFSET, and without a vmlinux SYMBOL(_stext) has nothing to be compared with")
	}
	link, ok := vmlinux.Lookup("_stext")
	if !ok {
		return KASLR{}, fmt.Errorf("KASLR offset: VMCOREINFO has no KERNELOFFSET, and %s has no _stext", vmlinux.Source())
	}
	return KASLR{Offset: run - link.Addr, Source: KASLRFromStext}, nil
}
