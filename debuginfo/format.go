package debuginfo

import (
	"fmt"
	"strings"
)

// TypeName renders a type as C spells it, as crash and gdb print it in
// whatis and struct: "struct task_struct *", "char [16]",
// "void (*)(struct work_struct *)".
func TypeName(t *Type) string {
	return strings.TrimSpace(Declare(t, ""))
}

// Declare renders a declaration of name with type t: Declare(char[16],
// "comm") is "char comm[16]".
func Declare(t *Type, name string) string {
	base, decl := declarator(t, name, map[*Type]bool{})
	if decl == "" {
		return base
	}
	if strings.HasPrefix(decl, "[") || strings.HasPrefix(decl, "(") {
		return base + " " + decl
	}
	return base + " " + decl
}

func qualPrefix(q Qual) string {
	var s []string
	if q&QualConst != 0 {
		s = append(s, "const")
	}
	if q&QualVolatile != 0 {
		s = append(s, "volatile")
	}
	if len(s) == 0 {
		return ""
	}
	return strings.Join(s, " ") + " "
}

// declarator returns the base type spelling and the declarator around name.
func declarator(t *Type, inner string, seen map[*Type]bool) (string, string) {
	if t == nil {
		return "void", inner
	}
	switch t.Kind {
	case KindPointer:
		in := "*" + inner
		if t.Qual&QualConst != 0 {
			in = "* const" + prefixSpace(inner)
		}
		if t.Elem != nil && (t.Elem.Kind == KindArray || t.Elem.Kind == KindFunc) {
			in = "(" + in + ")"
		}
		return declarator(t.Elem, in, seen)
	case KindArray:
		n := ""
		if t.Len >= 0 {
			n = fmt.Sprint(t.Len)
		}
		return declarator(t.Elem, inner+"["+n+"]", seen)
	case KindFunc:
		var ps []string
		for _, p := range t.Params {
			ps = append(ps, TypeName(p.Type))
		}
		if t.Variadic {
			ps = append(ps, "...")
		}
		if len(ps) == 0 {
			ps = []string{"void"}
		}
		return declarator(t.Elem, inner+"("+strings.Join(ps, ", ")+")", seen)
	}
	return qualPrefix(t.Qual) + baseName(t), inner
}

func prefixSpace(s string) string {
	if s == "" {
		return ""
	}
	return " " + s
}

func baseName(t *Type) string {
	switch t.Kind {
	case KindVoid:
		return "void"
	case KindStruct, KindUnion, KindEnum:
		n := t.Name
		if n == "" {
			n = "{...}"
		}
		return t.Kind.String() + " " + n
	}
	return t.Name
}
