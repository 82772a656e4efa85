package analyze

import (
	"errors"
	"fmt"
	"strings"

	"salvage/debuginfo"
	"salvage/kernel"
)

func structCommand(kind debuginfo.Kind) *Command {
	name := kind.String()
	return &Command{
		Name:    name,
		Summary: "show a " + name + "'s layout, or its contents at an address",
		Usage:   "NAME[.MEMBER[,MEMBER...]] [-o] [-x|-d] [ADDRESS | SYMBOL [COUNT]]",
		Help: fmt.Sprintf(`Without an address, prints the layout of %[1]s NAME as crash's %[1]s does:
its members declared in C, then "SIZE: N"; -o adds each member's offset.
With an ADDRESS (hexadecimal) or a SYMBOL, prints the %[1]s's contents
there as crash (through gdb) prints them: members by name, nested
structures indented, pointers in hexadecimal, char arrays as strings,
enums by name. NAME.MEMBER selects members (several, separated by commas).
COUNT prints that many consecutive objects from ADDRESS.
-x prints integers in hexadecimal, -d in decimal (the default).

--json prints the layout (members with offsets, sizes and types) and,
with an address, the members' values as text.

Examples:
  %[1]s list_head -o
  %[1]s task_struct ffff8884bf59b000
  %[1]s task_struct.comm,pid ffff8884bf59b000
`, name),
		Options: []Option{
			{Name: "o", Help: "show member offsets"},
			{Name: "x", Help: "integers in hexadecimal"},
			{Name: "d", Help: "integers in decimal"},
		},
		MinArgs: 1,
		MaxArgs: 3,
		Run:     func(ctx *Context) error { return runStruct(ctx, kind) },
	}
}

// findAggregate finds struct or union NAME (or a typedef of one), as
// crash's struct and union commands accept it.
func findAggregate(ts debuginfo.Types, kind debuginfo.Kind, name string) (*debuginfo.Type, error) {
	var t *debuginfo.Type
	var err error
	if kind == debuginfo.KindUnion {
		t, err = ts.Union(name)
	} else {
		t, err = ts.Struct(name)
	}
	if err == nil {
		return t, nil
	}
	if td, terr := ts.Typedef(name); terr == nil {
		if r := td.Resolve(); r != nil && r.Kind == kind {
			return r, nil
		}
	}
	other := debuginfo.KindStruct
	if kind == debuginfo.KindStruct {
		other = debuginfo.KindUnion
	}
	if _, oerr := findOnly(ts, other, name); oerr == nil {
		return nil, fmt.Errorf("data type mismatch: %s is not a %s", name, kind)
	}
	return nil, fmt.Errorf("invalid data structure reference: %s", name)
}

func findOnly(ts debuginfo.Types, kind debuginfo.Kind, name string) (*debuginfo.Type, error) {
	if kind == debuginfo.KindUnion {
		return ts.Union(name)
	}
	return ts.Struct(name)
}

// structMemberJSON is one member of struct --json's layout.
type structMemberJSON struct {
	Name     string             `json:"name,omitempty"`
	Type     string             `json:"type"`
	Offset   int64              `json:"offset"`
	Size     int64              `json:"size"`
	BitSize  int                `json:"bit_size,omitempty"`
	Members  []structMemberJSON `json:"members,omitempty"` // of an anonymous struct or union
	Value    string             `json:"value,omitempty"`
	ValueErr string             `json:"value_error,omitempty"`
}

type structJSON struct {
	Type    string             `json:"type"`
	Size    int64              `json:"size"`
	Address *uint64            `json:"address,omitempty"`
	Members []structMemberJSON `json:"members"`
}

func runStruct(ctx *Context, kind debuginfo.Kind) error {
	ts, err := ctx.types()
	if err != nil {
		return err
	}
	name, sel, _ := strings.Cut(ctx.Args[0], ".")
	t, err := findAggregate(ts, kind, name)
	if err != nil {
		return err
	}
	var members []string
	if sel != "" {
		members = strings.Split(sel, ",")
		for _, m := range members {
			if _, err := debuginfo.LookupMember(t, m); err != nil {
				return fmt.Errorf("invalid data structure reference: %s.%s", name, m)
			}
		}
	}
	var addr uint64
	haveAddr := len(ctx.Args) > 1
	var k *kernel.Kernel
	if haveAddr {
		k, _ = ctx.Session.Kernel()
		if addr, err = resolveAddress(ctx, ctx.Args[1]); err != nil {
			return err
		}
	}
	hex := ctx.Opts.Last("x", "d") == "x"
	if ctx.JSON {
		return writeJSON(ctx, structToJSON(k, t, members, haveAddr, addr, hex))
	}
	if !haveAddr {
		if members == nil {
			fmt.Fprint(ctx.Out, writeLayout(t, ctx.Opts.Has("o"), isBTF(ts)))
			fmt.Fprintf(ctx.Out, "SIZE: %d\n", typeSize(t))
			return nil
		}
		fmt.Fprint(ctx.Out, writeMemberLayout(t, members))
		return nil
	}
	if ctx.Opts.Has("o") && members == nil {
		fmt.Fprint(ctx.Out, writeLayoutAt(t, true, isBTF(ts), &addr))
		fmt.Fprintf(ctx.Out, "SIZE: %d\n", typeSize(t))
		return nil
	}
	count := uint64(1)
	if len(ctx.Args) > 2 {
		if count, err = parseNumber("count", ctx.Args[2]); err != nil || count == 0 {
			return fmt.Errorf("invalid count %q", ctx.Args[2])
		}
	}
	p := &valuePrinter{k: k, hex: hex}
	size := uint64(typeSize(t))
	for i := uint64(0); i < count; i++ {
		if i > 0 {
			// crash separates consecutive objects with a blank line.
			fmt.Fprintln(ctx.Out)
		}
		if err := writeObject(ctx, p, t, members, addr+i*size); err != nil {
			return err
		}
	}
	return nil
}

// writeObject prints the object of type t at addr, or its selected
// members, as crash's struct does.
func writeObject(ctx *Context, p *valuePrinter, t *debuginfo.Type, members []string, addr uint64) error {
	k := p.k
	if members == nil {
		data, err := readObject(k, addr, typeSize(t))
		if err != nil {
			return err
		}
		fmt.Fprintf(ctx.Out, "%s %s\n", debuginfo.TypeName(t), p.value(t, data, addr, 0, 0, 0))
		return nil
	}
	for _, m := range members {
		mp, _ := debuginfo.LookupMember(t, m)
		data, err := readObject(k, addr+uint64(mp.Offset), max(typeSize(mp.Type), int64((mp.BitOffset+mp.BitSize+7)/8)))
		if err != nil {
			return err
		}
		fmt.Fprintf(ctx.Out, "  %s = %s,\n", m, p.value(mp.Type, data, addr+uint64(mp.Offset), 1, mp.BitOffset, mp.BitSize))
	}
	return nil
}

// writeMemberLayout is struct NAME.MEMBER without an address: the
// enclosing type with only the selected members.
func writeMemberLayout(t *debuginfo.Type, members []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s {\n", debuginfo.TypeName(t.Resolve()))
	for _, m := range members {
		mp, _ := debuginfo.LookupMember(t, m)
		leaf := m
		if i := strings.LastIndexAny(m, "."); i >= 0 {
			leaf = m[i+1:]
		}
		decl := debuginfo.Declare(mp.Type, leaf)
		off := mp.Offset
		if mp.BitSize > 0 {
			decl += fmt.Sprintf(" : %d", mp.BitSize)
			off += int64(mp.BitOffset / 8)
		}
		// crash shows a selected member with its offset, -o or not.
		fmt.Fprintf(&b, "  [%d] %s;\n", off, decl)
	}
	b.WriteString("}\n")
	return b.String()
}

// resolveAddress reads an address operand: a symbol, or hexadecimal.
func resolveAddress(ctx *Context, arg string) (uint64, error) {
	syms, serr := ctx.symbols()
	if serr == nil {
		if s, ok := syms.Lookup(arg); ok {
			return s.Addr, nil
		}
	}
	a, err := parseHex("address", arg)
	if err != nil {
		if serr != nil {
			return 0, fmt.Errorf("%s: not a hexadecimal address, and symbols cannot be looked up: %w", arg, serr)
		}
		return 0, fmt.Errorf("symbol not found: %s", arg)
	}
	return a, nil
}

// readObject reads size bytes of kernel virtual memory at addr.
func readObject(k *kernel.Kernel, addr uint64, size int64) ([]byte, error) {
	if k == nil {
		return nil, errors.New("no kernel memory model")
	}
	if size <= 0 || size > 16<<20 {
		return nil, fmt.Errorf("cannot read an object of %d bytes", size)
	}
	b := make([]byte, size)
	if err := k.Read(b, addr); err != nil {
		return nil, err
	}
	return b, nil
}

func structToJSON(k *kernel.Kernel, t *debuginfo.Type, sel []string, haveAddr bool, addr uint64, hex bool) structJSON {
	r := t.Resolve()
	j := structJSON{Type: debuginfo.TypeName(r), Size: typeSize(r), Members: []structMemberJSON{}}
	var data []byte
	var derr error
	if haveAddr {
		j.Address = &addr
		data, derr = readObject(k, addr, typeSize(r))
	}
	p := &valuePrinter{k: k, hex: hex}
	val := func(m *structMemberJSON, mt *debuginfo.Type, off int64, bo, bs int) {
		if !haveAddr {
			return
		}
		if derr != nil {
			m.ValueErr = derr.Error()
			return
		}
		if off < int64(len(data)) {
			m.Value = p.value(mt, data[off:], addr+uint64(off), 0, bo, bs)
		}
	}
	if sel != nil {
		for _, s := range sel {
			mp, _ := debuginfo.LookupMember(t, s)
			m := structMemberJSON{Name: s, Type: debuginfo.TypeName(mp.Type), Offset: mp.Offset, Size: typeSize(mp.Type), BitSize: mp.BitSize}
			val(&m, mp.Type, mp.Offset, mp.BitOffset, mp.BitSize)
			j.Members = append(j.Members, m)
		}
		return j
	}
	var walk func(t *debuginfo.Type, base int64, depth int) []structMemberJSON
	walk = func(t *debuginfo.Type, base int64, depth int) []structMemberJSON {
		out := []structMemberJSON{}
		for _, mb := range t.Members {
			m := structMemberJSON{Name: mb.Name, Type: debuginfo.TypeName(mb.Type), Offset: base + mb.Offset, Size: typeSize(mb.Type), BitSize: mb.BitSize}
			if in := mb.Type; in != nil && mb.Name == "" && (in.Kind == debuginfo.KindStruct || in.Kind == debuginfo.KindUnion) && depth < 32 {
				m.Members = walk(in, base+mb.Offset, depth+1)
			} else {
				val(&m, mb.Type, base+mb.Offset, mb.BitOffset, mb.BitSize)
			}
			out = append(out, m)
		}
		return out
	}
	j.Members = walk(r, 0, 0)
	return j
}
