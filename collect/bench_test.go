package collect

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"salvage/dump"
	"salvage/lab/corpus"
)

// makedumpfileBinary is Debian bookworm's makedumpfile 1.7.2, the
// collector salvage is measured against.
const makedumpfileBinary = "/usr/bin/makedumpfile"

func benchSource(b *testing.B) string {
	b.Helper()
	m := corpus.Require(b)
	for _, d := range m.Dumps {
		if d.Scenario == "sysrq" && d.Variant == "vmcore-elf" {
			return m.Paths(d)[0]
		}
	}
	b.Fatal("the corpus has no sysrq vmcore-elf")
	return ""
}

// measured is one run of a collector: wall time, CPU time (user and
// system: on a machine other work shares, the steadier of the two), peak
// RSS of its process (getrusage's ru_maxrss) and the size of what it
// wrote.
type measured struct {
	wall time.Duration
	cpu  time.Duration
	rss  int64 // bytes
	size int64
}

func measure(b *testing.B, cmd *exec.Cmd, dest string) (measured, error) {
	b.Helper()
	os.Remove(dest)
	t0 := time.Now()
	out, err := cmd.CombinedOutput()
	wall := time.Since(t0)
	if err != nil {
		return measured{}, fmt.Errorf("%s: %v: %s", filepath.Base(cmd.Args[len(cmd.Args)-1]), err, strings.TrimSpace(string(out)))
	}
	st, err := os.Stat(dest)
	if err != nil {
		return measured{}, err
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return measured{wall: wall, cpu: cpu, rss: ru.Maxrss * 1024, size: st.Size()}, nil
}

// BenchmarkCollectVsMakedumpfile collects the sysrq crash's /proc/vmcore
// copy (808 MiB) at -d 31, side by side in one run (collectorTable):
// salvage, bookworm's makedumpfile 1.7.2, sid's 1.7.8, 1.7.8 with
// --num-threads 2, and cp of the source as the I/O floor. The source is
// read from the page cache after the first run.
func BenchmarkCollectVsMakedumpfile(b *testing.B) {
	m := corpus.Require(b)
	srcPath := benchSource(b)
	b.Logf("sysrq crash, -d 31; the last column is wall time over salvage's (above 1: salvage is faster):\n%s", collectorTable(b, m, srcPath))
}

var (
	salvageOnce sync.Once
	salvagePath string
	salvageErr  error
)

// salvageBinary builds cmd/salvage as `make build` does (static,
// stripped) once per run, for the benchmarks to run as users do.
func salvageBinary(b *testing.B) string {
	salvageOnce.Do(func() {
		dir, err := os.MkdirTemp("", "salvage-bench-")
		if err != nil {
			salvageErr = err
			return
		}
		salvagePath = filepath.Join(dir, "salvage")
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", salvagePath, "salvage/cmd/salvage")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			salvageErr = fmt.Errorf("building salvage: %v: %s", err, out)
		}
	})
	if salvageErr != nil {
		b.Fatal(salvageErr)
	}
	return salvagePath
}

// benchCodecs are the outputs the benchmarks compare: kdump-compressed
// with lzo, with zlib and with no codec (which shows what compressing
// costs each collector), and ELF.
var benchCodecs = []struct {
	name string
	opt  Options
	args []string // makedumpfile's
}{
	{"lzo", Options{Level: 31, Compression: "lzo"}, []string{"-l", "-d", "31"}},
	{"zlib", Options{Level: 31, Compression: "zlib"}, []string{"-c", "-d", "31"}},
	{"none", Options{Level: 31, Compression: "none"}, []string{"-d", "31"}},
	{"elf", Options{Level: 31, Format: FormatELF}, []string{"-E", "-d", "31"}},
}

// collectorTable runs, for each of benchCodecs, b.N times, the collectors
// side by side on srcPath: salvage (cmd/salvage built as `make build`
// builds it, given makedumpfile's flags), bookworm's makedumpfile 1.7.2,
// sid's 1.7.8, 1.7.8 with --num-threads 2 (not for -E, which it refuses),
// and cp of the source. It reports each one's wall and CPU time, peak RSS
// and output size as metrics, with the speedups (makedumpfile's wall time
// over salvage's), and returns them as a table, followed by what
// compressing cost each collector (CPU time with the codec less CPU time
// with none) against the 3× goal: at makedumpfile's own compression
// speed, spread over every CPU, compressing alone takes that share of a
// third of 1.7.8's wall time. Every output must open (dump.Open), and
// salvage's compressed ones must be no larger than 1.7.8's.
func collectorTable(b *testing.B, m *corpus.Manifest, srcPath string) string {
	b.Helper()
	if _, err := os.Stat(makedumpfileBinary); err != nil {
		b.Fatalf("makedumpfile 1.7.2 is needed for the comparison: %v", err)
	}
	if m.MakedumpfileSidVersion() == "" {
		b.Fatal("sid's makedumpfile is missing from the lab: run `make lab`")
	}
	names := []string{"salvage", "makedumpfile-1.7.2", "makedumpfile-1.7.8", "makedumpfile-1.7.8-t2", "cp"}
	rows := map[string]string{}
	sums := map[string][]measured{}
	for _, c := range benchCodecs {
		b.Run(c.name, func(b *testing.B) {
			dir := b.TempDir()
			names := slices.Clone(names)
			if c.name == "elf" {
				names[3] = "" // makedumpfile refuses --num-threads with -E
			}
			sum := make([]measured, len(names))
			// failed holds why a makedumpfile run with --num-threads
			// failed (sid's threaded build aborts now and then where the
			// lab's tool folder lacks libgcc_s.so.1): that row says so
			// and is not run again; any other failure ends the benchmark.
			failed := make([]error, len(names))
			for i := 0; i < b.N; i++ {
				for j, name := range names {
					if failed[j] != nil || name == "" {
						continue
					}
					dest := filepath.Join(dir, name)
					var cmd *exec.Cmd
					switch name {
					case "salvage":
						// The binary users run, with makedumpfile's flags.
						cmd = exec.Command(salvageBinary(b), append(append([]string{"collect", "--message-level", "0"}, c.args...), srcPath, dest)...)
					case "makedumpfile-1.7.2":
						cmd = exec.Command(makedumpfileBinary, append(append([]string{"--message-level", "0"}, c.args...), srcPath, dest)...)
					case "makedumpfile-1.7.8", "makedumpfile-1.7.8-t2":
						args := append([]string{"--message-level", "0"}, c.args...)
						if strings.HasSuffix(name, "-t2") {
							args = append(args, "--num-threads", "2")
						}
						var err error
						if cmd, err = m.MakedumpfileSid(context.Background(), append(args, srcPath, dest)...); err != nil {
							b.Fatal(err)
						}
					case "cp":
						cmd = exec.Command("cp", srcPath, dest)
					}
					r, err := measure(b, cmd, dest)
					if err != nil {
						if !strings.HasSuffix(name, "-t2") {
							b.Fatal(err)
						}
						failed[j] = err
						continue
					}
					// Every output must be a dump salvage opens.
					f, err := dump.Open(dest)
					if err != nil {
						b.Fatalf("%s %s: its output does not open: %v", c.name, name, err)
					}
					f.Close()
					sum[j].wall += r.wall
					sum[j].cpu += r.cpu
					sum[j].rss = max(sum[j].rss, r.rss)
					sum[j].size = r.size
					os.Remove(dest)
				}
			}
			// Uncompressed (no codec, ELF), salvage's output may be larger
			// by the pages the analyzer needs that the level would drop
			// (a few dozen); compressed, it must be no larger at all.
			slack := int64(0)
			if c.opt.Compression == "none" || c.opt.Format == FormatELF {
				slack = 256 << 12
			}
			if sum[0].size > sum[2].size+slack {
				b.Fatalf("%s: salvage's output (%d bytes) is larger than makedumpfile 1.7.8's (%d bytes) by more than %d bytes", c.name, sum[0].size, sum[2].size, slack)
			}
			ms := func(j int) float64 { return float64(sum[j].wall.Milliseconds()) / float64(b.N) }
			cpuMS := func(j int) float64 { return float64(sum[j].cpu.Milliseconds()) / float64(b.N) }
			var table strings.Builder
			for j, name := range names {
				switch {
				case name == "":
					continue
				case failed[j] != nil:
					fmt.Fprintf(&table, "%-6s %-22s failed: %v\n", c.name, name, failed[j])
					continue
				}
				short := strings.ReplaceAll(strings.TrimPrefix(name, "makedumpfile-"), ".", "")
				b.ReportMetric(ms(j), short+"-ms")
				b.ReportMetric(cpuMS(j), short+"-cpums")
				b.ReportMetric(float64(sum[j].rss)/(1<<20), short+"-rssMB")
				b.ReportMetric(float64(sum[j].size)/(1<<20), short+"-MB")
				fmt.Fprintf(&table, "%-6s %-22s %9.0f %9.0f %10.2f %9.1f %8.2f\n", c.name, name, ms(j), cpuMS(j),
					float64(sum[j].size)/1e6, float64(sum[j].rss)/(1<<20), ms(j)/ms(0))
			}
			b.ReportMetric(ms(1)/ms(0), "speedup-vs-172")
			b.ReportMetric(ms(2)/ms(0), "speedup-vs-178")
			rows[c.name] = table.String() // the run with the final b.N
			for j := range sum {
				sum[j].wall /= time.Duration(b.N)
				sum[j].cpu /= time.Duration(b.N)
			}
			sums[c.name] = sum
		})
	}
	var t strings.Builder
	fmt.Fprintf(&t, "%-6s %-22s %9s %9s %10s %9s %8s\n", "codec", "collector", "wall ms", "CPU ms", "size MB", "RSS MB", "÷salvage")
	for _, c := range benchCodecs {
		t.WriteString(rows[c.name])
	}
	none := sums["none"]
	for _, codec := range []string{"lzo", "zlib"} {
		s := sums[codec]
		if s == nil || none == nil {
			continue
		}
		mdf := s[2].cpu - none[2].cpu
		budget := s[2].wall / 3
		fmt.Fprintf(&t, "%s: compressing costs makedumpfile 1.7.8 %v of CPU, salvage %v; the 3× goal is %v of wall time, and %v at 1.7.8's speed on %d CPUs is %.0f%% of it\n",
			codec, mdf.Round(time.Millisecond), (s[0].cpu - none[0].cpu).Round(time.Millisecond), budget.Round(time.Millisecond),
			(mdf / time.Duration(runtime.NumCPU())).Round(time.Millisecond), runtime.NumCPU(), 100*float64(mdf)/float64(runtime.NumCPU())/float64(budget))
	}
	return t.String()
}
