package collect

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"salvage/dump"
	"salvage/lab/corpus"
)

var codecs = []dump.Compression{"none", "zlib", "lzo", "snappy", "zstd"}

// collectTo collects src at level into a fresh file of dir.
func collectTo(t testing.TB, src *dump.File, dir, name string, opt Options) (*Result, string) {
	t.Helper()
	dest := filepath.Join(dir, name)
	res, err := Collect(context.Background(), src, dest, opt)
	if err != nil {
		t.Fatalf("Collect %s: %v", name, err)
	}
	if res.Dest != dest || res.Incomplete {
		t.Fatalf("Collect %s: dest %s, incomplete %v", name, res.Dest, res.Incomplete)
	}
	if st, err := os.Stat(dest); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v, mode %v (want 0600)", dest, err, st.Mode())
	}
	if _, err := os.Stat(dest + ".incomplete"); err == nil {
		t.Errorf("%s.incomplete left behind", dest)
	}
	return res, dest
}

// checkAgainst compares, frame by frame, a dump salvage wrote (got) with
// the source it was collected from and with makedumpfile's dump of the
// same crash at the same level (ref: 1.7.2's for 6.1, sid's 1.7.8 for
// 6.12): the state of every frame (not RAM, excluded, zero page, present)
// must equal makedumpfile's, and every present page must read
// byte-identical to the source.
func checkAgainst(t *testing.T, got, src, ref *dump.File, maxPFN uint64) {
	t.Helper()
	ps := uint64(got.Memory.PageSize())
	a, b := make([]byte, ps), make([]byte, ps)
	var present, zero, diff, forAnalyzer uint64
	need, err := analyzerNeeds(src)
	if err != nil {
		t.Fatal(err)
	}
	for pfn := uint64(0); pfn < maxPFN+8; pfn++ {
		gs, rs := got.Memory.State(pfn), ref.Memory.State(pfn)
		if gs != rs && (gs == dump.PagePresent || gs == dump.PageZero) && rs == dump.PageExcluded && need.has(pfn) {
			// Known difference: a page the analyzer needs (needs.go),
			// kept whatever its class; compared with the source below.
			forAnalyzer++
			rs = gs
		}
		if gs != rs {
			if diff++; diff <= 5 {
				t.Errorf("frame %#x: salvage's dump says %v, makedumpfile's %v", pfn, gs, rs)
			}
			continue
		}
		if gs != dump.PagePresent && gs != dump.PageZero {
			continue
		}
		if gs == dump.PageZero {
			zero++
		} else {
			present++
		}
		if _, err := got.Memory.ReadPhys(a, pfn*ps); err != nil {
			t.Fatalf("frame %#x: %v", pfn, err)
		}
		if _, err := src.Memory.ReadPhys(b, pfn*ps); err != nil {
			t.Fatalf("source frame %#x: %v", pfn, err)
		}
		if !bytes.Equal(a, b) {
			t.Fatalf("frame %#x reads differently from the source", pfn)
		}
	}
	if diff > 0 {
		t.Errorf("%d frames differ in state from makedumpfile's dump", diff)
	}
	t.Logf("%d present and %d zero-page frames, each equal to the source; states equal makedumpfile's on all %d frames but %d kept for the analyzer", present, zero, maxPFN, forAnalyzer)
}

// Each codec: the dump salvage writes is read back by salvage's reader,
// with makedumpfile's frame states and the source's bytes.
func TestCollectKdumpCodecs(t *testing.T) {
	m := corpus.Require(t)
	for _, p := range kernelCrashes(t, m, "sysrq") {
		t.Run(p.kernel, func(t *testing.T) { collectKdumpCodecs(t, m, p.raw, p.filt) })
	}
}

func collectKdumpCodecs(t *testing.T, m *corpus.Manifest, raw, filt corpus.Dump) {
	src := openDump(t, m, raw)
	ref := openDump(t, m, filt)
	dir := t.TempDir()
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			res, dest := collectTo(t, src, dir, codec+".kdump", Options{Level: 31, Compression: codec})
			got, err := dump.Open(dest)
			if err != nil {
				t.Fatalf("reading back: %v", err)
			}
			defer got.Close()
			if got.Format != dump.FormatKdump || got.HeaderVersion != 6 || got.DumpLevel != 31 || got.Incomplete {
				t.Errorf("format %s, header version %d, level %d, incomplete %v", got.Format, got.HeaderVersion, got.DumpLevel, got.Incomplete)
			}
			if !slices.Contains(got.Compression, codec) {
				t.Errorf("Compression = %v, want %s among them", got.Compression, codec)
			}
			if got.CPUs != ref.CPUs || len(got.PRStatus) != len(ref.PRStatus) || got.VMCoreInfo == nil || got.VMCoreInfo.Raw != ref.VMCoreInfo.Raw {
				t.Errorf("CPUs %d (makedumpfile %d), PRSTATUS notes %d (%d), VMCOREINFO equal: %v",
					got.CPUs, ref.CPUs, len(got.PRStatus), len(ref.PRStatus), got.VMCoreInfo != nil && got.VMCoreInfo.Raw == ref.VMCoreInfo.Raw)
			}
			checkAgainst(t, got, src, ref, res.Selection.MaxPFN)
			// Each phase ran, and was timed (the report's Elapsed line).
			if tm := res.Times; tm.Needs <= 0 || tm.Classify <= 0 || tm.Copy <= 0 {
				t.Errorf("phase times %+v: a phase is missing", tm)
			}
			st, _ := os.Stat(dest)
			rst, _ := os.Stat(m.Paths(filt)[0])
			t.Logf("%s: %d bytes (%s lzo: %d)", codec, st.Size(), filt.Producer, rst.Size())
		})
	}
}

// streamTo writes src's flattened stream (-F) into a file of dir.
func streamTo(t testing.TB, src *dump.File, dir, name string, opt Options) string {
	t.Helper()
	dest := filepath.Join(dir, name)
	f, err := os.Create(dest)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := CollectStream(context.Background(), src, f, opt)
	if err != nil || res.Incomplete {
		t.Fatalf("CollectStream: %v (incomplete %v)", err, res != nil && res.Incomplete)
	}
	return dest
}

// The flattened stream (-F) reads back, through salvage's flattened
// reader, as the same dump: makedumpfile's frame states, the source's bytes.
func TestCollectFlattened(t *testing.T) {
	m := corpus.Require(t)
	for _, p := range kernelCrashes(t, m, "sysrq") {
		t.Run(p.kernel, func(t *testing.T) {
			src := openDump(t, m, p.raw)
			ref := openDump(t, m, p.filt)
			dest := streamTo(t, src, t.TempDir(), "lzo.flat", Options{Level: 31, Compression: "lzo"})
			got, err := dump.Open(dest)
			if err != nil {
				t.Fatal(err)
			}
			defer got.Close()
			if got.Format != dump.FormatFlattened || got.Inner != dump.FormatKdump || got.Incomplete || got.DumpLevel != 31 {
				t.Errorf("format %s of %s, incomplete %v, level %d", got.Format, got.Inner, got.Incomplete, got.DumpLevel)
			}
			sel, err := Prepare(src, 31)
			if err != nil {
				t.Fatal(err)
			}
			checkAgainst(t, got, src, ref, sel.MaxPFN)
		})
	}
}

// crashBinary returns the argv prefix that runs trixie's crash 8.0.6 from
// the lab cache; the test fails when it is missing.
func crashBinary(t *testing.T, m *corpus.Manifest) []string {
	t.Helper()
	root := filepath.Join(m.Root, "tools", "crash-trixie", "root")
	ld := filepath.Join(root, "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
	bin := filepath.Join(root, "usr/bin/crash")
	for _, p := range []string{ld, bin} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("trixie's crash is missing from the lab cache (%v): run `make lab`", err)
		}
	}
	return []string{ld, "--library-path", filepath.Join(root, "usr/lib/x86_64-linux-gnu"), bin}
}

// runCrash runs crash's commands over a dump, each into its own file,
// and returns their outputs.
func runCrash(t *testing.T, argv []string, vmlinux, dumpPath string, cmds map[string]string) map[string]string {
	t.Helper()
	dir := t.TempDir()
	var script strings.Builder
	for key, c := range cmds {
		script.WriteString(c + " > " + filepath.Join(dir, key+".txt") + "\n")
	}
	script.WriteString("q\n")
	in := filepath.Join(dir, "session.in")
	if err := os.WriteFile(in, []byte(script.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append(append([]string{}, argv[1:]...), "-s", vmlinux, dumpPath, "-i", in)
	out, err := exec.Command(argv[0], args...).CombinedOutput()
	if err != nil {
		t.Fatalf("crash: %v\n%s", err, out)
	}
	res := map[string]string{}
	for key := range cmds {
		b, err := os.ReadFile(filepath.Join(dir, key+".txt"))
		if err != nil {
			t.Fatalf("crash left no output for %s: %v\n%s", key, err, out)
		}
		res[key] = string(b)
	}
	return res
}

// Trixie's crash 8.0.6 opens the dumps salvage writes, and its output
// equals its output on makedumpfile's lzo -d 31 dump of the same crash:
// sys, ps and log for every codec and the flattened stream of the sysrq
// crash; with lzo, on all three crashes, also bt -a, kmem -i and foreach
// bt. The one line allowed to differ is sys's DUMPFILE, which names the
// file.
func TestCollectCrashReads(t *testing.T) {
	m := corpus.Require(t)
	argv := crashBinary(t, m)
	dir := t.TempDir()
	for _, sc := range []string{"sysrq", "oops", "hung"} {
		for _, p := range kernelCrashes(t, m, sc) {
			crashReads(t, m, argv, dir, p.kernel+"/"+sc, p.raw, p.filt)
		}
	}
}

// crashReads runs TestCollectCrashReads's comparisons on one crash.
func crashReads(t *testing.T, m *corpus.Manifest, argv []string, dir, name string, raw, filt corpus.Dump) {
	t.Helper()
	sc := raw.Scenario
	k := m.Kernel(raw.Release)
	if k == nil {
		t.Fatalf("no kernel %s in the corpus", raw.Release)
	}
	vmlinux := m.Path(k.DebugVmlinux)
	src := openDump(t, m, raw)
	variants := []string{"lzo"}
	if sc == "sysrq" {
		variants = append(slices.Clone(codecs), "flat-lzo")
	}
	for _, v := range variants {
		t.Run(name+"/"+v, func(t *testing.T) {
			keys := []string{"sys", "ps", "log"}
			if v == "lzo" {
				keys = append(keys, "bt-a", "kmem-i", "foreach-bt")
			}
			cmds := map[string]string{}
			want := map[string]string{}
			for _, key := range keys {
				s, ok, err := m.Ref(filt, key)
				if err != nil || !ok {
					t.Fatalf("%s: no crash reference %q: %v", filt.ID, key, err)
				}
				cmds[key] = filt.RefCommands[key]
				if cmds[key] == "" {
					cmds[key] = key
				}
				want[key] = s
			}
			var dest string
			file := strings.ReplaceAll(name, "/", "-") + "-" + v
			if v == "flat-lzo" {
				dest = streamTo(t, src, dir, file, Options{Level: 31, Compression: "lzo"})
			} else {
				_, dest = collectTo(t, src, dir, file, Options{Level: 31, Compression: v})
			}
			got := runCrash(t, argv, vmlinux, dest, cmds)
			for _, key := range keys {
				g, w := got[key], want[key]
				if key == "sys" {
					g, w = kernelDir(dropDumpfile(g)), kernelDir(dropDumpfile(w))
				}
				if g != w {
					t.Errorf("crash %s differs from its output on makedumpfile's dump:\n%s", cmds[key], firstDiff(g, w))
				} else {
					t.Logf("crash %s: %d lines, equal", cmds[key], strings.Count(g, "\n"))
				}
			}
			os.Remove(dest)
		})
	}
}

func dropDumpfile(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "DUMPFILE:") {
			// The path differs; the [PARTIAL DUMP] mark must not.
			l = "DUMPFILE:" + strings.Repeat(" [PARTIAL DUMP]", strings.Count(l, "[PARTIAL DUMP]"))
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// kernelDir drops the directory of the vmlinux named on sys's KERNEL
// line: it is the path given to crash, not a fact of the dump, and a lab
// cache moved after its references were recorded (lab-612 → lab-6.12)
// names the old one there.
func kernelDir(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		j := strings.Index(l, "KERNEL: ")
		if j < 0 || strings.TrimSpace(l[:j]) != "" {
			continue
		}
		f := strings.Fields(l[j+len("KERNEL: "):])
		if len(f) > 0 {
			f[0] = filepath.Base(f[0])
		}
		lines[i] = l[:j] + "KERNEL: " + strings.Join(f, " ")
	}
	return strings.Join(lines, "\n")
}

func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < max(len(g), len(w)); i++ {
		var a, b string
		if i < len(g) {
			a = g[i]
		}
		if i < len(w) {
			b = w[i]
		}
		if a != b {
			return fmt.Sprintf("line %d:\n salvage:      %s\n makedumpfile: %s", i+1, a, b)
		}
	}
	return "(equal)"
}

// elfReference returns makedumpfile's -E -d 31 file of raw's crash: the
// corpus's elf-d31 dump (bookworm's 1.7.2 in the capture kernel) when it
// has one, else one made now from the same /proc/vmcore copy by sid's
// makedumpfile 1.7.8 (the lab keeps only lzo dumps of 6.12, made by 1.7.8
// on the host: 1.7.2 mishandles kernels >= 6.2). It fails when neither
// exists.
func elfReference(t *testing.T, m *corpus.Manifest, raw corpus.Dump) (path, producer string) {
	t.Helper()
	for _, d := range m.Dumps {
		if d.Crash == raw.Crash && d.Variant == "elf-d31" {
			return m.Paths(d)[0], d.Producer
		}
	}
	out := filepath.Join(t.TempDir(), "mdf-d31.elf")
	cmd, err := m.MakedumpfileSid(context.Background(), "-E", "-d", "31", "--message-level", "4", m.Paths(raw)[0], out)
	if err != nil {
		t.Fatalf("the corpus has no elf-d31 dump of crash %s, and: %v", raw.Crash, err)
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sid's makedumpfile -E -d 31 %s: %v\n%s", raw.ID, err, b)
	}
	return out, "makedumpfile " + m.MakedumpfileSidVersion() + " (sid, run by the test)"
}

// -E -d 31 writes, byte for byte, the file makedumpfile wrote with -E -d 31
// from the same /proc/vmcore (on each kernel: see elfReference): the same
// PT_LOAD cuts (runs of 256 excluded frames), notes, data and size.
func TestCollectELFIdenticalToMakedumpfile(t *testing.T) {
	m := corpus.Require(t)
	for _, p := range kernelCrashes(t, m, "sysrq") {
		t.Run(p.kernel, func(t *testing.T) { collectELFIdentical(t, m, p.raw) })
	}
}

func collectELFIdentical(t *testing.T, m *corpus.Manifest, raw corpus.Dump) {
	refPath, producer := elfReference(t, m, raw)
	src := openDump(t, m, raw)
	// Exact: makedumpfile's pages only, not also those the analyzer needs.
	_, dest := collectTo(t, src, t.TempDir(), "d31.elf", Options{Level: 31, Format: FormatELF, Exact: true})
	got, err := os.ReadFile(dest)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(refPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Errorf("%d bytes, %s wrote %d", len(got), producer, len(want))
	}
	for i := 0; i < min(len(got), len(want)); i++ {
		if got[i] != want[i] {
			t.Fatalf("first difference at offset %#x: %#02x, %s %#02x", i, got[i], producer, want[i])
		}
	}
	t.Logf("%s: %d bytes, identical to %s's of %s (but for any known difference above)", dest, len(got), producer, raw.Crash)

	// -E -F: the flattened stream reassembles to the same file.
	dir := t.TempDir()
	flat := streamTo(t, src, dir, "d31.elf.flat", Options{Level: 31, Format: FormatELF, Exact: true})
	ff, err := os.Open(flat)
	if err != nil {
		t.Fatal(err)
	}
	defer ff.Close()
	st, err := ff.Stat()
	if err != nil {
		t.Fatal(err)
	}
	idx, err := dump.IndexFlattened(ff, st.Size(), flat)
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(filepath.Join(dir, "reassembled.elf"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := idx.WriteTo(out); err != nil {
		t.Fatal(err)
	}
	re, err := os.ReadFile(out.Name())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(re, want) {
		t.Errorf("the -E -F stream reassembles to %d bytes that differ from %s's %d", len(re), producer, len(want))
	}
}

// Collecting from a filtered dump (makedumpfile's lzo -d 31) again at
// -d 31 keeps the same frames: a page the source lacks is never asked
// for, and every page kept reads as in the source.
func TestCollectRefilter(t *testing.T) {
	m := corpus.Require(t)
	for _, p := range kernelCrashes(t, m, "oops") {
		t.Run(p.kernel, func(t *testing.T) {
			src := openDump(t, m, p.filt)
			res, dest := collectTo(t, src, t.TempDir(), "again.kdump", Options{Level: 31, Compression: "zstd"})
			got, err := dump.Open(dest)
			if err != nil {
				t.Fatal(err)
			}
			defer got.Close()
			checkAgainst(t, got, src, src, res.Selection.MaxPFN)
		})
	}
}

// Windows of 4000 frames (not a multiple of the 32768-frame section, so
// windows start mid-section, and buddy blocks and folios straddle their
// ends) give the same dump, byte for byte, as one window over the
// machine, and the same frame states as makedumpfile.
func TestCollectWindowsAgree(t *testing.T) {
	m := corpus.Require(t)
	for _, p := range kernelCrashes(t, m, "hung") {
		t.Run(p.kernel, func(t *testing.T) { collectWindowsAgree(t, m, p.raw, p.filt) })
	}
}

func collectWindowsAgree(t *testing.T, m *corpus.Manifest, raw, filt corpus.Dump) {
	src := openDump(t, m, raw)
	ref := openDump(t, m, filt)
	dir := t.TempDir()
	_, one := collectTo(t, src, dir, "one.kdump", Options{Level: 31, Compression: "lzo"})
	defer func(w uint64) { windowFrames = w }(windowFrames)
	windowFrames = 4000
	res, many := collectTo(t, src, dir, "many.kdump", Options{Level: 31, Compression: "lzo"})
	if res.Selection.Kept != nil || res.Selection.RAM != nil {
		t.Error("the kdump path kept a bitmap of the whole machine")
	}
	a, err := os.ReadFile(one)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(many)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Errorf("%d windows give a different dump (%d bytes, one window %d)", (res.Selection.MaxPFN+3999)/4000, len(b), len(a))
	}
	if res.Selection.cache == nil {
		t.Error("the survey of a 1 GiB machine kept no window")
	}
	// Windows classified again by the writers, not kept from the survey.
	defer func(n int) { windowCacheBytes = n }(windowCacheBytes)
	windowCacheBytes = 0
	res2, again := collectTo(t, src, dir, "again.kdump", Options{Level: 31, Compression: "lzo"})
	if res2.Selection.cache != nil {
		t.Error("windowCacheBytes 0: the survey kept its windows")
	}
	if c, err := os.ReadFile(again); err != nil || !bytes.Equal(a, c) {
		t.Errorf("windows classified again give a different dump (%d bytes, one window %d; %v)", len(c), len(a), err)
	}
	got, err := dump.Open(many)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	checkAgainst(t, got, src, ref, res.Selection.MaxPFN)
}

// The ELF writer with windows of 4000 frames (classified again as the
// planner walks each PT_LOAD, the kernel image's first) still writes
// makedumpfile's -E file byte for byte, and counts each zero page once.
func TestCollectELFWindows(t *testing.T) {
	m := corpus.Require(t)
	for _, p := range kernelCrashes(t, m, "sysrq") {
		t.Run(p.kernel, func(t *testing.T) { collectELFWindows(t, m, p.raw) })
	}
}

func collectELFWindows(t *testing.T, m *corpus.Manifest, raw corpus.Dump) {
	refPath, producer := elfReference(t, m, raw)
	src := openDump(t, m, raw)
	dir := t.TempDir()
	one, _ := collectTo(t, src, dir, "one.elf", Options{Level: 31, Format: FormatELF, Exact: true})
	defer func(w uint64) { windowFrames = w }(windowFrames)
	windowFrames = 4000
	many, dest := collectTo(t, src, dir, "many.elf", Options{Level: 31, Format: FormatELF, Exact: true})
	got, err := os.ReadFile(dest)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(refPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("with windows of 4000 frames the ELF dump (%d bytes) differs from %s's (%d)", len(got), producer, len(want))
	}
	if one.Counts != many.Counts {
		t.Errorf("counts differ: one window %+v, many %+v", one.Counts, many.Counts)
	}
	// Windows classified again by the ELF planner, not kept from the survey.
	defer func(n int) { windowCacheBytes = n }(windowCacheBytes)
	windowCacheBytes = 0
	again, dest2 := collectTo(t, src, dir, "again.elf", Options{Level: 31, Format: FormatELF, Exact: true})
	if got2, err := os.ReadFile(dest2); err != nil || !bytes.Equal(got2, want) {
		t.Errorf("with windows classified again the ELF dump (%d bytes) differs from %s's (%d; %v)", len(got2), producer, len(want), err)
	}
	if again.Counts != many.Counts {
		t.Errorf("counts differ: windows kept %+v, classified again %+v", many.Counts, again.Counts)
	}
	t.Logf("counts: %+v", many.Counts)
}
