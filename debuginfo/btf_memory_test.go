package debuginfo

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"salvage/dump"
	"salvage/lab/corpus"
)

// memReader is kernel memory at base, with a hole.
type memReader struct {
	base          uint64
	data          []byte
	holeAt, holeN uint64
	maxRead       int
}

func (m *memReader) ReadVirt(p []byte, addr uint64) (int, error) {
	if m.maxRead > 0 && len(p) > m.maxRead {
		p = p[:m.maxRead]
	}
	for i := range p {
		a := addr + uint64(i)
		if m.holeN > 0 && a >= m.holeAt && a < m.holeAt+m.holeN {
			return i, fmt.Errorf("virtual address %#x: page not present", a)
		}
		if a < m.base || a-m.base >= uint64(len(m.data)) {
			return i, fmt.Errorf("virtual address %#x: not mapped", a)
		}
		p[i] = m.data[a-m.base]
	}
	return len(p), nil
}

func TestLoadBTFFromMemorySynthetic(t *testing.T) {
	raw := seedBTF(t)
	const base = 0xffffffff82438070
	r := &memReader{base: base, data: raw, maxRead: 100} // short reads
	ty, err := LoadBTFFromMemory(r, base, base+uint64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ty.Struct("task_struct"); err != nil {
		t.Error(err)
	}
	if !strings.Contains(ty.Source(), "0xffffffff82438070") {
		t.Errorf("source %q does not say where", ty.Source())
	}
	r.holeAt, r.holeN = base+300, 10
	_, err = LoadBTFFromMemory(r, base, base+uint64(len(raw)))
	if err == nil || !strings.Contains(err.Error(), "0xffffffff8243819c") || !strings.Contains(err.Error(), "not present") {
		t.Errorf("read through a hole: %v", err)
	}
	if _, err := LoadBTFFromMemory(r, base, base); err == nil {
		t.Errorf("empty range accepted")
	}
	if _, err := LoadBTFFromMemory(r, base, base+1<<30); err == nil {
		t.Errorf("1 GB range accepted")
	}
}

// The BTF in each lab crash's memory, found through kallsyms, is the
// vmlinux's .BTF byte for byte, and describes task_struct as it does.
func TestLoadBTFFromMemoryCorpus(t *testing.T) {
	m := corpus.Require(t)
	seen := map[string]bool{}
	for _, d := range m.Dumps {
		if seen[d.Crash] || d.Format == "split" {
			continue
		}
		seen[d.Crash] = true
		vmlinux := m.Path(m.Kernel(d.Release).DebugVmlinux)
		want, err := elfBTF(vmlinux)
		if err != nil {
			t.Fatal(err)
		}
		fromELF, err := LoadBTFFromELF(vmlinux)
		if err != nil {
			t.Fatal(err)
		}
		wantTask, err := fromELF.Struct("task_struct")
		if err != nil {
			t.Fatal(err)
		}
		t.Run(d.ID, func(t *testing.T) {
			f, err := dump.Open(m.Paths(d)...)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.VMCoreInfo == nil {
				t.Fatal("no VMCOREINFO")
			}
			r := KernelImageReader(f.Memory, f.VMCoreInfo)
			syms, err := LoadKallsyms(r, f.VMCoreInfo)
			if err != nil {
				t.Fatal(err)
			}
			start, ok1 := syms.Lookup("__start_BTF")
			stop, ok2 := syms.Lookup("__stop_BTF")
			if !ok1 || !ok2 {
				t.Fatalf("kallsyms lacks __start_BTF/__stop_BTF")
			}
			raw, err := readBTFFromMemory(r, start.Addr, stop.Addr)
			if err != nil {
				var pe *dump.PageError
				t.Fatalf("%v (page error: %v)", err, errors.As(err, &pe))
			}
			if !bytes.Equal(raw, want) {
				t.Fatalf("BTF in memory (%d bytes at %#x) differs from the vmlinux's .BTF (%d bytes)", len(raw), start.Addr, len(want))
			}
			ty, err := LoadBTFFromMemory(r, start.Addr, stop.Addr)
			if err != nil {
				t.Fatal(err)
			}
			task, err := ty.Struct("task_struct")
			if err != nil || task.Size != wantTask.Size {
				t.Errorf("task_struct: %v %v; the vmlinux's BTF says %d bytes", task, err, wantTask.Size)
			}
		})
	}
	if len(seen) == 0 {
		t.Fatal("no dumps of the lab kernel")
	}
}
