package debuginfo

import (
	"fmt"
	"strings"
	"testing"
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
	return ""
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
