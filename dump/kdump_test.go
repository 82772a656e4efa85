package dump

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// kdumpTestNote encodes one ELF note (Elf64_Nhdr, name, descriptor, 4-aligned).
func kdumpTestNote(name string, typ uint32, desc []byte) []byte {
	le := binary.LittleEndian
	n := append([]byte(name), 0)
	b := make([]byte, 12)
	le.PutUint32(b[0:], uint32(len(n)))
	le.PutUint32(b[4:], uint32(len(desc)))
	le.PutUint32(b[8:], typ)
	pad := func(x []byte) []byte { return append(x, make([]byte, (4-len(x)%4)%4)...) }
	return append(append(b, pad(n)...), pad(desc)...)
}

// kdumpTestNotes returns two CPUs' NT_PRSTATUS and a VMCOREINFO note.
func kdumpTestNotes() []byte {
	var b []byte
	for cpu := 0; cpu < 2; cpu++ {
		desc := make([]byte, prstatusSize(ArchX86_64))
		binary.LittleEndian.PutUint32(desc[prstatusPIDOff:], uint32(100+cpu))
		binary.LittleEndian.PutUint64(desc[prstatusRegOff+16*8:], 0xffffffff81000000+uint64(cpu))
		b = append(b, kdumpTestNote("CORE", NTPRStatus, desc)...)
	}
	return append(b, kdumpTestNote("VMCOREINFO", 0, []byte("OSRELEASE=6.1.0-56-cloud-amd64\nPAGESIZE=4096\n"))...)
}

// standardDump is a small machine: 64 frames of RAM at PFN 0–47 and 80–95,
// of which some are excluded, some zero; the rest hold real pages encoded
// with codec.
func standardDump(t testing.TB, codec string, version int32) (*synthDump, map[uint64][]byte) {
	t.Helper()
	real := loadRealPages(t)
	lzoBy := lzoBlocks(t)
	var usable [][]byte
	for _, p := range real {
		if _, _, ok := compressPage(t, p.data, codec, lzoBy); ok {
			usable = append(usable, p.data)
		}
	}
	if len(usable) == 0 {
		t.Fatalf("no real page can be encoded with %s", codec)
	}
	s := &synthDump{
		version: version, blockSize: 4096, maxMapnr: 100, machine: "x86_64",
		dumpLevel: 31, nrCPUs: 2,
		ram:   []Range{{0, 48}, {80, 96}},
		pages: map[uint64]synthPage{},
		notes: kdumpTestNotes(),
	}
	want := map[uint64][]byte{}
	i := 0
	for _, r := range s.ram {
		for pfn := r.Start; pfn < r.End; pfn++ {
			switch {
			case pfn%7 == 3: // excluded by the filter
			case pfn%5 == 1:
				s.pages[pfn] = synthPage{}
				want[pfn] = make([]byte, 4096)
			default:
				data := usable[i%len(usable)]
				i++
				enc, flags, _ := compressPage(t, data, codec, lzoBy)
				if len(enc) >= len(data) {
					// Producers store a page raw when compressing does
					// not make it smaller.
					enc, flags = data, 0
				}
				s.pages[pfn] = synthPage{data: data, enc: enc, flags: flags}
				want[pfn] = data
			}
		}
	}
	switch codec {
	case "zlib":
		s.status = kdumpZlib
	case "lzo":
		s.status = kdumpLZO
	case "snappy":
		s.status = kdumpSnappy
	case "zstd":
		s.status = kdumpZstd
	}
	return s, want
}

func openKdumpBytes(t testing.TB, b []byte) *File {
	t.Helper()
	f, err := NewFile(bytes.NewReader(b), int64(len(b)), "test.vmcore")
	if err != nil {
		t.Fatalf("NewFile: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// checkKdumpPages compares every frame of the machine with what it should
// hold, through State and through ReadPhys.
func checkKdumpPages(t *testing.T, f *File, s *synthDump, want map[uint64][]byte) {
	t.Helper()
	m := f.Memory
	buf := make([]byte, 4096)
	for pfn := uint64(0); pfn < s.maxMapnr+4; pfn++ {
		inRAM := slices.ContainsFunc(s.ram, func(r Range) bool { return pfn >= r.Start && pfn < r.End })
		page, dumped := want[pfn]
		wantState := PagePresent
		switch {
		case !inRAM:
			wantState = PageNotRAM
		case !dumped:
			wantState = PageExcluded
		case s.pages[pfn].data == nil:
			wantState = PageZero
		}
		if got := m.State(pfn); got != wantState {
			t.Fatalf("State(%#x) = %v, want %v", pfn, got, wantState)
		}
		n, err := m.ReadPhys(buf, pfn*4096)
		if wantState == PagePresent || wantState == PageZero {
			if err != nil || n != 4096 {
				t.Fatalf("ReadPhys(pfn %#x) = %d, %v", pfn, n, err)
			}
			if !bytes.Equal(buf, page) {
				t.Fatalf("pfn %#x reads different bytes", pfn)
			}
			continue
		}
		var pe *PageError
		if !errors.As(err, &pe) || pe.State != wantState || pe.Addr != pfn*4096 || n != 0 {
			t.Fatalf("ReadPhys(pfn %#x) = %d, %v; want a PageError %v", pfn, n, err, wantState)
		}
	}
}

func TestKdumpCodecs(t *testing.T) {
	for _, codec := range []string{"none", "zlib", "lzo", "snappy", "zstd"} {
		t.Run(codec, func(t *testing.T) {
			s, want := standardDump(t, codec, 6)
			b, _ := s.build()
			f := openKdumpBytes(t, b)
			if f.Format != FormatKdump || f.Inner != FormatKdump || f.Arch != ArchX86_64 {
				t.Errorf("Format %v Inner %v Arch %v", f.Format, f.Inner, f.Arch)
			}
			if !slices.Equal(f.Compression, []Compression{codec}) {
				t.Errorf("Compression = %v, want [%s]", f.Compression, codec)
			}
			checkKdumpPages(t, f, s, want)
		})
	}
}

func TestKdumpHeaderVersions(t *testing.T) {
	tests := []struct {
		version    int32
		wantLevel  int
		wantNotes  bool
		wantVMCore bool
	}{
		{0, -1, false, false},
		{1, 31, false, false},
		{2, 31, false, false},
		{3, 31, false, true},
		{4, 31, true, true},
		{5, 31, true, true},
		{6, 31, true, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint("v", tt.version), func(t *testing.T) {
			s, want := standardDump(t, "zlib", tt.version)
			s.vmcore = []byte("OSRELEASE=from-offset-vmcoreinfo\n")
			b, _ := s.build()
			f := openKdumpBytes(t, b)
			if f.HeaderVersion != int(tt.version) || f.DumpLevel != tt.wantLevel || f.CPUs != 2 {
				t.Errorf("HeaderVersion %d DumpLevel %d CPUs %d", f.HeaderVersion, f.DumpLevel, f.CPUs)
			}
			if got := len(f.PRStatus) == 2; got != tt.wantNotes {
				t.Errorf("%d NT_PRSTATUS notes", len(f.PRStatus))
			}
			if tt.wantNotes && f.PRStatus[1].PID != 101 {
				t.Errorf("PRStatus[1].PID = %d", f.PRStatus[1].PID)
			}
			if got := f.VMCoreInfo != nil; got != tt.wantVMCore {
				t.Fatalf("VMCoreInfo = %v", f.VMCoreInfo)
			}
			if tt.wantVMCore {
				// The VMCOREINFO note wins over offset_vmcoreinfo when both exist.
				wantRel := "from-offset-vmcoreinfo"
				if tt.wantNotes {
					wantRel = "6.1.0-56-cloud-amd64"
				}
				if got := f.VMCoreInfo.OSRelease(); got != wantRel {
					t.Errorf("OSRELEASE = %q, want %q", got, wantRel)
				}
			}
			checkKdumpPages(t, f, s, want)
		})
	}
}

// Header version 6 keeps max_mapnr in 64 bits in the sub-header; the
// 32-bit header field is only a truncated copy.
func TestKdumpMaxMapnr64(t *testing.T) {
	s, want := standardDump(t, "zlib", 6)
	b, _ := s.build()
	binary.LittleEndian.PutUint32(b[440:], 50) // truncated copy disagrees
	f := openKdumpBytes(t, b)
	checkKdumpPages(t, f, s, want)

	s.version = 5
	b, _ = s.build()
	binary.LittleEndian.PutUint32(b[440:], 50)
	binary.LittleEndian.PutUint64(b[4096+96:], 1000) // ignored before v6
	f = openKdumpBytes(t, b)
	if st := f.Memory.State(81); st != PageNotRAM {
		t.Fatalf("v5 with max_mapnr 50: State(81) = %v, want not RAM", st)
	}
}

func TestKdumpRanges(t *testing.T) {
	s, _ := standardDump(t, "zlib", 6)
	b, _ := s.build()
	f := openKdumpBytes(t, b)
	want := []Range{{0, 48 * 4096}, {80 * 4096, 96 * 4096}}
	if got := f.Memory.Ranges(); !slices.Equal(got, want) {
		t.Fatalf("Ranges = %v, want %v", got, want)
	}
}

func TestPFNBitmap(t *testing.T) {
	tests := []struct {
		name string
		set  []Range
		n    uint64
	}{
		{"empty", nil, 200},
		{"all", []Range{{0, 5000}}, 5000},
		{"edges", []Range{{0, 1}, {63, 65}, {127, 128}, {1023, 1025}, {4999, 5000}}, 5000},
		{"word aligned", []Range{{64, 128}, {2048, 4096}}, 4096},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := make([]byte, (tt.n+7)/8+3)
			for _, r := range tt.set {
				for i := r.Start; i < r.End; i++ {
					raw[i/8] |= 1 << (i % 8)
				}
			}
			raw[len(raw)-1] = 0xff // past nbits: ignored
			b := newPFNBitmap(raw, tt.n, true)
			var rank uint64
			for i := uint64(0); i < tt.n; i++ {
				if got := b.rank(i); got != rank {
					t.Fatalf("rank(%d) = %d, want %d", i, got, rank)
				}
				if b.test(i) {
					rank++
				}
			}
			if b.count() != rank {
				t.Fatalf("count = %d, want %d", b.count(), rank)
			}
			if got := b.runs(); !slices.Equal(got, tt.set) {
				t.Fatalf("runs = %v, want %v", got, tt.set)
			}
		})
	}
}

func TestKdumpReadAcrossPages(t *testing.T) {
	s, want := standardDump(t, "zlib", 6)
	b, _ := s.build()
	f := openKdumpBytes(t, b)
	// PFN 4–6 are present, zero (6%5==1), present: one read spans them.
	buf := make([]byte, 3*4096-100)
	n, err := f.Memory.ReadPhys(buf, 4*4096+50)
	if err != nil || n != len(buf) {
		t.Fatalf("ReadPhys = %d, %v", n, err)
	}
	exp := append(append(append([]byte{}, want[4]...), want[5]...), want[6]...)
	if !bytes.Equal(buf, exp[50:50+len(buf)]) {
		t.Fatal("read across pages differs")
	}
	// PFN 10 is excluded (10%7==3): a read from 9 stops there.
	n, err = f.Memory.ReadPhys(make([]byte, 8192), 9*4096+8)
	var pe *PageError
	if n != 4096-8 || !errors.As(err, &pe) || pe.Addr != 10*4096 || pe.State != PageExcluded {
		t.Fatalf("ReadPhys into an excluded page = %d, %v", n, err)
	}
}

// Descriptors that were never written (an interrupted makedumpfile) read
// as missing, and the INCOMPLETE status is reported.
func TestKdumpIncomplete(t *testing.T) {
	s, _ := standardDump(t, "zlib", 6)
	s.status |= kdumpIncomplete
	s.dropDescs = map[uint64]bool{}
	for pfn := uint64(40); pfn < 100; pfn++ {
		s.dropDescs[pfn] = true
	}
	b, _ := s.build()
	f := openKdumpBytes(t, b)
	if !f.Incomplete {
		t.Error("Incomplete not set")
	}
	for pfn := uint64(40); pfn < 96; pfn++ {
		if _, dumped := s.pages[pfn]; !dumped {
			continue
		}
		if st := f.Memory.State(pfn); st != PageMissing {
			t.Fatalf("State(%#x) = %v, want missing", pfn, st)
		}
		var pe *PageError
		if _, err := f.Memory.ReadPhys(make([]byte, 8), pfn*4096); !errors.As(err, &pe) || pe.State != PageMissing {
			t.Fatalf("ReadPhys(pfn %#x): %v", pfn, err)
		}
	}
	if st := f.Memory.State(2); st != PagePresent {
		t.Fatalf("State(2) = %v", st)
	}
}

// QEMU's dump-guest-memory writes dump level 1 with both bitmaps equal and
// a shared zero page (dump/dump.c write_dump_pages): zero pages are in the
// 2nd bitmap and read as zero, nothing is excluded.
func TestKdumpQEMUStyleZeroPages(t *testing.T) {
	s, want := standardDump(t, "zlib", 6)
	s.dumpLevel = 1
	for _, r := range s.ram {
		for pfn := r.Start; pfn < r.End; pfn++ {
			if _, ok := s.pages[pfn]; !ok {
				s.pages[pfn] = synthPage{}
				want[pfn] = make([]byte, 4096)
			}
		}
	}
	b, _ := s.build()
	f := openKdumpBytes(t, b)
	if f.DumpLevel != 1 {
		t.Errorf("DumpLevel = %d", f.DumpLevel)
	}
	checkKdumpPages(t, f, s, want)
}

func TestKdumpConcurrentReads(t *testing.T) {
	s, want := standardDump(t, "zstd", 6)
	b, _ := s.build()
	f := openKdumpBytes(t, b)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			buf := make([]byte, 4096)
			for i := 0; i < 300; i++ {
				pfn := uint64((i*7 + g*13) % 96)
				data, ok := want[pfn]
				if !ok {
					continue
				}
				if _, err := f.Memory.ReadPhys(buf, pfn*4096); err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(buf, data) {
					errs <- fmt.Errorf("pfn %#x differs", pfn)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestKdumpBadHeaders(t *testing.T) {
	s, _ := standardDump(t, "zlib", 6)
	good, _ := s.build()
	le := binary.LittleEndian
	tests := []struct {
		name  string
		edit  func(b []byte) []byte
		inMsg string
	}{
		{"too short", func(b []byte) []byte { return b[:300] }, "shorter than"},
		{"version", func(b []byte) []byte { le.PutUint32(b[8:], 7); return b }, "header_version 7"},
		{"big-endian version", func(b []byte) []byte { le.PutUint32(b[8:], 6<<24); return b }, "header_version"},
		{"block size", func(b []byte) []byte { le.PutUint32(b[428:], 4095); return b }, "block_size 4095"},
		{"block size zero", func(b []byte) []byte { le.PutUint32(b[428:], 0); return b }, "block_size 0"},
		{"machine", func(b []byte) []byte { copy(b[272:], "ppc64le\x00"); return b }, `"ppc64le"`},
		{"sub_hdr_size huge", func(b []byte) []byte { le.PutUint32(b[432:], 1<<31-1); return b }, "beyond"},
		{"bitmap_blocks huge", func(b []byte) []byte { le.PutUint32(b[436:], 1<<32-1); return b }, "beyond"},
		{"bitmaps cut", func(b []byte) []byte { return b[:3*4096+100] }, "truncated"},
		{"notes offset", func(b []byte) []byte { le.PutUint64(b[4096+48:], 1<<40); return b }, "ELF notes"},
		{"notes size", func(b []byte) []byte { le.PutUint64(b[4096+56:], 1<<62); return b }, "ELF notes"},
		{"split range", func(b []byte) []byte {
			le.PutUint32(b[4096+12:], 1)
			le.PutUint64(b[4096+80:], 50)
			le.PutUint64(b[4096+88:], 10)
			return b
		}, "split part"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.edit(bytes.Clone(good))
			_, err := NewFile(bytes.NewReader(b), int64(len(b)), "bad.vmcore")
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want a FormatError", err)
			}
			if !bytes.Contains([]byte(err.Error()), []byte(tt.inMsg)) || !bytes.Contains([]byte(err.Error()), []byte("bad.vmcore")) {
				t.Fatalf("err = %q, want it to name the file and say %q", err, tt.inMsg)
			}
		})
	}
}

// Damaged descriptors and page data read as errors that name the PFN and
// the offset; the other pages still read.
func TestKdumpDamagedPages(t *testing.T) {
	s, want := standardDump(t, "zlib", 6)
	b, descOff := s.build()
	le := binary.LittleEndian
	descOf := func(pfn uint64) int64 {
		rank := 0
		for p := range s.pages {
			if p < pfn {
				rank++
			}
		}
		return descOff + int64(rank)*pageDescSize
	}
	tests := []struct {
		name    string
		pfn     uint64
		edit    func(b []byte, d int64)
		inMsg   string
		wantErr PageState // for PageErrors; PagePresent means a FormatError
	}{
		{"size too big", 2, func(b []byte, d int64) { le.PutUint32(b[d+8:], 5000) }, "descriptor of PFN 0x2 is corrupt", PagePresent},
		{"offset into headers", 2, func(b []byte, d int64) { le.PutUint64(b[d:], 100) }, "descriptor of PFN 0x2 is corrupt", PagePresent},
		{"raw page too short", 2, func(b []byte, d int64) { le.PutUint32(b[d+12:], 0) }, "descriptor of PFN 0x2 is corrupt", PagePresent},
		{"wrong codec", 2, func(b []byte, d int64) { le.PutUint32(b[d+12:], kdumpLZO) }, "PFN 0x2", PagePresent},
		{"data garbage", 2, func(b []byte, d int64) {
			off := le.Uint64(b[d:])
			copy(b[off:off+16], bytes.Repeat([]byte{0x5a}, 16))
		}, "PFN 0x2", PagePresent},
		{"offset past end", 2, func(b []byte, d int64) { le.PutUint64(b[d:], uint64(len(b)-10)) }, "", PageMissing},
		{"zeroed descriptor", 2, func(b []byte, d int64) { clear(b[d : d+pageDescSize]) }, "", PageMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bb := bytes.Clone(b)
			tt.edit(bb, descOf(tt.pfn))
			f := openKdumpBytes(t, bb)
			_, err := f.Memory.ReadPhys(make([]byte, 4096), tt.pfn*4096)
			if tt.wantErr == PagePresent {
				var fe *FormatError
				if !errors.As(err, &fe) || !bytes.Contains([]byte(err.Error()), []byte(tt.inMsg)) {
					t.Fatalf("err = %v, want a FormatError saying %q", err, tt.inMsg)
				}
			} else {
				var pe *PageError
				if !errors.As(err, &pe) || pe.State != tt.wantErr {
					t.Fatalf("err = %v, want a PageError %v", err, tt.wantErr)
				}
			}
			// The neighbours are unharmed.
			buf := make([]byte, 4096)
			if _, err := f.Memory.ReadPhys(buf, 0); err != nil || !bytes.Equal(buf, want[0]) {
				t.Fatalf("PFN 0 after damage to PFN %d: %v", tt.pfn, err)
			}
		})
	}
}

// The codecs listed are the header's plus those the descriptor sample
// sees, including codecs used only far into the table.
func TestKdumpCompressionScan(t *testing.T) {
	real := loadRealPages(t)
	tests := []struct {
		name   string
		pages  uint64
		status uint32
		codec  func(pfn uint64) string
		want   []Compression
	}{
		{"raw only", 100, 0, func(uint64) string { return "none" }, []Compression{"none"}},
		{"late snappy in a small table", 3000, kdumpZlib, func(pfn uint64) string {
			if pfn < 2000 {
				return "none"
			}
			return "snappy"
		}, []Compression{"snappy", "zlib"}},
		{"zstd everywhere in a large table", 40000, 0, func(pfn uint64) string { return "zstd" }, []Compression{"zstd"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &synthDump{version: 6, blockSize: 4096, maxMapnr: tt.pages, machine: "x86_64", status: tt.status,
				ram: []Range{{0, tt.pages}}, pages: map[uint64]synthPage{}}
			encoded := map[string][]byte{}
			for pfn := uint64(0); pfn < tt.pages; pfn++ {
				data := real[1+pfn%3].data // compressible pages
				codec := tt.codec(pfn)
				enc, ok := encoded[codec+string(rune(pfn%3))]
				if !ok {
					enc, _, _ = compressPage(t, data, codec, nil)
					encoded[codec+string(rune(pfn%3))] = enc
				}
				_, flags, _ := compressPage(t, data[:0], codec, nil)
				s.pages[pfn] = synthPage{data: data, enc: enc, flags: flags}
			}
			b, _ := s.build()
			f := openKdumpBytes(t, b)
			if !slices.Equal(f.Compression, tt.want) {
				t.Fatalf("Compression = %v, want %v", f.Compression, tt.want)
			}
		})
	}
}

// zstd frames from a streaming encoder (no content size, a window larger
// than the page) decode as well as makedumpfile's one-shot frames.
func TestKdumpZstdStreamingFrame(t *testing.T) {
	page := loadRealPages(t)[3].data
	var b bytes.Buffer
	w, err := zstd.NewWriter(&b, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithWindowSize(4<<20))
	if err != nil {
		t.Fatal(err)
	}
	w.Write(page)
	w.Close()
	c := newPageCodecs(4096)
	defer c.close()
	dst := make([]byte, 4096)
	if err := c.decode(dst, b.Bytes(), "zstd"); err != nil || !bytes.Equal(dst, page) {
		t.Fatalf("decode: %v", err)
	}
	// A frame of two pages is one page too many.
	two := append(append([]byte{}, page...), page...)
	enc, _ := zstd.NewWriter(nil)
	if err := c.decode(dst, enc.EncodeAll(two, nil), "zstd"); err == nil {
		t.Fatal("a two-page frame decoded into one page")
	}
	enc.Close()
}

// arm64 kernels with 64 KiB pages write 64 KiB blocks.
func TestKdumpARM64LargePages(t *testing.T) {
	real := loadRealPages(t)
	var big []byte
	for len(big) < 65536 {
		big = append(big, real[len(big)/4096%len(real)].data...)
	}
	s := &synthDump{version: 6, blockSize: 65536, maxMapnr: 0x40010, machine: "aarch64", dumpLevel: 31,
		ram: []Range{{0x40000, 0x40010}}, pages: map[uint64]synthPage{}}
	want := map[uint64][]byte{}
	for pfn := uint64(0x40000); pfn < 0x40010; pfn += 2 {
		codec := []string{"zlib", "snappy", "zstd", "none"}[pfn/2%4]
		enc, flags, _ := compressPage(t, big, codec, nil)
		s.pages[pfn] = synthPage{data: big, enc: enc, flags: flags}
		want[pfn] = big
	}
	b, _ := s.build()
	f := openKdumpBytes(t, b)
	if f.Arch != ArchARM64 || f.Memory.PageSize() != 65536 {
		t.Fatalf("Arch %v, page size %d", f.Arch, f.Memory.PageSize())
	}
	buf := make([]byte, 65536)
	for pfn := uint64(0x40000); pfn < 0x40010; pfn++ {
		_, err := f.Memory.ReadPhys(buf, pfn*65536)
		if data, ok := want[pfn]; ok {
			if err != nil || !bytes.Equal(buf, data) {
				t.Fatalf("pfn %#x: %v", pfn, err)
			}
		} else if st := f.Memory.State(pfn); st != PageExcluded {
			t.Fatalf("pfn %#x: %v", pfn, st)
		}
	}
}

// BenchmarkKdumpReadPhys reads pages that miss the page cache, so each
// read finds a descriptor by rank and decodes the page.
func BenchmarkKdumpReadPhys(b *testing.B) {
	for _, codec := range []string{"zlib", "lzo", "zstd"} {
		b.Run(codec, func(b *testing.B) {
			s, want := standardDump(b, codec, 6)
			raw, _ := s.build()
			f := openKdumpBytes(b, raw)
			var pfns []uint64
			for pfn := range want {
				if s.pages[pfn].data != nil {
					pfns = append(pfns, pfn)
				}
			}
			slices.Sort(pfns)
			buf := make([]byte, 4096)
			b.SetBytes(4096)
			i := 0
			for b.Loop() {
				// Stride past the cache's capacity.
				pfn := pfns[i%len(pfns)]
				i += 7
				f.Memory.(*kdumpMemory).cache = newPageCache(pageCacheSize)
				if _, err := f.Memory.ReadPhys(buf, pfn*4096); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
