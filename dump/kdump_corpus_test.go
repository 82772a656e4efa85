package dump

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"salvage/lab/corpus"
)

// kdumpFamily reports whether a corpus dump is read by this file's code.
func kdumpFamily(d corpus.Dump) bool {
	return d.Format == "kdump" || d.Format == "flattened" || d.Format == "split"
}

// elfOfCrash returns the raw (unfiltered) ELF dump of the same crash as d.
func elfOfCrash(m *corpus.Manifest, d corpus.Dump) (corpus.Dump, bool) {
	for _, e := range m.Dumps {
		if e.Crash == d.Crash && e.Format == "elf" && e.DumpLevel < 0 {
			return e, true
		}
	}
	return corpus.Dump{}, false
}

func openKdumpCorpus(t testing.TB, m *corpus.Manifest, d corpus.Dump) *File {
	t.Helper()
	f, err := Open(m.Paths(d)...)
	if err != nil {
		t.Fatalf("%s: %v", d.ID, err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// Every page a kdump-compressed, flattened or split dump holds reads
// byte-identical to the raw ELF of the same crash.
func TestCorpusKdumpMatchesELF(t *testing.T) {
	m := corpus.Require(t)
	dumps := m.Select(kdumpFamily)
	if len(dumps) == 0 {
		t.Fatal("the corpus holds no kdump-compressed, flattened or split dump")
	}
	for _, d := range dumps {
		t.Run(d.ID, func(t *testing.T) {
			t.Parallel()
			e, ok := elfOfCrash(m, d)
			if !ok {
				t.Fatalf("no ELF dump of crash %s to compare with", d.Crash)
			}
			f := openKdumpCorpus(t, m, d)
			ef := openKdumpCorpus(t, m, e)
			switch {
			case string(f.Format) == d.Format:
			case f.Format == FormatFlattened && string(f.Inner) == d.Format:
				// QEMU before 8.2 writes every kdump-compressed dump as
				// a flattened stream (dump/dump.c create_kdump_vmcore).
				t.Logf("manifest says %s; it is a flattened stream holding %s", d.Format, f.Inner)
			default:
				t.Errorf("Format = %s (inner %s), manifest says %s", f.Format, f.Inner, d.Format)
			}
			if d.Compression != "" && !slices.Contains(f.Compression, d.Compression) {
				t.Errorf("Compression = %v, manifest says %s", f.Compression, d.Compression)
			}
			if d.DumpLevel >= 0 && f.DumpLevel != d.DumpLevel {
				t.Errorf("DumpLevel = %d, manifest says %d", f.DumpLevel, d.DumpLevel)
			}
			if f.Arch != ef.Arch || f.HeaderVersion < 1 {
				t.Errorf("Arch %s (ELF %s), HeaderVersion %d", f.Arch, ef.Arch, f.HeaderVersion)
			}
			if f.Format == FormatSplit && len(f.Parts) != len(d.Files) {
				t.Errorf("%d parts, manifest lists %d files", len(f.Parts), len(d.Files))
			}
			ps := uint64(f.Memory.PageSize())
			a, b := make([]byte, ps), make([]byte, ps)
			counts := map[PageState]int{}
			notInELF := 0
			var changed []uint64
			for _, r := range f.Memory.Ranges() {
				for addr := r.Start; addr < r.End; addr += ps {
					st := f.Memory.State(addr / ps)
					counts[st]++
					if st != PagePresent && st != PageZero {
						continue
					}
					if _, err := f.Memory.ReadPhys(a, addr); err != nil {
						t.Fatalf("page %#x (%v): %v", addr, st, err)
					}
					if _, err := ef.Memory.ReadPhys(b, addr); err != nil {
						var pe *PageError
						if errors.As(err, &pe) {
							notInELF++
							continue
						}
						t.Fatalf("ELF page %#x: %v", addr, err)
					}
					if !bytes.Equal(a, b) {
						// A live machine keeps running between the
						// two dumps QEMU takes of it: a few pages (timers,
						// per-CPU counters) change in between.
						if d.Scenario != "live" {
							t.Fatalf("page %#x (%v) differs from the ELF dump %s", addr, st, e.ID)
						}
						changed = append(changed, addr)
					}
				}
			}
			compared := counts[PagePresent] + counts[PageZero] - notInELF
			if len(changed) > 0 {
				t.Logf("live machine: %d pages changed between the dumps, first at %#x", len(changed), changed[0])
				if len(changed) > compared/1000 {
					t.Fatalf("%d of %d pages differ: more than a live machine changes", len(changed), compared)
				}
			}
			t.Logf("%s vs %s: %d pages identical (%d present, %d zero), %d excluded, %d not in the ELF",
				d.ID, e.ID, compared-len(changed), counts[PagePresent], counts[PageZero], counts[PageExcluded], notInELF)
			if compared < 1000 {
				t.Fatalf("only %d pages compared", compared)
			}
			if counts[PageMissing] != 0 && !f.Incomplete {
				t.Fatalf("%d pages missing from a complete dump", counts[PageMissing])
			}
		})
	}
}

// Flattened streams index in one pass over the record headers.
func TestCorpusFlattenedIndexTime(t *testing.T) {
	m := corpus.Require(t)
	flat := 0
	for _, d := range m.Select(kdumpFamily) {
		fh, err := os.Open(m.Paths(d)[0])
		if err != nil {
			t.Fatal(err)
		}
		// By content: QEMU's kdump-compressed dumps are flattened too.
		var sig [12]byte
		if _, err := fh.ReadAt(sig[:], 0); err != nil || !bytes.Equal(sig[:], flatSignature) {
			fh.Close()
			continue
		}
		flat++
		st, _ := fh.Stat()
		start := time.Now()
		idx, err := IndexFlattened(fh, st.Size(), d.ID)
		el := time.Since(start)
		fh.Close()
		if err != nil {
			t.Fatalf("%s: %v", d.ID, err)
		}
		if !idx.Complete {
			t.Errorf("%s: no end marker", d.ID)
		}
		t.Logf("%s: %d MB stream, %d records indexed in %v", d.ID, st.Size()>>20, idx.Records, el)
		if el > 10*time.Second {
			t.Errorf("%s: indexing took %v", d.ID, el)
		}
	}
	if flat == 0 {
		t.Fatal("the corpus holds no flattened stream")
	}
}

// realCorpusPages returns up to n distinct non-zero pages of a real ELF
// dump in the corpus.
func realCorpusPages(t *testing.T, m *corpus.Manifest, n int) [][]byte {
	t.Helper()
	elfs := m.Select(func(d corpus.Dump) bool { return d.Format == "elf" && d.DumpLevel < 0 })
	if len(elfs) == 0 {
		t.Fatal("the corpus holds no ELF dump")
	}
	f := openKdumpCorpus(t, m, elfs[0])
	ps := uint64(f.Memory.PageSize())
	var out [][]byte
	seen := map[string]bool{}
	for _, r := range f.Memory.Ranges() {
		for addr := r.Start; addr < r.End && len(out) < n; addr += 97 * ps {
			p := make([]byte, ps)
			if _, err := f.Memory.ReadPhys(p, addr); err != nil || isZeroPage(p) || seen[string(p)] {
				continue
			}
			seen[string(p)] = true
			out = append(out, p)
		}
	}
	return out
}

// No producer on this machine writes snappy or zstd dumps (Debian's
// makedumpfile 1.7.2 lacks both), so real pages from the corpus are
// encoded with the library the way makedumpfile does and read back
// through the dump's page path.
func TestCorpusPagesThroughEveryCodec(t *testing.T) {
	m := corpus.Require(t)
	pages := realCorpusPages(t, m, 400)
	if len(pages) < 100 {
		t.Fatalf("only %d real pages", len(pages))
	}
	for _, codec := range []string{"zlib", "snappy", "zstd", "none"} {
		t.Run(codec, func(t *testing.T) {
			s := &synthDump{version: 6, blockSize: len(pages[0]), maxMapnr: uint64(len(pages)), machine: "x86_64",
				ram: []Range{{0, uint64(len(pages))}}, pages: map[uint64]synthPage{}}
			want := map[uint64][]byte{}
			encoded := 0
			for i, p := range pages {
				enc, flags, _ := compressPage(t, p, codec, nil)
				if len(enc) >= len(p) {
					enc, flags = p, 0
				} else {
					encoded++
				}
				s.pages[uint64(i)] = synthPage{data: p, enc: enc, flags: flags}
				want[uint64(i)] = p
			}
			b, _ := s.build()
			f := openKdumpBytes(t, b)
			checkKdumpPages(t, f, s, want)
			t.Logf("%d real pages, %d stored with %s", len(pages), encoded, codec)
		})
	}
}

// kdumpPatchedReader is a real file with some bytes replaced, and cut at size.
type kdumpPatchedReader struct {
	r       io.ReaderAt
	patches map[int64]byte
}

func (p *kdumpPatchedReader) ReadAt(b []byte, off int64) (int, error) {
	n, err := p.r.ReadAt(b, off)
	for o, v := range p.patches {
		if o >= off && o < off+int64(n) {
			b[o-off] = v
		}
	}
	return n, err
}

// Truncated and corrupted copies of real dumps end in a clear error, or
// in a File whose damaged pages read as errors and whose other pages
// still read as in the ELF of the same crash.
func TestCorpusDamagedKdump(t *testing.T) {
	m := corpus.Require(t)
	var d corpus.Dump
	for _, x := range m.Select(func(d corpus.Dump) bool { return d.Format == "kdump" }) {
		if d.ID == "" || x.Compression == "lzo" {
			d = x
		}
	}
	if d.ID == "" {
		t.Fatal("the corpus holds no kdump-compressed dump")
	}
	e, ok := elfOfCrash(m, d)
	if !ok {
		t.Fatalf("no ELF dump of crash %s", d.Crash)
	}
	ef := openKdumpCorpus(t, m, e)
	fh, err := os.Open(m.Paths(d)[0])
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	st, _ := fh.Stat()
	size := st.Size()
	whole := openKdumpCorpus(t, m, d)
	km := whole.Memory.(*kdumpMemory)
	lay := km.lay

	// A sample of present pages to read from each damaged copy.
	var sample []uint64
	ps := uint64(km.pageSize)
	for _, r := range whole.Memory.Ranges() {
		for pfn := r.Start / ps; pfn < r.End/ps; pfn += 61 {
			if whole.Memory.State(pfn) == PagePresent && len(sample) < 300 {
				sample = append(sample, pfn)
			}
		}
	}
	d0, _, _ := km.descriptor(sample[len(sample)/2])
	firstDesc := struct {
		pageDescriptor
		raw [pageDescSize]byte
	}{pageDescriptor: d0}
	binary.LittleEndian.PutUint64(firstDesc.raw[0:], uint64(d0.Offset))
	binary.LittleEndian.PutUint32(firstDesc.raw[8:], d0.Size)
	binary.LittleEndian.PutUint32(firstDesc.raw[12:], d0.Flags)

	type damage struct {
		name    string
		size    int64
		patches map[int64]byte
	}
	var cases []damage
	for _, cut := range []int64{0, 8, 100, 463, 464, lay.blockSize + 50, lay.bitmapOff + 10, lay.descOff - 1, lay.descOff + 100,
		size / 4, size / 2, size * 3 / 4, size - int64(ps) - 7, size - 1} {
		cases = append(cases, damage{name: "cut at " + kdumpItoa(cut), size: cut})
	}
	field := func(name string, off int64, v byte) {
		cases = append(cases, damage{name: name, size: size, patches: map[int64]byte{off: v}})
	}
	field("header_version", 8, 0x77)
	field("block_size", 429, 0x13)
	field("sub_hdr_size", 435, 0x40)
	field("bitmap_blocks", 439, 0x40)
	field("max_mapnr_64", lay.blockSize+96+5, 0x01)
	field("offset_note", lay.blockSize+48+6, 0x01)
	field("1st bitmap", lay.bitmapOff+lay.bitmapLen/3, 0x00)
	field("2nd bitmap", lay.bitmapOff+lay.bitmapLen+lay.bitmapLen/3, 0xff)
	target := sample[len(sample)/2]
	targetDesc := lay.descOff + int64(km.dumped.rank(target)-km.descBase)*pageDescSize
	for _, i := range []int64{0, 1, 3, 7, 8, 9, 12} {
		field("descriptor byte "+kdumpItoa(i), targetDesc+i, firstDesc.raw[i]^0xa5)
	}
	field("page data", firstDesc.Offset+int64(firstDesc.Size)/2, 0x5a)

	buf, ebuf := make([]byte, ps), make([]byte, ps)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := &kdumpPatchedReader{r: io.NewSectionReader(fh, 0, c.size), patches: c.patches}
			f, err := NewFile(r, c.size, "damaged")
			if err != nil {
				var fe *FormatError
				if !errors.As(err, &fe) || !strings.HasPrefix(err.Error(), "damaged") {
					t.Fatalf("open: %T %v", err, err)
				}
				return
			}
			defer f.Close()
			good, bad := 0, 0
			for _, pfn := range sample {
				_, err := f.Memory.ReadPhys(buf, pfn*ps)
				var pe *PageError
				var fe *FormatError
				switch {
				case err == nil:
					if _, err := ef.Memory.ReadPhys(ebuf, pfn*ps); err == nil && !bytes.Equal(buf, ebuf) {
						// Only zlib carries a checksum: damage to a raw,
						// LZO, snappy or zstd page (makedumpfile writes
						// zstd frames without one) can decode to other
						// bytes, and a damaged bitmap shifts pages onto
						// other descriptors.
						unchecked := pfn == target && firstDesc.codec() != "zlib"
						if !strings.Contains(c.name, "bitmap") && !unchecked {
							t.Fatalf("pfn %#x reads wrong bytes without an error", pfn)
						}
					}
					good++
				case errors.As(err, &pe), errors.As(err, &fe):
					bad++
				default:
					t.Fatalf("pfn %#x: %T %v", pfn, err, err)
				}
			}
			t.Logf("%d pages read, %d errors", good, bad)
		})
	}
}

func kdumpItoa(n int64) string { return strconv.FormatInt(n, 10) }

// firstFlattened returns a corpus dump that is a flattened stream, by
// content.
func firstFlattened(t *testing.T, m *corpus.Manifest) (corpus.Dump, bool) {
	t.Helper()
	for _, d := range m.Select(kdumpFamily) {
		fh, err := os.Open(m.Paths(d)[0])
		if err != nil {
			t.Fatal(err)
		}
		var sig [12]byte
		_, err = fh.ReadAt(sig[:], 0)
		fh.Close()
		if err == nil && bytes.Equal(sig[:], flatSignature) {
			return d, true
		}
	}
	return corpus.Dump{}, false
}

// A real flattened stream cut short (a pipe that broke) opens as an
// incomplete dump: the pages that arrived read as in the whole stream,
// the others are missing, none reads as corrupt.
func TestCorpusFlattenedCutShort(t *testing.T) {
	m := corpus.Require(t)
	d, ok := firstFlattened(t, m)
	if !ok {
		t.Fatal("the corpus holds no flattened stream")
	}
	whole := openKdumpCorpus(t, m, d)
	ps := uint64(whole.Memory.PageSize())
	var sample []uint64
	for _, r := range whole.Memory.Ranges() {
		for pfn := r.Start / ps; pfn < r.End/ps && len(sample) < 2000; pfn += 53 {
			if whole.Memory.State(pfn) == PagePresent {
				sample = append(sample, pfn)
			}
		}
	}
	fh, err := os.Open(m.Paths(d)[0])
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	st, _ := fh.Stat()
	size := st.Size()
	a, b := make([]byte, ps), make([]byte, ps)
	for _, cut := range []int64{size / 5, size / 3, size / 2, size * 9 / 10, size - 17} {
		f, err := NewFile(io.NewSectionReader(fh, 0, cut), cut, "cut")
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("cut at %d: %T %v", cut, err, err)
			}
			t.Logf("cut at %d: %v", cut, err)
			continue
		}
		if !f.Incomplete {
			t.Errorf("cut at %d: not marked incomplete", cut)
		}
		read, missing := 0, 0
		for _, pfn := range sample {
			_, err := f.Memory.ReadPhys(a, pfn*ps)
			var pe *PageError
			switch {
			case err == nil:
				if _, err := whole.Memory.ReadPhys(b, pfn*ps); err != nil || !bytes.Equal(a, b) {
					t.Fatalf("cut at %d: pfn %#x reads other bytes than the whole stream", cut, pfn)
				}
				read++
			case errors.As(err, &pe) && pe.State == PageMissing:
				missing++
			default:
				t.Fatalf("cut at %d: pfn %#x: %v", cut, pfn, err)
			}
		}
		t.Logf("cut at %d of %d: %d sampled pages read, %d missing", cut, size, read, missing)
		f.Close()
	}
}

// The parts of a real split dump open in any order; without one of them
// the error names the PFN range no part holds.
func TestCorpusSplitParts(t *testing.T) {
	m := corpus.Require(t)
	splits := m.Select(func(d corpus.Dump) bool { return d.Format == "split" })
	if len(splits) == 0 {
		t.Fatal("the corpus holds no split dump")
	}
	for _, d := range splits {
		paths := m.Paths(d)
		if len(paths) < 2 {
			t.Fatalf("%s: %d files", d.ID, len(paths))
		}
		rev := slices.Clone(paths)
		slices.Reverse(rev)
		f, err := Open(rev...)
		if err != nil {
			t.Fatalf("%s: %v", d.ID, err)
		}
		var next uint64
		for i, p := range f.Parts {
			if p.StartPFN != next || p.EndPFN < p.StartPFN || p.Path != paths[i] {
				t.Errorf("%s: part %d = %+v", d.ID, i, p)
			}
			next = p.EndPFN
		}
		gap := f.Parts[0].EndPFN
		f.Close()
		// openSplit, not Open: with two parts, Open of the second alone
		// opens it as a whole file (see TestCorpusSplitParts' last check).
		_, err = openSplit(paths[1:])
		want := "no part holds PFNs [0x0, 0x" + strconv.FormatUint(gap, 16) + ")"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s without its first part: %v, want %q", d.ID, err, want)
		}
		// The last part alone opens, reads its own range and reports
		// the other pages missing.
		last, err := Open(paths[len(paths)-1])
		if err != nil {
			t.Fatalf("%s: last part alone: %v", d.ID, err)
		}
		if len(last.Parts) != 1 || last.Parts[0].StartPFN == 0 {
			t.Errorf("%s: last part alone: Parts = %+v", d.ID, last.Parts)
		}
		missing := 0
		for pfn := uint64(0); pfn < last.Parts[0].StartPFN; pfn += 17 {
			if last.Memory.State(pfn) == PageMissing {
				missing++
			}
		}
		if missing == 0 {
			t.Errorf("%s: last part alone holds the first part's pages", d.ID)
		}
		last.Close()
	}
}
