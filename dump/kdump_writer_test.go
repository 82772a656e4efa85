package dump

import (
	"bytes"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// synthPages makes n pages: every third zero, the others random or
// repetitive, so that every codec meets pages it shrinks and pages it
// cannot (stored raw).
func synthPages(n, ps int) [][]byte {
	rng := rand.New(rand.NewSource(7))
	pages := make([][]byte, n)
	for i := range pages {
		p := make([]byte, ps)
		switch i % 3 {
		case 1:
			rng.Read(p)
		case 2:
			copy(p, bytes.Repeat([]byte{byte(i), 1, 2, 3, 4, 5}, ps))
		}
		pages[i] = p
	}
	return pages
}

// writeSynth writes a dump of 64 frames, RAM 4–59, dumped every frame of
// RAM but 10–19, through a KdumpWriter to w.
func writeSynth(t *testing.T, w interface {
	WriteAt([]byte, int64) (int, error)
}, codec Compression, level int, streamed bool) (*PFNSet, [][]byte) {
	t.Helper()
	const ps = 4096
	ram, dumped := NewPFNSet(64), NewPFNSet(64)
	ram.AddRange(4, 60)
	dumped.AddRange(4, 10)
	dumped.AddRange(20, 60)
	vi := "OSRELEASE=6.1.0-test\nPAGESIZE=4096\n"
	h := KdumpHeader{Sysname: "Linux", Nodename: "synth", Release: "6.1.0-test", Machine: "x86_64",
		Timestamp: time.Unix(1700000000, 0), NrCPUs: 1, DumpLevel: level, PageSize: ps, Streamed: streamed,
		Notes: []Note{{Name: "VMCOREINFO", Desc: []byte(vi)}}}
	kw, err := NewKdumpWriter(w, h, codec, ram, dumped)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := NewPageEncoder(codec)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	pages := synthPages(64, ps)
	for pfn := dumped.Next(0); pfn < 64; pfn = dumped.Next(pfn + 1) {
		p := pages[pfn]
		e := EncodedPage{Zero: isZeroPage(p)}
		if !e.Zero || level&1 == 0 {
			if e, err = enc.Encode(p); err != nil {
				t.Fatal(err)
			}
		}
		if err := kw.WritePage(pfn, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := kw.Close(); err != nil {
		t.Fatal(err)
	}
	return dumped, pages
}

func checkSynth(t *testing.T, f *File, dumped *PFNSet, pages [][]byte, level int) {
	t.Helper()
	buf := make([]byte, 4096)
	for pfn := uint64(0); pfn < 64; pfn++ {
		st := f.Memory.State(pfn)
		var want PageState
		switch {
		case pfn < 4 || pfn >= 60:
			want = PageNotRAM
		case !dumped.Has(pfn):
			want = PageExcluded
		case level&1 != 0 && isZeroPage(pages[pfn]):
			want = PageZero
		default:
			want = PagePresent
		}
		if st != want {
			t.Errorf("frame %d: %v, want %v", pfn, st, want)
			continue
		}
		if want == PagePresent || want == PageZero {
			if _, err := f.Memory.ReadPhys(buf, pfn*4096); err != nil || !bytes.Equal(buf, pages[pfn]) {
				t.Errorf("frame %d: read %v, equal %v", pfn, err, bytes.Equal(buf, pages[pfn]))
			}
		}
	}
	if f.VMCoreInfo == nil || f.VMCoreInfo.OSRelease() != "6.1.0-test" {
		t.Errorf("VMCOREINFO not read back: %+v", f.VMCoreInfo)
	}
}

// Every codec at levels 0 and 1: what the writer writes, the reader reads.
func TestKdumpWriterRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, codec := range []Compression{"none", "zlib", "lzo", "snappy", "zstd"} {
		for _, level := range []int{0, 1} {
			t.Run(codec+"/"+string(rune('0'+level)), func(t *testing.T) {
				p := filepath.Join(dir, codec+string(rune('0'+level)))
				out, err := os.Create(p)
				if err != nil {
					t.Fatal(err)
				}
				dumped, pages := writeSynth(t, out, codec, level, false)
				out.Close()
				f, err := Open(p)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if f.Incomplete || f.DumpLevel != level || f.HeaderVersion != 6 {
					t.Errorf("incomplete %v, level %d, version %d", f.Incomplete, f.DumpLevel, f.HeaderVersion)
				}
				checkSynth(t, f, dumped, pages, level)
			})
		}
	}
}

// The flattened writer's stream reads back as the same dump.
func TestFlattenedWriterRoundTrip(t *testing.T) {
	var stream bytes.Buffer
	fw, err := NewFlattenedWriter(&stream)
	if err != nil {
		t.Fatal(err)
	}
	dumped, pages := writeSynth(t, fw, "lzo", 1, true)
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	if fw.Size() != int64(stream.Len()) {
		t.Errorf("Size %d, stream %d bytes", fw.Size(), stream.Len())
	}
	f, err := NewFile(bytes.NewReader(stream.Bytes()), int64(stream.Len()), "synth.flat")
	if err != nil {
		t.Fatal(err)
	}
	if f.Format != FormatFlattened || f.Inner != FormatKdump || f.Incomplete {
		t.Errorf("format %s of %s, incomplete %v", f.Format, f.Inner, f.Incomplete)
	}
	checkSynth(t, f, dumped, pages, 1)
}

// failAfter fails every write that reaches past limit bytes, like a full
// disk: what fits is written, and the error says the rest was not.
type failAfter struct {
	f     *os.File
	limit int64
}

var errNoSpace = errors.New("no space left on device")

func (w failAfter) WriteAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > w.limit {
		n := 0
		if off < w.limit {
			n, _ = w.f.WriteAt(p[:w.limit-off], off)
		}
		return n, errNoSpace
	}
	return w.f.WriteAt(p, off)
}

// A write error mid-dump: the writer reports it, and what was written is
// a readable dump marked incomplete whose pages after the cut are missing.
func TestKdumpWriterWriteError(t *testing.T) {
	p := filepath.Join(t.TempDir(), "cut")
	out, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	w := failAfter{out, 40000}
	ram, dumped := NewPFNSet(64), NewPFNSet(64)
	ram.AddRange(0, 64)
	dumped.AddRange(0, 64)
	kw, err := NewKdumpWriter(w, KdumpHeader{Sysname: "Linux", Machine: "x86_64", PageSize: 4096, DumpLevel: 0}, "none", ram, dumped)
	if err != nil {
		t.Fatal(err)
	}
	pages := synthPages(64, 4096)
	var werr error
	for pfn := uint64(0); pfn < 64 && werr == nil; pfn++ {
		werr = kw.WritePage(pfn, EncodedPage{Data: pages[pfn], Codec: "none"})
	}
	if werr == nil {
		werr = kw.Close()
	}
	if !errors.Is(werr, errNoSpace) {
		t.Fatalf("error %v, want the write error", werr)
	}
	kw.Abort()
	f, err := Open(p)
	if err != nil {
		t.Fatalf("the cut dump does not open: %v", err)
	}
	defer f.Close()
	if !f.Incomplete {
		t.Error("the cut dump is not marked incomplete")
	}
	var present, missing int
	buf := make([]byte, 4096)
	for pfn := uint64(0); pfn < 64; pfn++ {
		switch f.Memory.State(pfn) {
		case PagePresent, PageZero:
			// Frame 0 is zero and its raw copy heads the page data, where
			// the reader looks for a shared zero page: it reads as zero.
			present++
			if _, err := f.Memory.ReadPhys(buf, pfn*4096); err != nil || !bytes.Equal(buf, pages[pfn]) {
				t.Errorf("frame %d present but reads %v", pfn, err)
			}
		case PageMissing:
			missing++
		default:
			t.Errorf("frame %d: %v", pfn, f.Memory.State(pfn))
		}
	}
	if present == 0 || missing == 0 || present+missing != 64 {
		t.Errorf("%d present, %d missing of 64", present, missing)
	}
}

// Bad arguments are errors, not panics.
func TestKdumpWriterBadInput(t *testing.T) {
	var b bytes.Buffer
	fw, _ := NewFlattenedWriter(&b)
	ram := NewPFNSet(8)
	if _, err := NewKdumpWriter(fw, KdumpHeader{PageSize: 4096}, "lz4", ram, ram); err == nil {
		t.Error("unknown codec accepted")
	}
	if _, err := NewKdumpWriter(fw, KdumpHeader{PageSize: 1000}, "none", ram, ram); err == nil {
		t.Error("page size 1000 accepted")
	}
	if _, err := NewKdumpWriter(fw, KdumpHeader{PageSize: 4096}, "none", ram, NewPFNSet(9)); err == nil {
		t.Error("bitmaps of different sizes accepted")
	}
	ram.AddRange(0, 8)
	kw, err := NewKdumpWriter(fw, KdumpHeader{PageSize: 4096}, "none", ram, ram)
	if err != nil {
		t.Fatal(err)
	}
	if err := kw.WritePage(0, EncodedPage{Data: make([]byte, 10), Codec: "none"}); err == nil {
		t.Error("short raw page accepted")
	}
	if err := kw.WritePage(3, EncodedPage{Data: make([]byte, 4096), Codec: "none"}); err != nil {
		t.Fatal(err)
	}
	if err := kw.WritePage(2, EncodedPage{Data: make([]byte, 4096), Codec: "none"}); err == nil {
		t.Error("out-of-order page accepted")
	}
	if err := kw.Close(); err == nil {
		t.Error("Close after 1 of 8 pages succeeded")
	}
	kw, _ = NewKdumpWriter(fw, KdumpHeader{PageSize: 4096}, "none", ram, ram)
	for pfn := uint64(0); pfn < 8; pfn++ {
		kw.WritePage(pfn, EncodedPage{Data: make([]byte, 4096), Codec: "none"})
	}
	if err := kw.WritePage(8, EncodedPage{Data: make([]byte, 4096), Codec: "none"}); err == nil {
		t.Error("a page past the bitmaps accepted")
	}
	win, _ := NewKdumpWriterWindowed(fw, KdumpHeader{PageSize: 4096}, "none", 64)
	if err := win.WriteBitmaps(3, NewPFNSet(8), NewPFNSet(8)); err == nil {
		t.Error("a bitmap window at frame 3 accepted")
	}
	if err := win.WritePage(0, EncodedPage{Data: make([]byte, 4096), Codec: "none"}); err == nil {
		t.Error("a page before StartPages accepted")
	}
	if _, err := NewPageEncoder("lz4"); err == nil {
		t.Error("NewPageEncoder accepted lz4")
	}
}
