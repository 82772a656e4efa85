package debuginfo

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"salvage/dump"
	"salvage/lab/corpus"
)

// Helpers for the tests on the lab's real dumps.

func openCorpusDump(t testing.TB, m *corpus.Manifest, d corpus.Dump) *dump.File {
	t.Helper()
	f, err := dump.Open(m.Paths(d)...)
	if err != nil {
		t.Fatalf("%s: %v", d.ID, err)
	}
	t.Cleanup(func() { f.Close() })
	if f.VMCoreInfo == nil {
		t.Fatalf("%s: no VMCOREINFO", d.ID)
	}
	return f
}

func loadCorpusKallsyms(t testing.TB, m *corpus.Manifest, d corpus.Dump) (*Table, *dump.File) {
	t.Helper()
	f := openCorpusDump(t, m, d)
	tab, err := LoadKallsyms(KernelImageReader(f.Memory, f.VMCoreInfo), f.VMCoreInfo)
	if err != nil {
		t.Fatalf("%s: %v", d.ID, err)
	}
	return tab, f
}

// truthKallsyms reads the guest's own /proc/kallsyms lines for the dump's
// crash (the Truth directory's "kallsyms").
func truthKallsyms(t testing.TB, m *corpus.Manifest, d corpus.Dump) *Table {
	t.Helper()
	if d.Truth == "" {
		t.Fatalf("%s: the manifest gives no Truth directory", d.ID)
	}
	tab, err := LoadSystemMap(filepath.Join(m.Path(d.Truth), "kallsyms"), 0)
	if err != nil {
		t.Fatalf("%s: %v", d.ID, err)
	}
	return tab
}

// crashSymLine matches crash's `sym` output: "ffffffff89f1ffe0 (D) linux_banner".
var crashSymLine = regexp.MustCompile(`(?m)^([0-9a-f]+) \((.)\) (\S+)`)

// crashRef reads the first reference output that exists of keys (crash
// 8.0.6's, then a fallback such as "crash-8.0.2:bt"). When none does
// because crash failed on the dump (the manifest records why), it logs
// that and returns false: crash's failure is not ours. A reference that
// is neither there nor explained is a test error.
func crashRef(t testing.TB, m *corpus.Manifest, d corpus.Dump, keys ...string) (text, key string, ok bool) {
	t.Helper()
	var why []string
	for _, k := range keys {
		text, ok, err := m.Ref(d, k)
		if err != nil {
			t.Errorf("%s: reference %q: %v", d.ID, k, err)
			return "", "", false
		}
		if ok {
			return text, k, true
		}
		e, failed := d.RefErrors[k]
		if !failed {
			t.Errorf("%s: no reference %q, and no error recorded for it", d.ID, k)
			return "", "", false
		}
		why = append(why, fmt.Sprintf("%s: %.100s", k, e))
	}
	t.Logf("%s: crash failed, not checked: %s", d.ID, strings.Join(why, "; "))
	return "", "", false
}

// crashSym reads the reference output of a `sym NAME` command.
func crashSym(t testing.TB, m *corpus.Manifest, d corpus.Dump, key string) (Symbol, bool) {
	t.Helper()
	text, key, ok := crashRef(t, m, d, key, "crash-8.0.2:"+key)
	if !ok {
		return Symbol{}, false
	}
	mm := crashSymLine.FindStringSubmatch(text)
	if mm == nil {
		t.Errorf("%s: reference %q (%s) is not sym output: %q", d.ID, key, d.RefCommands[key], text)
		return Symbol{}, false
	}
	a, _ := strconv.ParseUint(mm[1], 16, 64)
	return Symbol{Addr: a, Type: mm[2][0], Name: mm[3]}, true
}

// btFrame is one frame of crash's bt: "#3 [ffffcdf580013d30] sysrq_handle_crash at ffffffff894a8a06".
type btFrame struct {
	Func   string
	Addr   uint64
	Module string // "[salvage_lab]" after the address, for module code
}

var crashBTLine = regexp.MustCompile(`#\s*\d+ \[[0-9a-f]+\] (\S+) at ([0-9a-f]+)(?: \[(\S+)\])?`)

func crashBT(text string) []btFrame {
	var out []btFrame
	for _, mm := range crashBTLine.FindAllStringSubmatch(text, -1) {
		a, _ := strconv.ParseUint(mm[2], 16, 64)
		out = append(out, btFrame{Func: mm[1], Addr: a, Module: mm[3]})
	}
	return out
}

// checkCrashBT checks that each frame of crash's bt and bt -a lies in the
// function crash names (module code is not in vmlinux's tables), and
// returns the number of frames checked.
func checkCrashBT(t *testing.T, m *corpus.Manifest, d corpus.Dump, tab Symbols) int {
	t.Helper()
	frames := 0
	for _, key := range []string{"bt", "bt-a"} {
		text, key, ok := crashRef(t, m, d, key, "crash-8.0.2:"+key)
		if !ok {
			continue
		}
		n := 0
		for _, fr := range crashBT(text) {
			n++
			if fr.Module != "" {
				continue
			}
			s, off, ok := tab.ByAddr(fr.Addr)
			if !ok || s.Name != fr.Func {
				t.Errorf("%s: ByAddr(%#x) = %s+%#x (%v); crash's %s says %s", tab.Source(), fr.Addr, s.Name, off, ok, key, fr.Func)
			}
			frames++
		}
		switch {
		case n == 0 && strings.Contains(text, "bt: "):
			// crash could not walk the stacks (live dumps: "bt: read of
			// stack at fffffe0000014000 failed"): nothing to compare.
			t.Logf("%s: crash's %s has no frames: %.120q", d.ID, key, text)
		case n == 0:
			t.Errorf("%s: no frames in crash's %s", d.ID, key)
		}
	}
	return frames
}

// corpusSystemMap returns the path of the kernel's real System.map. The
// lab keeps the one of the linux-image package, which on Debian is a
// one-line placeholder; the real one is in the -dbg package, which the
// lab keeps under debs/, so take it from there when needed.
func corpusSystemMap(t testing.TB, m *corpus.Manifest, k *corpus.Kernel) string {
	t.Helper()
	p := m.Path(k.SystemMap)
	b, err := os.ReadFile(p)
	if err == nil && !bytes.Contains(b, []byte(debianPlaceholder)) {
		return p
	}
	systemMapOnce.Do(func() {
		// Extracting it means decompressing most of a 600 MB package:
		// keep the result, keyed by the package version, across runs.
		keep := filepath.Join(os.TempDir(), "salvage-test-System.map-"+k.Release+"-"+k.PackageVersion)
		if _, err := os.Stat(keep); err == nil {
			systemMapPath = keep
			return
		}
		deb := filepath.Join(m.Root, "debs", k.Package+"-dbg_"+strings.ReplaceAll(k.PackageVersion, ":", "%3a")+"_amd64.deb")
		dir, err := os.MkdirTemp("", "salvage-sysmap-")
		if err != nil {
			systemMapErr = err
			return
		}
		defer os.RemoveAll(dir)
		member := "./usr/lib/debug/boot/System.map-" + k.Release
		cmd := exec.Command("sh", "-c", `dpkg-deb --fsys-tarfile "$1" | tar -x -C "$2" "$3"`, "extract", deb, dir, member)
		if out, err := cmd.CombinedOutput(); err != nil {
			systemMapErr = fmt.Errorf("%s is Debian's placeholder; extracting the real one from %s: %v: %s", p, deb, err, out)
			return
		}
		if err := os.Rename(filepath.Join(dir, member), keep); err != nil {
			systemMapErr = err
			return
		}
		systemMapPath = keep
	})
	if systemMapErr != nil {
		t.Fatal(systemMapErr)
	}
	return systemMapPath
}

var (
	systemMapOnce sync.Once
	systemMapPath string
	systemMapErr  error
)

// cpuTimer reports a benchmark's process CPU time per operation as the
// metric "cpu-ns/op": on a machine busy with QEMU guests the wall-clock
// ns/op mostly measures waiting for a CPU.
func cpuTimer(b *testing.B) func() {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start := cpu()
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64((cpu()-start).Nanoseconds())/float64(b.N), "cpu-ns/op")
		}
	}
}

// onePerCrash picks the first dump of each crash (they share memory).
func onePerCrash(m *corpus.Manifest) []corpus.Dump {
	seen := map[string]bool{}
	return m.Select(func(d corpus.Dump) bool {
		if seen[d.Crash] {
			return false
		}
		seen[d.Crash] = true
		return true
	})
}

// symbolComparison is the outcome of comparing a table with kallsyms.
type symbolComparison struct {
	Compared     int            // kallsyms symbols found in the other table at the same address
	Moved        []string       // kallsyms symbols the other table has only at other addresses
	OnlyKallsyms map[string]int // class → count of kallsyms symbols missing from the other table
	OnlyOther    map[string]int // class → count of the other table's symbols kallsyms omits
	TypeDiffs    map[string]int // "kallsyms type/other type" → count, among those compared
}

// compareWithKallsyms checks every symbol kallsyms has against other: by
// name and address (names repeat — static functions — so as sets).
func compareWithKallsyms(kall, other *Table) symbolComparison {
	c := symbolComparison{OnlyKallsyms: map[string]int{}, OnlyOther: map[string]int{}, TypeDiffs: map[string]int{}}
	type key struct {
		name string
		addr uint64
	}
	otherAt := map[key]byte{}
	otherNames := map[string]bool{}
	for _, s := range other.symbols() {
		otherAt[key{s.Name, s.Addr}] = s.Type
		otherNames[s.Name] = true
	}
	kallAt := map[key]bool{}
	kallNames := map[string]bool{}
	for _, s := range kall.symbols() {
		kallAt[key{s.Name, s.Addr}] = true
		kallNames[s.Name] = true
		typ, ok := otherAt[key{s.Name, s.Addr}]
		switch {
		case ok:
			c.Compared++
			if typ != s.Type {
				c.TypeDiffs[fmt.Sprintf("%c/%c", s.Type, typ)]++
			}
		case otherNames[s.Name]:
			c.Moved = append(c.Moved, fmt.Sprintf("%s %#x", s.Name, s.Addr))
		default:
			c.OnlyKallsyms[symbolClass(s)]++
		}
	}
	for _, s := range other.symbols() {
		if !kallAt[key{s.Name, s.Addr}] && !kallNames[s.Name] {
			c.OnlyOther[symbolClass(s)]++
		}
	}
	return c
}

// symbolClass names the kind of a symbol for reports of differences.
func symbolClass(s Symbol) string {
	for _, p := range []string{"__ksymtab_", "__kstrtab_", "__kstrtabns_", "__kcrctab_", "__crc_", "__UNIQUE_ID_", "__initcall_", "__setup_", "__param_", "__key.", "__func__.", "__already_done.", "__warned.", ".L", "_note_", "__pfx_", "__cfi_", "__tpstrtab_", "__tracepoint_", "__bpf_trace_", "kallsyms_", "init_per_cpu__"} {
		if strings.HasPrefix(s.Name, p) {
			return p + "*"
		}
	}
	if strings.Contains(s.Name, ".") {
		return "*." + s.Name[strings.LastIndexByte(s.Name, '.')+1:]
	}
	return fmt.Sprintf("type %c", s.Type)
}

func (c symbolComparison) String() string {
	top := func(m map[string]int) string {
		type kv struct {
			k string
			v int
		}
		var l []kv
		total := 0
		for k, v := range m {
			l = append(l, kv{k, v})
			total += v
		}
		sort.Slice(l, func(i, j int) bool { return l[i].v > l[j].v || (l[i].v == l[j].v && l[i].k < l[j].k) })
		var parts []string
		for i, e := range l {
			if i == 12 {
				parts = append(parts, "…")
				break
			}
			parts = append(parts, fmt.Sprintf("%s:%d", e.k, e.v))
		}
		return fmt.Sprintf("%d (%s)", total, strings.Join(parts, " "))
	}
	return fmt.Sprintf("compared %d at equal addresses; at other addresses %d; only in kallsyms %s; only in the other %s; type differences %s",
		c.Compared, len(c.Moved), top(c.OnlyKallsyms), top(c.OnlyOther), top(c.TypeDiffs))
}
