package lab

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"salvage/lab/corpus"
)

// buildSalvage builds the salvage binary for benchmarks that run it the
// way a user does.
func buildSalvage(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "salvage")
	cmd := exec.Command("go", "build", "-o", bin, "salvage/cmd/salvage")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// runMeasured runs a command and returns its wall time and peak RSS.
func runMeasured(tb testing.TB, env []string, name string, args ...string) (time.Duration, int64, string) {
	tb.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	wall := time.Since(start)
	if err != nil {
		tb.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return wall, ru.Maxrss * 1024, string(out)
}

// BenchmarkStartup measures, side by side in one run on the same dump, the
// time from start to the answer of a first symbol command and the peak
// RSS: salvage with DWARF (cold and warm index cache), salvage with only
// the dump's BTF and kallsyms, crash 8.0.6 and drgn 0.0.22.
func BenchmarkStartup(b *testing.B) {
	m := corpus.Require(b)
	ds := m.Select(func(d corpus.Dump) bool { return d.Scenario == "sysrq" && d.Variant == "lzo-d31" })
	if len(ds) != 1 {
		b.Fatal("no sysrq lzo-d31 dump in the corpus")
	}
	d := ds[0]
	k := m.Kernel(d.Release)
	vmlinux := m.Path(k.DebugVmlinux)
	dumpPath := m.Paths(d)[0]
	bin := buildSalvage(b)
	cold := b.TempDir()
	warm := b.TempDir()
	crashRoot := filepath.Join(m.Root, "tools/crash-trixie/root")
	lib := filepath.Join(crashRoot, "usr/lib/x86_64-linux-gnu")
	cmdFile := filepath.Join(b.TempDir(), "cmds")
	os.WriteFile(cmdFile, []byte("sym linux_banner\nq\n"), 0o644)
	drgnScript := filepath.Join(b.TempDir(), "first.py")
	os.WriteFile(drgnScript, []byte(`import sys, drgn
prog = drgn.Program()
prog.set_core_dump(sys.argv[2])
prog.load_debug_info([sys.argv[1]])
print(hex(prog.symbol("linux_banner").address))
`), 0o644)

	// Fill the warm cache once.
	runMeasured(b, []string{"XDG_CACHE_HOME=" + warm}, bin, "analyze", vmlinux, dumpPath, "-c", "sym linux_banner")
	cases := []struct {
		name string
		env  func() []string
		argv []string
	}{
		{"salvage-dwarf-cold", func() []string {
			os.RemoveAll(cold)
			return []string{"XDG_CACHE_HOME=" + cold}
		}, []string{bin, "analyze", vmlinux, dumpPath, "-c", "sym linux_banner"}},
		{"salvage-dwarf-warm", func() []string { return []string{"XDG_CACHE_HOME=" + warm} },
			[]string{bin, "analyze", vmlinux, dumpPath, "-c", "sym linux_banner"}},
		{"salvage-btf-only", func() []string { return nil }, []string{bin, "analyze", dumpPath, "-c", "sym linux_banner"}},
		{"crash-8.0.6", func() []string { return nil }, []string{filepath.Join(lib, "ld-linux-x86-64.so.2"), "--library-path", lib,
			filepath.Join(crashRoot, "usr/bin/crash"), "-s", vmlinux, dumpPath, "-i", cmdFile}},
		{"drgn-0.0.22", func() []string { return nil }, []string{"/usr/bin/python3", drgnScript, vmlinux, dumpPath}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			var rss int64
			var total time.Duration
			for i := 0; i < b.N; i++ {
				env := c.env()
				wall, r, out := runMeasured(b, env, c.argv[0], c.argv[1:]...)
				if !strings.Contains(out, "linux_banner") && !strings.Contains(out, "0xffffffff") {
					b.Fatalf("%s gave no answer:\n%s", c.name, out)
				}
				total += wall
				if r > rss {
					rss = r
				}
			}
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/start")
			b.ReportMetric(float64(rss)/(1<<20), "peak-MiB")
		})
	}
}
