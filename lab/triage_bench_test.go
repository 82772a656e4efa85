package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"salvage/lab/corpus"
)

// triageCommands are the first five minutes with a dump (issue: the
// analyzer's triage core), measured for salvage and crash side by side.
var triageCommands = []struct{ name, cmd, expect string }{
	{"startup", "sys", "RELEASE:"},
	{"ps", "ps", "COMM"},
	{"bt-a", "bt -a", "PID:"},
	{"foreach-bt", "foreach bt", "PID:"},
	{"log", "log", "Linux version"},
}

// BenchmarkTriage runs each triage command as a user would — a fresh
// process opening the dump and answering one command — with salvage
// (debug vmlinux, warm DWARF index; and BTF-only) and with crash 8.0.6,
// on the same dumps in one run. crash's own start-up (about 6 s here) is
// measured too and reported apart, so its per-command cost can be read
// as the difference. Metrics: ms per run, and "x-vs-crash", how many
// times faster salvage is than crash on the same command.
func BenchmarkTriage(b *testing.B) {
	m := corpus.Require(b)
	var dumps []corpus.Dump
	for _, d := range m.Dumps {
		if d.Variant == "vmcore-elf" && (d.Scenario == "sysrq" || d.Scenario == "many") {
			dumps = append(dumps, d)
		}
	}
	if len(dumps) == 0 {
		b.Fatal("the corpus has no sysrq vmcore-elf dump")
	}
	bin := buildSalvage(b)
	warm := b.TempDir()
	crashRoot := filepath.Join(m.Root, "tools/crash-trixie/root")
	lib := filepath.Join(crashRoot, "usr/lib/x86_64-linux-gnu")
	for _, d := range dumps {
		vmlinux := m.Path(m.Kernel(d.Release).DebugVmlinux)
		files := m.Paths(d)
		// Fill the DWARF index cache once: the warm case is the usual one.
		runMeasured(b, []string{"XDG_CACHE_HOME=" + warm}, bin, append([]string{"analyze", vmlinux}, append(files, "-c", "sys")...)...)
		crashStart := crashRun(b, lib, crashRoot, vmlinux, files, "", "")
		b.Run(d.Scenario+"/crash-startup", func(b *testing.B) {
			b.ReportMetric(float64(crashStart.Milliseconds()), "ms/run")
		})
		for _, c := range triageCommands {
			var crashT time.Duration
			b.Run(d.Scenario+"/"+c.name+"/crash-8.0.6", func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					crashT += crashRun(b, lib, crashRoot, vmlinux, files, c.cmd, c.expect)
				}
				crashT /= time.Duration(b.N)
				b.ReportMetric(float64(crashT.Milliseconds()), "ms/run")
			})
			for _, mode := range []string{"dwarf", "btf"} {
				b.Run(d.Scenario+"/"+c.name+"/salvage-"+mode, func(b *testing.B) {
					args := []string{"analyze"}
					if mode == "dwarf" {
						args = append(args, vmlinux)
					}
					args = append(append(args, files...), "-c", c.cmd)
					var total time.Duration
					var rss int64
					for i := 0; i < b.N; i++ {
						wall, r, out := runMeasured(b, []string{"XDG_CACHE_HOME=" + warm}, bin, args...)
						if !strings.Contains(out, c.expect) {
							b.Fatalf("salvage %s: no %q in its output:\n%.2000s", c.cmd, c.expect, out)
						}
						total += wall
						rss = max(rss, r)
					}
					avg := total / time.Duration(b.N)
					b.ReportMetric(float64(avg.Milliseconds()), "ms/run")
					b.ReportMetric(float64(rss)/(1<<20), "peak-MiB")
					if crashT > 0 && avg > 0 {
						b.ReportMetric(float64(crashT)/float64(avg), "x-vs-crash")
					}
				})
			}
		}
	}
}

// crashRun runs crash 8.0.6 on the dump with one command (none: start-up
// only) and returns its wall time.
func crashRun(tb testing.TB, lib, root, vmlinux string, files []string, cmd, expect string) time.Duration {
	tb.Helper()
	dir := tb.TempDir()
	in := filepath.Join(dir, "cmds")
	out := filepath.Join(dir, "out")
	script := "q\n"
	if cmd != "" {
		script = fmt.Sprintf("%s > %s\nq\n", cmd, out)
	}
	if err := os.WriteFile(in, []byte(script), 0o644); err != nil {
		tb.Fatal(err)
	}
	args := append([]string{"--library-path", lib, filepath.Join(root, "usr/bin/crash"), "-s", vmlinux}, files...)
	args = append(args, "-i", in)
	wall, _, session := runMeasured(tb, nil, filepath.Join(lib, "ld-linux-x86-64.so.2"), args...)
	if cmd != "" {
		b, _ := os.ReadFile(out)
		if !strings.Contains(string(b), expect) {
			tb.Fatalf("crash %s: no %q in its output:\n%.2000s\n%s", cmd, expect, b, session)
		}
	}
	return wall
}
