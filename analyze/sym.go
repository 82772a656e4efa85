package analyze

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"salvage/debuginfo"
	"salvage/kernel"
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
kallsyms tables in the dump; the loaded modules' symbols from the dump.
Unlike crash, salvage shows no source file and line for text symbols
(it reads no DWARF line tables yet).

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
	File    string `json:"file,omitempty"` // source of a text address (DWARF)
	Line    int    `json:"line,omitempty"`
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
	// Symbols named on the command line show their source line (crash's
	// SHOW_LINENUM); listed ones do not.
	lineNumbers := false
	k, _ := ctx.Session.Kernel()
	emit := func(s debuginfo.Symbol, off uint64) {
		j := symJSON{Name: s.Name, Address: s.Addr + off, Type: string(s.Type), Offset: off, Module: s.Module}
		var src *sourceLine
		if lineNumbers && k != nil && s.Module == "" && isTextSymbol(s.Type) {
			if f, l, ok := k.SourceLine(s.Addr + off); ok {
				src = &sourceLine{f, l}
				j.File, j.Line = f, l
			}
		}
		res.Symbols = append(res.Symbols, j)
		if !ctx.JSON {
			writeSymbol(ctx.Out, s, off, lineNumbers, src)
		}
	}
	for _, opt := range o {
		switch opt.Name {
		case "l":
			keep := crashKeeps(syms)
			syms.All(func(s debuginfo.Symbol) bool {
				if s.Module == "" && keep(s) {
					emit(s, 0)
				}
				return true
			})
			listModules(ctx, "", emitModule(ctx, &res))
		case "m":
			if n := listModules(ctx, opt.Value, emitModule(ctx, &res)); n == 0 {
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
	lineNumbers = true
	for _, a := range ctx.Args {
		if s, ok := lookupCrashName(syms, a); ok {
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
					writeSymbol(ctx.Out, s, 0, false, nil)
				}
				if len(alt) == 0 {
					fmt.Fprintln(ctx.Out, "  (none found)")
				}
			}
			continue
		}
		s, off, ok := crashByAddr(syms, addr)
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

// emitModule returns the sink listModules feeds: module symbols as
// crash's symbol_dump prints them (no "[module]" suffix), and the
// MODULE START and END lines; --json gets the symbols.
func emitModule(ctx *Context, res *symResult) func(line string, s *debuginfo.Symbol) {
	return func(line string, s *debuginfo.Symbol) {
		if s != nil {
			res.Symbols = append(res.Symbols, symJSON{Name: s.Name, Address: s.Addr, Type: string(s.Type), Module: s.Module})
		}
		if !ctx.JSON {
			io.WriteString(ctx.Out, line)
		}
	}
}

// listModules lists the symbols of the loaded modules (or of the one
// named) as crash's module_symbol_dump does: each module framed by
// "ADDRESS MODULE START: NAME" and "ADDRESS MODULE END: NAME" (its base,
// and base plus size), its symbols in address order typed as crash types
// module symbols ('t' or 'T' for functions, '?' for the rest). It
// returns how many modules it listed.
func listModules(ctx *Context, only string, out func(line string, s *debuginfo.Symbol)) int {
	k, err := ctx.Session.Kernel()
	if err != nil {
		return 0
	}
	mods, _ := k.Modules()
	mods = append([]kernel.Module(nil), mods...)
	sort.SliceStable(mods, func(i, j int) bool { return mods[i].Base < mods[j].Base })
	n := 0
	for _, m := range mods {
		if only != "" && m.Name != only {
			continue
		}
		n++
		out(fmt.Sprintf("%x MODULE START: %s\n", m.Base, m.Name), nil)
		syms := append([]debuginfo.Symbol(nil), m.Symbols...)
		sort.SliceStable(syms, func(i, j int) bool { return syms[i].Addr < syms[j].Addr })
		for _, s := range syms {
			s.Module = m.Name
			s.Type = crashModuleType(s)
			line := fmt.Sprintf("%x (%c) %s\n", s.Addr, s.Type, crashSymbolName(s.Name))
			out(line, &s)
		}
		out(fmt.Sprintf("%x MODULE END: %s\n", m.Base+m.Size, m.Name), nil)
	}
	return n
}

// sourceLine is where a code address comes from.
type sourceLine struct {
	file string
	line int
}

func isTextSymbol(t byte) bool {
	switch t {
	case 'T', 't', 'W', 'w':
		return true
	}
	return false
}

// writeSymbol prints one symbol as crash's show_symbol does, with the
// source line crash adds for a text address when src is known.
func writeSymbol(w io.Writer, s debuginfo.Symbol, off uint64, lineNumbers bool, src *sourceLine) {
	name := crashSymbolName(s.Name)
	s.Type = crashModuleType(s)
	if off != 0 {
		// crash's output radix is 10 unless changed: "+5", not "+0x5".
		fmt.Fprintf(w, "%x (%c) %s+%d", s.Addr+off, s.Type, name, off)
	} else {
		fmt.Fprintf(w, "%x (%c) %s", s.Addr, s.Type, name)
	}
	if s.Module != "" {
		fmt.Fprintf(w, " [%s]", s.Module)
	}
	switch {
	case src != nil:
		fmt.Fprintf(w, " %s: %d", src.file, src.line)
	case lineNumbers && s.Module != "" && (s.Type == 't' || s.Type == 'T'):
		// crash adds " FILE: LINE" for text; a module's text has no
		// line table loaded, which leaves the blank.
		io.WriteString(w, " ")
	}
	fmt.Fprintln(w)
}

// crashKeeps is the filter of crash's x86_64_verify_symbol, which decides
// what crash's symbol table (and so sym -l) holds: everything from the
// kernel text on, and below it only the per-CPU variables
// (__per_cpu_start, per_cpu*, __per_cpu_end and data symbols), so the
// absolute symbols of the link (text_size, phys_startup_64, …) are not
// listed.
func crashKeeps(syms debuginfo.Symbols) func(debuginfo.Symbol) bool {
	text, ok := syms.Lookup("_text")
	if !ok {
		return func(debuginfo.Symbol) bool { return true }
	}
	end, ok := syms.Lookup("__per_cpu_end")
	if !ok {
		end.Addr = 0
	}
	return func(s debuginfo.Symbol) bool {
		if s.Addr >= text.Addr || s.Module != "" {
			return true
		}
		if s.Addr > end.Addr {
			return false
		}
		switch {
		case s.Name == "__per_cpu_start", s.Name == "__per_cpu_end", strings.HasPrefix(s.Name, "per_cpu"):
			return true
		}
		switch s.Type {
		case 'd', 'D', 'V':
			return true
		}
		return false
	}
}

// crashSymbolName is a symbol's name as crash shows it: without the
// endings gcc and clang give cloned functions (".isra.0", ".part.1",
// ".llvm.123"; crash's strip_symbol_end).
func crashSymbolName(name string) string {
	for _, end := range []string{".isra.", ".part.", ".llvm."} {
		if i := strings.Index(name, end); i >= 0 {
			return name[:i]
		}
	}
	return name
}

// lookupCrashName finds a symbol by name, or by the name crash shows for
// a cloned function (intel_pmu_hw_config for intel_pmu_hw_config.part.0).
func lookupCrashName(syms debuginfo.Symbols, name string) (debuginfo.Symbol, bool) {
	if s, ok := syms.Lookup(name); ok {
		return s, true
	}
	for _, s := range syms.Match(name + ".") {
		if crashSymbolName(s.Name) == name {
			return s, true
		}
	}
	return debuginfo.Symbol{}, false
}

// crashModuleType is the type letter crash gives a module's symbol: it
// reads the ELF st_info of the module's symbol table, so functions are
// 't' or 'T' and everything else '?'. Other symbols keep theirs.
func crashModuleType(s debuginfo.Symbol) byte {
	switch {
	case s.Module == "":
		return s.Type
	case s.Name == "init_module" || s.Name == "cleanup_module":
		// module_init and module_exit make these global aliases.
		return 'T'
	case s.Type == 't' || s.Type == 'T':
		return s.Type
	}
	return '?'
}
