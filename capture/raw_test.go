package capture

import (
	"bytes"
	"errors"
	"hash/crc32"
	"strings"
	"testing"
)

// memDevice is a block device in memory.
type memDevice struct{ b []byte }

func (m *memDevice) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(m.b)) {
		return 0, errors.New("EOF")
	}
	return copy(p, m.b[off:]), nil
}

func (m *memDevice) WriteAt(p []byte, off int64) (int, error) {
	if need := off + int64(len(p)); need > int64(len(m.b)) {
		m.b = append(m.b, make([]byte, need-int64(len(m.b)))...)
	}
	return copy(m.b[off:], p), nil
}

func TestRawHeaderRoundTrip(t *testing.T) {
	for _, h := range []RawHeader{
		{Complete: true, StreamOff: 4096, StreamLen: 23 << 20, DmesgOff: 4096 + 23<<20, DmesgLen: 81234, Stamp: "202611222101", Release: "6.1.0-56-cloud-amd64"},
		{StreamOff: 4096, Stamp: "202611222101-2"},
		{Complete: true, StreamOff: 8192, StreamLen: 1, Stamp: "209912312359", Release: strings.Repeat("r", 64)},
	} {
		d := &memDevice{}
		d.WriteAt(h.marshal(), 0)
		got, err := ReadRawHeader(d, "dev")
		if err != nil {
			t.Fatal(err)
		}
		h.Device = "dev"
		if *got != h {
			t.Errorf("read %+v, wrote %+v", *got, h)
		}
		if err := ClearRawHeader(d); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadRawHeader(d, "dev"); !errors.Is(err, ErrNoRawDump) {
			t.Errorf("after ClearRawHeader: %v, want ErrNoRawDump", err)
		}
	}
}

func TestRawHeaderBad(t *testing.T) {
	good := (&RawHeader{Complete: true, StreamOff: 4096, StreamLen: 100, Stamp: "202611222101"}).marshal()
	for _, c := range []struct {
		name string
		edit func([]byte)
		want string
	}{
		{"zeroes", func(b []byte) { copy(b, make([]byte, 4096)) }, "no salvage raw dump header"},
		{"ext4", func(b []byte) { copy(b, "\x53\xef") }, "no salvage raw dump header"},
		{"flipped bit", func(b []byte) { b[33] ^= 1 }, "the raw dump header is damaged"},
		{"version", func(b []byte) { b[16] = 9; fixCRC(b) }, "raw dump header version 9"},
		{"stamp", func(b []byte) { copy(b[56:], "yesterday\x00\x00\x00"); fixCRC(b) }, `stamp "yesterday" is not YYYYMMDDHHMM`},
		{"stream offset", func(b []byte) { b[24], b[25] = 0, 0; fixCRC(b) }, "inside the header"},
	} {
		b := bytes.Clone(good)
		c.edit(b)
		_, err := ReadRawHeader(bytes.NewReader(b), "/dev/vdb")
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "/dev/vdb: ") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want one line naming /dev/vdb with %q", c.name, err, c.want)
		}
	}
	if _, err := ReadRawHeader(bytes.NewReader(good[:10]), "short"); err == nil || !strings.Contains(err.Error(), "short: reading the raw dump header") {
		t.Errorf("a short device: %v", err)
	}
}

func fixCRC(b []byte) {
	sum := crc32IEEE(b[:rawHeaderBytes])
	b[rawHeaderBytes], b[rawHeaderBytes+1], b[rawHeaderBytes+2], b[rawHeaderBytes+3] = byte(sum), byte(sum>>8), byte(sum>>16), byte(sum>>24)
}

func crc32IEEE(b []byte) uint32 { return crc32.ChecksumIEEE(b) }
