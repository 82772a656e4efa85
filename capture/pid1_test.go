package capture

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"salvage/collect"
	"salvage/dump"
)

// fakeSystem records what the capture does to the machine.
type fakeSystem struct {
	calls   []string
	status  map[string]int // exit status of a program, by argv[0]
	failMnt bool
}

func (f *fakeSystem) Mount(source, target, fstype string, readOnly bool) error {
	f.calls = append(f.calls, fmt.Sprintf("mount %s %s %s", filepath.Base(source), filepath.Base(target), fstype))
	if f.failMnt {
		return fmt.Errorf("invalid argument")
	}
	return nil
}

func (f *fakeSystem) Unmount(target string) error {
	f.calls = append(f.calls, "umount "+filepath.Base(target))
	return nil
}

func (f *fakeSystem) LoadModule(path string) error {
	f.calls = append(f.calls, "insmod "+filepath.Base(path))
	if _, err := os.Stat(path); err != nil {
		return err
	}
	return nil
}

func (f *fakeSystem) Run(argv []string) (int, error) {
	f.calls = append(f.calls, "run "+strings.Join(argv, " "))
	return f.status[argv[0]], nil
}

func (f *fakeSystem) Reboot(action string) error {
	f.calls = append(f.calls, "reboot "+action)
	return nil
}

// captureRoot is a fake capture-kernel root: /proc/vmcore is the lab's
// sysrq crash, /dev/vdb an ext4 image (found by UUID through its
// superblock: there is no udev), one module in /lib/modules.
func captureRoot(t *testing.T) (string, *CaptureConfig) {
	t.Helper()
	m, d := corpusDump(t, "sysrq", "lzo-d31")
	img := filepath.Join(t.TempDir(), "vdb.img")
	mkfsImage(t, img, "ext4", "crash", "66666666-7777-8888-9999-aaaaaaaaaaaa")
	root := fakeBlockRoot(t, map[string]string{"vdb": img})
	os.MkdirAll(filepath.Join(root, "proc"), 0o755)
	if err := os.Symlink(m.Paths(d)[0], filepath.Join(root, "proc/vmcore")); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(root, "lib/modules/6.1.0-56-cloud-amd64/kernel/drivers/block"), 0o755)
	os.WriteFile(filepath.Join(root, "lib/modules/6.1.0-56-cloud-amd64/kernel/drivers/block/virtio_blk.ko"), []byte("ko"), 0o644)
	c := &CaptureConfig{Release: "6.1.0-56-cloud-amd64", Target: Target{Kind: "fs", FSType: "ext4", Device: "UUID=66666666-7777-8888-9999-aaaaaaaaaaaa"},
		Path: "/var/crash", Collector: []string{"makedumpfile", "-l", "-d", "31"}, NumDumps: 1, DumpDmesg: true,
		FailureAction: "halt", FinalAction: "poweroff", KdumpPre: []string{"/bin/pre", "a b"}, KdumpPost: []string{"/bin/post"},
		Modules: []string{"kernel/drivers/block/virtio_blk.ko"}, DeviceTimeout: Duration(time.Millisecond)}
	return root, c
}

func testCollector(argv []string) (collect.Options, error) {
	if strings.Join(argv, " ") != "makedumpfile -l -d 31" {
		return collect.Options{}, fmt.Errorf("unexpected core_collector %q", argv)
	}
	return collect.Options{Level: 31, Compression: "lzo", Threads: 2}, nil
}

func TestRunCapture(t *testing.T) {
	root, c := captureRoot(t)
	sys := &fakeSystem{status: map[string]int{"/bin/pre": 3}}
	var console, kmsg bytes.Buffer
	at := time.Date(2026, 11, 22, 21, 1, 0, 0, time.UTC)
	env := &CaptureEnv{Root: root, Sys: sys, Collector: testCollector, Dmesg: testDmesg, Console: &console, Kmsg: &kmsg,
		Now: func() time.Time { return at }}
	rep := RunCapture(context.Background(), env, c)
	if rep.Status != 0 || rep.Action != "poweroff" {
		t.Fatalf("report %+v\n%s", rep, console.String())
	}
	want := []string{"insmod virtio_blk.ko", "mount vdb target ext4", "run /bin/pre a b", "umount target", "run /bin/post 0"}
	if !reflect.DeepEqual(sys.calls, want) {
		t.Errorf("calls %q, want %q", sys.calls, want)
	}
	crash := filepath.Join(root, "mnt/target/var/crash")
	for _, f := range []string{"202611222101/dump.202611222101", "202611222101/dmesg.202611222101"} {
		st, err := os.Stat(filepath.Join(crash, f))
		if err != nil || st.Mode().Perm() != 0o600 || st.Size() == 0 {
			t.Errorf("%s: %v %v", f, st, err)
		}
	}
	f, err := dump.Open(filepath.Join(crash, "202611222101/dump.202611222101"))
	if err != nil {
		t.Fatal(err)
	}
	if f.VMCoreInfo.OSRelease() != "6.1.0-56-cloud-amd64" {
		t.Errorf("the saved dump is of %q", f.VMCoreInfo.OSRelease())
	}
	f.Close()
	log := console.String()
	for _, w := range []string{"salvage: capture kernel: saving the dump of the crashed kernel (6.1.0-56-cloud-amd64) to ext4 UUID=66666666-7777-8888-9999-aaaaaaaaaaaa:/var/crash",
		"salvage: UUID=66666666-7777-8888-9999-aaaaaaaaaaaa is /dev/vdb", "salvage: kdump_pre failed (exit status 3); saving the dump anyway",
		"salvage: saved the dump to ext4 UUID=66666666-7777-8888-9999-aaaaaaaaaaaa:/var/crash/202611222101/dump.202611222101", "salvage: dump saved; poweroff"} {
		if !strings.Contains(log, w) {
			t.Errorf("no %q on the console:\n%s", w, log)
		}
	}
	if !strings.Contains(kmsg.String(), "<7>salvage: dump saved; poweroff\n") {
		t.Errorf("/dev/kmsg got %q", kmsg.String())
	}

	// A second crash a minute later: KDUMP_NUM_DUMPS=1 keeps it alone.
	at = at.Add(time.Minute)
	if rep := RunCapture(context.Background(), env, c); rep.Status != 0 || rep.Saved == nil || !reflect.DeepEqual(rep.Saved.Pruned, []string{"202611222101"}) {
		t.Errorf("second capture: %+v", rep)
	}
	if ents, _ := os.ReadDir(crash); len(ents) != 1 || ents[0].Name() != "202611222102" {
		t.Errorf("after pruning: %v", ents)
	}
}

// Failures: the report names what failed, kdump_post gets status 1, and
// failure_action applies (shell, which salvage's image cannot offer,
// reboots; dump_to_rootfs saves to the production root filesystem).
func TestRunCaptureFailures(t *testing.T) {
	for _, c := range []struct {
		name   string
		edit   func(*CaptureConfig, *fakeSystem)
		err    string
		action string
	}{
		{"no device", func(c *CaptureConfig, _ *fakeSystem) { c.Target.Device = "LABEL=gone" },
			"device LABEL=gone: no block device has it (waited 1ms); block devices: vdb", "halt"},
		{"mount", func(c *CaptureConfig, s *fakeSystem) { s.failMnt = true }, "mounting /dev/vdb (ext4) on /mnt/target: invalid argument", "halt"},
		{"shell", func(c *CaptureConfig, s *fakeSystem) { s.failMnt = true; c.FailureAction = "shell" }, "mounting", "reboot"},
		{"collector", func(c *CaptureConfig, _ *fakeSystem) { c.Collector = []string{"cp"} }, `core_collector "cp": unexpected core_collector`, "halt"},
		{"ssh", func(c *CaptureConfig, _ *fakeSystem) { c.Target = Target{Kind: "ssh", Host: "root@10.0.2.2"} }, "ssh: reading known hosts: ", "halt"}, // the image lacks what RemoteInitramfsFiles bakes in
		{"local without a device", func(c *CaptureConfig, _ *fakeSystem) { c.Target = Target{Kind: "local"} }, "local target /var/crash: it was on no block device when the initramfs was built", "halt"},
		{"no vmcore", func(*CaptureConfig, *fakeSystem) {}, "no /proc/vmcore: this is not a kdump capture kernel", "halt"},
		{"dump_to_rootfs", func(c *CaptureConfig, _ *fakeSystem) {
			c.Target.Device = "LABEL=gone"
			c.FailureAction = "dump_to_rootfs"
			c.Local = &LocalFS{Device: "/dev/vdb", FSType: "ext4", MountPoint: "/", Path: "/var/crash"}
		}, "", "poweroff"},
	} {
		root, conf := captureRoot(t)
		sys := &fakeSystem{}
		c.edit(conf, sys)
		if c.name == "no vmcore" {
			os.Remove(filepath.Join(root, "proc/vmcore"))
		}
		var console bytes.Buffer
		env := &CaptureEnv{Root: root, Sys: sys, Collector: testCollector, Dmesg: testDmesg, Console: &console}
		rep := RunCapture(context.Background(), env, conf)
		if rep.Action != c.action {
			t.Errorf("%s: action %q, want %q\n%s", c.name, rep.Action, c.action, console.String())
		}
		if c.err == "" {
			if rep.Status != 0 || rep.Saved == nil || !strings.HasPrefix(rep.Saved.Store, "ext4 /dev/vdb:") {
				t.Errorf("%s: %+v\n%s", c.name, rep, console.String())
			}
			continue
		}
		if rep.Status != 1 || !strings.Contains(rep.Err, c.err) || strings.Contains(rep.Err, "\n") {
			t.Errorf("%s: status %d, error %q; want one line with %q", c.name, rep.Status, rep.Err, c.err)
		}
		if c.name == "no vmcore" {
			if len(sys.calls) != 0 {
				t.Errorf("%s: %q done without a vmcore", c.name, sys.calls)
			}
			continue
		}
		if got := sys.calls[len(sys.calls)-1]; got != "run /bin/post 1" {
			t.Errorf("%s: last call %q, want kdump_post with status 1", c.name, got)
		}
		if c.action == "reboot" && !strings.Contains(console.String(), "has no shell; rebooting") {
			t.Errorf("%s: console:\n%s", c.name, console.String())
		}
	}
}
