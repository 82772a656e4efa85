package collect

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

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

func runSalvage(b *testing.B, srcPath, dest string, opt Options) {
	b.Helper()
	os.Remove(dest)
	src, err := openPath(srcPath)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	if _, err := Collect(context.Background(), src, dest, opt); err != nil {
		b.Fatal(err)
	}
}

func runMakedumpfile(b *testing.B, args ...string) {
	b.Helper()
	out, err := exec.Command(makedumpfileBinary, args...).CombinedOutput()
	if err != nil {
		b.Fatalf("makedumpfile %v: %v\n%s", args, err, out)
	}
}

// BenchmarkCollectVsMakedumpfile collects the sysrq crash's /proc/vmcore
// copy (808 MiB) at -d 31 with lzo, zlib and as ELF, with salvage and
// with makedumpfile 1.7.2, and reports makedumpfile's time over
// salvage's as "speedup" (above 1: salvage is faster). Both read the
// source from the page cache after the first iteration.
func BenchmarkCollectVsMakedumpfile(b *testing.B) {
	srcPath := benchSource(b)
	if _, err := os.Stat(makedumpfileBinary); err != nil {
		b.Fatalf("makedumpfile 1.7.2 is needed for the comparison: %v", err)
	}
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
			ours, theirs := filepath.Join(dir, "salvage"), filepath.Join(dir, "makedumpfile")
			var ts, tm time.Duration
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				runSalvage(b, srcPath, ours, c.opt)
				t1 := time.Now()
				os.Remove(theirs)
				runMakedumpfile(b, append(append([]string{"--message-level", "0"}, c.args...), srcPath, theirs)...)
				tm += time.Since(t1)
				ts += t1.Sub(t0)
			}
			b.ReportMetric(float64(ts.Milliseconds())/float64(b.N), "salvage-ms/op")
			b.ReportMetric(float64(tm.Milliseconds())/float64(b.N), "makedumpfile-ms/op")
			b.ReportMetric(float64(tm)/float64(ts), "speedup")
		})
	}
}
