package debuginfo

import (
	"errors"
	"strings"
	"testing"
)

func TestLookupMemberSynthetic(t *testing.T) {
	ulong := &Type{Kind: KindInt, Name: "unsigned long", Size: 8}
	uint := &Type{Kind: KindInt, Name: "unsigned int", Size: 4}
	bits := &Type{Kind: KindArray, Elem: ulong, Len: 2, Size: 16}
	cpumask := &Type{Kind: KindStruct, Name: "cpumask", Size: 16, Members: []Member{{Name: "bits", Type: bits}}}
	cpumaskT := &Type{Kind: KindTypedef, Name: "cpumask_t", Elem: cpumask, Size: 16}
	se := &Type{Kind: KindStruct, Name: "sched_entity", Size: 24, Members: []Member{
		{Name: "load", Type: ulong}, {Name: "vruntime", Type: ulong, Offset: 16}}}
	anon := &Type{Kind: KindStruct, Size: 64, Members: []Member{
		{Name: "se", Type: se, Offset: 8},
		{Name: "cpus_mask", Type: cpumaskT, Offset: 32},
		{Name: "in_iowait", Type: uint, Offset: 48, BitOffset: 3, BitSize: 1},
	}}
	task := &Type{Kind: KindStruct, Name: "task_struct", Size: 128, Members: []Member{
		{Name: "state", Type: uint},
		{Type: anon, Offset: 64},
		{Name: "parent", Type: &Type{Kind: KindPointer, Size: 8, Elem: se}, Offset: 56},
	}}
	tests := []struct {
		path    string
		off     int64
		typ     string
		bit     int
		bitSize int
		err     string
	}{
		{path: "state", off: 0, typ: "unsigned int"},
		{path: "se", off: 72, typ: "struct sched_entity"},
		{path: "se.vruntime", off: 88, typ: "unsigned long"},
		{path: "cpus_mask.bits", off: 96, typ: "unsigned long [2]"},
		{path: "cpus_mask.bits[1]", off: 104, typ: "unsigned long"},
		{path: "in_iowait", off: 112, typ: "unsigned int", bit: 3, bitSize: 1},
		{path: "se.vruntim", err: `struct sched_entity: member "vruntim" (of "se.vruntim"): no such member`},
		{path: "parent.load", err: "is a pointer"},
		{path: "cpus_mask.bits[2]", err: "index beyond the 2 elements"},
		{path: "state[0]", err: "is not an array"},
		{path: "nothing", err: `struct task_struct: member "nothing": no such member`},
	}
	for _, tc := range tests {
		got, err := LookupMember(task, tc.path)
		if tc.err != "" {
			var me *MemberError
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.As(err, &me) {
				t.Errorf("LookupMember(%q) error %v, want one containing %q", tc.path, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("LookupMember(%q): %v", tc.path, err)
			continue
		}
		if got.Offset != tc.off || TypeName(got.Type) != tc.typ || got.BitOffset != tc.bit || got.BitSize != tc.bitSize {
			t.Errorf("LookupMember(%q) = %d %q bit %d:%d, want %d %q bit %d:%d", tc.path,
				got.Offset, TypeName(got.Type), got.BitOffset, got.BitSize, tc.off, tc.typ, tc.bit, tc.bitSize)
		}
	}
}

// Offsets in the lab kernel (6.1.0-56-cloud-amd64), from both sources:
// the values are crash's (struct -o) and pahole's for this build.
func TestLookupMemberLab(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	dw, err := LoadDWARF(labVmlinux(t))
	if err != nil {
		t.Fatal(err)
	}
	sources := []Types{dw, labBTF(t)}
	paths := []struct {
		strct, path string
	}{
		{"task_struct", "se.vruntime"}, {"task_struct", "comm"}, {"task_struct", "pid"},
		{"task_struct", "tasks.next"}, {"task_struct", "thread.sp"}, {"task_struct", "cpus_mask.bits[0]"},
		{"task_struct", "__state"}, {"task_struct", "sched_reset_on_fork"}, {"task_struct", "in_iowait"},
		{"mm_struct", "mmap_base"}, {"mm_struct", "pgd"}, {"mm_struct", "mm_mt.ma_root"},
		{"page", "lru"}, {"page", "compound_head"}, {"page", "_mapcount"}, {"page", "pt_mm"},
		{"rq", "cfs.nr_running"}, {"rq", "curr"}, {"module", "name"}, {"module", "list"},
		{"printk_ringbuffer", "desc_ring.count_bits"}, {"uts_namespace", "name.release"},
	}
	for _, p := range paths {
		var first MemberPath
		for i, ty := range sources {
			st, err := ty.Struct(p.strct)
			if err != nil {
				t.Fatal(err)
			}
			got, err := LookupMember(st, p.path)
			if err != nil {
				t.Errorf("%s: %v", ty.Source(), err)
				continue
			}
			if i == 0 {
				first = got
				t.Logf("%s.%s: %d (bit %d:%d) %s", p.strct, p.path, got.Offset, got.BitOffset, got.BitSize, TypeName(got.Type))
				continue
			}
			if got.Offset != first.Offset || got.BitOffset != first.BitOffset || got.BitSize != first.BitSize || TypeName(got.Type) != TypeName(first.Type) {
				t.Errorf("%s.%s: DWARF %+v, BTF %+v", p.strct, p.path, first, got)
			}
		}
	}
	task, _ := dw.Struct("task_struct")
	if _, err := LookupMember(task, "mm.mmap_base"); err == nil || !strings.Contains(err.Error(), "pointer") {
		t.Errorf("task_struct mm.mmap_base: %v, want an error about the pointer", err)
	}
}
