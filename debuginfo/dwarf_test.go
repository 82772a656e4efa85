package debuginfo

import (
	"bufio"
	"bytes"
	"maps"
	"os"
	"syscall"
	"testing"
	"time"

	"salvage/lab/corpus"
)

// labManifest is the lab corpus, which must list a kernel.
func labManifest(t testing.TB) *corpus.Manifest {
	t.Helper()
	m := corpus.Require(t)
	if len(m.Kernels) == 0 {
		t.Fatalf("lab corpus at %s lists no kernel", m.Root)
	}
	return m
}

// labVmlinux returns the lab kernel's debug vmlinux.
func labVmlinux(t testing.TB) string {
	t.Helper()
	m := labManifest(t)
	if m.Kernels[0].DebugVmlinux == "" {
		t.Fatalf("lab corpus at %s has no debug vmlinux", m.Root)
	}
	return m.Path(m.Kernels[0].DebugVmlinux)
}

// cpuTime is the user+system CPU time of the process so far: the lab
// machine is shared, so wall time alone says little.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestDWARFLoad(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	path := labVmlinux(t)
	start, cpu := time.Now(), cpuTime()
	ty, err := LoadDWARF(path)
	t.Logf("index built in %v (%v CPU)", time.Since(start), cpuTime()-cpu)
	if err != nil {
		t.Fatal(err)
	}
	start, cpu = time.Now(), cpuTime()
	ty2, err := LoadDWARF(path)
	t.Logf("index from the cache in %v (%v CPU)", time.Since(start), cpuTime()-cpu)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := ty.(*dwarfTypes).ix, ty2.(*dwarfTypes).ix; a.Units != b.Units || !equalIndexes(a, b) {
		t.Errorf("cached index differs from the built one")
	}
	if err != nil {
		t.Fatal(err)
	}
	dt := ty.(*dwarfTypes)
	if want := corpus.Require(t).Kernels[0].BuildID; dt.buildID != want {
		t.Errorf("build ID %q, want %q", dt.buildID, want)
	}
	for ns, m := range dt.ix.names {
		t.Logf("%s: %d names", nameSpaceNames[ns], len(m))
	}
	task, err := ty.Struct("task_struct")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("task_struct size %d, %d members, decl %s, %d types converted", task.Size, len(task.Members), task.Decl, len(dt.conv.byOff))
	if task.Decl != "include/linux/sched.h:737" {
		t.Errorf("task_struct declared at %q, want include/linux/sched.h:737", task.Decl)
	}
	if dt.ix.RefAddr {
		t.Errorf("the kernel's units refer into each other (DW_FORM_ref_addr): each unit cannot be read alone")
	}
	if dt.ix.Units < 2000 {
		t.Errorf("%d units indexed, want the kernel's ~2.8k", dt.ix.Units)
	}
}

func equalIndexes(a, b *dwarfIndex) bool {
	for ns := range a.names {
		if !maps.Equal(a.names[ns], b.names[ns]) {
			return false
		}
	}
	return true
}

func TestDWARFIndexEncoding(t *testing.T) {
	ix := newDwarfIndex()
	ix.Units = 3
	ix.add(nsStruct, []byte("task_struct"), dieRef{Off: 0x1234, Size: 9728, Line: 737})
	ix.add(nsStruct, []byte("fwd"), dieRef{Off: 0x10, Size: -1, Decl: true})
	ix.add(nsFunc, []byte("schedule"), dieRef{Off: 0x99999999, Size: -1})
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	if err := writeDwarfIndex(w, 42, ix); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	got, err := readDwarfIndex(bufio.NewReader(bytes.NewReader(buf.Bytes())), 42)
	if err != nil {
		t.Fatal(err)
	}
	if got.Units != 3 || !equalIndexes(ix, got) {
		t.Errorf("index changed through encoding: %+v", got.names)
	}
	if _, err := readDwarfIndex(bufio.NewReader(bytes.NewReader(buf.Bytes())), 43); err == nil {
		t.Errorf("index of another .debug_info size accepted")
	}
	for n := range buf.Len() {
		readDwarfIndex(bufio.NewReader(bytes.NewReader(buf.Bytes()[:n])), 42) // must not panic
	}
}

func BenchmarkDWARFIndex(b *testing.B) {
	path := labVmlinux(b)
	dt, err := loadDWARF(path, "bench")
	if err != nil {
		b.Fatal(err)
	}
	cpu := cpuTime()
	for b.Loop() {
		if _, err := buildDwarfIndex(&dt.sec); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((cpuTime()-cpu).Milliseconds())/float64(b.N), "cpu-ms/op")
}

// BenchmarkDWARFLoadCached is the second start: the index from the cache.
func BenchmarkDWARFLoadCached(b *testing.B) {
	b.Setenv("XDG_CACHE_HOME", b.TempDir())
	path := labVmlinux(b)
	if _, err := LoadDWARF(path); err != nil {
		b.Fatal(err)
	}
	cpu := cpuTime()
	for b.Loop() {
		if _, err := LoadDWARF(path); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((cpuTime()-cpu).Milliseconds())/float64(b.N), "cpu-ms/op")
}

func BenchmarkDWARFStructTaskStruct(b *testing.B) {
	path := labVmlinux(b)
	for b.Loop() {
		b.StopTimer()
		ty, err := LoadDWARF(path)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := ty.Struct("task_struct"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDWARFLoadCold is the first start: mapping, unit headers and the
// index, with an empty cache each time.
func BenchmarkDWARFLoadCold(b *testing.B) {
	path := labVmlinux(b)
	cpu := cpuTime()
	for b.Loop() {
		b.StopTimer()
		os.Setenv("XDG_CACHE_HOME", b.TempDir())
		b.StartTimer()
		if _, err := LoadDWARF(path); err != nil {
			b.Fatal(err)
		}
	}
	os.Unsetenv("XDG_CACHE_HOME")
	b.ReportMetric(float64((cpuTime()-cpu).Milliseconds())/float64(b.N), "cpu-ms/op")
}
