package collect

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"salvage/dump"
	"salvage/lab/corpus"
)

// mdfReport is makedumpfile's --message-level 16 report (print_report):
// its page counts by label.
type mdfReport map[string]uint64

var mdfReportLine = regexp.MustCompile(`^\s*([A-Za-z -]+?)\s*:\s*0x([0-9a-f]+)\s*$`)

func parseMdfReport(out string) mdfReport {
	r := mdfReport{}
	for _, l := range strings.Split(out, "\n") {
		if m := mdfReportLine.FindStringSubmatch(l); m != nil {
			v, _ := strconv.ParseUint(m[2], 16, 64)
			r[m[1]] = v
		}
	}
	return r
}

// mdfClasses are the report's labels of the page classes, with the
// counts salvage keeps of each.
var mdfClasses = []struct {
	label string
	ours  func(Counts) uint64
}{
	{"Pages filled with zero", func(c Counts) uint64 { return c.Zero }},
	{"Non-private cache pages", func(c Counts) uint64 { return c.Cache }},
	{"Private cache pages", func(c Counts) uint64 { return c.CachePrivate }},
	{"User process data pages", func(c Counts) uint64 { return c.User }},
	{"Free pages", func(c Counts) uint64 { return c.Free }},
	{"Hwpoison pages", func(c Counts) uint64 { return c.HWPoison }},
	{"Offline pages", func(c Counts) uint64 { return c.Offline }},
	{"Total pages", nil},
}

// The page counts of each class at -d 31 on every crash's /proc/vmcore,
// and at each level bit alone on the sysrq crash's,
// equal those makedumpfile reports (--message-level 16) — sid's 1.7.8
// and bookworm's 1.7.2, both run here on the same source — and the frames
// salvage keeps equal, frame by frame, those of 1.7.8's dump. salvage
// runs with Exact (the level's pages only); by default it also keeps what
// the analyzer needs, and the classes then differ by exactly those pages
// (the zero pages among them move to the zero class).
//
// Known differences, not compared:
//   - "Original pages" and "Memory Hole": makedumpfile counts RAM as
//     max_mapnr less the holes between PT_LOADs, and /proc/vmcore's
//     PT_LOAD of the kernel image overlaps the direct map's, so the image
//     (about 10,000 pages here) is counted twice; salvage counts each RAM
//     frame once (the 1st bitmaps of both tools' dumps agree). "Remaining
//     pages" (original less excluded) inherits the difference.
//   - "Excluded pages" is the sum of the classes compared.
//   - makedumpfile 1.7.2 on a kernel it says it does not support (6.12):
//     its counts are reported, not held to.
func TestCountsMatchMakedumpfile(t *testing.T) {
	m := corpus.Require(t)
	if v := m.MakedumpfileSidVersion(); v == "" {
		t.Fatal("sid's makedumpfile is missing from the lab: run `make lab`")
	}
	var table strings.Builder
	fmt.Fprintf(&table, "%-36s %-24s %9s %9s %9s %9s\n", "crash", "class", "salvage", "1.7.8", "1.7.2", "+analyzer")
	scenarios := 0
	for _, d := range m.Dumps {
		if d.Variant != "vmcore-elf" {
			continue
		}
		scenarios++
		levels := []int{31}
		if d.Scenario == "sysrq" {
			levels = []int{1, 2, 4, 8, 16, 31}
		}
		for _, level := range levels {
			name := fmt.Sprintf("%s/%s-d%d", d.Release, d.Scenario, level)
			t.Run(name, func(t *testing.T) {
				src := openDump(t, m, d)
				dir := t.TempDir()
				sid := filepath.Join(dir, "mdf-1.7.8")
				lv := fmt.Sprint(level)
				cmd, err := m.MakedumpfileSid(context.Background(), "-l", "-d", lv, "--message-level", "16", m.Paths(d)[0], sid)
				if err != nil {
					t.Fatal(err)
				}
				out178, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("makedumpfile 1.7.8: %v\n%s", err, out178)
				}
				out172, err := exec.Command(makedumpfileBinary, "-l", "-d", lv, "--message-level", "22", m.Paths(d)[0], filepath.Join(dir, "mdf-1.7.2")).CombinedOutput()
				if err != nil {
					t.Fatalf("makedumpfile 1.7.2: %v\n%s", err, out172)
				}
				r178, r172 := parseMdfReport(string(out178)), parseMdfReport(string(out172))
				// Known difference: on a kernel newer than it knows, 1.7.2
				// says so and misclassifies (on 6.12, most user pages and
				// in-use slab pages); it is then compared but not held to.
				unsupported172 := strings.Contains(string(out172), "The kernel version is not supported")
				known172 := 0
				exact, ours := collectTo(t, src, dir, "salvage", Options{Level: level, Compression: "lzo", Exact: true})
				full, _ := collectTo(t, src, dir, "salvage-needs", Options{Level: level, Compression: "lzo"})
				var fullDiff uint64
				for _, c := range mdfClasses {
					got := exact.Selection.MaxPFN
					withNeeds := got
					if c.ours != nil {
						got, withNeeds = c.ours(exact.Counts), c.ours(full.Counts)
					}
					w8, ok8 := r178[c.label]
					w2, ok2 := r172[c.label]
					if !ok8 || !ok2 {
						t.Fatalf("no %q in makedumpfile's report:\n1.7.8:\n%s\n1.7.2:\n%s", c.label, out178, out172)
					}
					if got != w8 {
						t.Errorf("%s: salvage %d, makedumpfile 1.7.8 %d", c.label, got, w8)
					}
					if got != w2 {
						if unsupported172 {
							known172++
						} else {
							t.Errorf("%s: salvage %d, makedumpfile 1.7.2 %d", c.label, got, w2)
						}
					}
					if c.label != "Pages filled with zero" && c.ours != nil {
						fullDiff += got - withNeeds
					}
					fmt.Fprintf(&table, "%-36s %-24s %9d %9d %9d %9d\n", name, c.label, got, w8, w2, int64(withNeeds)-int64(got))
				}
				// The pages kept for the analyzer leave their classes; those
				// of them that are zeroes are counted as zero pages when
				// written (bit 1 keeps them as the shared zero page).
				if fullDiff != full.Counts.KeptForAnalyzer || full.Counts.Zero < exact.Counts.Zero || full.Counts.Zero-exact.Counts.Zero > fullDiff {
					t.Errorf("with the analyzer's pages the classes shrink by %d and the zero pages grow by %d, but %d were kept for it", fullDiff, int64(full.Counts.Zero)-int64(exact.Counts.Zero), full.Counts.KeptForAnalyzer)
				}
				// Frame by frame, against 1.7.8's dump.
				g, err := dump.Open(ours)
				if err != nil {
					t.Fatal(err)
				}
				defer g.Close()
				r, err := dump.Open(sid)
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				var diff int
				for pfn := uint64(0); pfn < exact.Selection.MaxPFN; pfn++ {
					if a, b := g.Memory.State(pfn), r.Memory.State(pfn); a != b {
						if diff++; diff <= 5 {
							t.Errorf("frame %#x: salvage %v, makedumpfile 1.7.8 %v", pfn, a, b)
						}
					}
				}
				if known172 > 0 {
					t.Logf("%s: makedumpfile 1.7.2 says the kernel version is not supported, and %d of its counts differ (a known difference; 1.7.8 agrees with salvage)", name, known172)
				}
				t.Logf("%s: %d frames, states equal to makedumpfile 1.7.8's dump but %d; %d kept for the analyzer by default", name, exact.Selection.MaxPFN, diff, full.Counts.KeptForAnalyzer)
			})
		}
	}
	if scenarios < 5 {
		t.Errorf("%d crashes with a /proc/vmcore copy, want at least the lab's 5", scenarios)
	}
	t.Logf("page counts (salvage --exact; makedumpfile's --message-level 16 report; +analyzer: salvage's default less --exact):\n%s", table.String())
}
