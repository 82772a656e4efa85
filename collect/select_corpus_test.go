package collect

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"salvage/arch/amd64"
	"salvage/dump"
	"salvage/lab/corpus"
)

// crashPair is one kernel's crash of a scenario: the raw /proc/vmcore ELF
// copy and makedumpfile's lzo -d 31 dump of it (bookworm's 1.7.2 in the
// capture kernel for 6.1; sid's 1.7.8 on the host for 6.12, where 1.7.2
// drops in-use slab pages and its dump is only kept as Rejected).
type crashPair struct {
	kernel    string // the lab's name of the kernel ("6.1", "6.12"), else its release
	raw, filt corpus.Dump
}

// kernelCrashes returns, for every kernel of the corpus whose crash of
// scenario has both a vmcore-elf and an lzo-d31 dump, that pair, in the
// manifest's kernel order; it fails when no kernel has them.
func kernelCrashes(t *testing.T, m *corpus.Manifest, scenario string) []crashPair {
	t.Helper()
	var out []crashPair
	for _, k := range m.Kernels {
		p := crashPair{kernel: k.Name}
		if p.kernel == "" {
			p.kernel = k.Release
		}
		var okR, okF bool
		for _, d := range m.Dumps {
			if d.Scenario != scenario || d.Release != k.Release {
				continue
			}
			switch d.Variant {
			case "vmcore-elf":
				p.raw, okR = d, true
			case "lzo-d31":
				p.filt, okF = d, true
			}
		}
		if okR && okF {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no kernel of the corpus has a %s crash with both a vmcore-elf and an lzo-d31 dump", scenario)
	}
	return out
}

// crashDumps returns the raw /proc/vmcore ELF and makedumpfile's lzo
// -d 31 dump of one scenario's crash, of the corpus's last kernel that
// has both: for tests that need one crash, not one per kernel.
func crashDumps(t *testing.T, m *corpus.Manifest, scenario string) (raw, filtered corpus.Dump) {
	t.Helper()
	all := kernelCrashes(t, m, scenario)
	p := all[len(all)-1]
	return p.raw, p.filt
}

func openDump(t testing.TB, m *corpus.Manifest, d corpus.Dump) *dump.File {
	t.Helper()
	f, err := dump.Open(m.Paths(d)...)
	if err != nil {
		t.Fatalf("%s: %v", d.ID, err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func selectFile(t testing.TB, f *dump.File, level int) *Selection {
	t.Helper()
	tr, err := amd64.NewFromFile(f, nil)
	if err != nil {
		t.Fatalf("translator: %v", err)
	}
	sel, err := Select(f.Memory, f.VMCoreInfo, tr, level)
	if err != nil {
		t.Fatalf("Select: %v", err)
	}
	return sel
}

// The pages salvage keeps at -d 31 are, frame by frame, those
// makedumpfile kept in its lzo -d 31 dump of the same crash (its 2nd
// bitmap: present or shared-zero-page frames), on every kernel.
func TestSelectMatchesMakedumpfile(t *testing.T) {
	m := corpus.Require(t)
	for _, sc := range []string{"sysrq", "oops", "hung"} {
		for _, p := range kernelCrashes(t, m, sc) {
			t.Run(p.kernel+"/"+sc, func(t *testing.T) { selectMatches(t, m, p.raw, p.filt) })
		}
	}
}

func selectMatches(t *testing.T, m *corpus.Manifest, raw, filt corpus.Dump) {
	rf := openDump(t, m, raw)
	ff := openDump(t, m, filt)
	sel := selectFile(t, rf, 31)
	if sel.Plan.Level != 31 || len(sel.Plan.Notes) != 0 {
		t.Errorf("plan: level %d, notes %q", sel.Plan.Level, sel.Plan.Notes)
	}
	var extra, missing, ram uint64
	var ex []string
	for pfn := uint64(0); pfn < sel.MaxPFN; pfn++ {
		st := ff.Memory.State(pfn)
		if (st != dump.PageNotRAM) != sel.RAM.Has(pfn) {
			t.Fatalf("pfn %#x: makedumpfile says %v, salvage RAM=%v", pfn, st, sel.RAM.Has(pfn))
		}
		if st == dump.PageNotRAM {
			continue
		}
		ram++
		theirs := st == dump.PagePresent || st == dump.PageZero
		ours := sel.Kept.Has(pfn)
		switch {
		case ours && !theirs:
			extra++
			if len(ex) < 10 {
				ex = append(ex, fmt.Sprintf("+%#x", pfn))
			}
		case !ours && theirs:
			missing++
			if len(ex) < 10 {
				ex = append(ex, fmt.Sprintf("-%#x", pfn))
			}
		}
	}
	c := sel.Counts
	t.Logf("%s: RAM %d, kept %d; excluded cache %d, cache private %d, user %d, free %d, hwpoison %d, offline %d",
		raw.ID, c.RAM, c.Kept, c.Cache, c.CachePrivate, c.User, c.Free, c.HWPoison, c.Offline)
	t.Logf("frames kept by salvage only: %d, by makedumpfile only: %d %s", extra, missing, strings.Join(ex, " "))
	if extra != 0 || missing != 0 {
		t.Errorf("kept sets differ: %d frames kept only by salvage, %d only by makedumpfile (of %d RAM frames)", extra, missing, ram)
	}
}

func openPath(p string) (*dump.File, error) { return dump.Open(p) }

// Each dump-level bit alone, and some sums, against makedumpfile run here
// on the same /proc/vmcore copy, on every kernel: the frame states of
// salvage's kdump-compressed dump (not RAM, excluded, zero page, present)
// equal those of makedumpfile's, frame by frame. The makedumpfile is the
// one that made the corpus's lzo -d 31 dump of that kernel's crash:
// bookworm's 1.7.2 for 6.1, sid's 1.7.8 for 6.12 (1.7.2 misreads the page
// types of kernels >= 6.2 and drops in-use slab pages at -d 8: the
// corpus's Rejected dumps).
func TestLevelsMatchMakedumpfile(t *testing.T) {
	m := corpus.Require(t)
	for _, p := range kernelCrashes(t, m, "hung") {
		t.Run(p.kernel, func(t *testing.T) { levelsMatch(t, m, p.raw, p.filt) })
	}
}

// makedumpfileFor returns a command running the makedumpfile that made
// filt (see TestLevelsMatchMakedumpfile) with args, and its name.
func makedumpfileFor(t *testing.T, m *corpus.Manifest, filt corpus.Dump, args ...string) (*exec.Cmd, string) {
	t.Helper()
	if strings.Contains(filt.Producer, "sid") {
		cmd, err := m.MakedumpfileSid(context.Background(), args...)
		if err != nil {
			t.Fatal(err)
		}
		return cmd, "makedumpfile " + m.MakedumpfileSidVersion() + " (sid)"
	}
	if _, err := os.Stat(makedumpfileBinary); err != nil {
		t.Fatalf("makedumpfile 1.7.2 (Debian's package) is needed: %v", err)
	}
	return exec.Command(makedumpfileBinary, args...), "makedumpfile 1.7.2"
}

func levelsMatch(t *testing.T, m *corpus.Manifest, raw, filt corpus.Dump) {
	src := openDump(t, m, raw)
	dir := t.TempDir()
	need, err := analyzerNeeds(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, level := range []int{0, 1, 2, 4, 8, 16, 6, 24, 30} {
		t.Run(fmt.Sprint(level), func(t *testing.T) {
			theirs := filepath.Join(dir, fmt.Sprintf("mdf-%d", level))
			cmd, mdf := makedumpfileFor(t, m, filt, "-l", "--message-level", "0", "-d", fmt.Sprint(level), m.Paths(raw)[0], theirs)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s -d %d: %v\n%s", mdf, level, err, out)
			}
			ref, err := dump.Open(theirs)
			if err != nil {
				t.Fatal(err)
			}
			defer ref.Close()
			res, ours := collectTo(t, src, dir, fmt.Sprintf("salvage-%d", level), Options{Level: level, Compression: "lzo"})
			got, err := dump.Open(ours)
			if err != nil {
				t.Fatal(err)
			}
			defer got.Close()
			var diff, forAnalyzer int
			for pfn := uint64(0); pfn < res.Selection.MaxPFN; pfn++ {
				if g, r := got.Memory.State(pfn), ref.Memory.State(pfn); g != r {
					if (g == dump.PagePresent || g == dump.PageZero) && r == dump.PageExcluded && need.has(pfn) {
						// Known difference: a page the analyzer needs
						// (see needs.go), which salvage keeps whatever
						// its class.
						forAnalyzer++
						continue
					}
					if diff++; diff <= 5 {
						t.Errorf("frame %#x: salvage %v, makedumpfile %v", pfn, g, r)
					}
				}
			}
			c := res.Counts
			t.Logf("-d %d (against %s): %d frames differ, %d more kept for the analyzer; kept %d (zero %d), excluded cache %d, private cache %d, user %d, free %d",
				level, mdf, diff, forAnalyzer, c.Kept, c.Zero, c.Cache, c.CachePrivate, c.User, c.Free)
		})
	}
}
