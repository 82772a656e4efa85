package dump

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand"
	"strings"
	"testing"
)

// flatReplay reassembles a flattened stream the way makedumpfile -R does:
// records written in order into a file, holes left zero.
func flatReplay(t *testing.T, stream []byte) []byte {
	t.Helper()
	var out []byte
	pos := flatHeaderSize
	for {
		off := int64(binary.BigEndian.Uint64(stream[pos:]))
		sz := int64(binary.BigEndian.Uint64(stream[pos+8:]))
		if off == -1 {
			return out
		}
		if need := int(off + sz); need > len(out) {
			out = append(out, make([]byte, need-len(out))...)
		}
		copy(out[off:], stream[pos+16:pos+16+int(sz)])
		pos += 16 + int(sz)
	}
}

func TestFlattenedKdump(t *testing.T) {
	s, want := standardDump(t, "zlib", 6)
	file, _ := s.build()
	reverse := func(n int) []int {
		o := make([]int, n)
		for i := range o {
			o[i] = n - 1 - i
		}
		return o
	}
	shuffle := func(n int) []int { return rand.New(rand.NewSource(1)).Perm(n) }
	tests := []struct {
		name  string
		chunk int
		perm  func(int) []int
	}{
		{"page records in order", 4096, nil},
		{"small records in order", 100, nil},
		{"one big record", 1 << 20, nil},
		{"reversed", 4096, reverse},
		{"shuffled", 333, shuffle},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream := flattenForTest(file, tt.chunk, tt.perm)
			f := openKdumpBytes(t, stream)
			if f.Format != FormatFlattened || f.Inner != FormatKdump || f.Incomplete {
				t.Fatalf("Format %v Inner %v Incomplete %v", f.Format, f.Inner, f.Incomplete)
			}
			if len(f.Parts) != 1 || f.Parts[0].Records == 0 || f.Parts[0].Size != int64(len(stream)) {
				t.Fatalf("Parts = %+v", f.Parts)
			}
			checkKdumpPages(t, f, s, want)
		})
	}
}

// Where records overlap, the one later in the stream wins.
func TestFlattenedOverlaps(t *testing.T) {
	rnd := rand.New(rand.NewSource(2))
	for trial := 0; trial < 200; trial++ {
		hdr := make([]byte, flatHeaderSize)
		copy(hdr, flatSignature)
		binary.BigEndian.PutUint64(hdr[16:], 1)
		stream := hdr
		for r := 0; r < 1+rnd.Intn(12); r++ {
			off, sz := rnd.Intn(200), 1+rnd.Intn(60)
			var h [16]byte
			binary.BigEndian.PutUint64(h[0:], uint64(off))
			binary.BigEndian.PutUint64(h[8:], uint64(sz))
			data := make([]byte, sz)
			rnd.Read(data)
			stream = append(append(stream, h[:]...), data...)
		}
		stream = append(stream, bytes.Repeat([]byte{0xff}, 16)...)
		want := flatReplay(t, stream)
		idx, err := indexFlattened(bytes.NewReader(stream), int64(len(stream)), "t")
		if err != nil {
			t.Fatal(err)
		}
		v := newFlatView(bytes.NewReader(stream), idx.Records)
		if v.Size() != int64(len(want)) {
			t.Fatalf("trial %d: view is %d bytes, replay %d", trial, v.Size(), len(want))
		}
		got := make([]byte, len(want))
		if n, err := v.ReadAt(got, 0); n != len(got) || err != nil {
			t.Fatalf("ReadAt = %d, %v", n, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("trial %d: view differs from replay", trial)
		}
		// Reads at every offset and length agree too.
		for i := 0; i < 50; i++ {
			off, n := rnd.Intn(len(want)), rnd.Intn(80)
			b := make([]byte, n)
			m, err := v.ReadAt(b, int64(off))
			end := min(off+n, len(want))
			if m != end-off || !bytes.Equal(b[:m], want[off:end]) || (end < off+n) != (err == io.EOF) {
				t.Fatalf("ReadAt(%d bytes at %d) = %d, %v", n, off, m, err)
			}
		}
	}
}

// A stream cut short opens as an incomplete dump: the pages whose records
// arrived read, the others are missing, nothing reads as garbage.
func TestFlattenedCutShort(t *testing.T) {
	s, want := standardDump(t, "zlib", 6)
	file, _ := s.build()
	stream := flattenForTest(file, 4096, nil)
	stream = stream[:len(stream)-16] // no end marker
	for _, cut := range []int{len(stream), len(stream) - 5000, len(stream) * 3 / 4, len(stream) / 2} {
		f := openKdumpBytes(t, stream[:cut])
		if !f.Incomplete || f.Format != FormatFlattened {
			t.Fatalf("cut at %d: Incomplete %v Format %v", cut, f.Incomplete, f.Format)
		}
		buf := make([]byte, 4096)
		missing := 0
		for pfn, data := range want {
			_, err := f.Memory.ReadPhys(buf, pfn*4096)
			var pe *PageError
			switch {
			case err == nil:
				if !bytes.Equal(buf, data) {
					t.Fatalf("cut at %d: pfn %#x reads wrong bytes", cut, pfn)
				}
			case errors.As(err, &pe) && pe.State == PageMissing:
				missing++
			default:
				t.Fatalf("cut at %d: pfn %#x: %v", cut, pfn, err)
			}
		}
		if cut < len(stream)-5000 && missing == 0 {
			t.Fatalf("cut at %d: no page missing", cut)
		}
	}
}

func TestFlattenedBadStreams(t *testing.T) {
	s, _ := standardDump(t, "zlib", 6)
	file, _ := s.build()
	good := flattenForTest(file, 4096, nil)
	be := binary.BigEndian
	tests := []struct {
		name  string
		edit  func(b []byte) []byte
		inMsg string
	}{
		{"short header", func(b []byte) []byte { return b[:1000] }, "shorter than its 4096-byte header"},
		{"type", func(b []byte) []byte { be.PutUint64(b[16:], 2); return b }, "header type 2"},
		{"negative offset", func(b []byte) []byte { be.PutUint64(b[flatHeaderSize:], uint64(1<<64-5)); return b }, "record 0 has offset -5"},
		{"huge record", func(b []byte) []byte { be.PutUint64(b[flatHeaderSize+8:], 1<<60); return b }, "far beyond"},
		{"huge offset", func(b []byte) []byte { be.PutUint64(b[flatHeaderSize:], 1<<61); return b }, "far beyond"},
		{"nothing inside", func(b []byte) []byte { return append(b[:flatHeaderSize], bytes.Repeat([]byte{0xff}, 16)...) }, "only 0 bytes"},
		{"nested", func(b []byte) []byte {
			inner := flattenForTest([]byte("makedumpfile\x00\x00\x00\x00 and more"), 4096, nil)
			return flattenForTest(inner, 4096, nil)
		}, "itself a flattened stream"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.edit(bytes.Clone(good))
			_, err := NewFile(bytes.NewReader(b), int64(len(b)), "bad.flat")
			var fe *FormatError
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), tt.inMsg) || !strings.Contains(err.Error(), "bad.flat") {
				t.Fatalf("err = %v, want a FormatError naming the file and saying %q", err, tt.inMsg)
			}
		})
	}
}

// makedumpfile -F -E flattens an ELF core; the view opens it as ELF.
func TestFlattenedELF(t *testing.T) {
	core := testCore{loads: []testLoad{{paddr: 0x100000, filesz: 0x3000, memsz: 0x3000}}}.build(t)
	f := openKdumpBytes(t, flattenForTest(core, 1000, func(n int) []int { return rand.New(rand.NewSource(3)).Perm(n) }))
	if f.Format != FormatFlattened || f.Inner != FormatELF {
		t.Fatalf("Format %v Inner %v", f.Format, f.Inner)
	}
	buf := make([]byte, 0x3000)
	if _, err := f.Memory.ReadPhys(buf, 0x100000); err != nil {
		t.Fatal(err)
	}
	for i, c := range buf {
		if c != patternByte(0x100000+uint64(i)) {
			t.Fatalf("byte %#x differs", 0x100000+i)
		}
	}
}
