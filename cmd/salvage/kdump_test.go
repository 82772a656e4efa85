package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const fixtures = "../../capture/testdata/root"

// runKdump runs `salvage kdump ARGS` in-process (the command is not wired
// into the root command yet).
func runKdump(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newKdumpCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SilenceUsage = true
	cmd.SilenceErrors = true
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func TestKdumpCollectorCheck(t *testing.T) {
	for _, c := range []struct {
		args []string
		err  string
	}{
		{[]string{"-l", "--message-level", "7", "-d", "31"}, ""},
		{[]string{"-c", "-d", "31", "-F"}, ""},
		{[]string{"--compression", "zstd", "-d", "1", "-E"}, ""},
		{nil, ""},
		{[]string{"-q"}, "unknown shorthand flag: 'q'"},
		{[]string{"--nosuch"}, "unknown flag: --nosuch"},
		{[]string{"-d", "32"}, "-d 32: the dump level is 0–31"},
		{[]string{"-d", "x"}, "invalid argument"},
		{[]string{"-l", "-c"}, "choose one compression"},
		{[]string{"--compression", "bzip2"}, `--compression "bzip2"`},
		{[]string{"-l", "/proc/vmcore"}, "the capture gives SOURCE and DEST itself"},
		{[]string{"--dump-dmesg"}, "the capture saves the kernel log"},
	} {
		err := kdumpCollectorCheck(c.args)
		if (err == nil) != (c.err == "") || err != nil && !strings.Contains(err.Error(), c.err) {
			t.Errorf("%q: %v; want %q", c.args, err, c.err)
		}
	}
}

func TestKdumpShow(t *testing.T) {
	out, err := runKdump(t, "show", "--root", filepath.Join(fixtures, "lab-ready"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"DUMP_MODE:              kdump\n", "USE_KDUMP:              1\n", "KDUMP_COREDIR:          /dumps\n",
		"crashkernel addr:       0x2e000000\n   crashkernel size:    0x10000000 (256M)\n",
		"sysctl:                 kernel.panic_on_oops = 1\n", "current state:          ready to kdump\n",
		"capture command line:\n  console=ttyS0 lab.scenario=sysrq "} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	out, err = runKdump(t, "show", "--json", "--root", filepath.Join(fixtures, "failed"))
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Ready    bool     `json:"ready"`
		UseKdump bool     `json:"use_kdump"`
		Reasons  []string `json:"reasons"`
		CoreDir  string   `json:"core_dir"`
		Res      struct {
			Crashkernel struct{ Size uint64 } `json:"crashkernel"`
		} `json:"reservation"`
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	// The real collector flag set refuses MAKEDUMP_ARGS' --bogus.
	if s.Ready || s.UseKdump || s.CoreDir != "/srv/crash" || s.Res.Crashkernel.Size != 2<<30 || len(s.Reasons) != 3 ||
		s.Reasons[1] != "configuration: /etc/default/kdump-tools:3: MAKEDUMP_ARGS: unknown flag: --bogus" {
		t.Errorf("%+v", s)
	}
}

func TestKdumpStatus(t *testing.T) {
	out, err := runKdump(t, "status", "--root", filepath.Join(fixtures, "lab-ready"))
	if err != nil || out != "current state:          ready to kdump\n" {
		t.Errorf("ready: %q %v", out, err)
	}
	out, err = runKdump(t, "status", "--root", filepath.Join(fixtures, "lab-unloaded"))
	var ee exitError
	if !errors.As(err, &ee) || ee.code != 1 || out != "current state:          not ready to kdump\n   no capture kernel is loaded: run `salvage kdump load`\n" {
		t.Errorf("unloaded: %q %v", out, err)
	}
	out, err = runKdump(t, "status", "--json", "--root", filepath.Join(fixtures, "nokexec"))
	var st struct {
		Ready   bool
		State   string
		Reasons []string
	}
	if json.Unmarshal([]byte(out), &st) != nil || st.Ready || st.State != "not ready to kdump" || len(st.Reasons) != 1 || !errors.As(err, &ee) {
		t.Errorf("nokexec: %q %v", out, err)
	}
}

// TestKdumpHere: show and status on this machine as it is.
func TestKdumpHere(t *testing.T) {
	out, err := runKdump(t, "show")
	if err != nil {
		t.Fatal(err)
	}
	loaded, lerr := os.ReadFile("/sys/kernel/kexec_crash_loaded")
	ready := lerr == nil && strings.TrimSpace(string(loaded)) == "1"
	if strings.Contains(out, "current state:          ready to kdump\n") != ready {
		t.Errorf("kexec_crash_loaded %q, show says:\n%s", loaded, out)
	}
	t.Logf("salvage kdump show here:\n%s", out)
	_, err = runKdump(t, "status")
	if (err == nil) != ready {
		t.Errorf("status: %v", err)
	}
	if lerr != nil {
		// No kexec here: load and unload must say so, not panic.
		if _, err := runKdump(t, "load", "--dry-run"); err == nil || !strings.Contains(err.Error(), "no kexec") {
			t.Errorf("load --dry-run: %v", err)
		}
		_, err := runKdump(t, "unload")
		if err == nil || !strings.Contains(err.Error(), "kexec_file_load: ") {
			t.Errorf("unload: %v", err)
		}
		t.Logf("unload here: %v", err)
	}
}

// labRoot copies the lab-ready fixture and adds a capture kernel (a
// bzImage setup header) and initramfs where the configuration says.
func labRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	if err := os.CopyFS(root, os.DirFS(filepath.Join(fixtures, "lab-ready"))); err != nil {
		t.Fatal(err)
	}
	h := make([]byte, 0x400)
	copy(h[0x202:], "HdrS")
	binary.LittleEndian.PutUint16(h[0x206:], 0x20f)
	binary.LittleEndian.PutUint32(h[0x260:], 50<<20)
	for name, data := range map[string][]byte{
		"boot/vmlinuz-6.1.0-56-cloud-amd64":               h,
		"var/lib/salvage/initrd.img-6.1.0-56-cloud-amd64": make([]byte, 2048),
	} {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestKdumpLoadDryRun(t *testing.T) {
	root := labRoot(t)
	out, err := runKdump(t, "load", "--dry-run", "--root", root)
	want := "would load (dry run):\n" +
		"kernel:        /boot/vmlinuz-6.1.0-56-cloud-amd64 (1024 bytes)\n" +
		"initrd:        /var/lib/salvage/initrd.img-6.1.0-56-cloud-amd64 (2048 bytes)\n" +
		"command line:  console=ttyS0 lab.scenario=sysrq cgroup_disable=memory mce=0 numa=off acpi_no_memhotplug transparent_hugepage=never hest_disable novmcoredd panic=10 reset_devices nr_cpus=1 maxcpus=1 irqpoll\n" +
		"into:          0x2e000000-0x3dffffff (256M)\n" +
		"sysctl:        kernel.hung_task_panic=1\n" +
		"replacing the capture kernel loaded now\n"
	if err != nil || out != want {
		t.Errorf("got %v\n%s\nwant\n%s", err, out, want)
	}
	out, err = runKdump(t, "load", "--dry-run", "--json", "--root", root)
	var p struct {
		Kernel   string
		Reserved uint64
		DryRun   bool `json:"dry_run"`
	}
	if err != nil || json.Unmarshal([]byte(out), &p) != nil || !p.DryRun || p.Reserved != 256<<20 {
		t.Errorf("json: %v %s", err, out)
	}
	for _, c := range []struct {
		args []string
		err  string
	}{
		{[]string{"--root", filepath.Join(fixtures, "nokexec")}, "this kernel has no kexec"},
		{[]string{"--root", filepath.Join(fixtures, "failed")}, "the configuration has mistakes"},
		{[]string{"--root", root, "--kernel", "/boot/nosuch"}, "capture kernel: open"},
		{[]string{"--root", root, "--kernel", "/var/lib/salvage/initrd.img-6.1.0-56-cloud-amd64"}, "not a bzImage"},
		{[]string{"--root", root, "--initrd", "/nosuch"}, "capture initramfs: stat"},
	} {
		_, err := runKdump(t, append([]string{"load", "--dry-run"}, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%q: %v; want %q", c.args, err, c.err)
		}
	}
	// A kernel whose init_size does not fit beside the initramfs.
	h, _ := os.ReadFile(filepath.Join(root, "boot/vmlinuz-6.1.0-56-cloud-amd64"))
	binary.LittleEndian.PutUint32(h[0x260:], 300<<20)
	os.WriteFile(filepath.Join(root, "boot/big"), h, 0o644)
	if _, err := runKdump(t, "load", "--dry-run", "--root", root, "--kernel", "/boot/big"); err == nil ||
		!strings.Contains(err.Error(), "the kernel (init_size 300M) and initramfs (2K) do not fit in the reservation (256M)") {
		t.Errorf("too big a kernel: %v", err)
	}
	// No reservation: the failed machine with its configuration fixed.
	os.Remove(filepath.Join(root, "etc/default/kdump-tools"))
	os.WriteFile(filepath.Join(root, "proc/cmdline"), []byte("console=ttyS0 crashkernel=512M\n"), 0o644)
	os.WriteFile(filepath.Join(root, "sys/kernel/kexec_crash_size"), []byte("0\n"), 0o644)
	os.WriteFile(filepath.Join(root, "proc/iomem"), []byte("00100000-3ffdcfff : System RAM\n"), 0o644)
	if _, err := runKdump(t, "load", "--dry-run", "--root", root); err == nil ||
		!strings.Contains(err.Error(), "cannot load a capture kernel: the kernel reserved nothing for crashkernel=512M; `salvage kdump estimate`") {
		t.Errorf("no reservation: %v", err)
	}
	os.WriteFile(filepath.Join(root, "proc/cmdline"), []byte("console=ttyS0 crashkernel=2G\n"), 0o644)
	if _, err := runKdump(t, "load", "--dry-run", "--root", root); err == nil ||
		!strings.Contains(err.Error(), "reserved nothing for crashkernel=2G (crashkernel=2G: size 2G is not below the system RAM (1047412K))") {
		t.Errorf("too big: %v", err)
	}
	os.WriteFile(filepath.Join(root, "proc/cmdline"), []byte("console=ttyS0\n"), 0o644)
	if _, err := runKdump(t, "load", "--dry-run", "--root", root); err == nil ||
		!strings.Contains(err.Error(), "cannot load a capture kernel: no crashkernel= on the kernel command line") {
		t.Errorf("no crashkernel=: %v", err)
	}
}

func TestKdumpEstimate(t *testing.T) {
	root := labRoot(t)
	dropIn := filepath.Join(t.TempDir(), "grub.d", "salvage-kdump.cfg")
	out, err := runKdump(t, "estimate", "--root", root, "--kernel", filepath.Join(root, "boot/vmlinuz-6.1.0-56-cloud-amd64"),
		"--initrd", filepath.Join(root, "var/lib/salvage/initrd.img-6.1.0-56-cloud-amd64"), "--output", dropIn, "--write")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(dropIn)
	if err != nil || !strings.Contains(string(b), `GRUB_CMDLINE_LINUX_DEFAULT="$GRUB_CMDLINE_LINUX_DEFAULT crashkernel=`) {
		t.Errorf("drop-in %q %v", b, err)
	}
	for _, want := range []string{"This machine: 1023.5M of RAM (262109 page frames), 1 CPU\n", "  capture kernel           50.0M  init_size of ",
		"Recommended: crashkernel=", "Reserved now: 256M\n", "Written. Now run update-grub and reboot.\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("estimate lacks %q:\n%s", want, out)
		}
	}
	out, err = runKdump(t, "estimate", "--json", "--root", root, "--kernel", filepath.Join(root, "boot/vmlinuz-6.1.0-56-cloud-amd64"))
	var e struct {
		Param   string `json:"param"`
		Need    uint64 `json:"need"`
		Written bool   `json:"written"`
	}
	if err != nil || json.Unmarshal([]byte(out), &e) != nil || !strings.HasPrefix(e.Param, "crashkernel=") || e.Need == 0 || e.Written {
		t.Errorf("json: %v %s", err, out)
	}
	if _, err := runKdump(t, "estimate", "--root", root, "--kernel", "/nosuch"); err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("missing kernel: %v", err)
	}
	// The defaults under the root: /boot/vmlinuz-RELEASE and salvage's
	// own initramfs; kdump.conf's extra_modules need modules.dep.
	out, err = runKdump(t, "estimate", "--root", root, "--output", dropIn)
	if err != nil || !strings.Contains(out, "init_size of "+filepath.Join(root, "boot/vmlinuz-6.1.0-56-cloud-amd64")) ||
		!strings.Contains(out, filepath.Join(root, "var/lib/salvage/initrd.img-6.1.0-56-cloud-amd64")) {
		t.Errorf("defaults: %v\n%s", err, out)
	}
	f, _ := os.OpenFile(filepath.Join(root, "etc/salvage/kdump.conf"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("extra_modules virtio_blk\n")
	f.Close()
	if _, err := runKdump(t, "estimate", "--root", root); err == nil || !strings.Contains(err.Error(), "modules [virtio_blk]") {
		t.Errorf("extra_modules without modules.dep: %v", err)
	}
	if _, err := runKdump(t, "estimate", "extra"); err == nil {
		t.Error("an argument is no error")
	}
}
