package debuginfo

import (
	"fmt"
	"strconv"
	"strings"
)

// C spellings of base types. GCC names them in DWARF as
// "long unsigned int" (and pahole copies that into BTF); crash and gdb
// print "unsigned long". Types carry the printed spelling; lookups accept
// both.
var cBaseNames = map[string]string{
	"long unsigned int":      "unsigned long",
	"long int":               "long",
	"short unsigned int":     "unsigned short",
	"short int":              "short",
	"long long unsigned int": "unsigned long long",
	"long long int":          "long long",
	"unsigned int":           "unsigned int",
	"char":                   "char",
	"unsigned char":          "unsigned char",
	"signed char":            "signed char",
	"_Bool":                  "_Bool",
	"__int128 unsigned":      "unsigned __int128",
}

// dwarfBaseName maps a C spelling back to the compiler's name.
var dwarfBaseName = func() map[string]string {
	m := map[string]string{"unsigned": "unsigned int", "signed": "int", "signed int": "int",
		"unsigned long int": "long unsigned int", "long long unsigned": "long long unsigned int",
		"short unsigned": "short unsigned int", "long unsigned": "long unsigned int", "bool": "_Bool"}
	for d, c := range cBaseNames {
		if d != c {
			m[c] = d
		}
	}
	return m
}()

// cBaseName is the printed spelling of a compiler's base type name.
func cBaseName(n string) string {
	if c, ok := cBaseNames[n]; ok {
		return c
	}
	return n
}

// typeNamer is what namedType needs of a Types.
type typeNamer interface {
	Struct(string) (*Type, error)
	Union(string) (*Type, error)
	Enum(string) (*Type, error)
	Typedef(string) (*Type, error)
}

// namedType resolves a C spelling — "struct page", "unsigned long",
// "pid_t", "const char *", "struct list_head **", "char [16]" — with
// base looking up base types.
func namedType(t typeNamer, spelling string, base func(string) (*Type, error)) (*Type, error) {
	s := strings.TrimSpace(spelling)
	if strings.HasSuffix(s, "]") {
		// "char [16]", "pg_data_t *[]": an array of the rest.
		open := strings.LastIndexByte(s, '[')
		if open < 0 {
			return nil, fmt.Errorf("bad type spelling %q", spelling)
		}
		n := int64(-1)
		if b := strings.TrimSpace(s[open+1 : len(s)-1]); b != "" {
			v, err := strconv.ParseInt(b, 0, 64)
			if err != nil || v < 0 {
				return nil, fmt.Errorf("bad array bound in %q", spelling)
			}
			n = v
		}
		elem, err := namedType(t, s[:open], base)
		if err != nil {
			return nil, err
		}
		return &Type{Kind: KindArray, Elem: elem, Len: n, Size: arraySize(elem, n)}, nil
	}
	ptrs := 0
	for strings.HasSuffix(s, "*") {
		ptrs++
		s = strings.TrimSpace(strings.TrimSuffix(s, "*"))
	}
	var q Qual
	for {
		switch {
		case strings.HasPrefix(s, "const "):
			q |= QualConst
			s = strings.TrimSpace(s[len("const "):])
			continue
		case strings.HasPrefix(s, "volatile "):
			q |= QualVolatile
			s = strings.TrimSpace(s[len("volatile "):])
			continue
		}
		break
	}
	s = strings.Join(strings.Fields(s), " ")
	var ty *Type
	var err error
	switch {
	case strings.HasPrefix(s, "struct "):
		ty, err = t.Struct(s[len("struct "):])
	case strings.HasPrefix(s, "union "):
		ty, err = t.Union(s[len("union "):])
	case strings.HasPrefix(s, "enum "):
		ty, err = t.Enum(s[len("enum "):])
	case s == "void":
		ty = &Type{Kind: KindVoid}
	default:
		ty, err = base(s)
		if err != nil {
			if td, err2 := t.Typedef(s); err2 == nil {
				ty, err = td, nil
			}
		}
	}
	if err != nil {
		return nil, err
	}
	if q != 0 {
		c := *ty
		c.Qual |= q
		ty = &c
	}
	for range ptrs {
		ty = &Type{Kind: KindPointer, Size: 8, Elem: ty}
	}
	return ty, nil
}
