package debuginfo

import (
	"slices"
	"testing"
)

func testTable() *Table {
	return NewTable("test", []Symbol{
		{Name: "panic", Addr: 0x3000, Size: 0x100, Type: 'T'},
		{Name: "_text", Addr: 0x1000, Type: 'T'},
		{Name: "startup_64", Addr: 0x1000, Size: 0x70, Type: 'T'},
		{Name: "_stext", Addr: 0x1000, Type: 'T'},
		{Name: "helper", Addr: 0x2000, Size: 0x20, Type: 't'},
		{Name: "helper", Addr: 0x2800, Size: 0x20, Type: 't'},
		{Name: "label", Addr: 0x2810, Type: 't'},
		{Name: "init_task", Addr: 0x5000, Size: 0x2600, Type: 'D'},
		{Name: "counter", Addr: 0x9000, Size: 8, Type: 'd'},
		{Name: "counter", Addr: 0x9100, Size: 8, Type: 'D'},
	})
}

func TestTableLookup(t *testing.T) {
	tab := testTable()
	tests := []struct {
		name string
		addr uint64
		ok   bool
	}{
		{"panic", 0x3000, true},
		{"helper", 0x2000, true},  // two locals: the lowest
		{"counter", 0x9100, true}, // a global beats a local
		{"nothing", 0, false},
	}
	for _, tt := range tests {
		s, ok := tab.Lookup(tt.name)
		if ok != tt.ok || s.Addr != tt.addr {
			t.Errorf("Lookup(%q) = %#x %v, want %#x %v", tt.name, s.Addr, ok, tt.addr, tt.ok)
		}
	}
	if got := tab.LookupAll("helper"); len(got) != 2 || got[0].Addr != 0x2000 || got[1].Addr != 0x2800 {
		t.Errorf("LookupAll(helper) = %v", got)
	}
}

func TestTableByAddr(t *testing.T) {
	tab := testTable()
	tests := []struct {
		addr uint64
		name string
		off  uint64
		ok   bool
	}{
		{0xfff, "", 0, false},
		{0x1000, "startup_64", 0, true}, // the sized alias
		{0x1010, "startup_64", 0x10, true},
		{0x1070, "startup_64", 0x70, true}, // its end: a return address
		{0x1071, "_text", 0x71, true},      // past startup_64's end: a label of unknown size
		{0x201f, "helper", 0x1f, true},
		{0x2020, "helper", 0x20, true}, // a return address after a final call
		{0x2021, "", 0, false},
		{0x9108, "", 0, false},     // data: the end is not in it
		{0x2811, "label", 1, true}, // nearest: a label inside helper
		{0x30ff, "panic", 0xff, true},
		{0x7000, "init_task", 0x2000, true},
		{0x9104, "counter", 4, true},
		{0xffffffffffffffff, "", 0, false},
	}
	for _, tt := range tests {
		s, off, ok := tab.ByAddr(tt.addr)
		if ok != tt.ok || s.Name != tt.name || off != tt.off {
			t.Errorf("ByAddr(%#x) = %q+%#x %v, want %q+%#x %v", tt.addr, s.Name, off, ok, tt.name, tt.off, tt.ok)
		}
	}
}

func TestTableAllAndMatch(t *testing.T) {
	tab := testTable()
	var addrs []uint64
	var names []string
	for s := range tab.All {
		addrs = append(addrs, s.Addr)
		names = append(names, s.Name)
	}
	if !slices.IsSorted(addrs) || len(addrs) != tab.Len() {
		t.Errorf("All: %v", addrs)
	}
	if names[0] != "startup_64" || names[1] != "_text" || names[2] != "_stext" {
		t.Errorf("aliases at 0x1000 in order %v; want the sized one first, then the input order", names[:3])
	}
	if got := tab.Match("text"); len(got) != 2 || got[0].Name != "_text" || got[1].Name != "_stext" {
		t.Errorf("Match(text) = %v", got)
	}
	n := 0
	for range tab.All {
		n++
		if n == 2 {
			break
		}
	}
}

func TestMerge(t *testing.T) {
	vmlinux := testTable()
	mod := NewTable("module virtio_blk", []Symbol{
		{Name: "virtblk_probe", Addr: 0xffffffffc0001000, Size: 0x200, Type: 't', Module: "virtio_blk"},
		{Name: "panic", Addr: 0xffffffffc0002000, Size: 0x10, Type: 't', Module: "virtio_blk"},
		{Name: "virtblk_remove", Addr: 0xffffffffc0003000, Type: 't', Module: "virtio_blk"},
	})
	all := Merge(vmlinux, nil, mod)
	if s, ok := all.Lookup("panic"); !ok || s.Module != "" {
		t.Errorf("panic: %+v: want vmlinux's", s)
	}
	if s, ok := all.Lookup("virtio_blk:panic"); !ok || s.Addr != 0xffffffffc0002000 {
		t.Errorf("virtio_blk:panic: %+v %v", s, ok)
	}
	if s, off, ok := all.ByAddr(0xffffffffc0001010); !ok || s.Name != "virtblk_probe" || off != 0x10 {
		t.Errorf("ByAddr in the module: %s+%#x %v", s.Name, off, ok)
	}
	if s, _, ok := all.ByAddr(0x3010); !ok || s.Name != "panic" || s.Module != "" {
		t.Errorf("ByAddr in vmlinux: %+v %v", s, ok)
	}
	var addrs []uint64
	for s := range all.All {
		addrs = append(addrs, s.Addr)
	}
	if len(addrs) != vmlinux.Len()+mod.Len() || !slices.IsSorted(addrs) {
		t.Errorf("All: %x", addrs)
	}
	if got := all.Match("panic"); len(got) != 2 || got[0].Addr != 0x3000 {
		t.Errorf("Match(panic) = %v", got)
	}
	if got := all.Source(); got != "test + module virtio_blk" {
		t.Errorf("Source %q", got)
	}
	if Merge(vmlinux) != Symbols(vmlinux) {
		t.Error("Merge of one table is not that table")
	}
	// Merging a merge flattens it; stopping All early is fine.
	n := 0
	for range Merge(all, NewTable("empty", nil)).All {
		n++
		if n == 3 {
			break
		}
	}
}
