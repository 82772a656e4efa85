package amd64

import (
	"fmt"

	"salvage/arch"
)

// Indexes of the registers in struct pt_regs (arch/x86/include/asm/ptrace.h),
// which is also the order of the first 21 words of the user_regs_struct in
// an NT_PRSTATUS note.
const (
	RegR15 = iota
	RegR14
	RegR13
	RegR12
	RegBP
	RegBX
	RegR11
	RegR10
	RegR9
	RegR8
	RegAX
	RegCX
	RegDX
	RegSI
	RegDI
	RegOrigAX
	RegIP
	RegCS
	RegFlags
	RegSP
	RegSS
	NumPTRegs // words in struct pt_regs
)

// iretFrameOffset is offsetof(struct pt_regs, ip): a partial register
// frame (ORC "regs partial") holds only the hardware's iret frame, which
// is the tail of a pt_regs from ip on.
const iretFrameOffset = RegIP * 8

// DefaultMaxFrames bounds a walk: kernel stacks are 16 KiB, and a
// backtrace deeper than this is a loop through corrupt memory.
const DefaultMaxFrames = 256

// Unwinder walks x86_64 kernel stacks with the kernel's ORC tables
// (arch/x86/kernel/unwind_orc.c is the reference for what each entry
// means), falling back to the frame-pointer chain where no table covers
// the code (BPF programs, a module whose table could not be read).
type Unwinder struct {
	// Tables are vmlinux's and the modules' ORC tables.
	Tables    []*ORCTable
	MaxFrames int // 0: DefaultMaxFrames
}

var _ arch.Unwinder = (*Unwinder)(nil)

// Find returns the ORC entry in force at pc, from the table that covers it.
func (u *Unwinder) Find(pc uint64) (ORCEntry, bool) {
	for _, t := range u.Tables {
		if t.Covers(pc) {
			return t.Lookup(pc)
		}
	}
	return ORCEntry{}, false
}

// walkState is the registers the walk knows at one frame.
type walkState struct {
	pc, sp, bp uint64
	regs       []uint64 // full pt_regs when known (start or an exception frame)
	exact      bool     // pc is where the CPU was, not a return address
	shownSP    uint64
	reliable   bool
}

// Unwind implements arch.Unwinder.
func (u *Unwinder) Unwind(start arch.Start, mem arch.UnwindMemory) ([]arch.Frame, error) {
	max := u.MaxFrames
	if max <= 0 {
		max = DefaultMaxFrames
	}
	if len(start.Regs) >= NumPTRegs && start.Regs[RegCS]&3 != 0 {
		// The CPU was in user space: there is no kernel stack to walk,
		// only the registers.
		regs := append([]uint64(nil), start.Regs[:NumPTRegs]...)
		return []arch.Frame{{PC: start.PC, SP: start.SP, Exception: &arch.ExceptionFrame{Regs: regs, User: true}, Reliable: true}}, nil
	}
	s := walkState{pc: start.PC, sp: start.SP, bp: start.FP, regs: start.Regs, exact: true, shownSP: start.SP, reliable: true}
	if start.ReturnAddress {
		s.exact = false
		s.shownSP = start.SP - 8
	}
	var frames []arch.Frame
	for {
		st, _ := mem.StackOf(s.shownSP)
		f := arch.Frame{PC: s.pc, SP: s.shownSP, Stack: st, Reliable: s.reliable}
		if len(frames) >= max {
			return frames, &arch.UnwindError{PC: s.pc, SP: s.sp, Msg: fmt.Sprintf("more than %d frames", max)}
		}
		next, err := u.step(&s, &f, mem)
		frames = append(frames, f)
		if err != nil || next == nil {
			return frames, err
		}
		// A walk must move outward: up the same stack, or onto another.
		prevStack, _ := mem.StackOf(s.sp)
		nextStack, ok := mem.StackOf(next.sp)
		if f.Exception == nil {
			if !ok {
				return frames, &arch.UnwindError{PC: next.pc, SP: next.sp, Msg: "stack pointer is on no known stack"}
			}
			if nextStack == prevStack && next.sp <= s.sp {
				return frames, &arch.UnwindError{PC: next.pc, SP: next.sp, Msg: "stack pointer did not move up the stack"}
			}
		}
		if next.pc == 0 {
			return frames, nil
		}
		s = *next
	}
}

// step finds the caller's state from s. It fills f.Exception when s is
// at entry code that saved registers. A nil state and nil error is the
// end of the stack.
func (u *Unwinder) step(s *walkState, f *arch.Frame, mem arch.UnwindMemory) (*walkState, error) {
	lookup := s.pc
	if !s.exact {
		lookup--
	}
	e, ok := u.Find(lookup)
	if !ok || e.Type == ORCUndefined {
		// Code objtool was told to leave alone (STACK_FRAME_NON_STANDARD,
		// as __crash_kexec is) or that no table covers: read the
		// function's prologue, then try the frame-pointer chain.
		next, perr := u.prologueStep(s, lookup, mem)
		if perr == nil {
			return next, nil
		}
		if !ok {
			return u.framePointerStep(s, mem)
		}
		return nil, &arch.UnwindError{PC: s.pc, SP: s.sp, Msg: "the ORC table says this code cannot be unwound, and its prologue gives no frame", Err: perr}
	}
	if e.Type == ORCEndOfStack {
		return nil, nil
	}
	read := func(addr uint64, what string) (uint64, error) {
		v, err := mem.ReadWord(addr)
		if err != nil {
			return 0, &arch.UnwindError{PC: s.pc, SP: s.sp, Msg: "reading " + what, Err: err}
		}
		return v, nil
	}
	reg := func(i int, name string) (uint64, error) {
		if len(s.regs) < NumPTRegs {
			return 0, &arch.UnwindError{PC: s.pc, SP: s.sp, Msg: "the frame's CFA is in " + name + ", which is not known here"}
		}
		return s.regs[i], nil
	}
	var cfa uint64
	var err error
	switch e.SPReg {
	case orcRegSP:
		cfa = s.sp + uint64(int64(e.SPOffset))
	case orcRegBP:
		cfa = s.bp + uint64(int64(e.SPOffset))
	case orcRegSPIndirect:
		// The kernel keeps the previous stack pointer in the word at sp
		// (call_on_irqstack pushes it when switching to the IRQ stack).
		if cfa, err = read(s.sp, "the saved stack pointer"); err != nil {
			return nil, err
		}
		cfa += uint64(int64(e.SPOffset))
	case orcRegBPIndirect:
		if cfa, err = read(s.bp+uint64(int64(e.SPOffset)), "the saved stack pointer"); err != nil {
			return nil, err
		}
	case orcRegR10:
		cfa, err = reg(RegR10, "r10")
	case orcRegR13:
		cfa, err = reg(RegR13, "r13")
	case orcRegDI:
		cfa, err = reg(RegDI, "rdi")
	case orcRegDX:
		cfa, err = reg(RegDX, "rdx")
	default:
		return nil, &arch.UnwindError{PC: s.pc, SP: s.sp, Msg: fmt.Sprintf("ORC sp_reg %d is not one the kernel defines", e.SPReg)}
	}
	if err != nil {
		return nil, err
	}
	next := &walkState{reliable: s.reliable, bp: s.bp}
	switch e.Type {
	case ORCCall:
		ret, err := read(cfa-8, "the return address")
		if err != nil {
			return nil, err
		}
		next.pc, next.sp, next.shownSP = ret, cfa, cfa-8
	case ORCRegs:
		regs := make([]uint64, NumPTRegs)
		for i := range regs {
			if regs[i], err = read(cfa+uint64(8*i), "the saved registers"); err != nil {
				return nil, err
			}
		}
		f.Exception = &arch.ExceptionFrame{Addr: cfa, Regs: regs, User: regs[RegCS]&3 != 0}
		if f.Exception.User {
			return nil, nil
		}
		next.pc, next.sp, next.bp, next.regs, next.exact, next.shownSP = regs[RegIP], regs[RegSP], regs[RegBP], regs, true, regs[RegSP]
		return next, nil
	case ORCRegsPartial:
		regs := make([]uint64, NumPTRegs)
		for i := RegIP; i < NumPTRegs; i++ {
			if regs[i], err = read(cfa+uint64(8*(i-RegIP)), "the saved iret frame"); err != nil {
				return nil, err
			}
		}
		f.Exception = &arch.ExceptionFrame{Addr: cfa - iretFrameOffset, Regs: regs, Partial: true, User: regs[RegCS]&3 != 0}
		if f.Exception.User {
			return nil, nil
		}
		next.pc, next.sp, next.exact, next.shownSP = regs[RegIP], regs[RegSP], true, regs[RegSP]
	}
	// Where the caller's frame pointer is.
	switch e.BPReg {
	case orcRegUndefined:
	case orcRegPrevSP:
		if next.bp, err = read(cfa+uint64(int64(e.BPOffset)), "the saved frame pointer"); err != nil {
			return nil, err
		}
	case orcRegBP:
		if next.bp, err = read(s.bp+uint64(int64(e.BPOffset)), "the saved frame pointer"); err != nil {
			return nil, err
		}
	default:
		return nil, &arch.UnwindError{PC: s.pc, SP: s.sp, Msg: fmt.Sprintf("ORC bp_reg %d is not one the kernel defines", e.BPReg)}
	}
	return next, nil
}

// framePointerStep guesses the caller from the frame-pointer chain, as
// the kernel's ORC unwinder does for code it has no entry for: the saved
// rbp at rbp, the return address above it.
func (u *Unwinder) framePointerStep(s *walkState, mem arch.UnwindMemory) (*walkState, error) {
	fail := func(err error) (*walkState, error) {
		return nil, &arch.UnwindError{PC: s.pc, SP: s.sp, Msg: "no ORC entry for the code, and no usable frame pointer", Err: err}
	}
	if _, ok := mem.StackOf(s.bp); !ok || s.bp < s.sp {
		return fail(nil)
	}
	ret, err := mem.ReadWord(s.bp + 8)
	if err != nil {
		return fail(err)
	}
	bp, err := mem.ReadWord(s.bp)
	if err != nil {
		return fail(err)
	}
	return &walkState{pc: ret, sp: s.bp + 16, bp: bp, shownSP: s.bp + 8}, nil
}
