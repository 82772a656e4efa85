package capture

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// initramfsRoot is a fake production machine: kdump.conf names an ext4
// target on /dev/vdb, a virtio disk in sysfs; the module tree is a
// depmod-style fixture; extra_bins is the host's /usr/bin/true, a
// dynamic program, with its loader and libraries copied in.
func initramfsRoot(t *testing.T, conf string) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "vdb.img")
	mkfsImage(t, img, "ext4", "crash", "66666666-7777-8888-9999-aaaaaaaaaaaa")
	root := fakeBlockRoot(t, map[string]string{"vdb": img})
	pci := "sys/devices/pci0000:00/0000:00:05.0"
	os.RemoveAll(filepath.Join(root, "sys/class/block/vdb"))
	for _, d := range []string{pci + "/virtio2/block/vdb", "sys/bus/pci/drivers/virtio-pci", "sys/bus/virtio/drivers/virtio_blk", "sys/module/virtio_pci", "sys/module/virtio_blk"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	for link, target := range map[string]string{
		pci + "/driver": "../../../bus/pci/drivers/virtio-pci",
		// virtio-pci is built into the running kernel (no module link);
		// the capture kernel's tree has it as a module.
		pci + "/virtio2/driver":                    "../../../../bus/virtio/drivers/virtio_blk",
		"sys/bus/virtio/drivers/virtio_blk/module": "../../../../module/virtio_blk",
		pci + "/virtio2/block/vdb/device":          "../../../virtio2",
		"sys/class/block/vdb":                      "../../devices/pci0000:00/0000:00:05.0/virtio2/block/vdb",
	} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"proc/sys/kernel/osrelease":        "6.1.0-56-cloud-amd64\n",
		"proc/filesystems":                 "nodev\tsysfs\nnodev\ttmpfs\n\text4\n",
		"proc/self/mountinfo":              "22 1 0:21 / / rw,relatime - rootfs rootfs rw\n",
		"boot/config-6.1.0-56-cloud-amd64": "CONFIG_RD_GZIP=y\nCONFIG_RD_ZSTD=y\n",
		"etc/salvage/kdump.conf":           conf,
		"etc/default/kdump-tools":          "USE_KDUMP=1\nKDUMP_NUM_DUMPS=3\n",
		"usr/sbin/salvage":                 "a static salvage",
		"lib/modules/6.1.0-56-cloud-amd64/modules.dep": `kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/net/e1000.ko:
kernel/fs/xfs/xfs.ko:
`,
		"lib/modules/6.1.0-56-cloud-amd64/modules.builtin": "kernel/fs/ext4/ext4.ko\n",
	}
	for _, m := range []string{"block/virtio_blk", "virtio/virtio_ring", "virtio/virtio", "virtio/virtio_pci", "virtio/virtio_pci_modern_dev",
		"virtio/virtio_pci_legacy_dev", "net/e1000"} {
		files["lib/modules/6.1.0-56-cloud-amd64/kernel/drivers/"+m+".ko"] = "module " + m
	}
	for n, b := range files {
		p := filepath.Join(root, n)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(root, "usr/sbin/salvage"), 0o755)
	// /usr/bin/true and what it needs, as on this machine.
	for _, f := range []string{"/usr/bin/true", "/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/libc.so.6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Join(root, filepath.Dir(f)), 0o755)
		if err := os.WriteFile(filepath.Join(root, f), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// unpack decompresses a zstd initramfs and lists it with GNU cpio,
// extracting it into a directory.
func unpack(t *testing.T, img string) (string, []string) {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := zstd.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s is not zstd: %v", img, err)
	}
	dir := t.TempDir()
	cmd := exec.Command("cpio", "-idm", "--quiet", "--no-absolute-filenames")
	cmd.Dir, cmd.Stdin = dir, bytes.NewReader(raw)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -i: %v\n%s", err, out)
	}
	var names []string
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			names = append(names, rel)
		}
		return nil
	})
	sort.Strings(names)
	return dir, names
}

func TestBuildInitramfs(t *testing.T) {
	root := initramfsRoot(t, "ext4 /dev/vdb\npath /dumps\nextra_bins /usr/bin/true\nextra_modules e1000\nfinal_action poweroff\nkdump_pre /usr/sbin/salvage version\n")
	o := InitramfsOptions{Root: root, Salvage: filepath.Join(root, "usr/sbin/salvage")}
	r, err := BuildInitramfs(o)
	if err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(root, "var/lib/salvage/initrd.img-6.1.0-56-cloud-amd64")
	if r.Output != img || r.UpToDate || r.Compression != "zstd" {
		t.Errorf("result %+v", r)
	}
	if st, err := os.Stat(img); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("%s: %v, want mode 0600", img, err)
	}
	dir, names := unpack(t, img)
	rel := "lib/modules/6.1.0-56-cloud-amd64/kernel/drivers/"
	want := []string{"dev/console", "dev/kmsg", "etc/default/kdump-tools", "etc/salvage/capture.json", "etc/salvage/kdump.conf", "init",
		"lib/x86_64-linux-gnu/libc.so.6", "lib64/ld-linux-x86-64.so.2",
		rel + "block/virtio_blk.ko", rel + "net/e1000.ko", rel + "virtio/virtio.ko", rel + "virtio/virtio_pci.ko", rel + "virtio/virtio_pci_legacy_dev.ko",
		rel + "virtio/virtio_pci_modern_dev.ko", rel + "virtio/virtio_ring.ko", "usr/bin/true", "usr/sbin/salvage"}
	sort.Strings(want)
	if !reflect.DeepEqual(names, want) {
		t.Errorf("the image holds\n  %q\nwant\n  %q", names, want)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "init")); string(b) != "a static salvage" {
		t.Errorf("/init is %q, not the salvage binary", b)
	}
	if l, err := os.Readlink(filepath.Join(dir, "usr/sbin/salvage")); l != "/init" {
		t.Errorf("kdump_pre's salvage is not a link to /init: %q, %v", l, err)
	}
	var c CaptureConfig
	b, _ := os.ReadFile(filepath.Join(dir, "etc/salvage/capture.json"))
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	wantMods := []string{"kernel/drivers/net/e1000.ko", "kernel/drivers/virtio/virtio_ring.ko", "kernel/drivers/virtio/virtio.ko",
		"kernel/drivers/block/virtio_blk.ko", "kernel/drivers/virtio/virtio_pci_modern_dev.ko", "kernel/drivers/virtio/virtio_pci_legacy_dev.ko",
		"kernel/drivers/virtio/virtio_pci.ko"}
	if c.Target.String() != "ext4 /dev/vdb" || c.Path != "/dumps" || c.NumDumps != 3 || c.FinalAction != "poweroff" || c.FailureAction != "reboot" ||
		!c.DumpDmesg || c.Key != r.Key || !reflect.DeepEqual(c.KdumpPre, []string{"/usr/sbin/salvage", "version"}) || !reflect.DeepEqual(c.Modules, wantMods) || c.Local != nil {
		t.Errorf("capture.json: %+v", c)
	}

	// Nothing changed: up to date, nothing written.
	st0, _ := os.Stat(img)
	r2, err := BuildInitramfs(o)
	if err != nil || !r2.UpToDate || r2.Key != r.Key {
		t.Errorf("a second build: %+v, %v; want up to date", r2, err)
	}
	if st, _ := os.Stat(img); !st.ModTime().Equal(st0.ModTime()) {
		t.Error("an up-to-date image was written again")
	}
	// The configuration, a module or salvage changed: rebuilt.
	os.WriteFile(filepath.Join(root, "boot/vmlinuz-6.1.0-56-cloud-amd64"), []byte("a kernel"), 0o644)
	if r3, _ := BuildInitramfs(o); r3.UpToDate {
		t.Error("a new capture kernel did not rebuild the image")
	} else {
		r = r3
	}
	for _, change := range []string{"etc/default/kdump-tools", "lib/modules/6.1.0-56-cloud-amd64/kernel/drivers/virtio/virtio.ko", "usr/sbin/salvage",
		"boot/vmlinuz-6.1.0-56-cloud-amd64"} {
		p := filepath.Join(root, change)
		b, _ := os.ReadFile(p)
		os.WriteFile(p, append(b, '\n'), 0o644)
		r3, err := BuildInitramfs(o)
		if err != nil || r3.UpToDate || r3.Key == r.Key {
			t.Errorf("after changing %s: %+v, %v; want a rebuild with a new key", change, r3, err)
		}
		r = r3
	}
	// force_rebuild 1 always rebuilds.
	os.WriteFile(filepath.Join(root, "etc/salvage/kdump.conf"), []byte("ext4 /dev/vdb\nforce_rebuild 1\n"), 0o644)
	for i := 0; i < 2; i++ {
		if r, err := BuildInitramfs(o); err != nil || r.UpToDate {
			t.Errorf("force_rebuild, build %d: %+v, %v", i, r, err)
		}
	}
}

// Mistakes are one line naming the file or the thing that is wrong.
func TestBuildInitramfsErrors(t *testing.T) {
	for _, c := range []struct {
		conf string
		edit func(root string)
		want string
	}{
		{conf: "ext4 /dev/vdz\n", want: "target ext4 /dev/vdz: device /dev/vdz: "},
		{conf: "ext4 LABEL=nope\n", want: "target ext4 LABEL=nope: device LABEL=nope: no block device has it (the device must be present to find its drivers)"},
		{conf: "bogus 1\n", want: `the configuration has mistakes: /etc/salvage/kdump.conf:1: unknown directive "bogus"`},
		{conf: "xfs /dev/vdb\n", want: "kernel modules: libcrc32c"},
		{conf: "btrfs /dev/vdb\n", want: "filesystem btrfs: no module btrfs in "},
		{conf: "ext4 /dev/vdb\nextra_modules nosuch\n", want: "kernel modules: nosuch is not in "},
		{conf: "ext4 /dev/vdb\nextra_bins /usr/bin/nothere\n", want: "extra_bins/kdump_pre/kdump_post /usr/bin/nothere: "},
		{conf: "path /var/crash\n", want: "local target /var/crash: it is on / (rootfs), which the capture kernel cannot mount again; give `<fstype> <device>` or raw in /etc/salvage/kdump.conf"},
		{conf: "ssh root@10.0.2.2\n", want: "ssh target: the ssh key /root/.ssh/kdump_id_rsa is missing: run `salvage kdump propagate`"},
		{conf: "ext4 /dev/vdb\n", edit: func(root string) { os.Remove(filepath.Join(root, "usr/sbin/salvage")) }, want: "the salvage binary: "},
		{conf: "ext4 /dev/vdb\n", edit: func(root string) {
			b, _ := os.ReadFile("/usr/bin/true")
			os.WriteFile(filepath.Join(root, "usr/sbin/salvage"), b, 0o755)
		}, want: "is dynamically linked: the capture initramfs needs a static salvage (CGO_ENABLED=0)"},
	} {
		root := initramfsRoot(t, c.conf)
		if c.conf == "xfs /dev/vdb\n" {
			// xfs.ko needs libcrc32c, which the tree lacks.
			p := filepath.Join(root, "lib/modules/6.1.0-56-cloud-amd64/modules.dep")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, bytes.Replace(b, []byte("kernel/fs/xfs/xfs.ko:"), []byte("kernel/fs/xfs/xfs.ko: kernel/lib/libcrc32c.ko"), 1), 0o644)
			os.MkdirAll(filepath.Join(root, "lib/modules/6.1.0-56-cloud-amd64/kernel/fs/xfs"), 0o755)
			os.WriteFile(filepath.Join(root, "lib/modules/6.1.0-56-cloud-amd64/kernel/fs/xfs/xfs.ko"), []byte("x"), 0o644)
		}
		if c.edit != nil {
			c.edit(root)
		}
		_, err := BuildInitramfs(InitramfsOptions{Root: root, Salvage: filepath.Join(root, "usr/sbin/salvage")})
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: %v\nwant one line with %q", c.conf, err, c.want)
		}
	}
}

// The filesystem behind a local dump path, from a mountinfo of a machine
// with / on vda1, /var on an xfs vdb (by UUID through its superblock
// when it has one) and tmpfs/proc mounts that are no place for a dump.
func TestFindLocalFS(t *testing.T) {
	img := filepath.Join(t.TempDir(), "vda1.img")
	mkfsImage(t, img, "ext4", "root", "11111111-2222-3333-4444-555555555555")
	root := fakeBlockRoot(t, map[string]string{"vda1": img})
	os.MkdirAll(filepath.Join(root, "proc/self"), 0o755)
	os.WriteFile(filepath.Join(root, "proc/self/mountinfo"), []byte(`21 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro
22 21 0:20 / /proc rw,nosuid shared:12 - proc proc rw
23 21 0:21 / /run rw,nosuid,nodev shared:2 - tmpfs tmpfs rw,size=100m
24 21 254:16 / /var rw,relatime shared:3 - xfs /dev/vdb rw,attr2
25 24 254:32 / /var/my\040dumps rw,relatime shared:4 - ext4 /dev/vdc rw
`), 0o644)
	for _, c := range []struct {
		dir  string
		want *LocalFS
		err  string
	}{
		{dir: "/crash", want: &LocalFS{Device: "UUID=11111111-2222-3333-4444-555555555555", FSType: "ext4", MountPoint: "/", Path: "/crash"}},
		{dir: "/var/crash", want: &LocalFS{Device: "/dev/vdb", FSType: "xfs", MountPoint: "/var", Path: "/crash"}},
		{dir: "/var", want: &LocalFS{Device: "/dev/vdb", FSType: "xfs", MountPoint: "/var", Path: "/"}},
		{dir: "/variable", want: &LocalFS{Device: "UUID=11111111-2222-3333-4444-555555555555", FSType: "ext4", MountPoint: "/", Path: "/variable"}},
		{dir: "/var/my dumps/x", want: &LocalFS{Device: "/dev/vdc", FSType: "ext4", MountPoint: "/var/my dumps", Path: "/x"}},
		{dir: "/run/crash", err: "it is on /run (tmpfs), which the capture kernel cannot mount again"},
	} {
		got, err := FindLocalFS(root, c.dir)
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("%s: %+v, %v; want %q", c.dir, got, err, c.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %+v, %v; want %+v", c.dir, got, err, c.want)
		}
	}
}

// --config bakes in another kdump.conf than the machine's.
func TestBuildInitramfsConfig(t *testing.T) {
	root := initramfsRoot(t, "ext4 /dev/vdb\n")
	conf := filepath.Join(t.TempDir(), "other.conf")
	os.WriteFile(conf, []byte("raw /dev/vdb\ncore_collector makedumpfile -c -d 17\n"), 0o644)
	out := filepath.Join(t.TempDir(), "capture.img")
	r, err := BuildInitramfs(InitramfsOptions{Root: root, Salvage: filepath.Join(root, "usr/sbin/salvage"), Config: conf, Output: out})
	if err != nil {
		t.Fatal(err)
	}
	if r.Config.Target.String() != "raw /dev/vdb" || strings.Join(r.Config.Collector, " ") != "makedumpfile -c -d 17" {
		t.Errorf("config %+v", r.Config)
	}
	dir, _ := unpack(t, out)
	if b, _ := os.ReadFile(filepath.Join(dir, "etc/salvage/kdump.conf")); !strings.HasPrefix(string(b), "raw /dev/vdb\n") {
		t.Errorf("the image's kdump.conf is %q", b)
	}
	_, err = BuildInitramfs(InitramfsOptions{Root: root, Salvage: filepath.Join(root, "usr/sbin/salvage"), Config: conf + ".gone", Output: out})
	if err == nil || !strings.Contains(err.Error(), "other.conf.gone: no such file or directory") {
		t.Errorf("a missing --config: %v", err)
	}
}
