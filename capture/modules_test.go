package capture

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"salvage/lab"
	"salvage/lab/corpus"
)

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func moduleNames(ms []Module) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name)
	}
	return out
}

// A fixture tree as depmod writes it: modules.dep lists each module's
// dependencies (all of them, as depmod does), modules.builtin the built-in
// ones, modules.alias the fs- aliases.
func TestModuleTreeResolve(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"modules.dep": `kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/fs/xfs/xfs.ko.zst: kernel/lib/libcrc32c.ko.zst
kernel/lib/libcrc32c.ko.zst:
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/net/core/failover.ko:
kernel/drivers/scsi/sd-mod.ko:
kernel/loop/a.ko: kernel/loop/b.ko
kernel/loop/b.ko: kernel/loop/a.ko
kernel/broken/needs-gone.ko: kernel/broken/gone.ko
`,
		"modules.builtin":                    "kernel/fs/ext4/ext4.ko\nkernel/drivers/block/loop.ko\n",
		"modules.alias":                      "alias fs-xfs xfs\nalias fs-ext3 ext4\nalias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci\n",
		"kernel/drivers/block/virtio_blk.ko": "x", "kernel/drivers/virtio/virtio_ring.ko": "xx",
	})
	tree, err := OpenModuleTree(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		names []string
		want  []string
		err   string
	}{
		{names: []string{"virtio_blk"}, want: []string{"virtio_ring", "virtio", "virtio_blk"}},
		{names: []string{"virtio_pci", "virtio_blk"}, want: []string{"virtio_ring", "virtio", "virtio_blk", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci"}},
		{names: []string{"xfs"}, want: []string{"libcrc32c", "xfs"}},
		{names: []string{"virtio_net"}, want: []string{"failover", "net_failover", "virtio_ring", "virtio", "virtio_net"}},
		{names: []string{"sd-mod", "ext4", "loop"}, want: []string{"sd_mod"}}, // '-' is '_'; built-ins dropped
		{names: []string{"a"}, err: "kernel modules: a dependency loop through a"},
		{names: []string{"needs-gone"}, err: "kernel modules: gone (needed by needs_gone) is not in " + dir},
		{names: []string{"nosuch"}, err: "kernel modules: nosuch is not in " + dir},
	} {
		got, err := tree.Resolve(c.names)
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("Resolve(%v): %v, want error %q", c.names, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Resolve(%v): %v", c.names, err)
			continue
		}
		if g := moduleNames(got); !reflect.DeepEqual(g, c.want) {
			t.Errorf("Resolve(%v) = %v, want %v", c.names, g, c.want)
		}
	}
	if tree.Alias("fs-xfs") != "xfs" || tree.Alias("fs-ext3") != "ext4" || !tree.Builtin("ext4") || tree.Builtin("xfs") {
		t.Error("modules.alias / modules.builtin misread")
	}
	if got, _ := tree.Resolve([]string{"virtio_blk"}); got[0].Size != 2 || got[0].Path != "kernel/drivers/virtio/virtio_ring.ko" {
		t.Errorf("virtio_ring: %+v, want its path and size 2", got[0])
	}
}

// checkLoadOrder checks every module comes after its dependencies.
func checkLoadOrder(t *testing.T, tree *ModuleTree, mods []Module) {
	t.Helper()
	pos := map[string]int{}
	for i, m := range mods {
		pos[m.Name] = i
	}
	for i, m := range mods {
		deps, _ := tree.deps(&mods[i])
		for _, d := range deps {
			if j, ok := pos[d]; !ok || j > i {
				t.Errorf("%s is loaded before its dependency %s: %v", m.Name, d, moduleNames(mods))
			}
		}
	}
}

// The lab's real virtio modules: with depmod's modules.dep, and with no
// index at all (each module's .modinfo depends=), the disk's drivers
// resolve to the same modules, each after what it depends on — those the
// lab's guest loads for its disk (lab-notes: virtio, virtio_ring,
// virtio_pci_legacy_dev, virtio_pci_modern_dev, virtio_pci, virtio_blk).
func TestModuleTreeLab(t *testing.T) {
	m := corpus.Require(t)
	a, err := lab.FindE2EAssets(m)
	if err != nil {
		t.Fatal(err)
	}
	stage := t.TempDir()
	tree := filepath.Join(stage, "lib/modules", a.Release)
	for _, ko := range a.Modules {
		b, err := os.ReadFile(ko)
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Join(tree, "kernel/drivers"), 0o755)
		os.WriteFile(filepath.Join(tree, "kernel/drivers", filepath.Base(ko)), b, 0o644)
	}
	want := []string{"virtio", "virtio_blk", "virtio_pci", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_ring"}
	resolve := func(what string) {
		mt, err := OpenModuleTree(tree)
		if err != nil {
			t.Fatal(err)
		}
		mods, err := mt.Resolve([]string{"virtio_blk", "virtio_pci"})
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		got := moduleNames(mods)
		sorted := append([]string(nil), got...)
		sort.Strings(sorted)
		if !reflect.DeepEqual(sorted, want) {
			t.Errorf("%s: %v, want %v", what, got, want)
		}
		checkLoadOrder(t, mt, mods)
		t.Logf("%s: load order %v", what, got)
	}
	resolve(".modinfo depends=")
	if out, err := exec.Command("depmod", "-b", stage, a.Release).CombinedOutput(); err != nil {
		t.Fatalf("depmod: %v\n%s", err, out)
	}
	resolve("modules.dep")
}

// A fake sysfs as the lab guest's: vda on virtio1 on the PCI device
// 0000:00:04.0, driven by virtio_blk and virtio_pci; a built-in driver on
// the bus above (no module link); loop0 with no device.
func TestDeviceModules(t *testing.T) {
	root := t.TempDir()
	pci := "sys/devices/pci0000:00/0000:00:04.0"
	for _, d := range []string{pci + "/virtio1/block/vda/vda1", "sys/bus/pci/drivers/virtio-pci", "sys/bus/virtio/drivers/virtio_blk",
		"sys/bus/pci/drivers/pcieport", "sys/module/virtio_pci", "sys/module/virtio_blk", "sys/class/block", "sys/devices/virtual/block/loop0"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	os.WriteFile(filepath.Join(root, pci, "virtio1/block/vda/vda1/partition"), []byte("1\n"), 0o644)
	for link, target := range map[string]string{
		pci + "/driver":                            "../../../bus/pci/drivers/virtio-pci",
		"sys/devices/pci0000:00/driver":            "../../bus/pci/drivers/pcieport",
		"sys/bus/pci/drivers/virtio-pci/module":    "../../../../module/virtio_pci",
		pci + "/virtio1/driver":                    "../../../../bus/virtio/drivers/virtio_blk",
		"sys/bus/virtio/drivers/virtio_blk/module": "../../../../module/virtio_blk",
		pci + "/virtio1/block/vda/device":          "../../../virtio1",
		"sys/class/block/vda":                      "../../devices/pci0000:00/0000:00:04.0/virtio1/block/vda",
		"sys/class/block/vda1":                     "../../devices/pci0000:00/0000:00:04.0/virtio1/block/vda/vda1",
		"sys/class/block/loop0":                    "../../devices/virtual/block/loop0",
	} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name string
		want []string
		err  string
	}{
		{name: "vda", want: []string{"virtio_blk", "virtio_pci"}},
		{name: "vda1", want: []string{"virtio_blk", "virtio_pci"}},
		{name: "loop0"},
		{name: "sdq", err: "block device sdq: "},
	} {
		got, builtin, err := DeviceDrivers(root, c.name)
		if c.err != "" {
			if err == nil || !strings.HasPrefix(err.Error(), c.err) {
				t.Errorf("DeviceDrivers(%s): %v, want %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("DeviceDrivers(%s) = %v, %v; want %v", c.name, got, err, c.want)
		}
		if wantB := []string{"pcieport"}; c.want != nil && !reflect.DeepEqual(builtin, wantB) {
			t.Errorf("DeviceDrivers(%s) built in: %v, want %v", c.name, builtin, wantB)
		}
	}
}
