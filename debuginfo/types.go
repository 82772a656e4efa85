package debuginfo

import "fmt"

// Kind is the kind of a Type.
type Kind uint8

const (
	KindVoid Kind = iota
	KindInt       // integers, char and _Bool (Encoding says which)
	KindFloat
	KindPointer
	KindArray
	KindStruct
	KindUnion
	KindEnum
	KindTypedef
	KindFunc // a function type (Params, Return)
)

func (k Kind) String() string {
	return [...]string{"void", "int", "float", "pointer", "array", "struct", "union", "enum", "typedef", "func"}[k]
}

// Encoding refines KindInt.
type Encoding uint8

const (
	EncUnsigned Encoding = iota
	EncSigned
	EncChar // plain char (signedness per ABI: signed on x86_64, unsigned on arm64)
	EncBool
)

// Qual is a set of C type qualifiers.
type Qual uint8

const (
	QualConst Qual = 1 << iota
	QualVolatile
	QualRestrict
)

// Type is one C type of the kernel, the same whether it came from DWARF or
// BTF. Types form a graph (struct list_head points to itself): compare by
// pointer, never recurse without a visited set.
type Type struct {
	Kind     Kind
	Name     string // "task_struct" for struct task_struct; "" when anonymous
	Size     int64  // bytes; 0 for void and functions; -1 when incomplete
	Encoding Encoding
	Qual     Qual  // qualifiers on this use of the type
	Elem     *Type // pointer target, array element, typedef target, enum base (may be nil), func return
	Len      int64 // array length; -1 for a flexible array member
	Members  []Member
	Enums    []Enumerator
	Params   []Param
	Variadic bool
	// Decl is where the type is declared ("include/linux/sched.h:737"),
	// when DWARF says so.
	Decl string
}

// Member is a struct or union member.
type Member struct {
	Name      string // "" for an anonymous struct or union member
	Type      *Type
	Offset    int64 // byte offset in the enclosing type
	BitOffset int   // for bitfields: bit offset within the storage unit at Offset (little-endian numbering)
	BitSize   int   // 0 unless a bitfield
}

// Enumerator is one enum constant.
type Enumerator struct {
	Name  string
	Value int64
}

// Param is one function parameter.
type Param struct {
	Name string
	Type *Type
}

// Resolve strips typedefs and qualifiers.
func (t *Type) Resolve() *Type {
	for t != nil && t.Kind == KindTypedef {
		t = t.Elem
	}
	return t
}

// String renders the type as C declares it ("struct task_struct *",
// "unsigned long", "char [16]").
func (t *Type) String() string { return TypeName(t) }

// MemberPath is the result of looking up "se.vruntime" in a struct.
type MemberPath struct {
	Offset    int64 // byte offset from the start of the outer struct
	Type      *Type
	BitOffset int
	BitSize   int
}

// Types finds types by name. Implementations (DWARF, BTF) are safe for
// concurrent use and load lazily.
type Types interface {
	// Struct finds "struct NAME"; Union, Enum and Typedef likewise. The
	// error says the name was not found and in which source (DWARF file,
	// BTF from memory…).
	Struct(name string) (*Type, error)
	Union(name string) (*Type, error)
	Enum(name string) (*Type, error)
	Typedef(name string) (*Type, error)
	// Named finds a type by C spelling: "struct page", "union x",
	// "unsigned long", "pid_t", "struct list_head *".
	Named(spelling string) (*Type, error)
	// Var returns the declared type of a global variable, when known (BTF
	// lacks most globals: see WellKnownVars).
	Var(name string) (*Type, error)
	// Func returns a function's type.
	Func(name string) (*Type, error)
	// Source names where the types come from, for messages.
	Source() string
}

// NotFoundError reports a type, member or symbol that the debug info lacks.
type NotFoundError struct {
	What   string // "struct foo", "member bar of struct foo", "symbol baz"
	Source string
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("%s: not found in %s", e.What, e.Source)
}
