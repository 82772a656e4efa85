package kernel

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"weak"

	"salvage/arch"
	"salvage/debuginfo"
	"salvage/dump"
)

// Backtrace is one task's kernel stack, innermost frame first.
type Backtrace struct {
	Task   uint64 // the task_struct
	PID    int64
	Comm   string
	CPU    int  // the task's CPU (task_cpu)
	Active bool // running on its CPU when the dump was taken
	Panic  bool // the task that panicked (or crashed into kdump)
	Frames []Frame
	// Err is why the walk stopped before the end of the stack (a page
	// the dump lacks, a corrupt frame); Frames holds what came before.
	Err error
}

// Frame is one stack frame.
type Frame struct {
	SP, PC uint64 // as crash shows them: see arch.Frame
	Symbol string // "" when no symbol covers PC
	Offset uint64 // PC's offset into Symbol
	Module string // the module PC is in; "" for vmlinux
	// Exception is the register frame saved at this frame, which the walk
	// continued from (the interrupted context); nil for call frames.
	Exception *arch.ExceptionFrame
	// Stack is the stack SP is on.
	Stack arch.Stack
	// Exact is set when PC is where the CPU was (the first frame when
	// started from registers, or the context an exception frame
	// interrupted), not a return address.
	Exact bool
	// Reliable is false when the frame was found by a fallback (the
	// function's prologue or the frame-pointer chain) rather than the
	// unwind tables.
	Reliable bool
	// Stale is a word that is not a frame but that crash shows as one:
	// a kernel text address in the stack-alignment slot above an
	// exception frame (see alignmentFrames). bt shows it, as crash
	// does; a summary of the stack leaves it out.
	Stale bool
}

// BacktraceOption adjusts a Backtrace call.
type BacktraceOption func(*btConfig)

type btConfig struct {
	start *arch.Start
}

// StartAt begins the walk at the given registers instead of where the
// task was stopped (crash's bt -S, or a caller's own starting point).
func StartAt(s arch.Start) BacktraceOption {
	return func(c *btConfig) { c.start = &s }
}

// stackState is what every backtrace of one kernel shares: its unwinder
// (with the ORC tables read once), its CPUs' extra stacks and active tasks.
type stackState struct {
	once   sync.Once
	err    error
	unw    arch.Unwinder
	cpuStk [][]arch.Stack // per CPU: IRQ stack, exception stacks
	active map[uint64]int // active task → CPU
	panic  uint64         // the panic task; 0 when none (a live dump)
	pcpu   int            // the panic CPU, -1 when none
	thread uint64         // THREAD_SIZE
	start  startFinder    // the architecture's choice of starting registers

	indexOnce sync.Once
	index     taskIndex
}

// taskIndex finds tasks by address and PID without walking the list.
type taskIndex struct {
	byAddr map[uint64]Value
	byPID  map[int64]Value
	err    error
}

// startFinder finds where the walk of an active task begins.
type startFinder func(k *Kernel, st *stackState, task Value, cpu int, task0 arch.Stack) (arch.Start, error)

// stackStates keeps each kernel's stackState, weakly: an entry goes when
// its Kernel is collected. (A field of Kernel would be the better home;
// that type lives in a file of its own.)
var stackStates sync.Map // weak.Pointer[Kernel] → *stackState

// stackState returns k's entry, made on first use.
func (k *Kernel) stackState() *stackState {
	key := weak.Make(k)
	v, loaded := stackStates.LoadOrStore(key, &stackState{})
	if !loaded {
		runtime.AddCleanup(k, func(key weak.Pointer[Kernel]) { stackStates.Delete(key) }, key)
	}
	return v.(*stackState)
}

func (k *Kernel) stacks() (*stackState, error) {
	st := k.stackState()
	st.once.Do(func() { st.err = k.initStacks(st) })
	return st, st.err
}

func (k *Kernel) initStacks(st *stackState) error {
	if k.Dump == nil {
		return errors.New("backtrace: no dump")
	}
	switch k.Dump.Arch {
	case dump.ArchX86_64, "":
		return k.initStacksAMD64(st)
	}
	return fmt.Errorf("backtrace: no unwinder for %s dumps yet", k.Dump.Arch)
}

// ThreadSize is THREAD_SIZE, the size of a task's kernel stack: the size
// of union thread_union when the types have it, else x86_64's 16 KiB.
func (k *Kernel) ThreadSize() uint64 {
	if ts, err := k.types(); err == nil {
		if t, err := ts.Named("union thread_union"); err == nil && sizeOf(t) > 0 {
			return uint64(sizeOf(t))
		}
	}
	return 16384
}

// TaskStack is the task's own kernel stack, [task->stack, +THREAD_SIZE).
func (k *Kernel) TaskStack(task Value) (arch.Stack, error) {
	v, err := task.Member("stack")
	if err != nil {
		return arch.Stack{}, err
	}
	base, err := v.Uint()
	if err != nil {
		return arch.Stack{}, err
	}
	if base == 0 {
		return arch.Stack{}, fmt.Errorf("task %#x has no stack (task->stack is NULL: it has exited)", task.Address())
	}
	return arch.Stack{Base: base, Top: base + k.ThreadSize()}, nil
}

// TaskCPU is task_cpu(): task_struct.cpu, or thread_info.cpu on kernels
// that keep it there.
func TaskCPU(task Value) (int, error) {
	for _, p := range []string{"cpu", "thread_info.cpu"} {
		v, err := task.Member(p)
		if err != nil {
			continue
		}
		c, err := v.Uint()
		return int(c), err
	}
	return 0, fmt.Errorf("%v: neither task_struct.cpu nor thread_info.cpu", task)
}

// ActiveTasks returns each CPU's running task (runqueues.curr), by CPU.
func (k *Kernel) ActiveTasks() (map[int]Value, error) {
	n, err := k.NrCPUIDs()
	if err != nil {
		return nil, err
	}
	out := map[int]Value{}
	for cpu := 0; cpu < n; cpu++ {
		rq, err := k.PerCPU("runqueues", cpu)
		if err == nil {
			rq, err = rq.Member("curr")
		}
		if err == nil {
			rq, err = rq.Deref()
		}
		if err != nil {
			continue // a possible CPU that never came online
		}
		out[cpu] = rq
	}
	if len(out) == 0 {
		return nil, errors.New("no CPU has a running task (runqueues.curr)")
	}
	return out, nil
}

// PanicTask returns the task that panicked: the one running on panic_cpu.
// ok is false when no CPU panicked (a dump of a live machine).
func (k *Kernel) PanicTask() (task Value, cpu int, ok bool, err error) {
	st, err := k.stacks()
	if err != nil {
		return Value{}, -1, false, err
	}
	if st.panic == 0 {
		return Value{}, -1, false, nil
	}
	t, err := k.ObjectOf(st.panic, "struct task_struct")
	return t, st.pcpu, err == nil, err
}

// panicCPU reads panic_cpu (kernel/panic.c: PANIC_CPU_INVALID is -1), the
// CPU that called panic() or crash_kexec().
func (k *Kernel) panicCPU() int {
	a, err := k.SymbolAddr("panic_cpu")
	if err != nil {
		return -1
	}
	v, err := k.ReadUint(a, 4)
	if err != nil {
		return -1
	}
	return int(int32(v))
}

// Backtrace walks task's kernel stack. Active tasks start from the
// registers the dump holds for their CPU (placed as crash places them:
// the panic task at machine_kexec, the others in the NMI handler that
// stopped them); sleeping tasks from the frame switch_to saved. The
// error is for a task whose walk cannot begin; a walk that stops early
// returns its frames with Backtrace.Err set.
func (k *Kernel) Backtrace(task Value, opts ...BacktraceOption) (*Backtrace, error) {
	var cfg btConfig
	for _, o := range opts {
		o(&cfg)
	}
	st, err := k.stacks()
	if err != nil {
		return nil, err
	}
	bt := &Backtrace{Task: task.Address()}
	if v, err := task.Member("pid"); err == nil {
		bt.PID, _ = v.Int()
	}
	if v, err := task.Member("comm"); err == nil {
		bt.Comm, _ = v.CString(16)
	}
	bt.CPU, _ = TaskCPU(task)
	ts, err := k.TaskStack(task)
	if err != nil {
		return nil, err
	}
	cpu, active := st.active[task.Address()]
	bt.Active = active
	if active {
		bt.CPU = cpu
	}
	bt.Panic = st.panic != 0 && st.panic == task.Address()
	var start arch.Start
	switch {
	case cfg.start != nil:
		start = *cfg.start
	case active:
		start, err = st.start(k, st, task, cpu, ts)
	default:
		start, err = k.sleepingStart(task)
	}
	if err != nil {
		return nil, err
	}
	mem := &stackMemory{k: k, stacks: append([]arch.Stack{ts}, st.allCPUStacks()...)}
	frames, uerr := st.unw.Unwind(start, mem)
	for i, f := range frames {
		exact := i == 0 && !start.ReturnAddress || i > 0 && frames[i-1].Exception != nil
		bt.Frames = append(bt.Frames, k.describeFrame(f, exact))
		if i > 0 && frames[i-1].Exception != nil {
			// After the interrupted context, what crash reads in the
			// exception frame's alignment slot.
			for _, sf := range k.alignmentFrames(frames[i-1].Exception) {
				sf.Stack = frames[i-1].Stack
				bt.Frames = append(bt.Frames, sf)
			}
		}
	}
	bt.Err = uerr
	return bt, nil
}

func (st *stackState) allCPUStacks() []arch.Stack {
	var out []arch.Stack
	for _, s := range st.cpuStk {
		out = append(out, s...)
	}
	return out
}

func (k *Kernel) describeFrame(f arch.Frame, exact bool) Frame {
	out := Frame{SP: f.SP, PC: f.PC, Exception: f.Exception, Stack: f.Stack, Exact: exact, Reliable: f.Reliable}
	if k.Symbols != nil {
		// A return address may be the first byte after a call at the very
		// end of a function (a noreturn call): look up the call itself.
		a := f.PC
		if !exact && a > 0 {
			a--
		}
		if s, off, ok := k.Symbols.ByAddr(a); ok {
			out.Symbol, out.Offset, out.Module = s.Name, off, s.Module
			if !exact {
				out.Offset++
			}
		}
	}
	return out
}

// sleepingStart is where switch_to left a task that is not running: its
// saved stack pointer (thread.sp) points at struct inactive_task_frame
// (arch/x86/include/asm/switch_to.h), whose ret_addr is the return into
// __schedule and bp the frame pointer then.
func (k *Kernel) sleepingStart(task Value) (arch.Start, error) {
	spv, err := task.Member("thread.sp")
	if err != nil {
		return arch.Start{}, err
	}
	sp, err := spv.Uint()
	if err != nil {
		return arch.Start{}, err
	}
	frame, err := k.ObjectOf(sp, "struct inactive_task_frame")
	if err != nil {
		return arch.Start{}, fmt.Errorf("task %#x: saved frame: %w", task.Address(), err)
	}
	ra, err := frame.Member("ret_addr")
	if err != nil {
		return arch.Start{}, err
	}
	pc, err := ra.Uint()
	if err != nil {
		return arch.Start{}, fmt.Errorf("task %#x: saved return address: %w", task.Address(), err)
	}
	bpv, err := frame.Member("bp")
	if err != nil {
		return arch.Start{}, err
	}
	bp, err := bpv.Uint()
	if err != nil {
		return arch.Start{}, err
	}
	return arch.Start{PC: pc, SP: ra.Address() + 8, FP: bp, ReturnAddress: true}, nil
}

// stackMemory is arch.UnwindMemory over a kernel's memory and the stacks
// one walk may cross.
type stackMemory struct {
	k      *Kernel
	stacks []arch.Stack
}

// ReadWord reads one word of kernel memory.
func (m *stackMemory) ReadWord(addr uint64) (uint64, error) { return m.k.ReadPointer(addr) }

// FuncStart is the start of the text symbol containing pc.
func (m *stackMemory) FuncStart(pc uint64) (uint64, bool) {
	if m.k.Symbols == nil {
		return 0, false
	}
	s, _, ok := m.k.Symbols.ByAddr(pc)
	if !ok || (s.Type != 'T' && s.Type != 't' && s.Type != 'W' && s.Type != 'w') {
		return 0, false
	}
	return s.Addr, true
}

// StackOf finds the walk's stack that holds addr.
func (m *stackMemory) StackOf(addr uint64) (arch.Stack, bool) {
	for _, s := range m.stacks {
		if s.Contains(addr) {
			return s, true
		}
	}
	return arch.Stack{}, false
}

// typeHas reports whether the struct spelled typ has member.
func (k *Kernel) typeHas(typ, member string) bool {
	_, err := lookupMemberErr(k, typ, member)
	return err == nil
}

// structType finds "struct name" in the kernel's types.
func (k *Kernel) structType(name string) (*debuginfo.Type, error) {
	ts, err := k.types()
	if err != nil {
		return nil, err
	}
	return ts.Struct(name)
}

// StackEndMagic is the word the kernel keeps at the far end of every
// task's stack (include/uapi/linux/magic.h): a stack overflow overwrites it.
const StackEndMagic = 0x57AC6E9D

// StackEndMagic reads the word at the end of task's stack (its lowest
// address, end_of_stack() with the thread_info in the task) and returns
// where it is and its value.
func (k *Kernel) StackEndMagic(task Value) (loc, val uint64, err error) {
	s, err := k.TaskStack(task)
	if err != nil {
		return 0, 0, err
	}
	v, err := k.ReadUint(s.Base, 8)
	return s.Base, v, err
}

// FindTask finds a task on the task list by task_struct address (addr
// non-zero) or else by PID, as bt's operands name them; ok is false when
// no task matches. The list is indexed on first use.
func (k *Kernel) FindTask(addr uint64, pid int64) (Value, bool, error) {
	st := k.stackState()
	st.indexOnce.Do(func() {
		st.index = taskIndex{byAddr: map[uint64]Value{}, byPID: map[int64]Value{}}
		for t, err := range k.Tasks() {
			if err != nil {
				st.index.err = err
				return
			}
			st.index.byAddr[t.Address()] = t
			if p, err := t.Member("pid"); err == nil {
				if n, err := p.Int(); err == nil {
					if _, dup := st.index.byPID[n]; !dup {
						st.index.byPID[n] = t
					}
				}
			}
		}
	})
	if addr != 0 {
		t, ok := st.index.byAddr[addr]
		return t, ok, st.index.err
	}
	t, ok := st.index.byPID[pid]
	return t, ok, st.index.err
}
