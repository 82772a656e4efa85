package collect

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"salvage/dump"
	"salvage/lab/corpus"
)

// splitHeader is what a split part's headers say, from its first blocks
// (struct disk_dump_header and kdump_sub_header; makedumpfile
// diskdump_mod.h): the fields that must agree with makedumpfile's parts.
type splitHeader struct {
	Version, Status, BlockSize, SubHdrSize, BitmapBlocks, MaxMapnr32 uint32
	Level, Split                                                     int32
	Start32, End32, Start64, End64, MaxMapnr64                       uint64
}

func readSplitHeader(t *testing.T, path string) splitHeader {
	t.Helper()
	b := make([]byte, 8192)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	s := b[4096:]
	return splitHeader{
		Version: le.Uint32(b[8:]), Status: le.Uint32(b[424:]), BlockSize: le.Uint32(b[428:]),
		SubHdrSize: le.Uint32(b[432:]), BitmapBlocks: le.Uint32(b[436:]), MaxMapnr32: le.Uint32(b[440:]),
		Level: int32(le.Uint32(s[8:])), Split: int32(le.Uint32(s[12:])),
		Start32: le.Uint64(s[16:]), End32: le.Uint64(s[24:]), Start64: le.Uint64(s[80:]), End64: le.Uint64(s[88:]),
		MaxMapnr64: le.Uint64(s[96:]),
	}
}

// --split: three kdump-compressed lzo parts of the sysrq crash at -d 31.
// Opened together, they hold makedumpfile's frames, each equal to the
// source; their headers agree field by field with makedumpfile 1.7.2's
// --split parts of the same crash (but for the PFN ranges: see below);
// the ranges tile [0, max_mapnr) on 64-frame boundaries with the pages
// shared evenly; and crash 8.0.6, given the three files, prints the same
// sys (but its DUMPFILES lines), ps, bt and log as on makedumpfile's dump.
func TestCollectSplit(t *testing.T) {
	m := corpus.Require(t)
	ds := m.Select(func(d corpus.Dump) bool { return d.Scenario == "sysrq" && d.Variant == "split-lzo-d31" })
	if len(ds) == 0 {
		t.Fatal("the corpus has no sysrq split-lzo-d31 set")
	}
	raw, filt := sameCrash(t, m, ds[0], "vmcore-elf"), sameCrash(t, m, ds[0], "lzo-d31")
	src := openDump(t, m, raw)
	refSplit := openDump(t, m, ds[0])
	dir := t.TempDir()
	var dests []string
	for i := 1; i <= 3; i++ {
		dests = append(dests, filepath.Join(dir, fmt.Sprintf("dump.%d", i)))
	}
	res, err := CollectSplit(context.Background(), src, dests, Options{Level: 31, Compression: "lzo"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Incomplete {
		t.Fatal("incomplete")
	}
	for _, d := range dests {
		if st, err := os.Stat(d); err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v", d, err)
		}
		if _, err := os.Stat(d + ".incomplete"); err == nil {
			t.Errorf("%s.incomplete left", d)
		}
	}
	got, err := dump.Open(dests...)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	if got.Format != dump.FormatSplit || got.Incomplete || got.DumpLevel != 31 || len(got.Parts) != 3 {
		t.Fatalf("format %s, incomplete %v, level %d, %d parts", got.Format, got.Incomplete, got.DumpLevel, len(got.Parts))
	}
	maxPFN := res.Selection.MaxPFN
	checkAgainst(t, got, src, refSplit, maxPFN)

	// Headers: as makedumpfile's but for the ranges (makedumpfile 1.7.2
	// gave this crash's first part every page and the second none).
	ref := readSplitHeader(t, m.Paths(ds[0])[0])
	var prevEnd uint64
	for i, d := range dests {
		h := readSplitHeader(t, d)
		if h.Start32 != h.Start64 || h.End32 != h.End64 || h.Start64 != prevEnd || h.Start64%64 != 0 || h.Split != 1 {
			t.Errorf("%s: range [%#x, %#x) (32-bit [%#x, %#x)), split %d; the previous part ended at %#x", d, h.Start64, h.End64, h.Start32, h.End32, h.Split, prevEnd)
		}
		prevEnd = h.End64
		want := ref
		want.Start32, want.End32, want.Start64, want.End64 = h.Start32, h.End32, h.Start64, h.End64
		if h != want {
			t.Errorf("%s: header %+v\n  makedumpfile's %+v", d, h, want)
		}
		p := got.Parts[i]
		t.Logf("part %d: PFN [%#x, %#x), %d bytes", i+1, p.StartPFN, p.EndPFN, p.Size)
	}
	if prevEnd != maxPFN {
		t.Errorf("the parts end at %#x, not max_mapnr %#x", prevEnd, maxPFN)
	}

	// crash 8.0.6 opens the three together.
	argv := crashBinary(t, m)
	vmlinux := m.Path(m.Kernel(raw.Release).DebugVmlinux)
	keys := []string{"sys", "ps", "bt", "log"}
	var script strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&script, "%s > %s\n", k, filepath.Join(dir, k+".txt"))
	}
	script.WriteString("q\n")
	in := filepath.Join(dir, "cmds")
	os.WriteFile(in, []byte(script.String()), 0o644)
	args := append(append(append([]string{}, argv[1:]...), "-s", vmlinux), dests...)
	out, err := exec.Command(argv[0], append(args, "-i", in)...).CombinedOutput()
	if err != nil {
		t.Fatalf("crash: %v\n%s", err, out)
	}
	for _, k := range keys {
		b, err := os.ReadFile(filepath.Join(dir, k+".txt"))
		if err != nil {
			t.Fatalf("crash %s: no output: %v\n%s", k, err, out)
		}
		want, ok, err := m.Ref(filt, k)
		if err != nil || !ok {
			t.Fatalf("no reference %s", k)
		}
		g := string(b)
		if k == "sys" {
			g, want = dropSplitDumpfiles(g), dropDumpfile(want)
		}
		if g != want {
			t.Errorf("crash %s on the split set differs from its output on makedumpfile's dump:\n%s", k, firstDiff(g, want))
		} else {
			t.Logf("crash %s on the 3 parts: %d lines, equal", k, strings.Count(g, "\n"))
		}
	}
}

// dropSplitDumpfiles drops sys's DUMPFILES block (a line per part).
func dropSplitDumpfiles(s string) string {
	var out []string
	in := false
	for _, l := range strings.Split(s, "\n") {
		t := strings.TrimLeft(l, " ")
		switch {
		case strings.HasPrefix(t, "DUMPFILES:"):
			// As dropDumpfile leaves a DUMPFILE line.
			in = true
			out = append(out, "DUMPFILE:"+strings.Repeat(" [PARTIAL DUMP]", strings.Count(l, "[PARTIAL DUMP]")))
			continue
		case in && !strings.Contains(t, ":"):
			continue
		}
		in = false
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// sameCrash returns the dump of d's crash in variant.
func sameCrash(t *testing.T, m *corpus.Manifest, d corpus.Dump, variant string) corpus.Dump {
	t.Helper()
	ds := m.Select(func(x corpus.Dump) bool { return x.Crash == d.Crash && x.Release == d.Release && x.Variant == variant })
	if len(ds) != 1 {
		t.Fatalf("the corpus has %d %s dumps of %s's crash", len(ds), variant, d.ID)
	}
	return ds[0]
}
