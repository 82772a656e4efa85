package lzo

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzDecompress checks the safety contract on arbitrary input: no panic,
// never more output than room, and the same result whatever spare room
// dst has (a decoder that peeks past its bounds would differ).
func FuzzDecompress(f *testing.F) {
	for _, v := range loadVectors(f) {
		if len(v.block) <= 8192 {
			f.Add(v.block, uint16(v.plainLen))
		}
	}
	f.Add([]byte{0x11, 0, 0}, uint16(0))
	f.Fuzz(func(t *testing.T, src []byte, size uint16) {
		dst := make([]byte, size)
		n, err := Decompress(dst, src)
		if n < 0 || n > len(dst) {
			t.Fatalf("n = %d with a %d-byte output", n, len(dst))
		}
		big := make([]byte, int(size)+4096)
		m, err2 := Decompress(big, src)
		if err == nil || errors.Is(err, ErrInputNotConsumed) {
			if m != n || !bytes.Equal(big[:m], dst[:n]) {
				t.Fatalf("output depends on spare room: %d vs %d bytes", n, m)
			}
			if (err == nil) != (err2 == nil) {
				t.Fatalf("error depends on spare room: %v vs %v", err, err2)
			}
		}
	})
}
