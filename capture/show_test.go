package capture

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"salvage/lab/corpus"
)

func TestCmdlineArgs(t *testing.T) {
	got := CmdlineArgs(` a  b="x y" "c d"=e  f="g"h	i` + "\n")
	want := []string{"a", `b="x y"`, `"c d"=e`, `f="g"h`, "i"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%q", got)
	}
}

func TestCaptureCmdline(t *testing.T) {
	for _, c := range []struct{ base, app, want string }{
		{"BOOT_IMAGE=/boot/vmlinuz-6.1.0 root=UUID=abc ro crashkernel=256M quiet", DefaultCmdlineAppend,
			"root=UUID=abc ro " + CaptureFriends + " reset_devices nr_cpus=1 irqpoll nousb"},
		// after "--": the production init's arguments
		{"console=ttyS0 -- --firecracker-init --addr 0.0.0.0", "reset_devices",
			"console=ttyS0 " + CaptureFriends + " reset_devices"},
		// memory carve-outs, resume and CPU counts go; quoted values stay whole
		{`root=/dev/vda1 hugepages=512 resume=/dev/vda2 nr_cpus=8 maxcpus=4 panic=5 dyndbg="file x.c +p"`, "",
			`root=/dev/vda1 dyndbg="file x.c +p" ` + CaptureFriends},
		// a friend given in the append is not added twice
		{"ro", "panic=30 numa=on", "ro cgroup_disable=memory mce=0 acpi_no_memhotplug transparent_hugepage=never hest_disable novmcoredd panic=30 numa=on"},
		{"", "", CaptureFriends},
	} {
		if got := CaptureCmdline(c.base, c.app); got != c.want {
			t.Errorf("CaptureCmdline(%q, %q)\n got %q\nwant %q", c.base, c.app, got, c.want)
		}
	}
}

// TestCaptureCmdlineLab derives the capture command line from each lab
// guest's and compares it with the one its capture kernel booted with
// (the second "Command line:" of the console log), which captured the
// dump: every parameter the lab gave must be there, except those the lab
// itself or kexec adds (lab.capture, acpi_rsdp, elfcorehdr).
func TestCaptureCmdlineLab(t *testing.T) {
	m := corpus.Require(t)
	re := regexp.MustCompile(`\] Command line: (.*)`)
	seen := map[string]bool{}
	checked := 0
	for _, d := range m.Dumps {
		if d.Dmesg == "" || d.Truth == "" || seen[d.Crash] {
			continue
		}
		seen[d.Crash] = true
		con, err := os.ReadFile(filepath.Join(filepath.Dir(m.Path(d.Dmesg)), "console.log"))
		if err != nil {
			t.Fatal(err)
		}
		lines := re.FindAllStringSubmatch(string(con), -1)
		if len(lines) < 2 {
			t.Errorf("%s: the console log has no capture kernel", d.Crash)
			continue
		}
		running, capture := strings.TrimSpace(lines[0][1]), strings.TrimSpace(lines[1][1])
		got := CaptureCmdline(running, "reset_devices nr_cpus=1 maxcpus=1 irqpoll")
		have := map[string]bool{}
		for _, p := range CmdlineArgs(got) {
			have[p] = true
		}
		for _, p := range CmdlineArgs(capture) {
			k := paramKey(p)
			if k == "lab.capture" || k == "acpi_rsdp" || k == "elfcorehdr" {
				continue
			}
			if !have[p] {
				t.Errorf("%s: the lab's capture kernel had %q; we derive %q", d.Crash, p, got)
			}
		}
		if strings.Contains(got, "crashkernel=") {
			t.Errorf("%s: %q keeps crashkernel=", d.Crash, got)
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("no lab crash with a console log")
	}
}

const labReadyShow = `DUMP_MODE:              kdump
USE_KDUMP:              1
KDUMP_COREDIR:          /dumps
target:                 ext4 /dev/vda
core_collector:         makedumpfile -l --message-level 1 -d 31
sysctl:                 kernel.panic = 5
sysctl:                 kernel.panic_on_oops = 1
sysctl:                 kernel.panic_on_warn = 0
sysctl:                 kernel.hung_task_panic = 0 (KDUMP_SYSCTL sets 1)
sysctl:                 kernel.softlockup_panic = 0
sysctl:                 kernel.unknown_nmi_panic = 0
sysctl:                 kernel.sysrq = 1
crashkernel addr:       0x2e000000
   crashkernel size:    0x10000000 (256M)
kdump kernel:           /boot/vmlinuz-6.1.0-56-cloud-amd64
kdump initrd:           /var/lib/salvage/initrd.img-6.1.0-56-cloud-amd64 (not built: ` + "`salvage kdump load`" + ` builds it)
current state:          ready to kdump

capture command line:
  console=ttyS0 lab.scenario=sysrq cgroup_disable=memory mce=0 numa=off acpi_no_memhotplug transparent_hugepage=never hest_disable novmcoredd panic=10 reset_devices nr_cpus=1 maxcpus=1 irqpoll
`

func TestShowFixtures(t *testing.T) {
	s, err := ReadShow("testdata/root/lab-ready", fakeCheck)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	WriteShow(&b, s)
	if b.String() != labReadyShow {
		t.Errorf("show:\n%s\nwant:\n%s", b.String(), labReadyShow)
	}
	for _, c := range []struct {
		root    string
		reasons []string
	}{
		{"lab-ready", nil},
		{"lab-unloaded", []string{"no capture kernel is loaded: run `salvage kdump load`"}},
		{"failed", []string{
			"kdump is off: USE_KDUMP=0 in /etc/default/kdump-tools",
			"configuration: /etc/default/kdump-tools:3: MAKEDUMP_ARGS: unknown flag --bogus",
			"the kernel reserved nothing: crashkernel=2G: size 2G is not below the system RAM (1048047K); `salvage kdump estimate` recommends a size"}},
		{"nokexec", []string{"this kernel has no kexec (no /sys/kernel/kexec_crash_loaded): boot a kernel built with CONFIG_KEXEC_FILE and CONFIG_CRASH_DUMP"}},
		{"user", []string{"no capture kernel is loaded: run `salvage kdump load`"}},
	} {
		s, err := ReadShow(filepath.Join("testdata/root", c.root), fakeCheck)
		if err != nil {
			t.Errorf("%s: %v", c.root, err)
			continue
		}
		if !reflect.DeepEqual(s.Reasons, c.reasons) || s.Ready != (c.reasons == nil) {
			t.Errorf("%s: reasons\n%q\nwant\n%q", c.root, s.Reasons, c.reasons)
		}
	}
	// A valid crashkernel= the kernel could not allocate.
	root := t.TempDir()
	write(t, root, "proc/cmdline", "ro crashkernel=512M")
	write(t, root, "proc/iomem", "00100000-7fffffff : System RAM\n")
	write(t, root, "proc/meminfo", "MemTotal: 2000000 kB\n")
	write(t, root, "sys/kernel/kexec_crash_size", "0")
	write(t, root, "sys/kernel/kexec_crash_loaded", "0")
	s, err = ReadShow(root, fakeCheck)
	if err != nil || !reflect.DeepEqual(s.Reasons, []string{"crashkernel=512M asked for 512M, but the kernel reserved nothing (see `dmesg | grep crashkernel`); `salvage kdump estimate` recommends a size"}) {
		t.Errorf("unreserved: %v %q", err, s.Reasons)
	}
	s, _ = ReadShow("testdata/root/failed", fakeCheck)
	if s.CoreDir != "/srv/crash" || !reflect.DeepEqual(s.Collector, []string{"makedumpfile", "-c", "-d", "31", "--bogus"}) {
		t.Errorf("kdump-tools fallbacks: %q %q", s.CoreDir, s.Collector)
	}
	b.Reset()
	s, _ = ReadShow("testdata/root/user", fakeCheck)
	WriteShow(&b, s)
	if !strings.Contains(b.String(), "crashkernel addr:       (hidden from this user)\n   crashkernel size:    0x10000000 (256M)\n") {
		t.Errorf("user:\n%s", b.String())
	}
}

// TestShowHere runs on this machine as it is: whatever it has, show must
// explain it, and the state must agree with the kexec files.
func TestShowHere(t *testing.T) {
	s, err := ReadShow("/", fakeCheck)
	if err != nil {
		t.Fatal(err)
	}
	loaded, _ := os.ReadFile("/sys/kernel/kexec_crash_loaded")
	if s.Ready != (strings.TrimSpace(string(loaded)) == "1" && s.UseKdump && len(s.Settings.Errors) == 0) {
		t.Errorf("ready %v with kexec_crash_loaded %q: %q", s.Ready, loaded, s.Reasons)
	}
	if !s.Ready && len(s.Reasons) == 0 {
		t.Error("not ready, and no reason")
	}
	if strings.Contains(s.Cmdline, "crashkernel=") || !strings.Contains(s.Cmdline, "nr_cpus=1") {
		t.Errorf("capture command line %q", s.Cmdline)
	}
	var b bytes.Buffer
	WriteStatus(&b, s)
	if !strings.HasPrefix(b.String(), "current state:          "+s.State+"\n") {
		t.Errorf("status %q", b.String())
	}
}
