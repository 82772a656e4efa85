package debuginfo

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

var arrayBound = regexp.MustCompile(`\[\d+\]`)

// sameType are spellings of one type that kernels' DWARF alternate
// between: 6.12 declares node_data with the struct, 6.1 with the typedef.
var sameType = strings.NewReplacer("pg_data_t", "struct pglist_data")

// The table's types are those each lab kernel's DWARF declares (array
// bounds and typedefs aside), and BTF with the table gives them all; a
// kernel lacks only the variables whose Absent says so.
func TestWellKnownVarsMatchDWARF(t *testing.T) {
	m := labManifest(t)
	for _, k := range m.Kernels {
		if k.Role != "" {
			continue // fetched only as the wrong vmlinux of mismatch tests
		}
		t.Run(k.Release, func(t *testing.T) {
			t.Setenv("XDG_CACHE_HOME", t.TempDir())
			dw, err := LoadDWARF(m.Path(k.DebugVmlinux))
			if err != nil {
				t.Fatal(err)
			}
			raw, err := LoadBTFFromELF(m.Path(k.DebugVmlinux))
			if err != nil {
				t.Fatal(err)
			}
			checkWellKnownVars(t, dw, WithWellKnownVars(raw))
		})
	}
}

func checkWellKnownVars(t *testing.T, dw, bt Types) {
	absent := 0
	for _, v := range WellKnownVars {
		d, err := dw.Var(v.Name)
		if err != nil {
			var nf *NotFoundError
			if v.Absent != "" && errors.As(err, &nf) {
				absent++
				t.Logf("%s: not in this kernel (%s)", v.Name, v.Absent)
				continue
			}
			t.Errorf("DWARF: %v", err)
			continue
		}
		b, err := bt.Var(v.Name)
		if err != nil {
			t.Errorf("BTF with well-known vars: %v", err)
			continue
		}
		dn := sameType.Replace(arrayBound.ReplaceAllString(TypeName(d), "[]"))
		bn := sameType.Replace(arrayBound.ReplaceAllString(TypeName(b), "[]"))
		if want := sameType.Replace(v.Type); dn != want || bn != want {
			t.Errorf("%s: table says %q, DWARF %q, BTF %q", v.Name, v.Type, TypeName(d), TypeName(b))
		}
		if d.Size > 0 && b.Size > 0 && d.Size != b.Size {
			t.Errorf("%s: %d bytes in DWARF, %d with BTF", v.Name, d.Size, b.Size)
		}
	}
	// A kernel has one of each pair of alternatives (old name, new name).
	if absent > 5 {
		t.Errorf("%d well-known variables absent: more than one of each pair", absent)
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
