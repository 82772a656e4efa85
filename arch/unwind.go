package arch

import "fmt"

// Stack is one contiguous kernel stack: a task's stack, a CPU's IRQ
// stack or one of its exception stacks. Addresses in [Base, Top) are on it.
type Stack struct {
	Base, Top uint64
	// Label names the stack the way crash's bt does when a backtrace
	// leaves it ("IRQ stack", "NMI exception stack"); "" for a task's own
	// stack.
	Label string
}

// Contains reports whether addr lies on the stack.
func (s Stack) Contains(addr uint64) bool { return addr >= s.Base && addr < s.Top }

// UnwindMemory is what an unwinder reads: machine words of kernel memory,
// and the stacks a walk may use (so that it knows where one ends).
type UnwindMemory interface {
	ReadWord(addr uint64) (uint64, error)
	// StackOf returns the known stack holding addr.
	StackOf(addr uint64) (Stack, bool)
	// FuncStart returns the start of the function containing pc, for
	// unwinders that fall back to reading a function's prologue.
	FuncStart(pc uint64) (uint64, bool)
}

// Start is where an unwind begins.
type Start struct {
	PC, SP, FP uint64
	// Regs, when not nil, are the full registers at PC in the
	// architecture's saved-register layout (x86_64 struct pt_regs order),
	// as a CPU's crash note or an exception frame gives them.
	Regs []uint64
	// ReturnAddress is set when PC is not where the CPU was but a return
	// address found on the stack in the word just below SP (crash starts
	// the panic task at machine_kexec's return address this way): the
	// unwinder then looks PC-1 up, and the frame shows the word's address.
	ReturnAddress bool
}

// Frame is one frame of a backtrace.
type Frame struct {
	PC uint64
	// SP is the stack address crash shows for the frame: where its return
	// address was found, or the stack pointer when PC came from registers.
	SP uint64
	// Stack is the stack SP lies on.
	Stack Stack
	// Exception is the register frame that entry code saved on the stack
	// at this frame (struct pt_regs on x86_64): the interrupted context,
	// which the walk continues from. Nil for ordinary call frames.
	Exception *ExceptionFrame
	// Reliable is false when the frame was found by a fallback (frame
	// pointer) rather than the unwind tables.
	Reliable bool
}

// ExceptionFrame is the interrupted context an exception, interrupt or
// system-call entry saved.
type ExceptionFrame struct {
	Addr uint64   // where the saved registers are
	Regs []uint64 // in the architecture's layout (x86_64 struct pt_regs)
	// Partial is set when only the hardware frame (x86_64's iret frame:
	// ip, cs, flags, sp, ss) was saved; the other registers are then zero.
	Partial bool
	User    bool // the interrupted context was user mode: the walk ends here
}

// Unwinder walks a stack from a starting point. One implementation per
// architecture (arch/amd64's uses the kernel's ORC tables).
type Unwinder interface {
	// Unwind returns the frames from start outward. It stops at the end
	// of the stack (nil error), or returns the frames found so far with an
	// error saying why the walk could not go on.
	Unwind(start Start, mem UnwindMemory) ([]Frame, error)
}

// UnwindError says where and why a walk stopped early.
type UnwindError struct {
	PC, SP uint64
	Msg    string
	Err    error
}

// Error says where the walk stopped and why.
func (e *UnwindError) Error() string {
	s := fmt.Sprintf("unwind stopped at pc %#x sp %#x: %s", e.PC, e.SP, e.Msg)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap is the underlying failure (a read error with the page state).
func (e *UnwindError) Unwrap() error { return e.Err }
