package capture

import (
	"fmt"
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

// labReservation reads, from a lab guest's kernel log, the size the kernel
// reserved for crashkernel= and the System RAM it sized it against, in
// either form the lab's kernels print:
//
//   - 6.1 (arch/x86/kernel/setup.c reserve_crashkernel): "Reserving NMB of
//     memory at MMB for crashkernel (System RAM: RMB)";
//   - 6.12 (kernel/crash_reserve.c reserve_crashkernel_generic):
//     "crashkernel reserved: 0xSTART - 0xEND (N MB)", which names no RAM:
//     that comes from mem_init_print_info's "Memory: A/TK available" line
//     (T KiB of physical pages), checked against the 6.1 form's System
//     RAM on the 6.1 logs, where both appear.
func labReservation(log string) (size, ram uint64, form string, err error) {
	old := regexp.MustCompile(`Reserving (\d+)MB of memory at (\d+)MB for crashkernel \(System RAM: (\d+)MB\)`)
	generic := regexp.MustCompile(`crashkernel reserved: 0x([0-9a-f]+) - 0x([0-9a-f]+) \((\d+) MB\)`)
	memory := regexp.MustCompile(`Memory: \d+K/(\d+)K available`)
	var memRAM uint64
	if g := memory.FindStringSubmatch(log); g != nil {
		k, _ := strconv.ParseUint(g[1], 10, 64)
		memRAM = k >> 10
	}
	if g := old.FindStringSubmatch(log); g != nil {
		size, _ = strconv.ParseUint(g[1], 10, 64)
		ram, _ = strconv.ParseUint(g[3], 10, 64)
		if memRAM != 0 && memRAM != ram {
			return 0, 0, "", fmt.Errorf("System RAM %dM, but the Memory: line says %dM", ram, memRAM)
		}
		return size << 20, ram << 20, "6.1", nil
	}
	if g := generic.FindStringSubmatch(log); g != nil {
		start, _ := strconv.ParseUint(g[1], 16, 64)
		end, _ := strconv.ParseUint(g[2], 16, 64)
		mb, _ := strconv.ParseUint(g[3], 10, 64)
		if end <= start || end-start != mb<<20 {
			return 0, 0, "", fmt.Errorf("%q: the range is not %d MB", g[0], mb)
		}
		if memRAM == 0 {
			return 0, 0, "", fmt.Errorf("%q, but no \"Memory: …K/…K available\" line gives the System RAM", g[0])
		}
		return mb << 20, memRAM << 20, "generic", nil
	}
	return 0, 0, "", fmt.Errorf("the kernel log has no crashkernel reservation line")
}

// TestCrashkernelAgainstLabKernels parses each lab guest's command line
// with the RAM its kernel reported and compares with what that kernel
// reserved (labReservation: 6.1's and 6.12's forms of the line).
func TestCrashkernelAgainstLabKernels(t *testing.T) {
	m := corpus.Require(t)
	seen := map[string]bool{}
	checked := map[string]int{}
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
		size, ram, form, err := labReservation(string(log))
		if err != nil {
			t.Errorf("%s: %v", d.Crash, err)
			continue
		}
		ck, err := ParseCrashkernel(strings.TrimSpace(string(cmd)), ram)
		if err != nil {
			t.Errorf("%s: %q: %v", d.Crash, cmd, err)
			continue
		}
		if ck.Size != size {
			t.Errorf("%s: %q: we say %s, the kernel reserved %s", d.Crash, cmd, FormatSize(ck.Size), FormatSize(size))
		}
		checked[form]++
	}
	if len(checked) == 0 {
		t.Fatal("no lab crash has a command line and a kernel log")
	}
	t.Logf("lab kernels' crashes by form of the reservation line: %v; crashkernel= matches the kernel's reservation in each", checked)
}

// The two forms of the reservation line, as the lab's kernels print them;
// a log with neither, or with a range that disagrees with its size, is
// an error.
func TestLabReservationForms(t *testing.T) {
	for _, c := range []struct {
		log       string
		size, ram uint64
		bad       bool
	}{
		{log: "Reserving 256MB of memory at 736MB for crashkernel (System RAM: 1023MB)\nMemory: 219832K/1048044K available (…)", size: 256 << 20, ram: 1023 << 20},
		{log: "crashkernel reserved: 0x000000001d000000 - 0x000000002d000000 (256 MB)\nMemory: 180000K/1048044K available", size: 256 << 20, ram: 1023 << 20},
		{log: "crashkernel reserved: 0x000000001d000000 - 0x000000002c000000 (256 MB)\nMemory: 180000K/1048044K available", bad: true},
		{log: "crashkernel reserved: 0x000000001d000000 - 0x000000002d000000 (256 MB)", bad: true},
		{log: "Memory: 180000K/1048044K available", bad: true},
	} {
		size, ram, _, err := labReservation(c.log)
		if (err != nil) != c.bad || size != c.size || ram != c.ram {
			t.Errorf("%q: size %d ram %d err %v; want %d %d bad=%v", c.log, size, ram, err, c.size, c.ram, c.bad)
		}
	}
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
