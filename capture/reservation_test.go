package capture

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"salvage/lab/corpus"
)

func TestReadReservationFixtures(t *testing.T) {
	lab := Region{0x2e000000, 0x3dffffff}
	const labRAM = 0x9ec00 + 0x3fedd000 // the two System RAM ranges: 1023.5 MiB
	for _, c := range []struct {
		root     string
		ram      uint64
		size     uint64 // crashkernel= asks
		regions  []Region
		kexec    bool
		reserved uint64
		loaded   bool
		paramErr string
		note     string
	}{
		{"lab-ready", labRAM, 256 * mib, []Region{lab}, true, 256 * mib, true, "", ""},
		{"lab-unloaded", labRAM, 256 * mib, []Region{lab}, true, 256 * mib, false, "", ""},
		{"failed", labRAM, 2 * gib, nil, true, 0, false, "crashkernel=2G: size 2G is not below the system RAM (1048047K)", ""},
		{"nokexec", labRAM, 0, nil, false, 0, false, "no crashkernel=", "built without kexec"},
		{"user", 734224 * kib, 256 * mib, nil, true, 256 * mib, false, "", "run as root"},
	} {
		r, err := ReadReservation(filepath.Join("testdata/root", c.root))
		if err != nil {
			t.Errorf("%s: %v", c.root, err)
			continue
		}
		var size uint64
		if r.Param != nil {
			size = r.Param.Size
		}
		if r.SystemRAM != c.ram || size != c.size || r.Kexec != c.kexec || r.Reserved() != c.reserved || r.Loaded != c.loaded ||
			len(r.Regions) != len(c.regions) || (len(c.regions) > 0 && r.Regions[0] != c.regions[0]) {
			t.Errorf("%s: got RAM %d, crashkernel %s, regions %x, kexec %v, reserved %s, loaded %v",
				c.root, r.SystemRAM, FormatSize(size), r.Regions, r.Kexec, FormatSize(r.Reserved()), r.Loaded)
		}
		if !strings.Contains(r.ParamError, c.paramErr) || (c.paramErr == "") != (r.ParamError == "") {
			t.Errorf("%s: crashkernel error %q; want %q", c.root, r.ParamError, c.paramErr)
		}
		if c.note != "" && !strings.Contains(strings.Join(r.Notes, "\n"), c.note) {
			t.Errorf("%s: notes %q lack %q", c.root, r.Notes, c.note)
		}
	}
}

func TestReadReservationErrors(t *testing.T) {
	if _, err := ReadReservation(t.TempDir()); err == nil || !strings.Contains(err.Error(), "kernel command line") {
		t.Errorf("empty root: %v", err)
	}
	root := t.TempDir()
	write(t, root, "proc/cmdline", "crashkernel=256M\n")
	write(t, root, "proc/iomem", "00000000-garbage : System RAM\n")
	if _, err := ReadReservation(root); err == nil || !strings.Contains(err.Error(), "line 1: want START-END : NAME") {
		t.Errorf("bad iomem: %v", err)
	}
	write(t, root, "proc/iomem", "00100000-3ffdcfff : System RAM\n")
	write(t, root, "sys/kernel/kexec_crash_size", "lots\n")
	write(t, root, "sys/kernel/kexec_crash_loaded", "0\n")
	if _, err := ReadReservation(root); err == nil || !strings.Contains(err.Error(), `kexec_crash_size: want a number, got "lots"`) {
		t.Errorf("bad kexec_crash_size: %v", err)
	}
}

// TestReadReservationHere reads this machine as it is. The build machine
// has no crashkernel= and a kernel without kexec; what it must get is
// consistent with its own files, whatever they say.
func TestReadReservationHere(t *testing.T) {
	r, err := ReadReservation("/")
	if err != nil {
		t.Fatal(err)
	}
	cmd, _ := os.ReadFile("/proc/cmdline")
	if r.Cmdline != strings.TrimSpace(string(cmd)) {
		t.Errorf("cmdline %q", r.Cmdline)
	}
	mi, err := ReadMeminfo("/")
	if err != nil {
		t.Fatal(err)
	}
	// iomem's System RAM is at least what the kernel manages.
	if r.SystemRAM < mi.MemTotal {
		t.Errorf("system RAM %d < MemTotal %d", r.SystemRAM, mi.MemTotal)
	}
	_, statErr := os.Stat("/sys/kernel/kexec_crash_size")
	if r.Kexec != (statErr == nil) {
		t.Errorf("kexec %v, but stat says %v", r.Kexec, statErr)
	}
	if !strings.Contains(string(cmd), "crashkernel=") && r.ParamError != ErrNoCrashkernel.Error() {
		t.Errorf("no crashkernel= here, but ParamError %q", r.ParamError)
	}
}

// TestCrashkernelAgainstLabKernels parses each lab guest's command line
// with the RAM its kernel reported and compares with what that kernel
// reserved ("Reserving NMB of memory at MMB for crashkernel (System RAM:
// RMB)", arch/x86/kernel/setup.c of 6.1).
func TestCrashkernelAgainstLabKernels(t *testing.T) {
	m := corpus.Require(t)
	re := regexp.MustCompile(`Reserving (\d+)MB of memory at (\d+)MB for crashkernel \(System RAM: (\d+)MB\)`)
	seen := map[string]bool{}
	checked := 0
	for _, d := range m.Dumps {
		if d.Truth == "" || d.Dmesg == "" || seen[d.Crash] {
			continue
		}
		seen[d.Crash] = true
		cmd, err := os.ReadFile(filepath.Join(m.Path(d.Truth), "cmdline"))
		if err != nil {
			t.Fatal(err)
		}
		log, err := os.ReadFile(m.Path(d.Dmesg))
		if err != nil {
			t.Fatal(err)
		}
		g := re.FindStringSubmatch(string(log))
		if g == nil {
			t.Errorf("%s: the kernel log has no crashkernel reservation line", d.Crash)
			continue
		}
		size, _ := strconv.ParseUint(g[1], 10, 64)
		ram, _ := strconv.ParseUint(g[3], 10, 64)
		ck, err := ParseCrashkernel(strings.TrimSpace(string(cmd)), ram<<20)
		if err != nil {
			t.Errorf("%s: %q: %v", d.Crash, cmd, err)
			continue
		}
		if ck.Size != size<<20 {
			t.Errorf("%s: %q: we say %s, the kernel reserved %dM", d.Crash, cmd, FormatSize(ck.Size), size)
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("no lab crash has a command line and a kernel log")
	}
	t.Logf("%d lab kernels: crashkernel= matches the kernel's reservation", checked)
}

func write(t *testing.T, root, name, text string) {
	t.Helper()
	p := filepath.Join(root, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}
