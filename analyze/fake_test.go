package analyze

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"salvage/dump"
)

// fakeMemory is a dump.Memory of 4 KiB pages: those in data are present,
// those in states have that state, the rest are not RAM.
type fakeMemory struct {
	data   map[uint64][]byte // page frame number → page
	states map[uint64]dump.PageState
}

const fakePageSize = 4096

func newFakeMemory() *fakeMemory {
	return &fakeMemory{data: map[uint64][]byte{}, states: map[uint64]dump.PageState{}}
}

// put stores b at physical address addr, making its pages present.
func (m *fakeMemory) put(addr uint64, b []byte) {
	for len(b) > 0 {
		pfn, off := addr/fakePageSize, addr%fakePageSize
		p := m.data[pfn]
		if p == nil {
			p = make([]byte, fakePageSize)
			m.data[pfn] = p
		}
		n := copy(p[off:], b)
		b, addr = b[n:], addr+uint64(n)
	}
}

func (m *fakeMemory) State(pfn uint64) dump.PageState {
	if _, ok := m.data[pfn]; ok {
		return dump.PagePresent
	}
	if s, ok := m.states[pfn]; ok {
		return s
	}
	return dump.PageNotRAM
}

func (m *fakeMemory) ReadPhys(p []byte, addr uint64) (int, error) {
	n := 0
	for n < len(p) {
		a := addr + uint64(n)
		pfn, off := a/fakePageSize, a%fakePageSize
		switch st := m.State(pfn); st {
		case dump.PagePresent:
			n += copy(p[n:], m.data[pfn][off:])
		case dump.PageZero:
			k := min(uint64(len(p)-n), fakePageSize-off)
			clear(p[n : n+int(k)])
			n += int(k)
		default:
			return n, &dump.PageError{File: "fake.vmcore", Addr: a, State: st}
		}
	}
	return n, nil
}

func (m *fakeMemory) PageSize() int { return fakePageSize }

func (m *fakeMemory) Ranges() []dump.Range { return nil }

// bannerBase is where testdata/rd/banner.bin was read from: two pages of
// physical memory of QEMU's dump of Debian's 6.1.0-56-cloud-amd64 kernel,
// holding linux_banner (at 0x3d91ffe0) and the table after it. crash wrote
// the file (rd -r).
const bannerBase = 0x3d91f000

// testMemory is banner.bin at bannerBase, an excluded page after it, a
// zero page at 0x1000, and data that runs into the excluded page.
func testMemory(t *testing.T) *fakeMemory {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "rd", "banner.bin"))
	if err != nil {
		t.Fatal(err)
	}
	m := newFakeMemory()
	m.put(bannerBase, b)
	m.states[(bannerBase+uint64(len(b)))/fakePageSize] = dump.PageExcluded
	m.states[1] = dump.PageZero
	m.states[0x2000] = dump.PageMissing
	return m
}

// testSession is a session on mem writing to buffers.
func testSession(t *testing.T, mem dump.Memory) (s *Session, out, errw *bytes.Buffer) {
	t.Helper()
	out, errw = new(bytes.Buffer), new(bytes.Buffer)
	d := &dump.File{Path: "fake.vmcore", Format: dump.FormatELF, Inner: dump.FormatELF, Arch: dump.ArchX86_64, Memory: mem}
	return NewSession(d, "", out, errw), out, errw
}

// golden is one crash reference output under testdata/rd: its first line
// is "# " and the command, the rest crash's output verbatim.
type golden struct {
	name, command, output string
}

func readGoldens(t *testing.T, dir string) []golden {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.golden"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no golden files in %s", dir)
	}
	var gs []golden
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		first, rest, ok := strings.Cut(string(b), "\n")
		if !ok || !strings.HasPrefix(first, "# ") {
			t.Fatalf("%s: first line should be \"# COMMAND\"", f)
		}
		gs = append(gs, golden{name: filepath.Base(f), command: strings.TrimPrefix(first, "# "), output: rest})
	}
	return gs
}
