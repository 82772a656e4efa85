package debuginfo

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

var arrayBound = regexp.MustCompile(`\[\d+\]`)

// The table's types are those the lab kernel's DWARF declares (array
// bounds aside), and BTF with the table gives them all.
func TestWellKnownVarsMatchDWARF(t *testing.T) {
	srcs := labSources(t)
	dw, bt := srcs[0], WithWellKnownVars(srcs[1])
	for _, v := range WellKnownVars {
		d, err := dw.Var(v.Name)
		if err != nil {
			t.Errorf("DWARF: %v", err)
			continue
		}
		b, err := bt.Var(v.Name)
		if err != nil {
			t.Errorf("BTF with well-known vars: %v", err)
			continue
		}
		dn := arrayBound.ReplaceAllString(TypeName(d), "[]")
		bn := arrayBound.ReplaceAllString(TypeName(b), "[]")
		if dn != v.Type || bn != v.Type {
			t.Errorf("%s: table says %q, DWARF %q, BTF %q", v.Name, v.Type, TypeName(d), TypeName(b))
		}
		if d.Size > 0 && b.Size > 0 && d.Size != b.Size {
			t.Errorf("%s: %d bytes in DWARF, %d with BTF", v.Name, d.Size, b.Size)
		}
	}
	_, err := bt.Var("no_such_global")
	var nf *NotFoundError
	if !errors.As(err, &nf) || !strings.Contains(err.Error(), "no_such_global") {
		t.Errorf("no_such_global: %v", err)
	}
}

func TestWellKnownVarsFallbackError(t *testing.T) {
	// A Types with nothing in it: the error names the global and the
	// well-known type that could not be found.
	empty := WithWellKnownVars(emptyTypes{})
	_, err := empty.Var("init_task")
	if err == nil || !strings.Contains(err.Error(), "init_task") || !strings.Contains(err.Error(), "struct task_struct") {
		t.Errorf("init_task in empty types: %v", err)
	}
}

type emptyTypes struct{}

func (emptyTypes) nf(what string) error              { return &NotFoundError{What: what, Source: "nothing"} }
func (e emptyTypes) Struct(n string) (*Type, error)  { return nil, e.nf("struct " + n) }
func (e emptyTypes) Union(n string) (*Type, error)   { return nil, e.nf("union " + n) }
func (e emptyTypes) Enum(n string) (*Type, error)    { return nil, e.nf("enum " + n) }
func (e emptyTypes) Typedef(n string) (*Type, error) { return nil, e.nf("typedef " + n) }
func (e emptyTypes) Named(n string) (*Type, error)   { return nil, e.nf(n) }
func (e emptyTypes) Var(n string) (*Type, error)     { return nil, e.nf("variable " + n) }
func (e emptyTypes) Func(n string) (*Type, error)    { return nil, e.nf("function " + n) }
func (emptyTypes) Source() string                    { return "nothing" }
