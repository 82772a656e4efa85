package collect

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"salvage/dump"
	"salvage/lab/corpus"
)

// bigPageClasses are the lines of makedumpfile's report (print_report in
// makedumpfile.c, printed at --message-level 16) that say how many pages
// each class of -d 31 excluded, in the order it prints them.
var bigPageClasses = []string{
	"Original pages", "Excluded pages", "Pages filled with zero", "Non-private cache pages",
	"Private cache pages", "User process data pages", "Free pages", "Remaining pages",
}

var bigReportLine = regexp.MustCompile(`(?m)^\s*([A-Za-z -]+?)\s*:\s*0x([0-9a-fA-F]+)\s*$`)

// bigPageCounts runs sid's makedumpfile once at -l -d 31 with its report
// and returns the page count of each of bigPageClasses.
func bigPageCounts(b *testing.B, m *corpus.Manifest, src, dest string) map[string]uint64 {
	b.Helper()
	os.Remove(dest)
	defer os.Remove(dest)
	cmd, err := m.MakedumpfileSid(context.Background(), "-l", "-d", "31", "--message-level", "16", src, dest)
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("makedumpfile 1.7.8 --message-level 16: %v: %s", err, out)
	}
	counts := map[string]uint64{}
	for _, mm := range bigReportLine.FindAllStringSubmatch(string(out), -1) {
		n, err := strconv.ParseUint(mm[2], 16, 64)
		if err == nil {
			counts[mm[1]] = n
		}
	}
	for _, c := range bigPageClasses {
		if _, ok := counts[c]; !ok {
			b.Fatalf("makedumpfile 1.7.8's report has no %q line:\n%s", c, out)
		}
	}
	return counts
}

// bigWarm reads a file to its end, leaving it in the page cache.
func bigWarm(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(io.Discard, f)
	return err
}

// BenchmarkCollectBig is BenchmarkCollectVsMakedumpfile on the lab's bench
// crash: a 6 GiB guest whose memory was about 70% anonymous data and page
// cache when it crashed (lab/bench.go; `make bench` builds it, and runs
// this benchmark apart from the others: one pass is under a minute). Side
// by side in one run, at -d 31 with lzo, zlib and as ELF: salvage (the
// test binary as a child process), bookworm's makedumpfile 1.7.2, sid's
// 1.7.8, 1.7.8 with --num-threads 2 and cp of the source, the I/O floor.
// Each reports wall and CPU time, peak RSS and output size; the speedup
// metrics are makedumpfile's wall time over salvage's, cp-fraction is
// cp's wall time over salvage's. Every output must open (dump.Open), and
// salvage's must be no larger than 1.7.8's. The page counts of sid's
// makedumpfile report are logged once, so that the table shows what the
// fill left to exclude. The sources are read from the page cache (the
// benchmark reads the source once first), as in BenchmarkCollectVsMakedumpfile.
func BenchmarkCollectBig(b *testing.B) {
	m, bench := corpus.RequireBench(b)
	d, ok := bench.Dump("vmcore-elf")
	if !ok {
		b.Fatalf("the bench crash %s has no vmcore-elf dump (run `make bench`)", bench.ID)
	}
	srcPath := m.Paths(d)[0]
	if _, err := os.Stat(makedumpfileBinary); err != nil {
		b.Fatalf("makedumpfile 1.7.2 is needed for the comparison: %v", err)
	}
	if m.MakedumpfileSidVersion() == "" {
		b.Fatal("sid's makedumpfile is missing from the lab: run `make lab`")
	}
	// Read the 6 GiB source into the page cache first, so that the first
	// collector does not pay for the disk alone (with -benchtime 1x, its
	// only run would); the lab machines' 24 GiB hold it.
	if err := bigWarm(srcPath); err != nil {
		b.Fatal(err)
	}
	counts := bigPageCounts(b, m, srcPath, filepath.Join(b.TempDir(), "counts.kdump"))
	// The fill must show: anonymous data and page cache are most of the
	// machine, or the bench crash is not the big machine it claims to be.
	filled := counts["Non-private cache pages"] + counts["Private cache pages"] + counts["User process data pages"]
	if filled*2 < counts["Original pages"] {
		b.Fatalf("the bench crash's cache and user pages are %d of %d: less than half its memory (rebuild it: make bench)", filled, counts["Original pages"])
	}
	var report strings.Builder
	for _, c := range bigPageClasses {
		fmt.Fprintf(&report, "  %-24s %9d pages %8.0f MiB\n", c, counts[c], float64(counts[c])*4096/(1<<20))
	}

	rows := map[string]string{}
	for _, c := range []struct {
		name string
		opt  Options
		args []string
	}{
		{"lzo", Options{Level: 31, Compression: "lzo"}, []string{"-l", "-d", "31"}},
		{"zlib", Options{Level: 31, Compression: "zlib"}, []string{"-c", "-d", "31"}},
		{"elf", Options{Level: 31, Format: FormatELF}, []string{"-E", "-d", "31"}},
	} {
		b.Run(c.name, func(b *testing.B) {
			dir := b.TempDir()
			names := []string{"salvage", "makedumpfile-1.7.2", "makedumpfile-1.7.8", "makedumpfile-1.7.8-t2", "cp"}
			if c.name == "elf" {
				// makedumpfile refuses --num-threads with -E.
				names = slices.Delete(names, 3, 4)
			}
			sum := make([]measured, len(names))
			// As in BenchmarkCollectVsMakedumpfile, a failing threaded
			// 1.7.8 is reported in its row; any other failure is fatal.
			failed := make([]error, len(names))
			for i := 0; i < b.N; i++ {
				for j, name := range names {
					if failed[j] != nil {
						continue
					}
					dest := filepath.Join(dir, name)
					var cmd *exec.Cmd
					switch name {
					case "salvage":
						js, _ := json.Marshal(benchChild{Src: srcPath, Dest: dest, Opt: c.opt})
						cmd = exec.Command(os.Args[0], "-test.run=^TestCollectBenchChild$", "-test.count=1")
						cmd.Env = append(os.Environ(), benchChildEnv+"="+string(js))
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
			if sum[0].size > sum[2].size {
				b.Fatalf("%s: salvage's output (%d bytes) is larger than makedumpfile 1.7.8's (%d bytes)", c.name, sum[0].size, sum[2].size)
			}
			ms := func(j int) float64 { return float64(sum[j].wall.Milliseconds()) / float64(b.N) }
			cpuMS := func(j int) float64 { return float64(sum[j].cpu.Milliseconds()) / float64(b.N) }
			for j, name := range names {
				if failed[j] != nil {
					continue
				}
				short := strings.ReplaceAll(strings.TrimPrefix(name, "makedumpfile-"), ".", "")
				b.ReportMetric(ms(j), short+"-ms")
				b.ReportMetric(cpuMS(j), short+"-cpums")
				b.ReportMetric(float64(sum[j].rss)/(1<<20), short+"-rssMB")
				b.ReportMetric(float64(sum[j].size)/(1<<20), short+"-MB")
			}
			b.ReportMetric(ms(1)/ms(0), "speedup-vs-172")
			b.ReportMetric(ms(2)/ms(0), "speedup-vs-178")
			b.ReportMetric(cpuMS(2)/cpuMS(0), "cpu-ratio-vs-178")
			if c.name != "elf" && failed[3] == nil {
				b.ReportMetric(ms(3)/ms(0), "speedup-vs-178t2")
			}
			b.ReportMetric(ms(len(names)-1)/ms(0), "cp-fraction")
			var table strings.Builder
			for j, name := range names {
				if failed[j] != nil {
					fmt.Fprintf(&table, "%-6s %-22s failed: %v\n", c.name, name, failed[j])
					continue
				}
				fmt.Fprintf(&table, "%-6s %-22s %9.0f %9.0f %10.2f %9.1f %8.2f\n", c.name, name, ms(j), cpuMS(j),
					float64(sum[j].size)/1e6, float64(sum[j].rss)/(1<<20), ms(j)/ms(0))
			}
			rows[c.name] = table.String() // the run with the final b.N
		})
	}
	b.Logf("bench crash %s (%d MiB guest: %d MiB anonymous, %d MiB page cache; source %.2f GB), -d 31; the last column is wall time over salvage's:\n%-6s %-22s %9s %9s %10s %9s %8s\n%s%s%s"+
		"pages of sid's makedumpfile -l -d 31 --message-level 16:\n%s",
		bench.ID, bench.MemMiB, bench.AnonMiB, bench.CacheMiB, float64(d.Size)/1e9,
		"codec", "collector", "wall ms", "CPU ms", "size MB", "RSS MB", "÷salvage", rows["lzo"], rows["zlib"], rows["elf"], report.String())
}
