package debuginfo

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func labBTF(t testing.TB) Types {
	t.Helper()
	ty, err := LoadBTFFromELF(labVmlinux(t))
	if err != nil {
		t.Fatal(err)
	}
	return ty
}

func TestBTFLoad(t *testing.T) {
	start, cpu := time.Now(), cpuTime()
	ty := labBTF(t)
	t.Logf("BTF loaded in %v (%v CPU)", time.Since(start), cpuTime()-cpu)
	task, err := ty.Struct("task_struct")
	if err != nil {
		t.Fatal(err)
	}
	if task.Size != 9728 {
		t.Errorf("task_struct size %d, want 9728", task.Size)
	}
	if _, err := ty.Struct("no_such_struct"); err == nil {
		t.Errorf("no_such_struct found")
	} else if nf := (*NotFoundError)(nil); !errors.As(err, &nf) {
		t.Errorf("error %v is not a NotFoundError", err)
	}
	// runqueues is per-CPU: BTF has it.
	rq, err := ty.Var("runqueues")
	if err != nil {
		t.Fatal(err)
	}
	if got := TypeName(rq); got != "struct rq" {
		t.Errorf("runqueues is %q, want struct rq", got)
	}
	fn, err := ty.Func("schedule")
	if err != nil {
		t.Fatal(err)
	}
	if got := TypeName(fn); got != "void (void)" {
		t.Errorf("schedule is %q", got)
	}
	for _, s := range []string{"unsigned long", "long unsigned int", "struct list_head *", "pid_t", "const char *", "u64"} {
		if _, err := ty.Named(s); err != nil {
			t.Errorf("Named(%q): %v", s, err)
		}
	}
}

func BenchmarkBTFLoad(b *testing.B) {
	raw, err := elfBTF(labVmlinux(b))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	cpu := cpuTime()
	for b.Loop() {
		if _, err := LoadBTF(raw, "bench"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((cpuTime()-cpu).Milliseconds())/float64(b.N), "cpu-ms/op")
}

func BenchmarkBTFStructTaskStruct(b *testing.B) {
	raw, err := elfBTF(labVmlinux(b))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		b.StopTimer()
		ty, err := LoadBTF(raw, "bench")
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := ty.Struct("task_struct"); err != nil {
			b.Fatal(err)
		}
	}
}

// Loading the wrong file says which file and what it is not.
func TestLoadErrors(t *testing.T) {
	m := labManifest(t)
	k := m.Kernels[0]
	plainKo := filepath.Join(filepath.Dir(m.Path(k.Vmlinuz)), "modules", "virtio.ko")
	for _, c := range []struct {
		path      string
		dwarf, bt string // what the errors must say
	}{
		{"/nonexistent/vmlinux", "no such file", "no such file"},
		{m.Path(k.Vmlinuz), "not an ELF file", "not an ELF file"},
		{plainKo, "no .debug_info", "LoadModuleBTFFromELF"},
	} {
		if _, err := LoadDWARF(c.path); err == nil || !strings.Contains(err.Error(), c.dwarf) || !strings.Contains(err.Error(), c.path) {
			t.Errorf("LoadDWARF(%s): %v, want an error naming the file and saying %q", c.path, err, c.dwarf)
		}
		if _, err := LoadBTFFromELF(c.path); err == nil || !strings.Contains(err.Error(), c.bt) || !strings.Contains(err.Error(), c.path) {
			t.Errorf("LoadBTFFromELF(%s): %v, want an error naming the file and saying %q", c.path, err, c.bt)
		}
	}
}
