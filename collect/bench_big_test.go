package collect

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

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
// this benchmark apart from the others). The collectors run side by side
// as collectorTable says. The page counts of sid's makedumpfile report
// are logged once, so that the table shows what the fill left to
// exclude. The source is read into the page cache first, as
// BenchmarkCollectVsMakedumpfile's is by its first run.
func BenchmarkCollectBig(b *testing.B) {
	m, bench := corpus.RequireBench(b)
	d, ok := bench.Dump("vmcore-elf")
	if !ok {
		b.Fatalf("the bench crash %s has no vmcore-elf dump (run `make bench`)", bench.ID)
	}
	srcPath := m.Paths(d)[0]
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

	table := collectorTable(b, m, srcPath)
	b.Logf("bench crash %s (%d MiB guest: %d MiB anonymous, %d MiB page cache; source %.2f GB), -d 31; the last column is wall time over salvage's (above 1: salvage is faster):\n%s"+
		"pages of sid's makedumpfile -l -d 31 --message-level 16:\n%s",
		bench.ID, bench.MemMiB, bench.AnonMiB, bench.CacheMiB, float64(d.Size)/1e9, table, report.String())
}
