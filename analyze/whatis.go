package analyze

import (
	"fmt"
	"strings"

	"salvage/debuginfo"
	"salvage/kernel"
)

func whatisCommand() *Command {
	return &Command{
		Name:    "whatis",
		Summary: "show a type's definition or a symbol's declaration",
		Usage:   "[-o] [struct | union | enum] NAME | SYMBOL",
		Help: `For a struct, union or typedef NAME, prints its definition and size as
crash's whatis does ("struct task_struct {" … "SIZE: 9728"); -o adds
member offsets. For a SYMBOL (a variable or function), prints its C
declaration ("const char linux_banner[204];").

--json prints the kind, the C declaration or the layout, and the size.

Examples:
  whatis task_struct
  whatis -o struct list_head
  whatis linux_banner
  whatis pid_t
`,
		Options: []Option{{Name: "o", Help: "show member offsets"}},
		MinArgs: 1,
		MaxArgs: 2,
		Run:     runWhatis,
	}
}

type whatisJSON struct {
	Name string `json:"name"`
	// Kind is "variable", "function", "struct", "union", "enum" or
	// "typedef".
	Kind        string             `json:"kind"`
	Declaration string             `json:"declaration"`
	Size        *int64             `json:"size,omitempty"`
	Members     []structMemberJSON `json:"members,omitempty"`
}

func runWhatis(ctx *Context) error {
	ts, err := ctx.types()
	if err != nil {
		return err
	}
	keyword := ""
	name := ctx.Args[0]
	if len(ctx.Args) == 2 {
		keyword, name = ctx.Args[0], ctx.Args[1]
		switch keyword {
		case "struct", "union", "enum":
		default:
			return usagef("%s %s: expected struct, union or enum before the name", keyword, name)
		}
	}
	if keyword == "" {
		if syms, err := ctx.symbols(); err == nil {
			if _, ok := syms.Lookup(name); ok {
				return whatisSymbol(ctx, ts, name)
			}
		}
	}
	var t *debuginfo.Type
	kind := ""
	try := func(k string, f func(string) (*debuginfo.Type, error)) bool {
		if t != nil || (keyword != "" && keyword != k) {
			return false
		}
		if x, err := f(name); err == nil {
			t, kind = x, k
			return true
		}
		return false
	}
	_ = try("struct", ts.Struct) || try("union", ts.Union) || try("typedef", ts.Typedef) || try("enum", ts.Enum)
	if t == nil {
		return fmt.Errorf("cannot resolve: %s", strings.Join(ctx.Args, " "))
	}
	size := typeSize(t)
	j := whatisJSON{Name: name, Kind: kind, Size: &size}
	var text string
	switch kind {
	case "struct", "union":
		text = writeLayout(t, ctx.Opts.Has("o"), isBTF(ts))
		j.Declaration = strings.TrimSuffix(text, "\n")
		j.Members = structToJSON(nil, t, nil, false, 0, false).Members
	case "typedef":
		// crash declares the typedef by what it finally names:
		// "typedef int pid_t;", not "typedef __kernel_pid_t pid_t;".
		text = "typedef " + debuginfo.Declare(stripTypedefs(t.Elem), t.Name) + ";\n"
		if r := t.Resolve(); r != nil && (r.Kind == debuginfo.KindStruct || r.Kind == debuginfo.KindUnion) && r.Name == "" {
			text = "typedef " + strings.TrimSuffix(writeLayout(r, ctx.Opts.Has("o"), isBTF(ts)), "\n") + " " + t.Name + ";\n"
		}
		j.Declaration = strings.TrimSuffix(text, "\n")
	case "enum":
		var b strings.Builder
		fmt.Fprintf(&b, "enum %s {\n", t.Name)
		for _, e := range t.Enums {
			fmt.Fprintf(&b, "  %s = %d\n", e.Name, e.Value)
		}
		b.WriteString("};\n")
		text = b.String()
		j.Declaration = strings.TrimSuffix(text, "\n")
	}
	if ctx.JSON {
		return writeJSON(ctx, j)
	}
	if kind == "enum" {
		// crash lists an enum's constants with their values, and no size.
		fmt.Fprint(ctx.Out, text)
		return nil
	}
	fmt.Fprintf(ctx.Out, "%sSIZE: %d\n", text, size)
	return nil
}

// whatisSymbol prints a variable's or function's declaration, as crash's
// whatis_variable does through gdb.
func whatisSymbol(ctx *Context, ts debuginfo.Types, name string) error {
	j := whatisJSON{Name: name}
	if t, err := ts.Var(name); err == nil {
		t = completeArray(ctx, t, name)
		j.Kind, j.Declaration = "variable", debuginfo.Declare(t, name)+";"
		size := typeSize(t)
		j.Size = &size
	} else if f, ferr := ts.Func(name); ferr == nil {
		j.Kind, j.Declaration = "function", debuginfo.Declare(f, name)+";"
	} else {
		return fmt.Errorf("%s: no type information for this symbol (%v)", name, err)
	}
	if ctx.JSON {
		return writeJSON(ctx, j)
	}
	fmt.Fprintln(ctx.Out, j.Declaration)
	return nil
}

// stripTypedefs follows typedefs to the type they finally name, keeping
// the qualifiers met on the way.
func stripTypedefs(t *debuginfo.Type) *debuginfo.Type {
	var q debuginfo.Qual
	for t != nil && t.Kind == debuginfo.KindTypedef {
		q |= t.Qual
		t = t.Elem
	}
	if t != nil && q != 0 && t.Qual&q != q {
		c := *t
		c.Qual |= q
		t = &c
	}
	return t
}

// completeArray gives an array declared without a length (extern const
// char linux_banner[]) the length its symbol's size implies, as the
// defining declaration that gdb finds says.
func completeArray(ctx *Context, t *debuginfo.Type, name string) *debuginfo.Type {
	k, err := ctx.Session.Kernel()
	if err != nil {
		return t
	}
	return arrayFromSymbol(k, t, name)
}

// arrayFromSymbol is completeArray for kernel k. A vmlinux symbol has
// its size; a kallsyms one only the distance to the next symbol, so
// there a char array is taken to be its string and the NUL.
func arrayFromSymbol(k *kernel.Kernel, t *debuginfo.Type, name string) *debuginfo.Type {
	if t == nil || t.Kind != debuginfo.KindArray || t.Len >= 0 || k.Symbols == nil {
		return t
	}
	es := typeSize(t.Elem)
	s, ok := k.Symbols.Lookup(name)
	if !ok || s.Size == 0 || es <= 0 {
		return t
	}
	n := int64(s.Size) / es
	if strings.Contains(k.Symbols.Source(), "kallsyms") {
		if es != 1 {
			return t
		}
		str, err := k.ReadCString(s.Addr, int(min(s.Size, 1<<20)))
		if err != nil {
			return t
		}
		n = int64(len(str)) + 1
	}
	c := *t
	c.Len, c.Size = n, n*es
	return &c
}
