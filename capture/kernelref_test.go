package capture

import (
	"bufio"
	"context"
	"errors"
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

var updateKernel = flag.Bool("update-kernel", false, "boot the lab's kernel under QEMU for each crashkernel= case and rewrite testdata/crashkernel-*.txt")

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
var kernelDifferences = map[string]string{
	"crashkernel=bad crashkernel=128M,high": "6.1's x86 reserve_crashkernel tries ,high when the plain form is malformed; 6.7+ only when it is absent",
}

var (
	reservingRe = regexp.MustCompile(`Reserving (\d+)MB of memory at (\d+)MB for crashkernel \(System RAM: (\d+)MB\)`)
	lowRe       = regexp.MustCompile(`Reserving (\d+)MB of low memory at (\d+)MB for crashkernel`)
)

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
		m := corpus.Require(t)
		files = nil
		for _, k := range m.Kernels {
			if k.Vmlinuz == "" {
				continue
			}
			var b strings.Builder
			fmt.Fprintf(&b, "# crashkernel= on %s under QEMU (TCG, 1 CPU): memory MiB, parameters, the kernel's crashkernel lines\n", k.Release)
			for _, c := range kernelCases {
				lines := bootForCrashkernel(t, m.Path(k.Vmlinuz), c.mem, c.args)
				fmt.Fprintf(&b, "%d\t%s\t%s\n", c.mem, c.args, strings.Join(lines, "\t"))
			}
			name := filepath.Join("testdata", "crashkernel-"+k.Release+".txt")
			if err := os.WriteFile(name, []byte(b.String()), 0o644); err != nil {
				t.Fatal(err)
			}
			files = append(files, name)
		}
	}
	if len(files) == 0 {
		t.Fatal("no testdata/crashkernel-*.txt: run with -update-kernel on the lab machine")
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		// The system RAM of each memory size, from the control boots.
		ram := map[int]uint64{}
		type rec struct {
			mem   int
			args  string
			lines []string
		}
		var recs []rec
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if strings.HasPrefix(l, "#") {
				continue
			}
			f := strings.Split(l, "\t")
			mem, err := strconv.Atoi(f[0])
			if err != nil || len(f) < 2 {
				t.Fatalf("%s: bad line %q", name, l)
			}
			r := rec{mem, f[1], f[2:]}
			recs = append(recs, r)
			for _, x := range r.lines {
				if g := reservingRe.FindStringSubmatch(x); g != nil {
					mb, _ := strconv.ParseUint(g[3], 10, 64)
					ram[mem] = mb << 20
				}
			}
		}
		agree := 0
		for _, r := range recs {
			var kSize, kLow, kBase uint64
			for _, x := range r.lines {
				if g := reservingRe.FindStringSubmatch(x); g != nil {
					n, _ := strconv.ParseUint(g[1], 10, 64)
					at, _ := strconv.ParseUint(g[2], 10, 64)
					kSize, kBase = n<<20, at<<20
				}
				if g := lowRe.FindStringSubmatch(x); g != nil {
					n, _ := strconv.ParseUint(g[1], 10, 64)
					kLow = n << 20
				}
			}
			if ram[r.mem] == 0 {
				t.Fatalf("%s: no control boot gives the RAM of a %d MiB guest", name, r.mem)
			}
			// The kernel prints whole MB of RAM; its memblock total is up to
			// 1 MB more (1023.5 MB on a 1024 MiB guest).
			ck, err := ParseCrashkernel(r.args, ram[r.mem]+512<<10)
			var size, low uint64
			if err == nil || errors.Is(err, ErrNoCrashkernel) {
				if ck != nil {
					size = ck.Size
					if ck.Base != 0 && ck.Base != kBase {
						t.Errorf("%s: the kernel reserved at %s, salvage says @%s", r.args, FormatSize(kBase), FormatSize(ck.Base))
					}
					if ck.High && ck.LowSize > 0 && kLow > 0 {
						low = ck.LowSize
					}
				}
			}
			// Below 4G the kernel needs no low reservation even with ,high.
			if size != kSize || low != kLow {
				why, known := kernelDifferences[r.args]
				if known {
					t.Logf("%s, %d MiB: known difference: kernel %s, salvage %s: %s", r.args, r.mem, FormatSize(kSize), FormatSize(size), why)
					continue
				}
				t.Errorf("%s (%d MiB): the kernel reserved %d (+%d low) %q; salvage says %d (+%d low), %v",
					r.args, r.mem, kSize, kLow, r.lines, size, low, err)
				continue
			}
			if _, known := kernelDifferences[r.args]; known {
				t.Errorf("%s: listed as a difference, but salvage agrees with the kernel", r.args)
			}
			agree++
		}
		t.Logf("%s: %d of %d cases agree with the kernel", filepath.Base(name), agree, len(recs))
	}
}
