package analyze

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"salvage/debuginfo"
	"salvage/kernel"
)

// The expressions p evaluates: the subset of C that crash users type at
// gdb, by precedence:
//
//	unary   := '*' unary | '&' unary | '(' TYPE ')' unary | 'sizeof' '(' TYPE ')' | postfix
//	postfix := primary { '.' NAME | '->' NAME | '[' NUMBER ']' }
//	primary := NAME | NUMBER | '(' unary ')'
//
// A value is an object in the dump's memory (an lvalue: kernel.Value)
// or a computed one (an address taken, a cast, a number), whose bytes
// are held here.

// pValue is an expression's value.
type pValue struct {
	lv   kernel.Value // the object, when inMem
	mem  bool
	typ  *debuginfo.Type
	data []byte // a computed value's bytes, little-endian
}

func (v pValue) Type() *debuginfo.Type {
	if v.mem {
		return v.lv.Type()
	}
	return v.typ
}

// exprParser parses and evaluates one expression.
type exprParser struct {
	k    *kernel.Kernel
	src  string
	pos  int
	name string // the expression's only symbol, when it is nothing else
}

// evalPExpr evaluates expr. plain reports an expression that is a bare
// symbol, which crash prints with its name.
func evalPExpr(k *kernel.Kernel, expr string) (v pValue, plain bool, err error) {
	p := &exprParser{k: k, src: expr}
	v, err = p.unary()
	if err != nil {
		return v, false, err
	}
	p.space()
	if p.pos < len(p.src) {
		return v, false, fmt.Errorf("cannot evaluate %q: unexpected %q", expr, p.src[p.pos:])
	}
	return v, p.name != "" && strings.TrimSpace(expr) == p.name, nil
}

func (p *exprParser) space() {
	for p.pos < len(p.src) && p.src[p.pos] == ' ' {
		p.pos++
	}
}

// peek reports whether the rest starts with s (after blanks).
func (p *exprParser) peek(s string) bool {
	p.space()
	return strings.HasPrefix(p.src[p.pos:], s)
}

func (p *exprParser) errorf(format string, args ...any) error {
	return fmt.Errorf("cannot evaluate %q: %s", p.src, fmt.Sprintf(format, args...))
}

func (p *exprParser) unary() (pValue, error) {
	switch {
	case p.peek("*"):
		p.pos++
		v, err := p.unary()
		if err != nil {
			return v, err
		}
		return p.deref(v)
	case p.peek("&"):
		p.pos++
		v, err := p.unary()
		if err != nil {
			return v, err
		}
		if !v.mem {
			return v, p.errorf("& of a value that is not in memory")
		}
		pt := &debuginfo.Type{Kind: debuginfo.KindPointer, Size: 8, Elem: v.lv.Type()}
		return p.computed(pt, v.lv.Address()), nil
	case p.peek("sizeof"):
		save := p.pos
		p.pos += len("sizeof")
		if t, ok, err := p.castType(); ok {
			if err != nil {
				return pValue{}, err
			}
			return p.computed(p.intType("unsigned long"), uint64(typeSize(t))), nil
		}
		p.pos = save
	case p.peek("("):
		if t, ok, err := p.castType(); ok {
			if err != nil {
				return pValue{}, err
			}
			v, err := p.unary()
			if err != nil {
				return v, err
			}
			return p.cast(t, v)
		}
	}
	return p.postfix()
}

// castType reads "(TYPE)" when the parenthesis holds a type (ok), not
// an expression.
func (p *exprParser) castType() (t *debuginfo.Type, ok bool, err error) {
	p.space()
	if !strings.HasPrefix(p.src[p.pos:], "(") {
		return nil, false, nil
	}
	end := strings.IndexByte(p.src[p.pos:], ')')
	if end < 0 {
		return nil, false, nil
	}
	spelling := strings.TrimSpace(p.src[p.pos+1 : p.pos+end])
	if !p.isType(spelling) {
		return nil, false, nil
	}
	p.pos += end + 1
	ts, err := p.types()
	if err != nil {
		return nil, true, err
	}
	t, err = ts.Named(spelling)
	if err != nil {
		return nil, true, p.errorf("no type %q: %v", spelling, err)
	}
	return t, true, nil
}

// isType tells a type's spelling from an expression: a keyword that
// only a type starts with, a trailing '*', or a name the types know and
// no symbol has.
func (p *exprParser) isType(s string) bool {
	if s == "" || strings.ContainsAny(s, "()") {
		// "((struct x *)a)->m": the parenthesis holds an expression.
		return false
	}
	first := strings.Fields(s)[0]
	switch first {
	case "struct", "union", "enum", "unsigned", "signed", "const", "volatile", "char", "short", "int", "long", "void", "_Bool":
		return true
	}
	if strings.HasSuffix(s, "*") {
		return true
	}
	for _, c := range s {
		if !(unicode.IsLetter(c) || unicode.IsDigit(c) || c == '_') {
			return false
		}
	}
	if _, err := p.k.SymbolAddr(s); err == nil {
		return false
	}
	ts, err := p.types()
	if err != nil {
		return false
	}
	_, err = ts.Named(s)
	return err == nil
}

func (p *exprParser) types() (debuginfo.Types, error) {
	if p.k.Types == nil {
		return nil, errors.New("no type information (neither the vmlinux's DWARF nor the dump's BTF)")
	}
	return p.k.Types, nil
}

func (p *exprParser) intType(spelling string) *debuginfo.Type {
	if ts, err := p.types(); err == nil {
		if t, err := ts.Named(spelling); err == nil {
			return t
		}
	}
	return &debuginfo.Type{Kind: debuginfo.KindInt, Name: spelling, Size: 8, Encoding: debuginfo.EncUnsigned}
}

// computed is the value u of type t.
func (p *exprParser) computed(t *debuginfo.Type, u uint64) pValue {
	n := max(typeSize(t), 1)
	b := make([]byte, max(n, 8))
	binary.LittleEndian.PutUint64(b, u)
	return pValue{typ: t, data: b[:n]}
}

// scalar is v as an integer: its bytes, or an array's address (C's
// decay to a pointer to its first element).
func (p *exprParser) scalar(v pValue) (uint64, error) {
	r := v.Type().Resolve()
	if r == nil {
		return 0, p.errorf("a void value has no number")
	}
	switch r.Kind {
	case debuginfo.KindArray, debuginfo.KindFunc:
		if v.mem {
			return v.lv.Address(), nil
		}
	case debuginfo.KindStruct, debuginfo.KindUnion:
		return 0, p.errorf("a %s is not a number", debuginfo.TypeName(v.Type()))
	}
	n := typeSize(r)
	if n <= 0 || n > 8 {
		return 0, p.errorf("a %s is not a number", debuginfo.TypeName(v.Type()))
	}
	b := v.data
	if v.mem {
		b = make([]byte, n)
		if err := p.k.Read(b, v.lv.Address()); err != nil {
			return 0, err
		}
	}
	var u uint64
	for i := n - 1; i >= 0; i-- {
		u = u<<8 | uint64(b[i])
	}
	if isSigned(r) && n < 8 && u&(1<<(8*n-1)) != 0 {
		u |= ^uint64(0) << (8 * n) // sign-extend
	}
	return u, nil
}

// cast converts v to t: a number or address to an integer or pointer
// type, truncated or extended as C does.
func (p *exprParser) cast(t *debuginfo.Type, v pValue) (pValue, error) {
	r := t.Resolve()
	if r == nil {
		return pValue{typ: t}, nil // (void)
	}
	switch r.Kind {
	case debuginfo.KindStruct, debuginfo.KindUnion, debuginfo.KindArray:
		if v.mem && typeSize(v.Type()) == typeSize(r) {
			// The same bytes seen as another type, as gdb allows.
			return pValue{lv: p.k.Object(v.lv.Address(), t), mem: true}, nil
		}
		return v, p.errorf("cannot cast to %s", debuginfo.TypeName(t))
	}
	u, err := p.scalar(v)
	if err != nil {
		return v, err
	}
	return p.computed(t, u), nil
}

// deref is *v: the object a pointer points at, an array's first element.
func (p *exprParser) deref(v pValue) (pValue, error) {
	r := v.Type().Resolve()
	if r == nil {
		return v, p.errorf("attempt to take the contents of a non-pointer value")
	}
	switch r.Kind {
	case debuginfo.KindPointer:
		a, err := p.scalar(v)
		if err != nil {
			return v, err
		}
		if r.Elem.Resolve() == nil {
			return v, p.errorf("attempt to take the contents of a void pointer")
		}
		if a == 0 {
			return v, p.errorf("cannot access memory at address 0x0 (a NULL %s)", debuginfo.TypeName(v.Type()))
		}
		return pValue{lv: p.k.Object(a, r.Elem), mem: true}, nil
	case debuginfo.KindArray:
		if v.mem {
			return pValue{lv: p.k.Object(v.lv.Address(), r.Elem), mem: true}, nil
		}
	}
	return v, p.errorf("attempt to take the contents of a non-pointer value")
}

func (p *exprParser) postfix() (pValue, error) {
	v, err := p.primary()
	if err != nil {
		return v, err
	}
	for {
		switch {
		case p.peek("->"):
			p.pos += 2
			if v, err = p.deref(v); err != nil {
				return v, err
			}
			if v, err = p.member(v); err != nil {
				return v, err
			}
		case p.peek("."):
			p.pos++
			if v, err = p.member(v); err != nil {
				return v, err
			}
		case p.peek("["):
			end := strings.IndexByte(p.src[p.pos:], ']')
			if end < 0 {
				return v, p.errorf("missing ]")
			}
			text := strings.TrimSpace(p.src[p.pos+1 : p.pos+end])
			i, perr := strconv.ParseInt(text, 0, 64)
			if perr != nil {
				return v, p.errorf("bad index %q", text)
			}
			p.pos += end + 1
			if v, err = p.index(v, i); err != nil {
				return v, err
			}
		default:
			return v, nil
		}
		p.name = ""
	}
}

func (p *exprParser) member(v pValue) (pValue, error) {
	p.space()
	start := p.pos
	for p.pos < len(p.src) && isIdentByte(p.src[p.pos]) {
		p.pos++
	}
	name := p.src[start:p.pos]
	if name == "" {
		return v, p.errorf("expected a member name at %q", p.src[start:])
	}
	if !v.mem {
		return v, p.errorf("member %s of a value that is not in memory", name)
	}
	m, err := v.lv.Member(name)
	if err != nil {
		return v, err
	}
	return pValue{lv: m, mem: true}, nil
}

func (p *exprParser) index(v pValue, i int64) (pValue, error) {
	r := v.Type().Resolve()
	if r == nil {
		return v, p.errorf("cannot index a void value")
	}
	switch {
	case r.Kind == debuginfo.KindArray && v.mem:
		if r.Len <= 0 {
			// A flexible array member (BTF gives it length 0): C does
			// not check its bounds, nor does gdb.
			return pValue{lv: p.k.Object(v.lv.Address()+uint64(i*typeSize(r.Elem)), r.Elem), mem: true}, nil
		}
		e, err := v.lv.Index(int(i))
		return pValue{lv: e, mem: true}, err
	case r.Kind == debuginfo.KindPointer:
		a, err := p.scalar(v)
		if err != nil {
			return v, err
		}
		return pValue{lv: p.k.Object(a+uint64(i*typeSize(r.Elem)), r.Elem), mem: true}, nil
	}
	return v, p.errorf("cannot index a %s", debuginfo.TypeName(v.Type()))
}

func isIdentByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func (p *exprParser) primary() (pValue, error) {
	p.space()
	if p.pos >= len(p.src) {
		return pValue{}, p.errorf("expected a variable name or a number")
	}
	c := p.src[p.pos]
	switch {
	case c == '(':
		p.pos++
		v, err := p.unary()
		if err != nil {
			return v, err
		}
		if !p.peek(")") {
			return v, p.errorf("missing )")
		}
		p.pos++
		p.name = ""
		return v, nil
	case c >= '0' && c <= '9' || c == '-':
		start := p.pos
		p.pos++
		for p.pos < len(p.src) && (isIdentByte(p.src[p.pos])) {
			p.pos++
		}
		text := p.src[start:p.pos]
		n, err := strconv.ParseInt(text, 0, 64)
		if err != nil {
			u, uerr := strconv.ParseUint(text, 0, 64)
			if uerr != nil {
				return pValue{}, p.errorf("bad number %q", text)
			}
			n = int64(u)
		}
		// gdb types a literal int when it fits, else long.
		spelling := "int"
		if n != int64(int32(n)) {
			spelling = "long"
		}
		return p.computed(p.intType(spelling), uint64(n)), nil
	case isIdentByte(c):
		start := p.pos
		for p.pos < len(p.src) && isIdentByte(p.src[p.pos]) {
			p.pos++
		}
		name := p.src[start:p.pos]
		v, err := p.symbol(name)
		p.name = name
		return v, err
	}
	return pValue{}, p.errorf("unexpected %q", p.src[p.pos:])
}

// symbol is a global variable, or a function (printed by its address).
func (p *exprParser) symbol(name string) (pValue, error) {
	k := p.k
	v, err := k.Global(name)
	if err == nil {
		return pValue{lv: k.Object(v.Address(), arrayFromSymbol(k, v.Type(), name)), mem: true}, nil
	}
	if k.Types != nil {
		if f, ferr := k.Types.Func(name); ferr == nil {
			if a, aerr := k.SymbolAddr(name); aerr == nil {
				return pValue{lv: k.Object(a, f), mem: true}, nil
			}
		}
	}
	return pValue{}, err
}
