package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"salvage/collect"
	"salvage/dump"
	"salvage/lab/corpus"
)

// sysrqVmcore is the raw /proc/vmcore copy of the lab's sysrq crash (of
// the first kernel, when the corpus has several).
func sysrqVmcore(t *testing.T) string {
	t.Helper()
	m := corpus.Require(t)
	return m.Paths(sysrqDump(t, m, "vmcore-elf"))[0]
}

// sysrqDump is the variant of the sysrq crash sysrqVmcore names.
func sysrqDump(t *testing.T, m *corpus.Manifest, variant string) corpus.Dump {
	t.Helper()
	var first *corpus.Dump
	for _, d := range m.Dumps {
		if d.Scenario == "sysrq" && d.Variant == "vmcore-elf" {
			first = &d
			break
		}
	}
	if first == nil {
		t.Fatal("the corpus has no sysrq vmcore-elf")
	}
	for _, d := range m.Dumps {
		if d.Crash == first.Crash && d.Release == first.Release && d.Variant == variant {
			return d
		}
	}
	t.Fatalf("the corpus has no %s of %s's crash", variant, first.ID)
	return corpus.Dump{}
}

// makedumpfileCounts counts the RAM frames and the frames kept (present,
// or the shared zero page) in makedumpfile 1.7.2's lzo -d 31 dump of the
// lab's sysrq crash; collect's corpus tests compare the sets frame by
// frame.
func makedumpfileCounts(t *testing.T) (ram, kept uint64) {
	t.Helper()
	m := corpus.Require(t)
	f, err := dump.Open(m.Paths(sysrqDump(t, m, "lzo-d31"))...)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, r := range f.Memory.Ranges() {
		ps := uint64(f.Memory.PageSize())
		for pfn := r.Start / ps; pfn < (r.End+ps-1)/ps; pfn++ {
			switch f.Memory.State(pfn) {
			case dump.PageNotRAM:
				continue
			case dump.PagePresent, dump.PageZero:
				kept++
			}
			ram++
		}
	}
	return ram, kept
}

// salvage collect --json: the summary counts the pages of each class, as
// many kept as makedumpfile kept of the same crash (and those it kept for
// the analyzer besides), and the file is a kdump-compressed dump at level
// 31.
func TestCollectCommandJSON(t *testing.T) {
	src := sysrqVmcore(t)
	ram, kept := makedumpfileCounts(t)
	dest := filepath.Join(t.TempDir(), "dump")
	out, _, err := runSalvage(t, "collect", "-l", "-d", "31", "--json", src, dest)
	if err != nil {
		t.Fatal(err)
	}
	var s collectSummary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("--json output is not JSON: %v\n%s", err, out)
	}
	if s.Dest != dest || s.Incomplete || s.Level != 31 || s.Kept-s.KeptForAnalyzer != kept || s.Zero == 0 || s.RAM != ram {
		t.Errorf("summary %+v; makedumpfile: %d RAM frames, %d kept", s, ram, kept)
	}
	if s.Cache+s.CachePrivate+s.User+s.Free+s.Zero+s.Kept-s.Zero != s.RAM {
		t.Errorf("classes do not add up to the RAM: %+v", s)
	}
	f, err := dump.Open(dest)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Format != dump.FormatKdump || f.DumpLevel != 31 || f.Incomplete {
		t.Errorf("format %s, level %d, incomplete %v", f.Format, f.DumpLevel, f.Incomplete)
	}

	// An existing DEST is kept unless --force (-f).
	_, _, err = runSalvage(t, "collect", "-l", "-d", "31", src, dest)
	if err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("collect over an existing DEST: %v, want an error saying it exists", err)
	}
	if _, _, err := runSalvage(t, "collect", "-f", "-c", "-d", "31", "--message-level", "0", src, dest); err != nil {
		t.Errorf("collect -f: %v", err)
	}
}

// The text report is makedumpfile's (print_report), and --message-level 1
// prints only progress, to standard error.
func TestCollectCommandReport(t *testing.T) {
	src := sysrqVmcore(t)
	dir := t.TempDir()
	js, _, err := runSalvage(t, "collect", "-z", "-d", "31", "--json", src, filepath.Join(dir, "j"))
	if err != nil {
		t.Fatal(err)
	}
	var s collectSummary
	if err := json.Unmarshal([]byte(js), &s); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := runSalvage(t, "collect", "-z", "-d", "31", src, filepath.Join(dir, "a"))
	if err != nil {
		t.Fatal(err)
	}
	// The report says what the summary says, in makedumpfile's words.
	for _, want := range []string{
		fmt.Sprintf("Original pages  : 0x%016x\n", s.RAM),
		fmt.Sprintf("    Pages filled with zero  : 0x%016x\n", s.Zero),
		fmt.Sprintf("  Remaining pages  : 0x%016x\n", s.Kept-s.Zero),
		fmt.Sprintf("Total pages     : 0x%016x\n", s.MaxPFN),
		"The dumpfile is saved to " + filepath.Join(dir, "a") + ".\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "Copying data") || !strings.Contains(errOut, "[100.0 %]") {
		t.Errorf("no progress on standard error:\n%s", errOut)
	}
	out, errOut, err = runSalvage(t, "collect", "-l", "--message-level", "1", "-d", "31", src, filepath.Join(dir, "b"))
	if err != nil || out != "" || !strings.Contains(errOut, "[100.0 %]") {
		t.Errorf("--message-level 1: err %v, stdout %q, stderr %q", err, out, errOut)
	}
}

// makedumpfile's own command line works when salvage runs as makedumpfile.
func TestMakedumpfileCommandLine(t *testing.T) {
	src := sysrqVmcore(t)
	dir := t.TempDir()
	dest := filepath.Join(dir, "dump")
	if err := makedumpfileMain([]string{"-l", "--message-level", "1", "-d", "31", src, dest}); err != nil {
		t.Fatal(err)
	}
	// Without --message-level, makedumpfile's default (7): no report.
	if err := makedumpfileMain([]string{"-c", "-d", "31", src, filepath.Join(dir, "dump2")}); err != nil {
		t.Fatal(err)
	}
	f, err := dump.Open(dest)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.DumpLevel != 31 || len(f.Compression) == 0 || f.Compression[0] != "lzo" {
		t.Errorf("level %d, compression %v", f.DumpLevel, f.Compression)
	}
}

// -F writes the flattened stream to standard output.
func TestCollectCommandFlattened(t *testing.T) {
	src := sysrqVmcore(t)
	_, kept := makedumpfileCounts(t)
	out, errOut, err := runSalvage(t, "collect", "-F", "-l", "-d", "31", "--json", src)
	if err != nil {
		t.Fatal(err)
	}
	// The summary goes to standard error, the stream alone to standard output.
	var s collectSummary
	if err := json.Unmarshal([]byte(errOut), &s); err != nil || s.Kept-s.KeptForAnalyzer != kept {
		t.Errorf("--json on standard error: %v, %+v\n%s", err, s, errOut)
	}
	f, err := dump.NewFile(bytes.NewReader([]byte(out)), int64(len(out)), "stdout")
	if err != nil {
		t.Fatal(err)
	}
	if f.Format != dump.FormatFlattened || f.Inner != dump.FormatKdump || f.Incomplete || f.DumpLevel != 31 {
		t.Errorf("format %s of %s, incomplete %v, level %d", f.Format, f.Inner, f.Incomplete, f.DumpLevel)
	}
}

// -L stops the dump at the size limit: exit error, DEST.incomplete kept,
// marked incomplete, DEST not created.
func TestCollectCommandLimit(t *testing.T) {
	src := sysrqVmcore(t)
	dest := filepath.Join(t.TempDir(), "dump")
	_, _, err := runSalvage(t, "collect", "-l", "-d", "31", "-L", "4000000", "--message-level", "0", src, dest)
	if !errors.Is(err, collect.ErrLimit) {
		t.Fatalf("error %v, want the size limit", err)
	}
	if _, err := os.Stat(dest); err == nil {
		t.Error("DEST created for a dump cut by -L")
	}
	f, err := dump.Open(dest + ".incomplete")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !f.Incomplete {
		t.Error("the cut dump is not marked incomplete")
	}
	if st, _ := os.Stat(dest + ".incomplete"); st.Size() > 4000000 {
		t.Errorf("%d bytes, over the 4000000-byte limit", st.Size())
	}
}

// Bad command lines get one clear line, not a panic or a usage dump.
func TestCollectCommandErrors(t *testing.T) {
	src := sysrqVmcore(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"collect", "-d", "32", src, filepath.Join(dir, "x")}, "dump level is 0–31"},
		{[]string{"collect", "-l", "-c", src, filepath.Join(dir, "x")}, "choose one compression"},
		{[]string{"collect", "--compression", "lz4", src, filepath.Join(dir, "x")}, "want none, zlib, lzo, snappy or zstd"},
		{[]string{"collect", src}, "SOURCE and DEST"},
		{[]string{"collect", "-F", src, filepath.Join(dir, "x")}, "SOURCE only"},
		{[]string{"collect", filepath.Join(dir, "nonexistent"), filepath.Join(dir, "x")}, "nonexistent"},
		{[]string{"collect", "-E", "-l", src, filepath.Join(dir, "x")}, "cannot be compressed"},
		{[]string{"collect", "--dump-dmesg", src}, "SOURCE and DEST"},
		{[]string{"collect", "--dump-dmesg", filepath.Join(dir, "nonexistent"), filepath.Join(dir, "x")}, "nonexistent"},
		{[]string{"collect", "-i", filepath.Join(dir, "nonexistent"), src, filepath.Join(dir, "x")}, "nonexistent"},
		{[]string{"collect", "-d", "11", "--retry-levels", "31,11", src, filepath.Join(dir, "x")}, "above the one before"},
		{[]string{"collect", "-d", "11", "--retry-levels", "11", src, filepath.Join(dir, "x")}, "above the one before"},
		{[]string{"collect", "--retry-levels", "31,x", src, filepath.Join(dir, "x")}, "not a dump level"},
		{[]string{"collect", "--retry-levels", "64", src, filepath.Join(dir, "x")}, "not in 0–31"},
		{[]string{"collect", "-F", "--retry-levels", "31", src}, "cannot restart a flattened stream"},
	} {
		_, _, err := runSalvage(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: error %v, want one line containing %q", tc.args[1:], err, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "x")); err == nil {
		t.Error("a failed command left a dump")
	}
}

// --progress=json: one JSON event per percent on standard error, the
// pages done never going back, then a "done" event with all of them.
func TestCollectProgressJSON(t *testing.T) {
	src := sysrqVmcore(t)
	_, errOut, err := runSalvage(t, "collect", "-l", "-d", "31", "--progress=json", src, filepath.Join(t.TempDir(), "d"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	var last struct {
		Event string `json:"event"`
		Done  uint64 `json:"done_pages"`
		Total uint64 `json:"total_pages"`
	}
	n := 0
	for _, l := range lines {
		if !strings.HasPrefix(l, "{") {
			continue
		}
		prev := last.Done
		if err := json.Unmarshal([]byte(l), &last); err != nil {
			t.Fatalf("progress line %q: %v", l, err)
		}
		if last.Done < prev {
			t.Errorf("progress went back: %d after %d", last.Done, prev)
		}
		n++
	}
	if n < 10 || last.Event != "done" || last.Done != last.Total || last.Total == 0 {
		t.Errorf("%d events, the last %+v", n, last)
	}
	if _, _, err := runSalvage(t, "collect", "--progress=sometimes", src, filepath.Join(t.TempDir(), "e")); err == nil || !strings.Contains(err.Error(), "--progress") {
		t.Errorf("a bad --progress: %v", err)
	}
}

// collect --dump-dmesg SOURCE DEST writes what makedumpfile --dump-dmesg
// wrote in the capture kernel of every crash, byte for byte: from
// VMCOREINFO alone and with -x and the debug vmlinux.
func TestCollectDumpDmesg(t *testing.T) {
	m := corpus.Require(t)
	crashes := 0
	for _, d := range m.Dumps {
		if d.Variant != "vmcore-elf" || d.Dmesg == "" {
			continue
		}
		crashes++
		want, err := os.ReadFile(m.Path(d.Dmesg))
		if err != nil {
			t.Fatal(err)
		}
		vmlinux := m.Path(m.Kernel(d.Release).DebugVmlinux)
		for _, mode := range []string{"vmcoreinfo", "vmlinux"} {
			t.Run(mode+"/"+d.Scenario, func(t *testing.T) {
				dest := filepath.Join(t.TempDir(), "dmesg.txt")
				args := []string{"collect", "--dump-dmesg"}
				if mode == "vmlinux" {
					args = append(args, "-x", vmlinux)
				}
				args = append(args, m.Paths(d)[0], dest)
				if _, _, err := runSalvage(t, args...); err != nil {
					t.Fatal(err)
				}
				got, err := os.ReadFile(dest)
				if err != nil {
					t.Fatal(err)
				}
				same, total := sameLines(string(got), string(want))
				if !bytes.Equal(got, want) {
					t.Fatalf("differs from makedumpfile --dump-dmesg: %d of %d lines the same\n%s", same, total, firstDiff(string(got), string(want)))
				}
				t.Logf("%d of %d lines identical to makedumpfile --dump-dmesg", same, total)
				// DEST exists now: kept unless --force.
				if _, _, err := runSalvage(t, args...); err == nil || !strings.Contains(err.Error(), "exists") {
					t.Errorf("--dump-dmesg over an existing DEST: %v", err)
				}
			})
		}
	}
	if crashes < 5 {
		t.Errorf("%d crashes with makedumpfile's dmesg, want the lab's 5 captured ones", crashes)
	}
}

// --retry-levels: a dump that runs out of space (-L) at -d 1 starts again
// at -d 31 and succeeds; the summary and the report say so, the dump is
// complete, at level 31, within the limit, and no .incomplete is left.
func TestCollectRetryLevels(t *testing.T) {
	src := sysrqVmcore(t)
	dir := t.TempDir()
	const limit = 40000000
	dest := filepath.Join(dir, "dump")
	out, _, err := runSalvage(t, "collect", "-l", "-d", "1", "-L", fmt.Sprint(limit), "--retry-levels", "31", "--json", src, dest)
	if err != nil {
		t.Fatalf("collect with --retry-levels 31: %v", err)
	}
	var s collectSummary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatal(err)
	}
	if s.Incomplete || s.Level != 31 || fmt.Sprint(s.LevelsTried) != "[1 31]" || len(s.Notes) == 0 ||
		!strings.HasPrefix(s.Notes[0], "dump level 1 ran out of space after") || !strings.Contains(s.Notes[0], "started again at dump level 31") {
		t.Errorf("summary: %+v", s)
	}
	t.Logf("%s", s.Notes[0])
	f, err := dump.Open(dest)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Incomplete || f.DumpLevel != 31 {
		t.Errorf("the dump: incomplete %v, level %d", f.Incomplete, f.DumpLevel)
	}
	if st, _ := os.Stat(dest); st.Size() > limit {
		t.Errorf("%d bytes, over the %d-byte limit", st.Size(), limit)
	}
	if _, err := os.Stat(dest + ".incomplete"); err == nil {
		t.Error("the first attempt's .incomplete is left")
	}
	// The text report says it too; with 11,31 both retries are named.
	out, _, err = runSalvage(t, "collect", "-l", "-d", "1", "-L", fmt.Sprint(limit), "--retry-levels", "11,31", "--progress", "none", src, filepath.Join(dir, "b"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "Note: dump level 1 ran out of space after") || !strings.Contains(out, "The dumpfile is saved to "+filepath.Join(dir, "b")) {
		t.Errorf("report:\n%s", out)
	}
	// Without it, the same limit fails.
	_, _, err = runSalvage(t, "collect", "-l", "-d", "1", "-L", fmt.Sprint(limit), "--message-level", "0", src, filepath.Join(dir, "c"))
	if !errors.Is(err, collect.ErrLimit) {
		t.Errorf("without --retry-levels: %v, want the size limit", err)
	}
}

// --split, both forms: makedumpfile's (--split SOURCE DEST1 DEST2) and
// ours (--split 3 SOURCE DEST: DEST.1…DEST.3); salvage info --split
// opens the parts together, complete, with every page the single-file
// dump holds.
func TestCollectCommandSplit(t *testing.T) {
	src := sysrqVmcore(t)
	_, kept := makedumpfileCounts(t)
	dir := t.TempDir()
	for _, c := range []struct {
		args  []string
		parts []string
	}{
		{[]string{"--split", src, filepath.Join(dir, "a1"), filepath.Join(dir, "a2")}, []string{"a1", "a2"}},
		{[]string{"--split", "3", src, filepath.Join(dir, "b")}, []string{"b.1", "b.2", "b.3"}},
		{[]string{"--split=2", src, filepath.Join(dir, "c")}, []string{"c.1", "c.2"}},
	} {
		args := append([]string{"collect", "-l", "-d", "31", "--json"}, c.args...)
		out, _, err := runSalvage(t, args...)
		if err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		var s collectSummary
		if err := json.Unmarshal([]byte(out), &s); err != nil || s.Incomplete || s.Kept-s.KeptForAnalyzer != kept {
			t.Errorf("%v: summary %+v (%v)", c.args, s, err)
		}
		var paths []string
		for _, p := range c.parts {
			paths = append(paths, filepath.Join(dir, p))
		}
		js, _, err := runSalvage(t, append([]string{"info", "--json", "--split"}, paths...)...)
		if err != nil {
			t.Fatalf("info --split %v: %v", c.parts, err)
		}
		var info struct {
			Format     string `json:"format"`
			Incomplete bool   `json:"incomplete"`
		}
		if err := json.Unmarshal([]byte(js), &info); err != nil || info.Format != "split" || info.Incomplete {
			t.Errorf("info --split %v: %+v %v\n%s", c.parts, info, err, js)
		}
		f, err := dump.Open(paths...)
		if err != nil {
			t.Fatal(err)
		}
		var n uint64
		for _, r := range f.Memory.Ranges() {
			for pfn := r.Start / 4096; pfn < r.End/4096; pfn++ {
				if st := f.Memory.State(pfn); st == dump.PagePresent || st == dump.PageZero {
					n++
				}
			}
		}
		f.Close()
		if n != s.Kept {
			t.Errorf("%v: the parts hold %d pages, the summary says %d", c.parts, n, s.Kept)
		}
	}
	for _, bad := range [][]string{
		{"collect", "--split", src, filepath.Join(dir, "x")},
		{"collect", "--split=1", src, filepath.Join(dir, "x")},
		{"collect", "--split=2", "-E", src, filepath.Join(dir, "x")},
	} {
		if _, _, err := runSalvage(t, bad...); err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: %v, want a one-line error", bad[1:], err)
		}
	}
}
