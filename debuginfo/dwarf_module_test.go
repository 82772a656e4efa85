package debuginfo

import (
	"path/filepath"
	"testing"
)

// A debug module's DWARF and its split BTF (on the vmlinux BTF) give the
// same layout of the module's own structs.
func TestModuleDWARFMatchesBTF(t *testing.T) {
	m := labManifest(t)
	dir := m.Path(m.Kernels[0].DebugModules)
	if m.Kernels[0].DebugModules == "" {
		t.Fatalf("lab corpus at %s has no debug modules", m.Root)
	}
	vmlinuxBTF := labBTF(t)
	for _, c := range []struct{ ko, strct string }{
		{"virtio_blk.ko", "virtio_blk"},
		{"virtio_ring.ko", "vring_virtqueue"},
		{"qemu_fw_cfg.ko", "fw_cfg_sysfs_entry"},
	} {
		ko := filepath.Join(dir, c.ko)
		dw, err := LoadDWARFModule(ko)
		if err != nil {
			t.Fatal(err)
		}
		bt, err := LoadModuleBTFFromELF(ko, vmlinuxBTF)
		if err != nil {
			t.Fatal(err)
		}
		d, err := dw.Struct(c.strct)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		b, err := bt.Struct(c.strct)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		var diffs []string
		n := compareLayouts(c.ko+": struct "+c.strct, d, b, &diffs, map[string]int{}, map[*Type]bool{})
		for _, d := range diffs {
			t.Errorf("%s", d)
		}
		if n == 0 {
			t.Errorf("%s: struct %s has no members", c.ko, c.strct)
		}
		t.Logf("%s: struct %s, %d bytes, %d members agree; declared at %s", c.ko, c.strct, d.Size, n, d.Decl)
		// Kernel types the module uses are there too, complete.
		if l, err := dw.Struct("list_head"); err != nil || l.Size != 16 {
			t.Errorf("%s: struct list_head: %v %v", c.ko, l, err)
		}
	}
}
