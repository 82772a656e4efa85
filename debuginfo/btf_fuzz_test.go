package debuginfo

import (
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"
)

// seedBTF marshals a small but complete type graph: a self-referencing
// struct with a bitfield and an anonymous union, an enum, a typedef, a
// forward declaration, a function and a per-CPU variable.
func seedBTF(tb testing.TB) []byte {
	tb.Helper()
	ulong := &btf.Int{Name: "long unsigned int", Size: 8}
	uint := &btf.Int{Name: "unsigned int", Size: 4}
	char := &btf.Int{Name: "char", Size: 1, Encoding: btf.Signed}
	list := &btf.Struct{Name: "list_head", Size: 16}
	list.Members = []btf.Member{
		{Name: "next", Type: &btf.Pointer{Target: list}},
		{Name: "prev", Type: &btf.Pointer{Target: list}, Offset: 64},
	}
	anon := &btf.Union{Size: 8, Members: []btf.Member{{Name: "a", Type: ulong}, {Name: "b", Type: uint}}}
	task := &btf.Struct{Name: "task_struct", Size: 64, Members: []btf.Member{
		{Name: "tasks", Type: list},
		{Type: anon, Offset: 128},
		{Name: "flag", Type: uint, Offset: 192 + 3, BitfieldSize: 1},
		{Name: "comm", Type: &btf.Array{Index: uint, Type: &btf.Const{Type: char}, Nelems: 16}, Offset: 256},
		{Name: "fwd", Type: &btf.Pointer{Target: &btf.Fwd{Name: "mm_struct"}}, Offset: 384},
	}}
	pidT := &btf.Typedef{Name: "pid_t", Type: &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed}}
	enum := &btf.Enum{Name: "pid_type", Size: 4, Values: []btf.EnumValue{{Name: "PIDTYPE_PID", Value: 0}, {Name: "PIDTYPE_MAX", Value: 4}}}
	fn := &btf.Func{Name: "wake_up", Type: &btf.FuncProto{Return: uint, Params: []btf.FuncParam{{Name: "p", Type: &btf.Pointer{Target: task}}}}, Linkage: btf.GlobalFunc}
	v := &btf.Var{Name: "current_task", Type: &btf.Pointer{Target: task}, Linkage: btf.GlobalVar}
	b, err := btf.NewBuilder([]btf.Type{task, pidT, enum, fn, v}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	raw, err := b.Marshal(nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

// C type graphs cycle only through structs and unions; BTF can say
// more, and such input must give an error, not a hang.
func TestBTFCycles(t *testing.T) {
	p := &btf.Pointer{}
	p.Target = p
	td := &btf.Typedef{Name: "loop"}
	td.Type = td
	tt := &btf.TypeTag{Value: "x"}
	tt.Type = tt
	ok := &btf.Typedef{Name: "fine", Type: &btf.Int{Name: "int", Size: 4}}
	for _, bad := range []btf.Type{p, td, tt} {
		b, err := btf.NewBuilder([]btf.Type{bad, ok}, nil)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := b.Marshal(nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		ty, err := LoadBTF(raw, "cycle")
		if err != nil {
			continue // rejected by the parser: fine too
		}
		bt := ty.(*btfTypes)
		bt.mu.Lock()
		for x, err := range bt.spec.All() {
			if err == nil {
				bt.convert(x)
			}
		}
		bt.flush()
		bt.mu.Unlock()
		if _, err := ty.Typedef("fine"); err == nil {
			t.Errorf("%v: lookups succeed in a type graph with a cycle", bad)
		}
	}
}

func TestBTFSeed(t *testing.T) {
	ty, err := LoadBTF(seedBTF(t), "seed")
	if err != nil {
		t.Fatal(err)
	}
	task, err := ty.Struct("task_struct")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path          string
		off           int64
		bitOff, nbits int
		typ           string
	}{
		{"tasks.prev", 8, 0, 0, "struct list_head *"},
		{"b", 16, 0, 0, "unsigned int"},
		{"flag", 24, 3, 1, "unsigned int"},
		{"comm", 32, 0, 0, "const char [16]"},
		{"fwd", 48, 0, 0, "struct mm_struct *"},
	} {
		m, err := LookupMember(task, tc.path)
		if err != nil {
			t.Errorf("%s: %v", tc.path, err)
			continue
		}
		if m.Offset != tc.off || m.BitOffset != tc.bitOff || m.BitSize != tc.nbits || TypeName(m.Type) != tc.typ {
			t.Errorf("%s: %d bit %d:%d %q", tc.path, m.Offset, m.BitOffset, m.BitSize, TypeName(m.Type))
		}
	}
	if v, err := ty.Var("current_task"); err != nil || TypeName(v) != "struct task_struct *" {
		t.Errorf("current_task: %v %v", v, err)
	}
	if f, err := ty.Func("wake_up"); err != nil || TypeName(f) != "unsigned int (struct task_struct *)" {
		t.Errorf("wake_up: %v %v", f, err)
	}
	if e, err := ty.Enum("pid_type"); err != nil || len(e.Enums) != 2 || e.Enums[1].Value != 4 {
		t.Errorf("enum pid_type: %+v %v", e, err)
	}
	if p, err := ty.Named("pid_t"); err != nil || p.Resolve().Name != "int" {
		t.Errorf("pid_t: %+v %v", p, err)
	}
}

// FuzzLoadBTF: LoadBTF on arbitrary bytes returns Types or an error,
// never panics, and every type it has converts and formats.
func FuzzLoadBTF(f *testing.F) {
	f.Add(seedBTF(f))
	f.Fuzz(func(t *testing.T, raw []byte) {
		ty, err := LoadBTF(raw, "fuzz")
		if err != nil {
			if ty != nil {
				t.Fatal("LoadBTF returned Types and an error")
			}
			return
		}
		if ty == nil {
			t.Fatal("LoadBTF returned neither Types nor an error")
		}
		bt := ty.(*btfTypes)
		bt.mu.Lock()
		var all []*Type
		for b, err := range bt.spec.All() {
			if err != nil {
				break
			}
			all = append(all, bt.convert(b))
		}
		bt.flush()
		broken := bt.broken
		bt.mu.Unlock()
		if broken != nil {
			if _, err := ty.Struct("task_struct"); err == nil {
				t.Fatal("lookups succeed in a broken type graph")
			}
			return
		}
		for _, x := range all {
			_ = TypeName(x)
			if x != nil && (x.Kind == KindStruct || x.Kind == KindUnion) {
				for _, m := range x.Members {
					if m.Name != "" {
						LookupMember(x, m.Name)
					}
				}
			}
		}
		ty.Struct("task_struct")
		ty.Var("current_task")
		ty.Named("unsigned long")
	})
}

// FuzzLoadBTFFromMemory: the BTF in a dump's memory, handed to cilium/ebpf
// as an ELF object made up around it (btfObject), gives Types or an
// error naming "BTF in memory", never a panic; the blob, or its end, may
// be unmapped.
func FuzzLoadBTFFromMemory(f *testing.F) {
	f.Add(seedBTF(f), uint16(0))
	f.Add(seedBTF(f), uint16(100))
	f.Fuzz(func(t *testing.T, raw []byte, cut uint16) {
		const start = 0xffffffff83000000
		mem := sparseMemory{start: raw}
		if int(cut) < len(raw) && cut > 0 {
			// The blob's end is not in the dump (excluded pages).
			mem = sparseMemory{start: raw[:len(raw)-int(cut)]}
		}
		ty, err := LoadBTFFromMemory(mem, start, start+uint64(len(raw)))
		if (ty == nil) == (err == nil) {
			t.Fatalf("Types %v and error %v", ty, err)
		}
		if err != nil {
			if !strings.Contains(err.Error(), "BTF in memory") {
				t.Fatalf("error does not say where: %v", err)
			}
			return
		}
		ty.Struct("task_struct")
	})
}
