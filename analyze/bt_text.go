package analyze

import (
	"encoding/binary"
	"fmt"
	"io"

	"salvage/arch/amd64"
	"salvage/kernel"
)

// printTextSymbols is bt -t and -T: instead of the unwound frames, every
// word on the stack that is a kernel text address, with its function —
// what is left to read when a walk fails. -t scans from where the walk
// starts, -T from the bottom of the task's own stack; both to the top, or to
// the register frame of an exception that came from another stack (an
// NMI's), whose registers are printed as bt prints them before the scan
// goes on on the interrupted stack.
//
// -o (crash's old x86_64 backtrace) is the -t scan shown as numbered
// frames, leaving out words that point at a function's first byte
// (function pointers, not return addresses): the stale return addresses
// the unwinder skips are shown too.
func printTextSymbols(w io.Writer, k *kernel.Kernel, bt *kernel.Backtrace, fl btFlags) {
	if t, err := k.ObjectOf(bt.Task, "struct task_struct"); err == nil {
		printBtHeader(w, t, bt)
	}
	tl := &textLister{w: w, k: k, old: fl.text == 'o'}
	fr := bt.Frames
	if len(fr) == 0 {
		return
	}
	if fl.text == 'T' {
		// -T is the task's own stack only, bottom to top.
		if t, err := k.ObjectOf(bt.Task, "struct task_struct"); err == nil {
			if ts, err := k.TaskStack(t); err == nil {
				tl.scan(ts.Base, ts.Top)
			}
		}
		if e := fr[len(fr)-1].Exception; e != nil && e.User {
			printRegs(w, e.Regs)
		}
		return
	}
	if fl.text == 't' {
		fmt.Fprintf(w, "%sSTART: %s at %x\n", "              ", crashSymbolName(fr[0].Symbol), fr[0].PC)
	}
	start := 0
	for i := 0; i <= len(fr); i++ {
		end := i == len(fr)
		// A register frame on the way up the same stack is scanned as
		// words like any other; one that leads to another stack ends
		// this stretch.
		// (-o stops at every kernel register frame, as crash's old
		// method shows each exception frame it meets.)
		if !end && (fr[i].Exception == nil || fr[i].Exception.User || i+1 >= len(fr) || fr[i+1].Stack == fr[i].Stack && !tl.old) {
			continue
		}
		// Frames start..i (i excluded at the end) are one stretch of stack.
		last := i
		if end {
			last = len(fr) - 1
		}
		seg := fr[start]
		from, to := seg.SP, seg.Stack.Top
		if start > 0 && seg.Stack == fr[start-1].Stack {
			// After a register frame on the same stack, crash reads on
			// from the end of struct pt_regs: the stack-alignment word
			// below the interrupted stack pointer too (kernel.Frame.Stale).
			if e := fr[start-1].Exception; e != nil && !e.User && !e.Partial {
				if end := e.Addr + 8*amd64.NumPTRegs; end < from && from-end < 16 {
					from = end
				}
			}
		}
		if start > 0 && seg.Stack != fr[start-1].Stack {
			// Where an exception frame led to another stack: the
			// interrupted context first, then that stack's words from
			// its stack pointer on.
			tl.entry(seg.SP, seg.PC, true)
		}
		if e := fr[last].Exception; e != nil && !e.User && e.Addr > from && e.Addr <= to {
			to = e.Addr
		}
		if to > from && seg.Stack.Top != 0 {
			tl.scan(from, to)
		}
		if e := fr[last].Exception; e != nil {
			if !e.User {
				fmt.Fprintf(w, "    [exception RIP: %s]\n", exceptionRIP(k, e.Regs[amd64.RegIP]))
			}
			printRegs(w, e.Regs)
		}
		if !end && i+1 < len(fr) && fr[i+1].Stack != fr[i].Stack && fr[i].Stack.Label != "" {
			fmt.Fprintf(w, "--- <%s> ---\n", fr[i].Stack.Label)
		}
		start = i + 1
		if end || start >= len(fr) {
			break
		}
	}
	if bt.Err != nil {
		fmt.Fprintf(w, "bt: %v\n", bt.Err)
	}
}

// textLister prints the text addresses found on a stack: as -t lists
// them, or (old) as -o numbers them.
type textLister struct {
	w     io.Writer
	k     *kernel.Kernel
	old   bool
	level int
}

func (tl *textLister) entry(addr, v uint64, exact bool) {
	if tl.old {
		if _, off, ok := tl.k.Symbols.ByAddr(v); ok && off == 0 && !exact {
			return
		}
		fmt.Fprintf(tl.w, "%s#%d [%x] %s at %x%s\n", pad2(tl.level), tl.level, addr, textName(tl.k, v, exact), v, moduleSuffix(tl.k, v))
		tl.level++
		return
	}
	fmt.Fprintf(tl.w, "  [%x] %s at %x%s\n", addr, textName(tl.k, v, exact), v, moduleSuffix(tl.k, v))
}

// scan lists the text addresses among the words in [from, to).
func (tl *textLister) scan(from, to uint64) {
	buf, err := readStack(tl.k, from, to)
	if err != nil {
		fmt.Fprintf(tl.w, "bt: %v\n", err)
	}
	for i := 0; i+8 <= len(buf); i += 8 {
		v := binary.LittleEndian.Uint64(buf[i:])
		if isText(tl.k, v) {
			tl.entry(from+uint64(i), v, false)
		}
	}
}

func isText(k *kernel.Kernel, v uint64) bool {
	if k.Symbols == nil || v < 0xffff800000000000 {
		return false
	}
	s, _, ok := k.Symbols.ByAddr(v)
	return ok && (s.Type == 'T' || s.Type == 't' || s.Type == 'W' || s.Type == 'w')
}

// textName names the function of a text address found on the stack: a
// function's own start (a function pointer) is that function; any other
// address is taken as a return address, which belongs to the function of
// the call before it.
func textName(k *kernel.Kernel, v uint64, exact bool) string {
	s, off, ok := k.Symbols.ByAddr(v)
	if ok && (off == 0 || exact) {
		return crashSymbolName(s.Name)
	}
	if p, _, ok := k.Symbols.ByAddr(v - 1); ok {
		return crashSymbolName(p.Name)
	}
	return crashSymbolName(s.Name)
}

func moduleSuffix(k *kernel.Kernel, v uint64) string {
	if s, _, ok := k.Symbols.ByAddr(v); ok && s.Module != "" {
		return " [" + s.Module + "]"
	}
	return ""
}
