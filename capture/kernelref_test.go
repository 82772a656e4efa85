package capture

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"salvage/lab/corpus"
)

var (
	updateKernel = flag.Bool("update-kernel", false, "boot the lab's kernel under QEMU for each crashkernel= case and rewrite testdata/crashkernel-*.txt")
	kernelImage  = flag.String("kernel-image", "", "with -update-kernel: record this bzImage instead of the lab's kernels")
)

// kernelCases are the crashkernel= parameters booted on the lab's kernel,
// with the guest's memory in MiB.
var kernelCases = []struct {
	mem  int
	args string
}{
	{1024, "crashkernel=256M"},
	{1024, "crashkernel=256M@512M"},
	{1024, "crashkernel=0x10000000"},
	{1024, "crashkernel=0400M"},
	{1024, "crashkernel=64m"},
	{1024, "crashkernel=64M@"},
	{1024, "crashkernel=1G-4G:320M,4G-:512M"},
	{4096, "crashkernel=1G-4G:320M,4G-:512M"},
	{512, "crashkernel=512M-:192M"},
	{1024, "crashkernel=1G-:192M"},
	{1024, "crashkernel=2G-:192M"},
	{1024, "crashkernel=1G-2G:64M"},
	{1024, "crashkernel=0-1G:64M,1G-:128M"},
	{512, "crashkernel=1G-4G:320M,4G-32G:512M"},
	{1024, "crashkernel=128M crashkernel=64M"},
	{1024, "foo.crashkernel=96M"},
	{1024, "crashkernel=64M -- crashkernel=32M"},
	{1024, "crashkernel=128M quiet:x"},
	{1024, "crashkernel=256X"},
	{1024, "crashkernel=M"},
	{1024, "crashkernel=0x"},
	{1024, "crashkernel=2G"},
	{1024, "crashkernel=1G-:128M@"},
	{1024, "crashkernel=256M,hig"},
	{1024, "crashkernel=64M,cma"},
	{1024, "crashkernel=256M,high"},
	{4096, "crashkernel=256M,high crashkernel=64M,low"},
	{1024, "crashkernel=bad crashkernel=128M,high"},
	{1024, "crashkernel=16M"},
	{512, "crashkernel=16M"},
	{4096, "crashkernel=16M"},
}

// kernelDifferences are the cases where the lab's 6.1 kernel and salvage
// (which follows 6.7+'s generic parser) legitimately disagree, and why.
// The key is the file's release and the parameters.
var kernelDifferences = map[string]string{
	"6.1.0-56-cloud-amd64\tcrashkernel=bad crashkernel=128M,high": "6.1's x86 reserve_crashkernel tries ,high when the plain form is malformed; 6.7+ only when it is absent",
}

// The kernel's reservation messages: 6.1's x86 reserve_crashkernel, and
// 6.7+'s reserve_crashkernel_generic.
var (
	reservingRe  = regexp.MustCompile(`Reserving (\d+)MB of memory at (\d+)MB for crashkernel \(System RAM: (\d+)MB\)`)
	lowRe        = regexp.MustCompile(`Reserving (\d+)MB of low memory at (\d+)MB for crashkernel`)
	genericRe    = regexp.MustCompile(`^crashkernel reserved: 0x([0-9a-f]+) - 0x([0-9a-f]+) \(\d+ MB\)`)
	genericLowRe = regexp.MustCompile(`^crashkernel low memory reserved: 0x([0-9a-f]+) - 0x([0-9a-f]+) \(\d+ MB\)`)
)

// kernelReservation reads a boot's crashkernel lines: the main
// reservation's size and base, and the low one's size.
func kernelReservation(lines []string) (size, base, low uint64) {
	hex := func(s string) uint64 { v, _ := strconv.ParseUint(s, 16, 64); return v }
	for _, x := range lines {
		if g := reservingRe.FindStringSubmatch(x); g != nil {
			n, _ := strconv.ParseUint(g[1], 10, 64)
			at, _ := strconv.ParseUint(g[2], 10, 64)
			size, base = n<<20, at<<20
		}
		if g := lowRe.FindStringSubmatch(x); g != nil {
			n, _ := strconv.ParseUint(g[1], 10, 64)
			low = n << 20
		}
		if g := genericRe.FindStringSubmatch(x); g != nil {
			base = hex(g[1])
			size = hex(g[2]) - base
		}
		if g := genericLowRe.FindStringSubmatch(x); g != nil {
			low = hex(g[2]) - hex(g[1])
		}
	}
	return size, base, low
}

// bootForCrashkernel boots kernel with args (nokaslr, so that a fixed
// @OFFSET does not meet the randomly placed kernel) and returns the kernel's
// crashkernel lines, up to "Kernel command line:" (printed after
// setup_arch reserved the memory).
func bootForCrashkernel(t *testing.T, kernel string, mem int, args string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", "-accel", "tcg", "-m", strconv.Itoa(mem), "-smp", "1",
		"-nographic", "-no-reboot", "-kernel", kernel, "-append", "console=ttyS0 panic=-1 nokaslr "+args)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	var lines []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		l := sc.Text()
		if i := strings.Index(l, "] "); i >= 0 && strings.HasPrefix(l, "[") {
			l = l[i+2:]
		}
		if strings.HasPrefix(l, "Kernel command line:") {
			return lines
		}
		if strings.Contains(strings.ToLower(l), "crashkernel") && !strings.HasPrefix(l, "Command line:") {
			lines = append(lines, strings.TrimSpace(l))
		}
	}
	t.Fatalf("%s: the kernel did not reach its command line", args)
	return nil
}

// TestCrashkernelAgainstKernel compares ParseCrashkernel with what the
// lab's real kernel reserved for each case (recorded under QEMU with
// -update-kernel into testdata/crashkernel-RELEASE.txt: MEM, the
// parameters and the kernel's crashkernel lines, tab-separated).
func TestCrashkernelAgainstKernel(t *testing.T) {
	files, _ := filepath.Glob("testdata/crashkernel-*.txt")
	if *updateKernel {
		type image struct{ release, path string }
		var images []image
		if *kernelImage != "" {
			images = append(images, image{bzImageRelease(t, *kernelImage), *kernelImage})
		} else {
			m := corpus.Require(t)
			for _, k := range m.Kernels {
				if k.Vmlinuz != "" {
					images = append(images, image{k.Release, m.Path(k.Vmlinuz)})
				}
			}
		}
		for _, k := range images {
			var b strings.Builder
			fmt.Fprintf(&b, "# crashkernel= on %s under QEMU (TCG, 1 CPU): memory MiB, parameters, the kernel's crashkernel lines\n", k.release)
			for _, c := range kernelCases {
				lines := bootForCrashkernel(t, k.path, c.mem, c.args)
				fmt.Fprintf(&b, "%d\t%s\t%s\n", c.mem, c.args, strings.Join(lines, "\t"))
			}
			name := filepath.Join("testdata", "crashkernel-"+k.release+".txt")
			if err := os.WriteFile(name, []byte(b.String()), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		files, _ = filepath.Glob("testdata/crashkernel-*.txt")
	}
	if len(files) == 0 {
		t.Fatal("no testdata/crashkernel-*.txt: run with -update-kernel on the lab machine")
	}
	// The system RAM of each guest size, from the 6.1 kernel's
	// "System RAM: NMB" (the same QEMU machine gives every kernel the
	// same memory map).
	type rec struct {
		release string
		mem     int
		args    string
		lines   []string
	}
	ram := map[int]uint64{}
	var recs []rec
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		release := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(name), "crashkernel-"), ".txt")
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if strings.HasPrefix(l, "#") {
				continue
			}
			f := strings.Split(l, "\t")
			mem, err := strconv.Atoi(f[0])
			if err != nil || len(f) < 2 {
				t.Fatalf("%s: bad line %q", name, l)
			}
			recs = append(recs, rec{release, mem, f[1], f[2:]})
			for _, x := range f[2:] {
				if g := reservingRe.FindStringSubmatch(x); g != nil {
					mb, _ := strconv.ParseUint(g[3], 10, 64)
					ram[mem] = mb << 20
				}
			}
		}
	}
	agree, total := map[string]int{}, map[string]int{}
	for _, r := range recs {
		total[r.release]++
		kSize, kBase, kLow := kernelReservation(r.lines)
		if ram[r.mem] == 0 {
			t.Fatalf("no control boot gives the RAM of a %d MiB guest", r.mem)
		}
		// The kernel prints whole MB of RAM; its memblock total is up to
		// 1 MB more (1023.5 MB on a 1024 MiB guest).
		ck, err := ParseCrashkernel(r.args, ram[r.mem]+512<<10)
		var size, low uint64
		if err == nil && ck != nil {
			size = ck.Size
			if ck.Base != 0 && ck.Base != kBase {
				t.Errorf("%s %s: the kernel reserved at %s, salvage says @%s", r.release, r.args, FormatSize(kBase), FormatSize(ck.Base))
			}
			// The low part is reserved only when the main one lands above
			// 4 GiB, which depends on the allocation, not the parameters.
			if ck.High && kLow > 0 {
				low = ck.LowSize
			}
		}
		why, known := kernelDifferences[r.release+"\t"+r.args]
		if size != kSize || low != kLow {
			if known {
				t.Logf("%s %s, %d MiB: known difference: kernel %s, salvage %s: %s", r.release, r.args, r.mem, FormatSize(kSize), FormatSize(size), why)
				continue
			}
			t.Errorf("%s %s (%d MiB): the kernel reserved %d (+%d low) %q; salvage says %d (+%d low), %v",
				r.release, r.args, r.mem, kSize, kLow, r.lines, size, low, err)
			continue
		}
		if known {
			t.Errorf("%s %s: listed as a difference, but salvage agrees with the kernel", r.release, r.args)
		}
		agree[r.release]++
	}
	for rel, n := range total {
		t.Logf("%s: %d of %d cases agree with the kernel", rel, agree[rel], n)
	}
}

// bzImageRelease reads the kernel release from a bzImage: the setup
// header's kernel_version (0x20e) points, less 0x200, at "RELEASE (...)".
func bzImageRelease(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil || len(b) < 0x210 {
		t.Fatalf("%s: %v", name, err)
	}
	off := int(b[0x20e]) | int(b[0x20f])<<8 + 0x200
	if off >= len(b) {
		t.Fatalf("%s: no kernel_version", name)
	}
	v, _, _ := strings.Cut(string(b[off:min(off+256, len(b))]), " ")
	return v
}
