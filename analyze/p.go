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
	v, plain, err := evalExpr(k, expr)
	if err != nil {
		return err
	}
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
	if plain {
		fmt.Fprintf(ctx.Out, "%s = $%d = %s\n", expr, n, text)
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
