package kernel

import (
	"strings"
	"testing"

	"salvage/debuginfo"
)

// TestFormatPages: crash's pages_to_size, at its unit boundaries and the
// ".0" it drops (memory.c).
func TestFormatPages(t *testing.T) {
	for _, c := range []struct {
		pages uint64
		want  string
	}{
		{0, "0"}, {1, "4 KB"}, {21, "84 KB"}, {255, "1020 KB"}, {256, "1 MB"}, {183556, "717 MB"},
		{130602, "510.2 MB"}, {262144, "1 GB"}, {393216, "1.5 GB"}, {91651, "358 MB"},
	} {
		if got := FormatPages(c.pages, 4096); got != c.want {
			t.Errorf("FormatPages(%d) = %q, want %q", c.pages, got, c.want)
		}
	}
}

// memTestKernel is a synthetic kernel with what the corpus guests lack:
// swap devices, registered huge pages, overcommit in kilobytes.
func memTestKernel(t *testing.T) (*Kernel, fakeVM) {
	t.Helper()
	ulong := &debuginfo.Type{Kind: debuginfo.KindInt, Name: "unsigned long", Size: 8}
	uint := &debuginfo.Type{Kind: debuginfo.KindInt, Name: "unsigned int", Size: 4}
	s64 := &debuginfo.Type{Kind: debuginfo.KindInt, Name: "s64", Size: 8, Encoding: debuginfo.EncSigned}
	// The members salvage reads, at their 6.1 offsets' order; the rest
	// of each struct is padding here.
	si := &debuginfo.Type{Kind: debuginfo.KindStruct, Name: "swap_info_struct", Size: 64, Members: []debuginfo.Member{
		{Name: "flags", Type: ulong}, {Name: "pages", Type: uint, Offset: 16}, {Name: "inuse_pages", Type: uint, Offset: 20}}}
	hs := &debuginfo.Type{Kind: debuginfo.KindStruct, Name: "hstate", Size: 32, Members: []debuginfo.Member{
		{Name: "order", Type: uint}, {Name: "nr_huge_pages", Type: ulong, Offset: 8}, {Name: "free_huge_pages", Type: ulong, Offset: 16}}}
	pc := &debuginfo.Type{Kind: debuginfo.KindStruct, Name: "percpu_counter", Size: 40, Members: []debuginfo.Member{
		{Name: "count", Type: s64, Offset: 8}}}
	ts := fakeTypes{"struct swap_info_struct": si, "struct hstate": hs, "struct percpu_counter": pc}
	const base = 0xffffffff82000000
	syms := fakeSyms{
		"nr_swapfiles": base, "swap_info": base + 0x100, "hstates": base + 0x200, "hugetlb_max_hstate": base + 0x8,
		"sysctl_overcommit_memory": base + 0x10, "sysctl_overcommit_kbytes": base + 0x18,
		"sysctl_overcommit_ratio": base + 0x20, "vm_committed_as": base + 0x300,
	}
	vm := fakeVM{}
	vm.write(base, []byte{3, 0, 0, 0}) // nr_swapfiles
	// swap_info[0]: used, 1000 pages, 10 in use; [1] NULL; [2] not
	// SWP_USED (being swapped off): not counted.
	vm.put64(base+0x100, base+0x1000)
	vm.put64(base+0x110, base+0x1100)
	vm.put64(base+0x1000, swpUsed|2)
	vm.put64(base+0x1010, 10<<32|1000)
	vm.put64(base+0x1100, 2)
	vm.put64(base+0x1110, 500)
	// Two hstates registered: 3 2 MiB pages (1 free) and one 1 GiB page.
	vm.write(base+0x8, []byte{2, 0, 0, 0})
	vm.write(base+0x200, []byte{9, 0, 0, 0})
	vm.put64(base+0x208, 3)
	vm.put64(base+0x210, 1)
	vm.write(base+0x220, []byte{18, 0, 0, 0})
	vm.put64(base+0x228, 1)
	vm.put64(base+0x230, 0)
	vm.write(base+0x20, []byte{50, 0, 0, 0}) // sysctl_overcommit_ratio
	vm.put64(base+0x308, 12345)              // vm_committed_as.count
	k, err := New(nil, syms, ts, vm)
	if err != nil {
		t.Fatal(err)
	}
	return k, vm
}

// TestMemInfoSwapHugeCommit: the figures the corpus guests have none of
// (no swap, no huge pages, overcommit by ratio), on synthetic memory.
func TestMemInfoSwapHugeCommit(t *testing.T) {
	k, vm := memTestKernel(t)
	total, used, err := k.swapPages(k.Types)
	if err != nil || total != 1000 || used != 10 {
		t.Errorf("swap: %d pages, %d used, %v; want 1000, 10", total, used, err)
	}
	htotal, hfree, err := k.hugePages(k.Types)
	if err != nil || htotal != 3*512+1<<18 || hfree != 512 {
		t.Errorf("huge pages: %d, %d free, %v; want %d, 512", htotal, hfree, err, 3*512+1<<18)
	}
	mi := &MemInfo{PageSize: 4096, TotalRAM: 1 << 20, HugeTotal: htotal, SwapTotal: total}
	if err := k.commitInfo(mi); err != nil || !mi.HasCommit {
		t.Fatal(err)
	}
	if want := uint64((1<<20-htotal)*50/100 + 1000); mi.CommitLimit != want || mi.Committed != 12345 {
		t.Errorf("ratio: limit %d committed %d; want %d 12345", mi.CommitLimit, mi.Committed, want)
	}
	// sysctl_overcommit_kbytes, when set, replaces the ratio; a negative
	// vm_committed_as shows as 0, as crash and /proc/meminfo show it.
	vm.put64(0xffffffff82000018, 8192)
	vm.put64(0xffffffff82000308, uint64(1<<64-5))
	mi = &MemInfo{PageSize: 4096, TotalRAM: 1 << 20, SwapTotal: total}
	if err := k.commitInfo(mi); err != nil || mi.CommitLimit != 2048+1000 || mi.Committed != 0 {
		t.Errorf("kbytes: limit %d committed %d, %v; want 3048 0", mi.CommitLimit, mi.Committed, err)
	}
	// A swap_info_struct the dump lacks is an error naming it.
	vm.put64(0xffffffff82000100, 0xffffffff83000000)
	if _, _, err := k.swapPages(k.Types); err == nil || !strings.Contains(err.Error(), "swap_info[0]") {
		t.Errorf("unreadable swap_info[0]: %v", err)
	}
}

// TestMemInfoNoTypes: without types MemInfo is one clear error.
func TestMemInfoNoTypes(t *testing.T) {
	k, err := New(nil, fakeSyms{}, nil, fakeVM{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.MemInfo(); err == nil || !strings.Contains(err.Error(), "no type information") {
		t.Errorf("MemInfo without types: %v", err)
	}
}
