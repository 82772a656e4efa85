package analyze

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"salvage/debuginfo"
)

func symCommand() *Command {
	return &Command{
		Name:    "sym",
		Summary: "translate symbols to addresses and addresses to symbols",
		Usage:   "[-l] | [-m MODULE] | [-q STRING] | [ADDRESS | SYMBOL] ...",
		Help: `Prints each SYMBOL's address, or the symbol containing each ADDRESS
(hexadecimal), as crash's sym does: "ADDRESS (TYPE) NAME", with "+OFFSET"
for an address inside a symbol and "[MODULE]" for a module's symbol. TYPE
is the nm-style letter. -l lists every symbol in address order, -m those of
one module, -q those whose names contain STRING.

Symbols come from the vmlinux when one was given, otherwise from the
kallsyms tables in the dump.

--json prints the symbols found as objects (name, address, type, offset,
module).

Examples:
  sym linux_banner
  sym ffffffff89f1ffe0
  sym -q task_struct
  sym -l
`,
		Options: []Option{
			{Name: "l", Help: "list every symbol, in address order"},
			{Name: "m", Arg: "MODULE", Help: "list the symbols of MODULE"},
			{Name: "q", Arg: "STRING", Help: "list the symbols whose names contain STRING"},
		},
		MaxArgs: -1,
		Run:     runSym,
	}
}

// symJSON is one symbol of sym --json.
type symJSON struct {
	Name    string `json:"name"`
	Address uint64 `json:"address"` // the address asked for: symbol's plus offset
	Type    string `json:"type"`
	Offset  uint64 `json:"offset,omitempty"`
	Module  string `json:"module,omitempty"`
}

// symResult is sym --json's document.
type symResult struct {
	Symbols []symJSON `json:"symbols"`
	// NotFound lists the operands that named no symbol.
	NotFound []string `json:"not_found,omitempty"`
}

func runSym(ctx *Context) error {
	o := ctx.Opts
	listing := o.Has("l") || o.Has("m") || o.Has("q")
	if !listing && len(ctx.Args) == 0 {
		return usagef("give an address or symbol, or -l, -m or -q")
	}
	syms, err := ctx.symbols()
	if err != nil {
		return err
	}
	res := symResult{Symbols: []symJSON{}}
	emit := func(s debuginfo.Symbol, off uint64) {
		res.Symbols = append(res.Symbols, symJSON{Name: s.Name, Address: s.Addr + off, Type: string(s.Type), Offset: off, Module: s.Module})
		if !ctx.JSON {
			writeSymbol(ctx.Out, s, off)
		}
	}
	for _, opt := range o {
		switch opt.Name {
		case "l":
			syms.All(func(s debuginfo.Symbol) bool { emit(s, 0); return true })
		case "m":
			n := 0
			syms.All(func(s debuginfo.Symbol) bool {
				if s.Module == opt.Value {
					emit(s, 0)
					n++
				}
				return true
			})
			if n == 0 && !ctx.JSON {
				return fmt.Errorf("%s: no such module, or its symbols are not loaded", opt.Value)
			}
		case "q":
			found := syms.Match(opt.Value)
			for _, s := range found {
				emit(s, 0)
			}
			if len(found) == 0 && !ctx.JSON {
				fmt.Fprintln(ctx.Out, "(none found)")
			}
		}
	}
	var failed []string
	for _, a := range ctx.Args {
		if s, ok := syms.Lookup(a); ok {
			emit(s, 0)
			continue
		}
		addr, err := parseHex("address", a)
		if err != nil {
			// crash: not a symbol and not a number.
			res.NotFound = append(res.NotFound, a)
			failed = append(failed, a)
			if !ctx.JSON {
				fmt.Fprintf(ctx.Out, "symbol not found: %s\npossible alternatives:\n", a)
				alt := syms.Match(a)
				for _, s := range alt {
					io.WriteString(ctx.Out, "  ")
					writeSymbol(ctx.Out, s, 0)
				}
				if len(alt) == 0 {
					fmt.Fprintln(ctx.Out, "  (none found)")
				}
			}
			continue
		}
		s, off, ok := syms.ByAddr(addr)
		if !ok {
			res.NotFound = append(res.NotFound, a)
			failed = append(failed, a)
			if !ctx.JSON {
				fmt.Fprintf(ctx.Out, "symbol not found: %s\n", a)
			}
			continue
		}
		emit(s, off)
	}
	if ctx.JSON {
		return writeJSON(ctx, res)
	}
	if len(failed) > 0 && len(failed) == len(ctx.Args) && !listing {
		return errors.New("no symbol found for " + strings.Join(failed, ", "))
	}
	return nil
}

// writeSymbol prints one symbol as crash's show_symbol does (without the
// source line crash adds for text addresses: salvage reads no line
// tables).
func writeSymbol(w io.Writer, s debuginfo.Symbol, off uint64) {
	if off != 0 {
		// crash's output radix is 10 unless changed: "+5", not "+0x5".
		fmt.Fprintf(w, "%x (%c) %s+%d", s.Addr+off, s.Type, s.Name, off)
	} else {
		fmt.Fprintf(w, "%x (%c) %s", s.Addr, s.Type, s.Name)
	}
	if s.Module != "" {
		fmt.Fprintf(w, " [%s]", s.Module)
	}
	fmt.Fprintln(w)
}
