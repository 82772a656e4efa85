package dump

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

var updateFuzzSeeds = flag.Bool("update-fuzz-seeds", false, "rewrite the committed seed corpora under testdata/fuzz")

// lzoRepeat4 is an LZO1X block of "abcd" repeated to 1 KiB: a 4-byte
// literal run (first byte 17+4), a copy of 1020 bytes at distance 4
// (001LLLLL with a length of 31+3*255+222+2, distance (12>>2)+1), and the
// end marker (0x11 0 0).
var lzoRepeat4 = []byte{21, 'a', 'b', 'c', 'd', 0x20, 0, 0, 0, 222, 12, 0, 0x11, 0, 0}

// smallDump is a compact kdump-compressed file for fuzzing: 1 KiB blocks,
// a few dozen frames, pages of every codec, zero pages, excluded pages and
// notes, so that mutations reach every part of the format.
func smallDump(t testing.TB, version int32) []byte {
	t.Helper()
	s := &synthDump{
		version: version, blockSize: 1024, maxMapnr: 40, machine: "x86_64",
		dumpLevel: 31, nrCPUs: 1, status: kdumpZlib,
		ram:   []Range{{0, 20}, {24, 40}},
		pages: map[uint64]synthPage{},
		notes: kdumpTestNotes()[:0],
	}
	s.notes = kdumpTestNote("VMCOREINFO", 0, []byte("OSRELEASE=6.1.0\nPAGESIZE=1024\n"))
	codecs := []string{"zlib", "snappy", "zstd", "none"}
	for pfn := uint64(0); pfn < 40; pfn++ {
		if pfn%6 == 5 || pfn >= 20 && pfn < 24 {
			continue
		}
		if pfn%4 == 2 {
			s.pages[pfn] = synthPage{}
			continue
		}
		page := bytes.Repeat([]byte(fmt.Sprintf("page %d of the fuzz dump; ", pfn)), 60)[:1024]
		codec := codecs[int(pfn/3)%len(codecs)]
		enc, flags, _ := compressPage(t, page, codec, nil)
		if pfn%9 == 4 {
			page, enc, flags = bytes.Repeat([]byte("abcd"), 256), lzoRepeat4, kdumpLZO
		}
		s.pages[pfn] = synthPage{data: page, enc: enc, flags: flags}
	}
	b, _ := s.build()
	return b
}

// checkFuzzedFile exercises every frame of a File opened from fuzzed input and
// checks the contract: reads return data, a *PageError or a
// *FormatError, and never more bytes than asked.
func checkFuzzedFile(t *testing.T, f *File) {
	t.Helper()
	m := f.Memory
	ps := m.PageSize()
	if ps <= 0 {
		t.Fatalf("page size %d", ps)
	}
	for _, r := range m.Ranges() {
		if r.Start >= r.End {
			t.Fatalf("empty or reversed range %v", r)
		}
	}
	buf := make([]byte, ps+100)
	for pfn := uint64(0); pfn < 64; pfn++ {
		st := m.State(pfn)
		n, err := m.ReadPhys(buf, pfn*uint64(ps)+10)
		if n > len(buf) {
			t.Fatalf("ReadPhys returned %d bytes for %d", n, len(buf))
		}
		var pe *PageError
		var fe *FormatError
		switch {
		case err == nil:
			if n != len(buf) {
				t.Fatalf("ReadPhys = %d bytes and no error", n)
			}
		case errors.As(err, &pe):
		case errors.As(err, &fe):
		default:
			t.Fatalf("ReadPhys(pfn %#x, state %v): unexpected error type %T: %v", pfn, st, err, err)
		}
	}
}

func fuzzOpen(t *testing.T, data []byte) {
	f, err := NewFile(bytes.NewReader(data), int64(len(data)), "fuzz.vmcore")
	if err != nil {
		if f != nil {
			t.Fatal("File and error both returned")
		}
		var fe *FormatError
		if !errors.As(err, &fe) {
			t.Fatalf("open error is %T, not a FormatError: %v", err, err)
		}
		return
	}
	defer f.Close()
	checkFuzzedFile(t, f)
}

// FuzzKdump feeds mutated kdump-compressed files (headers, sub-header,
// bitmaps, descriptors, page data) to the reader.
func FuzzKdump(f *testing.F) {
	for _, v := range []int32{1, 4, 6} {
		f.Add(smallDump(f, v))
	}
	f.Fuzz(fuzzOpen)
}

// FuzzFlattened feeds mutated flattened streams (record headers, order,
// overlaps, the inner kdump file) to the reader.
func FuzzFlattened(f *testing.F) {
	b := smallDump(f, 6)
	f.Add(flattenForTest(b, 1024, nil))
	f.Add(flattenForTest(b, 300, func(n int) []int {
		o := make([]int, n)
		for i := range o {
			o[i] = (i * 7) % n
		}
		return o
	}))
	f.Fuzz(fuzzOpen)
}

// TestWriteFuzzSeeds writes the seeds above as the committed corpora
// (go test ./dump -run WriteFuzzSeeds -update-fuzz-seeds).
func TestWriteFuzzSeeds(t *testing.T) {
	if !*updateFuzzSeeds {
		t.Skip("run with -update-fuzz-seeds to rewrite testdata/fuzz")
	}
	b := smallDump(t, 6)
	seeds := map[string][][]byte{
		"FuzzKdump":     {smallDump(t, 1), smallDump(t, 4), b},
		"FuzzFlattened": {flattenForTest(b, 1024, nil), flattenForTest(b, 300, nil)},
	}
	for target, list := range seeds {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, s := range list {
			text := "go test fuzz v1\n[]byte(" + strconv.Quote(string(s)) + ")\n"
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%d", i)), []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestSmallDumpReads(t *testing.T) {
	f := openKdumpBytes(t, smallDump(t, 6))
	if !slices.Equal(f.Compression, []Compression{"lzo", "snappy", "zlib", "zstd"}) {
		t.Errorf("Compression = %v", f.Compression)
	}
	buf := make([]byte, 1024)
	if _, err := f.Memory.ReadPhys(buf, 4*1024); err != nil || !bytes.Equal(buf, bytes.Repeat([]byte("abcd"), 256)) {
		t.Fatalf("LZO page: %v", err)
	}
	checkFuzzedFile(t, f)
}
