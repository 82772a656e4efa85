package lzo

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"os"
	"testing"
)

// vector is one liblzo2-made block from testdata/vectors.bin (see gen.py).
type vector struct {
	name     string
	level    int
	plainLen int
	sum      [32]byte
	block    []byte
}

func loadVectors(t testing.TB) []vector {
	t.Helper()
	b, err := os.ReadFile("testdata/vectors.bin")
	if err != nil {
		t.Fatal(err)
	}
	var out []vector
	for len(b) > 0 {
		var v vector
		n := int(binary.LittleEndian.Uint16(b))
		v.name = string(b[2 : 2+n])
		b = b[2+n:]
		v.level = int(b[0])
		v.plainLen = int(binary.LittleEndian.Uint32(b[1:]))
		copy(v.sum[:], b[5:37])
		bl := int(binary.LittleEndian.Uint32(b[37:]))
		v.block = b[41 : 41+bl]
		b = b[41+bl:]
		out = append(out, v)
	}
	if len(out) < 20 {
		t.Fatalf("testdata/vectors.bin holds only %d vectors", len(out))
	}
	return out
}

func TestDecompressLiblzo2Vectors(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.name, func(t *testing.T) {
			dst := make([]byte, v.plainLen)
			n, err := Decompress(dst, v.block)
			if err != nil {
				t.Fatalf("level %d: %v", v.level, err)
			}
			if n != v.plainLen {
				t.Fatalf("level %d: decoded %d bytes, want %d", v.level, n, v.plainLen)
			}
			if sha256.Sum256(dst) != v.sum {
				t.Fatalf("level %d: decoded bytes differ from the original", v.level)
			}
		})
	}
}

func TestDecompressErrors(t *testing.T) {
	vs := loadVectors(t)
	var page vector
	for _, v := range vs {
		if v.plainLen == 4096 && v.level == 1 && v.name != "zero-page" && len(v.block) < 3000 {
			page = v
			break
		}
	}
	tests := []struct {
		name   string
		dst    int
		src    []byte
		want   error
		wantOK int // bytes written when want is ErrInputNotConsumed
	}{
		{"empty input", 16, nil, ErrInputOverrun, 0},
		{"end marker only", 0, []byte{0x11, 0, 0}, nil, 0},
		{"literal without end", 16, []byte{17 + 4, 'a', 'b', 'c', 'd'}, ErrInputOverrun, 0},
		{"literal longer than input", 16, []byte{17 + 8, 'a'}, ErrInputOverrun, 0},
		{"literal longer than output", 2, []byte{17 + 4, 'a', 'b', 'c', 'd', 0x11, 0, 0}, ErrOutputOverrun, 0},
		{"copy before start", 64, []byte{17 + 1, 'a', 0x40 | 0x1c, 0xff, 0x11, 0, 0}, ErrLookBehind, 0},
		{"first byte is a far copy", 64, []byte{0x11, 0x04, 0x00}, ErrLookBehind, 0},
		{"trailing bytes", 4, []byte{17 + 4, 'a', 'b', 'c', 'd', 0x11, 0, 0, 9}, ErrInputNotConsumed, 4},
		{"zero run to end of input", 4096, []byte{0x00, 0x00, 0x00}, ErrInputOverrun, 0},
		{"page into short buffer", 4095, page.block, ErrOutputOverrun, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := Decompress(make([]byte, tt.dst), tt.src)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Decompress: err = %v, want %v", err, tt.want)
			}
			if tt.want == ErrInputNotConsumed && n != tt.wantOK {
				t.Fatalf("n = %d, want %d", n, tt.wantOK)
			}
			if n > tt.dst {
				t.Fatalf("n = %d beyond the %d-byte output", n, tt.dst)
			}
		})
	}
}

// Every truncation and every single-byte corruption of real blocks ends in
// an error or a bounded output, never a panic.
func TestDecompressDamagedBlocks(t *testing.T) {
	for _, v := range loadVectors(t) {
		if v.plainLen > 4096 {
			continue
		}
		dst := make([]byte, v.plainLen)
		for cut := 0; cut < len(v.block); cut++ {
			if _, err := Decompress(dst, v.block[:cut]); err == nil {
				t.Fatalf("%s level %d: block cut to %d bytes decoded without error", v.name, v.level, cut)
			}
		}
		damaged := bytes.Clone(v.block)
		stride := 1 + len(damaged)/600 // every byte of small blocks
		for i := 0; i < len(damaged); i += stride {
			old := damaged[i]
			for _, x := range []byte{0x00, 0xff, old ^ 0x80} {
				damaged[i] = x
				if n, _ := Decompress(dst, damaged); n > len(dst) {
					t.Fatalf("wrote %d bytes into %d", n, len(dst))
				}
			}
			damaged[i] = old
		}
	}
}

func BenchmarkDecompressPage(b *testing.B) {
	var v vector
	for _, x := range loadVectors(b) {
		if x.plainLen == 4096 && x.level == 1 && x.name != "zero-page" {
			v = x
		}
	}
	dst := make([]byte, v.plainLen)
	b.SetBytes(int64(v.plainLen))
	for b.Loop() {
		if _, err := Decompress(dst, v.block); err != nil {
			b.Fatal(err)
		}
	}
}
