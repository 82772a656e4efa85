package debuginfo

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"
)

// The lab kernel's layouts from its DWARF and from its BTF must agree:
// pahole made the BTF from the same DWARF, so any difference is ours.
var comparedStructs = []string{
	"task_struct", "mm_struct", "page", "list_head", "hlist_node", "rq", "cfs_rq", "sched_entity",
	"module", "file", "inode", "dentry", "super_block", "vm_area_struct", "printk_ringbuffer",
	"prb_desc", "prb_desc_ring", "prb_data_ring", "printk_info", "dev_printk_info", "uts_namespace",
	"new_utsname", "pid", "upid", "pid_namespace", "maple_tree", "maple_node", "mem_section",
	"pglist_data", "zone", "kmem_cache", "slab", "files_struct", "fdtable", "vmap_area",
	"irq_desc", "irqaction", "net_device", "sk_buff", "sock", "socket", "mount", "vfsmount",
	"cpumask", "signal_struct", "sighand_struct", "cred", "thread_struct", "pt_regs",
	"inactive_task_frame", "fork_frame", "kernel_symbol", "mod_kallsyms", "timer_list",
	"hrtimer", "workqueue_struct", "worker_pool", "address_space", "xarray", "folio",
}

// knownDifference explains a member type spelled differently by the two
// sources, or returns "".
func knownDifference(dwarfName, btfName string) string {
	// A flexible array member (char name[]) is an array without a bound
	// in DWARF, and one of 0 elements in BTF, which cannot say more.
	if strings.ReplaceAll(dwarfName, "[]", "[0]") == btfName {
		return "flexible array"
	}
	// pahole writes a multi-dimensional array (u64 x[7][3][2]) as one
	// dimension of as many elements (u64 x[42]).
	if de, dims, ok := arrayDims(dwarfName); ok && len(dims) > 1 {
		if be, bdims, ok := arrayDims(btfName); ok && len(bdims) == 1 && be == de {
			n := int64(1)
			for _, d := range dims {
				n *= d
			}
			if n == bdims[0] {
				return "multi-dimensional array flattened"
			}
		}
	}
	return ""
}

// arrayDims splits "u64 [7][3][2]" into "u64 " and 7, 3, 2.
func arrayDims(s string) (string, []int64, bool) {
	var dims []int64
	for strings.HasSuffix(s, "]") {
		i := strings.LastIndexByte(s, '[')
		if i < 0 {
			return "", nil, false
		}
		n, err := strconv.ParseInt(s[i+1:len(s)-1], 10, 64)
		if err != nil {
			return "", nil, false
		}
		dims = append([]int64{n}, dims...)
		s = s[:i]
	}
	return s, dims, len(dims) > 0
}

func TestDWARFMatchesBTF(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	path := labVmlinux(t)
	dw, err := LoadDWARF(path)
	if err != nil {
		t.Fatal(err)
	}
	bt := labBTF(t)
	known := map[string]int{}
	members := 0
	for _, name := range comparedStructs {
		d, err := dw.Struct(name)
		if err != nil {
			t.Errorf("DWARF: %v", err)
			continue
		}
		b, err := bt.Struct(name)
		if err != nil {
			t.Errorf("BTF: %v", err)
			continue
		}
		var diffs []string
		members += compareLayouts("struct "+name, d, b, &diffs, known, map[*Type]bool{})
		for _, d := range diffs {
			t.Errorf("%s", d)
		}
	}
	t.Logf("%d structs, %d members compared; known differences: %v", len(comparedStructs), members, known)
}

// compareLayouts compares two struct or union layouts, descending into
// anonymous members; it returns the number of members compared.
func compareLayouts(where string, d, b *Type, diffs *[]string, known map[string]int, seen map[*Type]bool) int {
	if seen[d] {
		return 0
	}
	seen[d] = true
	add := func(format string, args ...any) {
		*diffs = append(*diffs, where+": "+fmt.Sprintf(format, args...))
	}
	if d.Kind != b.Kind || d.Size != b.Size || d.Name != b.Name {
		add("DWARF %s (%d bytes), BTF %s (%d bytes)", TypeName(d), d.Size, TypeName(b), b.Size)
		return 0
	}
	if len(d.Members) != len(b.Members) {
		add("%d members in DWARF, %d in BTF", len(d.Members), len(b.Members))
		return 0
	}
	n := 0
	for i := range d.Members {
		dm, bm := d.Members[i], b.Members[i]
		n++
		at := fmt.Sprintf("member %d %q", i, dm.Name)
		if dm.Name != bm.Name || dm.Offset != bm.Offset || dm.BitOffset != bm.BitOffset || dm.BitSize != bm.BitSize {
			add("%s: DWARF %q at %d bit %d:%d, BTF %q at %d bit %d:%d", at,
				dm.Name, dm.Offset, dm.BitOffset, dm.BitSize, bm.Name, bm.Offset, bm.BitOffset, bm.BitSize)
			continue
		}
		dn, bn := TypeName(dm.Type), TypeName(bm.Type)
		if dn != bn {
			if why := knownDifference(dn, bn); why != "" {
				known[why]++
			} else {
				add("%s: type %q in DWARF, %q in BTF", at, dn, bn)
			}
		}
		if dm.Name == "" {
			dr, br := dm.Type.Resolve(), bm.Type.Resolve()
			if dr != nil && br != nil && (dr.Kind == KindStruct || dr.Kind == KindUnion) {
				n += compareLayouts(where+"."+at, dr, br, diffs, known, seen)
			}
		}
	}
	return n
}

// The rest of the Types interface gives the same answers from both
// sources, and is safe for concurrent use.
func TestTypesAPIBothSources(t *testing.T) {
	srcs := labSources(t)
	type answer struct {
		name string
		size int64
	}
	lookups := []struct {
		what string
		get  func(Types) (*Type, error)
	}{
		{"Named(unsigned long)", func(ty Types) (*Type, error) { return ty.Named("unsigned long") }},
		{"Named(long unsigned int)", func(ty Types) (*Type, error) { return ty.Named("long unsigned int") }},
		{"Named(struct list_head *)", func(ty Types) (*Type, error) { return ty.Named("struct list_head *") }},
		{"Named(const char *)", func(ty Types) (*Type, error) { return ty.Named("const char *") }},
		{"Named(pid_t)", func(ty Types) (*Type, error) { return ty.Named("pid_t") }},
		{"Named(_Bool)", func(ty Types) (*Type, error) { return ty.Named("_Bool") }},
		{"Named(char [16])", func(ty Types) (*Type, error) { return ty.Named("char [16]") }},
		{"Named(struct list_head *[4])", func(ty Types) (*Type, error) { return ty.Named("struct list_head *[4]") }},
		{"Named(union bpf_attr)", func(ty Types) (*Type, error) { return ty.Named("union bpf_attr") }},
		{"Union(bpf_attr)", func(ty Types) (*Type, error) { return ty.Union("bpf_attr") }},
		{"Enum(pid_type)", func(ty Types) (*Type, error) { return ty.Enum("pid_type") }},
		{"Typedef(atomic_long_t)", func(ty Types) (*Type, error) { return ty.Typedef("atomic_long_t") }},
		{"Func(schedule)", func(ty Types) (*Type, error) { return ty.Func("schedule") }},
		{"Func(wake_up_process)", func(ty Types) (*Type, error) { return ty.Func("wake_up_process") }},
		{"Var(runqueues)", func(ty Types) (*Type, error) { return ty.Var("runqueues") }},
	}
	var first []answer
	for i, ty := range srcs {
		for j, l := range lookups {
			got, err := l.get(ty)
			if err != nil {
				t.Errorf("%s: %s: %v", ty.Source(), l.what, err)
				if i == 0 {
					first = append(first, answer{})
				}
				continue
			}
			a := answer{TypeName(got), got.Size}
			if i == 0 {
				first = append(first, a)
				t.Logf("%s = %s (%d bytes)", l.what, a.name, a.size)
			} else if first[j] != a {
				t.Errorf("%s: DWARF %+v, BTF %+v", l.what, first[j], a)
			}
		}
		e, err := ty.Enum("pid_type")
		if err == nil && (len(e.Enums) != 5 || e.Enums[0].Name != "PIDTYPE_PID" || e.Enums[4].Value != 4) {
			t.Errorf("%s: enum pid_type %+v", ty.Source(), e.Enums)
		}
	}
	for _, ty := range srcs {
		done := make(chan error)
		for g := range 8 {
			go func() {
				var err error
				for _, n := range comparedStructs[g*4 : g*4+12] {
					if _, e := ty.Struct(n); e != nil && err == nil {
						err = e
					}
				}
				done <- err
			}()
		}
		for range 8 {
			if err := <-done; err != nil {
				t.Errorf("%s: concurrent lookups: %v", ty.Source(), err)
			}
		}
	}
}

// Every struct and union the DWARF index knows, against BTF. Names that
// BTF holds several different definitions of (file-local structs of two
// drivers) compare against the one of the same size, when there is one.
func TestDWARFMatchesBTFEverywhere(t *testing.T) {
	srcs := labSources(t)
	dw, bt := srcs[0].(*dwarfTypes), srcs[1].(*btfTypes)
	known := map[string]int{}
	compared, members, ambiguous := 0, 0, 0
	var missing []string
	for _, ns := range []nameSpace{nsStruct, nsUnion} {
		for name, ref := range dw.ix.names[ns] {
			if ref.Decl {
				continue
			}
			lookup := dw.Struct
			blookup := bt.Struct
			kw := "struct "
			if ns == nsUnion {
				lookup, blookup, kw = dw.Union, bt.Union, "union "
			}
			d, err := lookup(name)
			if err != nil {
				t.Errorf("DWARF: %v", err)
				continue
			}
			b, err := blookup(name)
			if err != nil {
				missing = append(missing, kw+name)
				continue
			}
			var diffs []string
			n := compareLayouts(kw+name, d, b, &diffs, known, map[*Type]bool{})
			if len(diffs) > 0 {
				// Several definitions of the name (fs/readdir.c and
				// fs/compat.c each have a struct getdents_callback):
				// one of them must be this one.
				for _, c := range btfCandidates(bt, name, ns == nsUnion) {
					var again []string
					if m := compareLayouts(kw+name, d, c, &again, map[string]int{}, map[*Type]bool{}); len(again) == 0 {
						diffs, n = nil, m
						ambiguous++
						break
					}
				}
			}
			members += n
			compared++
			for _, d := range diffs {
				t.Errorf("%s", d)
			}
		}
	}
	t.Logf("%d structs and unions, %d members compared; %d names with several definitions in BTF; not in BTF: %d %v; known differences: %v",
		compared, members, ambiguous, len(missing), missing[:min(len(missing), 10)], known)
	if compared < 5000 {
		t.Errorf("only %d structs compared", compared)
	}
}

// btfCandidates converts every struct (or union) of BTF with that name.
func btfCandidates(bt *btfTypes, name string, union bool) []*Type {
	bt.mu.Lock()
	defer bt.mu.Unlock()
	cands, _ := bt.byName(name)
	var out []*Type
	for _, c := range cands {
		switch c.(type) {
		case *btf.Struct:
			if union {
				continue
			}
		case *btf.Union:
			if !union {
				continue
			}
		default:
			continue
		}
		out = append(out, bt.convert(c))
	}
	bt.flush()
	return out
}

// Every named enum and typedef, likewise: enumerators and their values;
// what a typedef stands for.
func TestDWARFMatchesBTFEnumsTypedefs(t *testing.T) {
	srcs := labSources(t)
	dw, bt := srcs[0].(*dwarfTypes), srcs[1]
	known := map[string]int{}
	enums, typedefs := 0, 0
	// intel_epb.c and intel_pstate.c each have an enum
	// energy_perf_value_index: names with several definitions in BTF
	// match one of them.
	for name, ref := range dw.ix.names[nsEnum] {
		if ref.Decl {
			continue
		}
		d, err := dw.Enum(name)
		if err != nil {
			t.Errorf("DWARF: %v", err)
			continue
		}
		b, err := bt.Enum(name)
		if err != nil {
			t.Errorf("BTF: %v", err)
			continue
		}
		enums++
		same := func(b *Type) bool { return d.Size == b.Size && fmt.Sprint(d.Enums) == fmt.Sprint(b.Enums) }
		if !same(b) && !slices.ContainsFunc(btfEnums(bt.(*btfTypes), name), same) {
			t.Errorf("enum %s: DWARF %d bytes %v, BTF %d bytes %v", name, d.Size, d.Enums, b.Size, b.Enums)
		}
	}
	for name := range dw.ix.names[nsTypedef] {
		d, err := dw.Typedef(name)
		if err != nil {
			t.Errorf("DWARF: %v", err)
			continue
		}
		b, err := bt.Typedef(name)
		if err != nil {
			t.Errorf("BTF: %v", err)
			continue
		}
		typedefs++
		dn, bn := TypeName(d.Elem), TypeName(b.Elem)
		if dn != bn {
			if why := knownDifference(dn, bn); why != "" {
				known[why]++
			} else {
				t.Errorf("typedef %s: %q in DWARF, %q in BTF", name, dn, bn)
			}
		}
		if d.Size != b.Size {
			t.Errorf("typedef %s: %d bytes in DWARF, %d in BTF", name, d.Size, b.Size)
		}
	}
	t.Logf("%d enums, %d typedefs compared; known differences: %v", enums, typedefs, known)
}

func btfEnums(bt *btfTypes, name string) []*Type {
	bt.mu.Lock()
	defer bt.mu.Unlock()
	cands, _ := bt.byName(name)
	var out []*Type
	for _, c := range cands {
		if _, ok := c.(*btf.Enum); ok {
			out = append(out, bt.convert(c))
		}
	}
	bt.flush()
	return out
}

// The globals and functions BTF describes have the same types in DWARF.
// Static functions of the same name in several files (BTF keeps each) are
// checked against all of BTF's.
func TestDWARFMatchesBTFVarsFuncs(t *testing.T) {
	srcs := labSources(t)
	dw, bt := srcs[0], srcs[1].(*btfTypes)
	bt.mu.Lock()
	var vars, funcs []string
	for ty, err := range bt.spec.All() {
		if err != nil {
			t.Fatal(err)
		}
		switch ty := ty.(type) {
		case *btf.Var:
			vars = append(vars, ty.Name)
		case *btf.Func:
			funcs = append(funcs, ty.Name)
		}
	}
	bt.mu.Unlock()
	slices.Sort(funcs)
	funcs = slices.Compact(funcs)
	bad := 0
	for _, v := range vars {
		d, err := dw.Var(v)
		if err != nil {
			t.Errorf("DWARF: %v", err)
			continue
		}
		b, err := bt.Var(v)
		if err != nil {
			t.Errorf("BTF: %v", err)
			continue
		}
		if dn, bn := TypeName(d), TypeName(b); dn != bn && knownDifference(dn, bn) == "" {
			t.Errorf("variable %s: %q in DWARF, %q in BTF", v, dn, bn)
		}
	}
	missing := 0
	for _, f := range funcs {
		d, err := dw.Func(f)
		if err != nil {
			missing++
			continue
		}
		dn := TypeName(d)
		if slices.ContainsFunc(btfFuncs(bt, f), func(b *Type) bool {
			bn := TypeName(b)
			return bn == dn || knownDifference(dn, bn) != ""
		}) {
			continue
		}
		bad++
		if bad <= 10 {
			b, _ := bt.Func(f)
			t.Errorf("function %s: %q in DWARF, %q in BTF", f, dn, TypeName(b))
		}
	}
	t.Logf("%d variables and %d functions compared; %d functions differ; %d of BTF's functions not in the DWARF index", len(vars), len(funcs), bad, missing)
}

func btfFuncs(bt *btfTypes, name string) []*Type {
	bt.mu.Lock()
	defer bt.mu.Unlock()
	cands, _ := bt.byName(name)
	var out []*Type
	for _, c := range cands {
		if _, ok := c.(*btf.Func); ok {
			out = append(out, bt.convert(c))
		}
	}
	bt.flush()
	return out
}
