package analyze

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"salvage/arch"
	"salvage/arch/amd64"
	"salvage/kernel"
)

func btCommand() *Command {
	return &Command{
		Name:    "bt",
		Summary: "show a task's stack backtrace",
		Usage:   "[-a|-c CPUS|-g|-p|-t|-T|-o|-v|-r|-e] [-f|-F[F]] [-l] [-s [-x|-d]] [-R REF] [PID | TASK] ...",
		Help: `Prints the kernel stack backtrace of the current task (see set: the panic
task, or in a dump of a live machine CPU 0's running task), of each PID (decimal) or TASK
(task_struct address, hexadecimal), or of every CPU's running task (-a),
in crash's format: one line per frame giving the stack address where the
frame's return address was found, the function and the address. Where
entry code saved registers (an exception, interrupt, NMI or system call)
they are printed; "--- <NMI exception stack> ---" and the like mark where
the walk leaves a CPU's IRQ or exception stack.

The walk uses the kernel's ORC unwind tables (vmlinux's and each module's,
read from the dump), so it is the same with a debug vmlinux and without
one. Running tasks start where crash starts them: the panic task at the
return into machine_kexec, the CPUs stopped by the crash NMI in
crash_nmi_callback; sleeping tasks at the frame switch_to saved. A walk
that cannot go on (a page the dump lacks) prints the frames found and
then why it stopped.

  -a        the running task of every CPU
  -c CPUS   the running task of the given CPUs: "3", "1,8,9", "1-23", "1,8,9-14"
  -p        the panic task only
  -g        every thread of the task's thread group, the leader first
  -f        print the stack words of each frame
  -F[F]     as -f, the words symbolically: symbol+offset, and for an
            address in a slab object its cache's name ([task_struct]);
            -FF shows the address with the cache ([ffff…:task_struct])
  -s        print symbol+offset
  -x        offsets in hexadecimal (with -s)
  -d        offsets in decimal (with -s; the default)
  -t        every text address on the stack from where the walk starts
  -T        every text address on the task's stack, from its bottom
  -R REF    only the backtraces that reference REF: a function name, a
            text address, or a value in a saved register frame
  -v        check every task's stack for an overflow (STACK_END_MAGIC)
  -r        the task's whole stack, raw, two words a line
  -o        crash's old backtrace: every return address on the stack from
            where the walk starts, stale ones too, as numbered frames
  -e        search the task's stack for saved register frames (exception,
            interrupt or system-call entries), kernel- and user-mode, by
            the checks crash makes of a candidate frame
  -l        the source file and line of each frame, from the debug
            vmlinux's DWARF line tables (so not without a vmlinux, nor for
            modules' frames)

Not yet: -E (the IRQ and exception stacks' search), -O, -I/-S, -n.

--json prints each task's frames: stack pointer, pc, symbol, offset,
module and any saved registers.

Examples:
  bt
  bt -a
  bt 414
  bt -f ffff8884bf59b000
  bt -s -x -c 1
`,
		Options: []Option{
			{Name: "a", Help: "every CPU's running task"},
			{Name: "c", Arg: "CPU", Help: "the running task of the given CPUs"},
			{Name: "f", Help: "frame contents"},
			{Name: "s", Help: "symbol+offset"},
			{Name: "x", Help: "hexadecimal offsets"},
			{Name: "d", Help: "decimal offsets"},
			{Name: "p", Help: "the panic task only"},
			{Name: "g", Help: "every thread of the thread group"},
			{Name: "t", Help: "text symbols from the starting frame"},
			{Name: "T", Help: "text symbols from the stack's bottom"},
			{Name: "R", Arg: "REF", Help: "only backtraces that reference REF"},
			{Name: "v", Help: "check stacks for overflows"},
			{Name: "l", Help: "file and line of each frame"},
			{Name: "r", Help: "raw stack data"},
			{Name: "o", Help: "old backtrace: every return address on the stack"},
			{Name: "F", Help: "frame contents, symbolically (-FF: with addresses)"},
			{Name: "e", Help: "search the stack for exception frames"},
		},
		MaxArgs: -1,
		Run:     runBt,
	}
}

// btJSON is one task's backtrace in bt --json.
type btJSON struct {
	PID     int64         `json:"pid"`
	Task    uint64        `json:"task"`
	CPU     int           `json:"cpu"`
	Command string        `json:"command"`
	Active  bool          `json:"active"`
	Panic   bool          `json:"panic"`
	Frames  []btFrameJSON `json:"frames"`
	Error   string        `json:"error,omitempty"`
}

type btFrameJSON struct {
	Level    int    `json:"level"`
	SP       uint64 `json:"sp"`
	PC       uint64 `json:"pc"`
	Symbol   string `json:"symbol,omitempty"`
	Offset   uint64 `json:"offset"`
	Module   string `json:"module,omitempty"`
	Stack    string `json:"stack,omitempty"`
	Reliable bool   `json:"reliable"`
	// Stale: not a frame, a word crash shows as one (kernel.Frame.Stale).
	Stale     bool             `json:"stale,omitempty"`
	Exception *btExceptionJSON `json:"exception,omitempty"`
}

type btExceptionJSON struct {
	Address uint64            `json:"address"`
	User    bool              `json:"user"`
	Partial bool              `json:"partial"`
	Regs    map[string]uint64 `json:"registers"`
}

type btFlags struct {
	full, symOff, hex bool
	// slab is 1 for -F (stack words symbolic, slab objects by cache), 2
	// for -FF (with their addresses too).
	slab int
	// line, for -l, gives the source file and line of a kernel text
	// address; nil otherwise.
	line func(pc uint64) (string, int, bool)
	// text is 't' or 'T' for the text-symbol listings, 'o' for the old
	// backtrace, 0 otherwise.
	text byte
}

func runBt(ctx *Context) error {
	k, err := ctx.Session.Kernel()
	if err != nil {
		return err
	}
	if ctx.Opts.Has("v") {
		return runBtOverflow(ctx, k)
	}
	tasks, err := btTasks(k, ctx)
	if err != nil {
		return err
	}
	fl := btFlags{full: ctx.Opts.Has("f"), symOff: ctx.Opts.Has("s"), hex: ctx.Opts.Last("x", "d") == "x"}
	for _, o := range ctx.Opts {
		if o.Name == "F" && fl.slab < 2 {
			fl.slab++
			fl.full = true
		}
	}
	switch ctx.Opts.Last("t", "T", "o") {
	case "t":
		fl.text = 't'
	case "T":
		fl.text = 'T'
	case "o":
		fl.text = 'o'
	}
	if ctx.Opts.Has("l") {
		if fl.line, err = btLines(ctx, k); err != nil {
			return err
		}
	}
	ref, hasRef := ctx.Opts.Value("R")
	var all []btJSON
	first := true
	for _, t := range tasks {
		bt, err := k.Backtrace(t)
		if hasRef && (err != nil || !btReferences(k, bt, ref)) {
			continue
		}
		if ctx.JSON {
			all = append(all, btToJSON(t, bt, err))
			continue
		}
		if !first {
			fmt.Fprintln(ctx.Out)
		}
		first = false
		if err != nil {
			printBtHeader(ctx.Out, t, nil)
			fmt.Fprintf(ctx.Out, "bt: %v\n", err)
			continue
		}
		switch {
		case ctx.Opts.Has("r"):
			printRawStack(ctx.Out, k, t)
		case ctx.Opts.Has("e"):
			printEframeSearch(ctx.Out, k, t)
		case fl.text != 0:
			printTextSymbols(ctx.Out, k, bt, fl)
		default:
			printBacktrace(ctx.Out, k, bt, fl)
		}
	}
	if ctx.JSON {
		if all == nil {
			all = []btJSON{}
		}
		return writeJSON(ctx, all)
	}
	// crash ends each backtrace that -R selects with an empty line.
	if hasRef && !first {
		fmt.Fprintln(ctx.Out)
	}
	return nil
}

// btTasks chooses the tasks: the operands, the CPUs of -a or -c, or the
// panic task.
func btTasks(k *kernel.Kernel, ctx *Context) ([]kernel.Value, error) {
	cpuList, hasC := ctx.Opts.Value("c")
	if ctx.Opts.Has("a") || hasC {
		if len(ctx.Args) > 0 {
			return nil, usagef("-a and -c take no PID or TASK")
		}
		act, err := k.ActiveTasks()
		if err != nil {
			return nil, err
		}
		var cpus []int
		if hasC && !ctx.Opts.Has("a") {
			if cpus, err = parseCPUList(cpuList); err != nil {
				return nil, err
			}
			for _, c := range cpus {
				if _, ok := act[c]; !ok {
					return nil, fmt.Errorf("CPU %d has no running task (not online, or beyond nr_cpu_ids)", c)
				}
			}
		} else {
			for c := range act {
				cpus = append(cpus, c)
			}
			sort.Ints(cpus)
		}
		var out []kernel.Value
		for _, c := range cpus {
			out = append(out, act[c])
		}
		return out, nil
	}
	if ctx.Opts.Has("p") {
		if len(ctx.Args) > 0 {
			return nil, usagef("-p takes no PID or TASK")
		}
		t, _, ok, err := k.PanicTask()
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("no panic task: the dump was taken of a running machine")
		}
		return []kernel.Value{t}, nil
	}
	if ctx.Opts.Has("g") {
		var out []kernel.Value
		args := ctx.Args
		if len(args) == 0 {
			t, err := defaultTask(ctx.Session, k)
			if err != nil {
				return nil, err
			}
			out, err := threadGroup(k, t)
			return out, err
		}
		for _, a := range args {
			t, err := findTask(k, a)
			if err != nil {
				return nil, err
			}
			g, err := threadGroup(k, t)
			if err != nil {
				return nil, err
			}
			out = append(out, g...)
		}
		return out, nil
	}
	if len(ctx.Args) == 0 {
		t, err := defaultTask(ctx.Session, k)
		if err != nil {
			return nil, err
		}
		return []kernel.Value{t}, nil
	}
	var out []kernel.Value
	for _, a := range ctx.Args {
		t, err := findTask(k, a)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// findTask resolves a PID (decimal) or task_struct address (hexadecimal)
// as crash's bt does.
func findTask(k *kernel.Kernel, arg string) (kernel.Value, error) {
	var pid int64 = -1
	var addr uint64
	if isDecimal(arg) {
		p, err := strconv.ParseInt(arg, 10, 64)
		if err != nil {
			return kernel.Value{}, fmt.Errorf("invalid PID %q", arg)
		}
		pid = p
	} else {
		a, err := parseHex("task address", arg)
		if err != nil || a == 0 {
			return kernel.Value{}, fmt.Errorf("invalid task or pid value: %s", arg)
		}
		addr = a
	}
	t, ok, err := k.FindTask(addr, pid)
	if ok {
		return t, nil
	}
	if err != nil {
		return kernel.Value{}, err
	}
	if addr != 0 {
		return kernel.Value{}, fmt.Errorf("invalid task or pid value: %s (no task_struct at %#x on the task list)", arg, addr)
	}
	return kernel.Value{}, fmt.Errorf("invalid task or pid value: %s (no task has PID %d)", arg, pid)
}

func printBtHeader(w io.Writer, t kernel.Value, bt *kernel.Backtrace) {
	var pid int64
	var comm string
	var cpu int
	if bt != nil {
		pid, comm, cpu = bt.PID, bt.Comm, bt.CPU
	} else {
		if v, err := t.Member("pid"); err == nil {
			pid, _ = v.Int()
		}
		if v, err := t.Member("comm"); err == nil {
			comm, _ = v.CString(16)
		}
		cpu, _ = kernel.TaskCPU(t)
	}
	fmt.Fprintf(w, "PID: %-7d  TASK: %x  CPU: %-3d  COMMAND: \"%s\"\n", pid, t.Address(), cpu, comm)
}

// printBacktrace prints one task's backtrace as crash's x86_64 bt does.
func printBacktrace(w io.Writer, k *kernel.Kernel, bt *kernel.Backtrace, fl btFlags) {
	t, _ := k.ObjectOf(bt.Task, "struct task_struct")
	if !t.IsValid() {
		fmt.Fprintf(w, "PID: %-7d  TASK: %x  CPU: %-3d  COMMAND: \"%s\"\n", bt.PID, bt.Task, bt.CPU, bt.Comm)
	} else {
		printBtHeader(w, t, bt)
	}
	level := 0
	fr := bt.Frames
	if len(fr) == 1 && fr[0].Exception != nil && fr[0].Exception.User {
		// Stopped in user space: crash shows the registers only.
		fmt.Fprintln(w, "    [exception RIP: user space]")
		printRegs(w, fr[0].Exception.Regs)
		return
	}
	// The context an exception interrupted on the same stack is shown by
	// the exception frame's registers, not as a frame of its own.
	var shown []int
	for i, f := range fr {
		if f.Exact && i > 0 && fr[i-1].Exception != nil && f.Stack == fr[i-1].Stack {
			continue
		}
		shown = append(shown, i)
	}
	for n, i := range shown {
		f := fr[i]
		if i > 0 && f.Stack != fr[i-1].Stack && fr[i-1].Stack.Label != "" {
			fmt.Fprintf(w, "--- <%s> ---\n", fr[i-1].Stack.Label)
		}
		sym := f.Symbol
		if sym != "" && k != nil && k.Symbols != nil {
			// Of the symbols at one address (identical-code folding:
			// do_epoll_pwait.part.0 and do_compat_epoll_pwait.part.0),
			// crash's choice, whatever order kallsyms lists them in.
			if s, off, ok := crashByAddr(k.Symbols, f.PC); ok && off == f.Offset {
				sym = s.Name
			}
		}
		name := crashSymbolName(sym)
		if name == "" {
			name = "(unknown)"
		}
		if fl.symOff && f.Offset != 0 {
			name += symOffset(f.Offset, fl.hex)
		}
		line := fmt.Sprintf("%s#%d [%x] %s at %x", pad2(level), level, f.SP, name, f.PC)
		if f.Module != "" {
			line += " [" + f.Module + "]"
		}
		fmt.Fprintln(w, line)
		level++
		if fl.line != nil && f.Module == "" {
			if file, n, ok := fl.line(f.PC); ok {
				fmt.Fprintf(w, "    %s: %d\n", file, n)
			}
		}
		if e := f.Exception; e != nil {
			if !e.User {
				fmt.Fprintf(w, "    [exception RIP: %s]\n", exceptionRIP(k, e.Regs[amd64.RegIP]))
			}
			printRegs(w, e.Regs)
			if fl.line != nil && !e.User {
				if file, n, ok := fl.line(e.Regs[amd64.RegIP]); ok {
					fmt.Fprintf(w, "    %s: %d\n", file, n)
				}
			}
		}
		// -f: the words from this frame up to the next one's return
		// address, when the next frame is on the same stack.
		if fl.full && n+1 < len(shown) {
			nf := fr[shown[n+1]]
			if nf.Stack == f.Stack && nf.SP > f.SP {
				printFrameWords(w, k, f.SP+8, nf.SP, fl.slab)
			}
		}
	}
	if bt.Err != nil {
		fmt.Fprintf(w, "bt: %v\n", bt.Err)
	}
}

// btLines is -l's line lookup: the debug vmlinux's DWARF line tables
// (read one unit at a time, on first need), through the kernel model.
func btLines(ctx *Context, k *kernel.Kernel) (func(uint64) (string, int, bool), error) {
	if ctx.Session.Vmlinux == "" {
		return nil, fmt.Errorf("-l: file and line numbers need the debug vmlinux (its DWARF line tables); this session has none")
	}
	return k.SourceLine, nil
}

func pad2(level int) string {
	if level < 10 {
		return " "
	}
	return ""
}

func symOffset(off uint64, hex bool) string {
	if hex {
		return fmt.Sprintf("+0x%x", off)
	}
	return fmt.Sprintf("+%d", off)
}

func exceptionRIP(k *kernel.Kernel, pc uint64) string {
	if k.Symbols != nil {
		if s, off, ok := k.Symbols.ByAddr(pc); ok {
			if off == 0 {
				return crashSymbolName(s.Name)
			}
			return fmt.Sprintf("%s+%d", crashSymbolName(s.Name), off)
		}
	}
	return "unknown or invalid address"
}

// printRegs prints an x86_64 struct pt_regs as crash's bt does.
func printRegs(w io.Writer, r []uint64) {
	if len(r) < amd64.NumPTRegs {
		return
	}
	fmt.Fprintf(w, "    RIP: %016x  RSP: %016x  RFLAGS: %08x\n", r[amd64.RegIP], r[amd64.RegSP], r[amd64.RegFlags])
	fmt.Fprintf(w, "    RAX: %016x  RBX: %016x  RCX: %016x\n", r[amd64.RegAX], r[amd64.RegBX], r[amd64.RegCX])
	fmt.Fprintf(w, "    RDX: %016x  RSI: %016x  RDI: %016x\n", r[amd64.RegDX], r[amd64.RegSI], r[amd64.RegDI])
	fmt.Fprintf(w, "    RBP: %016x   R8: %016x   R9: %016x\n", r[amd64.RegBP], r[amd64.RegR8], r[amd64.RegR9])
	fmt.Fprintf(w, "    R10: %016x  R11: %016x  R12: %016x\n", r[amd64.RegR10], r[amd64.RegR11], r[amd64.RegR12])
	fmt.Fprintf(w, "    R13: %016x  R14: %016x  R15: %016x\n", r[amd64.RegR13], r[amd64.RegR14], r[amd64.RegR15])
	fmt.Fprintf(w, "    ORIG_RAX: %016x  CS: %04x  SS: %04x\n", r[amd64.RegOrigAX], r[amd64.RegCS], r[amd64.RegSS])
}

// printFrameWords prints the stack words [from, to] two to a line, as
// crash's bt -f does (symbolically for -F, -FF).
func printFrameWords(w io.Writer, k *kernel.Kernel, from, to uint64, slab int) {
	var word func(uint64) string
	if slab > 0 {
		word = stackWord(k, slab)
	}
	var b strings.Builder
	for a, n := from, 0; a <= to; a, n = a+8, n+1 {
		if n%2 == 0 {
			if n > 0 {
				b.WriteString("\n")
			}
			fmt.Fprintf(&b, "    %x: ", a)
		}
		v, err := k.ReadPointer(a)
		switch {
		case err != nil:
			b.WriteString("????????????????")
		case word != nil:
			b.WriteString(word(v))
		default:
			fmt.Fprintf(&b, "%016x", v)
		}
		b.WriteString(" ")
	}
	b.WriteString("\n")
	io.WriteString(w, b.String())
}

var ptRegNames = [amd64.NumPTRegs]string{"r15", "r14", "r13", "r12", "bp", "bx", "r11", "r10", "r9", "r8",
	"ax", "cx", "dx", "si", "di", "orig_ax", "ip", "cs", "flags", "sp", "ss"}

func btToJSON(t kernel.Value, bt *kernel.Backtrace, err error) btJSON {
	j := btJSON{Task: t.Address(), Frames: []btFrameJSON{}}
	if err != nil {
		j.Error = err.Error()
		return j
	}
	j.PID, j.CPU, j.Command, j.Active, j.Panic = bt.PID, bt.CPU, bt.Comm, bt.Active, bt.Panic
	for i, f := range bt.Frames {
		fj := btFrameJSON{Level: i, SP: f.SP, PC: f.PC, Symbol: f.Symbol, Offset: f.Offset, Module: f.Module, Stack: stackName(f.Stack), Reliable: f.Reliable, Stale: f.Stale}
		if e := f.Exception; e != nil {
			ej := &btExceptionJSON{Address: e.Addr, User: e.User, Partial: e.Partial, Regs: map[string]uint64{}}
			for i, r := range e.Regs {
				if i < len(ptRegNames) {
					ej.Regs[ptRegNames[i]] = r
				}
			}
			fj.Exception = ej
		}
		j.Frames = append(j.Frames, fj)
	}
	if bt.Err != nil {
		j.Error = bt.Err.Error()
	}
	return j
}

func stackName(s arch.Stack) string {
	if s.Label == "" && s.Top != 0 {
		return "task"
	}
	return s.Label
}
