package analyze

import (
	"fmt"
	"strconv"
	"strings"

	"salvage/debuginfo"
	"salvage/kernel"
)

func pCommand() *Command {
	return &Command{
		Name:    "p",
		Aliases: []string{"print"},
		Summary: "print the value of a C expression: variables, members, casts, * and &",
		Usage:   "[-x|-d] EXPRESSION",
		Help: `Prints a global variable, or a member or element of one, as crash's p
does (through gdb): "jiffies = $1 = 4294898051" for a variable,
"$2 = "swapper/0…"" for an expression. EXPRESSION is C as gdb takes it:
a variable, members and indexes (init_task.comm, init_task.mm->pgd,
cpu_online_mask->bits[0]), the address of one (&init_task.tasks), the
object a pointer points at (*init_task.tasks.next), a cast
((struct task_struct *)0xffff8b917e904800, (long)jiffies), a member
through a cast address (((struct task_struct *)ADDR)->comm), a number,
and sizeof(TYPE). p/x (or -x) prints integers in hexadecimal, p/d (or
-d) in decimal.

--json prints the expression, its type, address and value as text.

Examples:
  p jiffies
  p init_task.comm
  p/x init_task.flags
  p *init_task.tasks.next
  p ((struct task_struct *)0xffff8b917e904800)->comm
  p sizeof(struct task_struct)
`,
		Options: []Option{
			{Name: "x", Help: "integers in hexadecimal"},
			{Name: "d", Help: "integers in decimal"},
		},
		MinArgs: 1,
		MaxArgs: -1,
		Run:     runP,
	}
}

type pJSON struct {
	Expression string `json:"expression"`
	Type       string `json:"type"`
	Address    uint64 `json:"address"`
	Value      string `json:"value"`
	History    int    `json:"history"` // the $N gdb numbers it with
}

func runP(ctx *Context) error {
	k, err := ctx.Session.Kernel()
	if err != nil {
		return err
	}
	expr := strings.Join(ctx.Args, " ")
	hex := ctx.Opts.Last("x", "d") == "x"
	// "p/x EXPR" reaches here as "p -x EXPR" (see Session.Exec).
	expr = strings.TrimSpace(expr)
	label := ""
	if name, cpu, ok := strings.Cut(expr, ":"); ok && isDecimal(cpu) && cpu != "" {
		// "p irq_stat:1": CPU 1's copy of a per-CPU variable.
		n, _ := strconv.Atoi(cpu)
		v, err := k.PerCPU(name, n)
		if err != nil {
			return err
		}
		return printValue(ctx, k, v, fmt.Sprintf("per_cpu(%s, %d)", name, n), expr, hex)
	}
	if perCPUSymbol(k, expr) {
		return printPerCPU(ctx, k, expr)
	}
	v, plain, err := evalPExpr(k, expr)
	if err != nil {
		return err
	}
	if plain {
		label = expr
	}
	if v.mem {
		return printValue(ctx, k, v.lv, label, expr, hex)
	}
	return printComputed(ctx, k, v.typ, v.data, label, expr, hex)
}

// printComputed is printValue for a value not in memory (an address
// taken, a cast, a number): its bytes are data.
func printComputed(ctx *Context, k *kernel.Kernel, t *debuginfo.Type, data []byte, label, expr string, hex bool) error {
	if t.Resolve() == nil {
		return fmt.Errorf("cannot print %q: it has no value (void)", expr)
	}
	p := &valuePrinter{k: k, hex: hex}
	return printText(ctx, t, 0, typedText(p, t, data, 0), label, expr)
}

// typedText is gdb's rendering of a value, with a pointer's type before
// it at the top level.
func typedText(p *valuePrinter, t *debuginfo.Type, data []byte, addr uint64) string {
	text := p.value(t, data, addr, 0, 0, 0)
	if r := t.Resolve(); r != nil && r.Kind == debuginfo.KindPointer && !isCharPointer(r) {
		// gdb names a pointer's type before a top-level value.
		text = "(" + debuginfo.TypeName(t) + ") " + text
	}
	return text
}

// printValue prints "LABEL = $N = VALUE" (or "$N = VALUE" without a
// label) as crash's p does.
func printValue(ctx *Context, k *kernel.Kernel, v kernel.Value, label, expr string, hex bool) error {
	p := &valuePrinter{k: k, hex: hex}
	var text string
	r := v.Type().Resolve()
	if r != nil && r.Kind == debuginfo.KindFunc {
		// crash breaks gdb's line after "NAME = $N = " for functions.
		text = fmt.Sprintf("\n {%s} %#x <%s>", debuginfo.TypeName(r), v.Address(), expr)
	} else {
		size := max(typeSize(v.Type()), 1)
		data, err := readObject(k, v.Address(), size)
		if err != nil {
			return err
		}
		text = typedText(p, v.Type(), data, v.Address())
	}
	return printText(ctx, v.Type(), v.Address(), text, label, expr)
}

// printText prints "LABEL = $N = TEXT" or "$N = TEXT", numbering the
// value in the session's history.
func printText(ctx *Context, t *debuginfo.Type, addr uint64, text, label, expr string) error {
	ctx.Session.history++
	n := ctx.Session.history
	if ctx.JSON {
		return writeJSON(ctx, pJSON{Expression: expr, Type: debuginfo.TypeName(t), Address: addr, Value: text, History: n})
	}
	if label != "" {
		if strings.HasPrefix(text, "{") && !strings.HasPrefix(text, "{\n") {
			// crash moves a one-line aggregate (an array) to the next
			// line after "NAME = $N = ".
			text = "\n " + text
		}
		fmt.Fprintf(ctx.Out, "%s = $%d = %s\n", label, n, text)
	} else {
		fmt.Fprintf(ctx.Out, "$%d = %s\n", n, text)
	}
	return nil
}

func isCharPointer(r *debuginfo.Type) bool {
	e := r.Elem.Resolve()
	return e != nil && e.Kind == debuginfo.KindInt && e.Size == 1 && isCharName(e)
}

// perCPUSymbol reports a per-CPU variable: its symbol's value is an
// offset into the per-CPU area (below __per_cpu_end), not an address.
func perCPUSymbol(k *kernel.Kernel, name string) bool {
	if k.Symbols == nil {
		return false
	}
	s, ok := k.Symbols.Lookup(name)
	end, ok2 := k.Symbols.Lookup("__per_cpu_end")
	return ok && ok2 && s.Addr < end.Addr && s.Module == ""
}

// printPerCPU is crash's p of a per-CPU variable: its type, and its
// address on each CPU.
func printPerCPU(ctx *Context, k *kernel.Kernel, name string) error {
	ts, err := ctx.types()
	if err != nil {
		return err
	}
	t, err := ts.Var(name)
	if err != nil {
		return err
	}
	n, err := k.NrCPUIDs()
	if err != nil {
		return err
	}
	type cpuAddr struct {
		CPU     int    `json:"cpu"`
		Address uint64 `json:"address"`
	}
	var addrs []cpuAddr
	for cpu := 0; cpu < n; cpu++ {
		a, err := k.PerCPUAddr(name, cpu)
		if err != nil {
			return err
		}
		addrs = append(addrs, cpuAddr{cpu, a})
	}
	decl := debuginfo.Declare(t, name)
	if ctx.JSON {
		return writeJSON(ctx, struct {
			Expression string    `json:"expression"`
			Type       string    `json:"type"`
			PerCPU     []cpuAddr `json:"per_cpu"`
		}{name, debuginfo.TypeName(t), addrs})
	}
	fmt.Fprintf(ctx.Out, "PER-CPU DATA TYPE:\n  %s;\nPER-CPU ADDRESSES:\n", decl)
	for _, a := range addrs {
		fmt.Fprintf(ctx.Out, "  [%d]: %x\n", a.CPU, a.Address)
	}
	return nil
}
