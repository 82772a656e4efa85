package analyze

import (
	"errors"
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
		Summary: "print the value of a kernel variable or one of its members",
		Usage:   "[-x|-d] EXPRESSION",
		Help: `Prints a global variable, or a member or element of one, as crash's p
does (through gdb): "jiffies = $1 = 4294898051" for a variable,
"$2 = "swapper/0…"" for an expression. EXPRESSION is a variable name
followed by members and indexes: init_task.comm, init_task.tasks.next,
init_task.mm->pgd, cpu_online_mask->bits[0]. p/x (or -x) prints
integers in hexadecimal, p/d (or -d) in decimal.

--json prints the expression, its type, address and value as text.

Examples:
  p jiffies
  p init_task.comm
  p/x init_task.flags
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
	v, plain, err := evalExpr(k, expr)
	if err != nil {
		return err
	}
	if plain {
		label = expr
	}
	return printValue(ctx, k, v, label, expr, hex)
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
		text = p.value(v.Type(), data, v.Address(), 0, 0, 0)
		if r != nil && r.Kind == debuginfo.KindPointer && !isCharPointer(r) {
			// gdb names a pointer's type before a top-level value.
			text = "(" + debuginfo.TypeName(v.Type()) + ") " + text
		}
	}
	ctx.Session.history++
	n := ctx.Session.history
	if ctx.JSON {
		return writeJSON(ctx, pJSON{Expression: expr, Type: debuginfo.TypeName(v.Type()), Address: v.Address(), Value: text, History: n})
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

// evalExpr evaluates a variable name followed by ".member", "->member"
// and "[index]" steps. plain reports an expression that is a bare
// symbol, which crash prints with its name.
func evalExpr(k *kernel.Kernel, expr string) (v kernel.Value, plain bool, err error) {
	end := strings.IndexAny(expr, ".-[ ")
	if end < 0 {
		end = len(expr)
	}
	name, rest := expr[:end], expr[end:]
	if name == "" {
		return v, false, fmt.Errorf("cannot evaluate %q: expected a variable name", expr)
	}
	v, err = k.Global(name)
	if err == nil {
		v = k.Object(v.Address(), arrayFromSymbol(k, v.Type(), name))
	}
	if err != nil {
		if k.Types != nil {
			if f, ferr := k.Types.Func(name); ferr == nil {
				if a, aerr := k.SymbolAddr(name); aerr == nil && rest == "" {
					return k.Object(a, f), true, nil
				}
			}
		}
		return v, false, err
	}
	plain = rest == ""
	for rest != "" {
		switch {
		case strings.HasPrefix(rest, "->"), strings.HasPrefix(rest, "."):
			if rest[0] == '-' {
				rest = rest[2:]
			} else {
				rest = rest[1:]
			}
			e := strings.IndexAny(rest, ".-[")
			if e < 0 {
				e = len(rest)
			}
			m := strings.TrimSpace(rest[:e])
			rest = rest[e:]
			if v, err = v.Member(m); err != nil {
				return v, false, err
			}
		case strings.HasPrefix(rest, "["):
			e := strings.IndexByte(rest, ']')
			if e < 0 {
				return v, false, errors.New("missing ] in " + expr)
			}
			i, perr := strconv.ParseInt(strings.TrimSpace(rest[1:e]), 0, 64)
			if perr != nil {
				return v, false, fmt.Errorf("bad index %q in %s", rest[1:e], expr)
			}
			rest = rest[e+1:]
			if r := v.Type().Resolve(); r != nil && r.Kind == debuginfo.KindArray && r.Len <= 0 {
				// A flexible array member (BTF gives it length 0): C
				// does not check its bounds, nor does gdb.
				v = k.Object(v.Address()+uint64(i*typeSize(r.Elem)), r.Elem)
				continue
			}
			if v, err = v.Index(int(i)); err != nil {
				return v, false, err
			}
		default:
			return v, false, fmt.Errorf("cannot evaluate %q: only NAME, .member, ->member and [index] are understood", expr)
		}
	}
	return v, plain, nil
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
