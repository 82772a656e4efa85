package analyze

import (
	"encoding/binary"
	"fmt"
	"io"
	"strings"

	"salvage/arch/amd64"
	"salvage/kernel"
)

// printRawStack is bt -r: the task's whole stack, two words a line,
// symbolic as rd -s shows memory.
func printRawStack(w io.Writer, k *kernel.Kernel, t kernel.Value) {
	printBtHeader(w, t, nil)
	s, err := k.TaskStack(t)
	if err != nil {
		fmt.Fprintf(w, "bt: %v\n", err)
		return
	}
	buf, err := readStack(k, s.Base, s.Top)
	word := stackWord(k, 0)
	for i := 0; i+16 <= len(buf); i += 16 {
		fmt.Fprintf(w, "%x:  %s %s \n", s.Base+uint64(i), word(binary.LittleEndian.Uint64(buf[i:])), word(binary.LittleEndian.Uint64(buf[i+8:])))
	}
	if err != nil {
		fmt.Fprintf(w, "bt: %v\n", err)
	}
}

// readStack reads [from, to) a page at a time; pages the dump lacks
// read as zeroes, and the first such failure is returned.
func readStack(k *kernel.Kernel, from, to uint64) ([]byte, error) {
	buf := make([]byte, to-from)
	var first error
	for off := uint64(0); off < uint64(len(buf)); {
		n := 4096 - (from+off)&4095
		if off+n > uint64(len(buf)) {
			n = uint64(len(buf)) - off
		}
		if err := k.Read(buf[off:off+n], from+off); err != nil && first == nil {
			first = err
		}
		off += n
	}
	return buf, first
}

// x86_64 segment selectors of the kernel's GDT (arch/x86/include/asm/segment.h).
const (
	kernelCS = 0x10
	kernelSS = 0x18
	userCS   = 0x33
	userSS   = 0x2b
	user32CS = 0x23
	// rflagsRAZ are the RFLAGS bits that always read as zero, and bit 1
	// always reads as one: a saved RFLAGS must agree.
	rflagsRAZ = 0xffffffffffc08028
	userTop   = 0x0000800000000000
)

// printEframeSearch is bt -e: every place on the task's stack that holds
// what looks like a struct pt_regs — segment selectors of kernel or user
// mode, RFLAGS with its fixed bits right, an instruction pointer in
// kernel text (or user space) and a plausible stack pointer: the checks
// crash makes of a candidate frame (x86_64_eframe_verify).
func printEframeSearch(w io.Writer, k *kernel.Kernel, t kernel.Value) {
	printBtHeader(w, t, nil)
	s, err := k.TaskStack(t)
	if err != nil {
		fmt.Fprintf(w, "bt: %v\n", err)
		return
	}
	buf, err := readStack(k, s.Base, s.Top)
	const size = amd64.NumPTRegs * 8
	for off := 0; off+size <= len(buf); off += 8 {
		regs := make([]uint64, amd64.NumPTRegs)
		for i := range regs {
			regs[i] = binary.LittleEndian.Uint64(buf[off+8*i:])
		}
		addr := s.Base + uint64(off)
		kernelMode, ok := eframeLooksValid(k, addr, regs)
		if !ok {
			continue
		}
		if kernelMode {
			fmt.Fprintf(w, "\n  KERNEL-MODE EXCEPTION FRAME AT: %x\n", addr)
			fmt.Fprintf(w, "    [exception RIP: %s]\n", exceptionRIP(k, regs[amd64.RegIP]))
		} else {
			fmt.Fprintf(w, "\n  USER-MODE EXCEPTION FRAME AT: %x\n", addr)
		}
		printRegs(w, regs)
	}
	if err != nil {
		fmt.Fprintf(w, "bt: %v\n", err)
	}
}

// eframeLooksValid applies the checks to a candidate frame at addr.
func eframeLooksValid(k *kernel.Kernel, addr uint64, r []uint64) (kernelMode, ok bool) {
	cs, ss, ip, sp, flags := r[amd64.RegCS], r[amd64.RegSS], r[amd64.RegIP], r[amd64.RegSP], r[amd64.RegFlags]
	if flags&rflagsRAZ != 0 || flags&2 == 0 {
		return false, false
	}
	const size = amd64.NumPTRegs * 8
	kvaddr := func(a uint64) bool { return a >= userTop<<1 }
	switch {
	case cs == kernelCS && ss == kernelSS:
		if isText(k, ip) && kvaddr(sp) {
			return true, true
		}
		if sp == addr+size {
			return true, true
		}
	case cs == userCS && ss == userSS, cs == user32CS && ss == userSS:
		if ip < userTop && sp < userTop {
			return false, true
		}
	}
	if cs == kernelCS && isText(k, ip) && kvaddr(sp) && (sp == addr+size || sp == addr+size+8) {
		return true, true
	}
	return false, false
}

// stackWord formats a stack word as crash's format_stack_entry does:
// a symbol's address as rd -s names it (padded to 16), else, with slab
// set (bt -F, -FF), an address in a slab object as its cache's name in
// brackets (with the address too when slab is 2), else the hexadecimal.
func stackWord(k *kernel.Kernel, slab int) func(uint64) string {
	p := &valuePrinter{k: k}
	return func(v uint64) string {
		if name := p.rdSymbol(v); name != "" {
			// rdSymbol strips a clone's ending (".part.0+39") with
			// the offset after it; crash keeps the offset.
			if s, off, ok := k.Symbols.ByAddr(v); ok && off != 0 && !strings.Contains(name, "+") && crashSymbolName(s.Name) != s.Name {
				name += fmt.Sprintf("+%d", off)
			}
			return fmt.Sprintf("%-16s", name)
		}
		if slab > 0 {
			if c, ok := k.SlabCache(v); ok {
				if slab > 1 {
					return fmt.Sprintf("%-16s", fmt.Sprintf("[%x:%s]", v, c))
				}
				return fmt.Sprintf("%-16s", "["+c+"]")
			}
		}
		return fmt.Sprintf("%016x", v)
	}
}
