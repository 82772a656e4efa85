package lzo

import (
	"bytes"
	"fmt"
	"math/rand"
	"testing"
)

// roundTrip compresses src and checks that Decompress gives it back and
// that the output respects MaxCompressedLen.
func roundTrip(t testing.TB, src []byte) []byte {
	t.Helper()
	c := Compress(nil, src)
	if len(c) > MaxCompressedLen(len(src)) {
		t.Fatalf("%d bytes compress to %d, more than MaxCompressedLen %d", len(src), len(c), MaxCompressedLen(len(src)))
	}
	got := make([]byte, len(src))
	n, err := Decompress(got, c)
	if err != nil {
		t.Fatalf("Decompress(Compress(%d bytes)): %v", len(src), err)
	}
	if n != len(src) || !bytes.Equal(got[:n], src) {
		t.Fatalf("round trip of %d bytes gave %d bytes, different", len(src), n)
	}
	return c
}

// Every instruction form the encoder has: literal runs of each length
// class, M2/M3/M4 matches short and long, long runs of one byte.
func TestCompressRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	random := func(n int) []byte { b := make([]byte, n); rng.Read(b); return b }
	cases := map[string][]byte{
		"empty":       nil,
		"one byte":    {7},
		"three":       {1, 2, 3},
		"zero page":   make([]byte, 4096),
		"random page": random(4096),
		"long random": random(300),
	}
	// Matches at every distance class, with 1–3 and many literals between.
	var mixed []byte
	base := random(64)
	for _, gap := range []int{1, 2, 3, 4, 17, 19, 250, 3000, 20000, 40000} {
		mixed = append(mixed, random(gap)...)
		mixed = append(mixed, base[:4+gap%60]...)
	}
	cases["mixed distances"] = mixed
	text := bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog. "), 100)
	cases["text"] = text
	pat := make([]byte, 0, 70000)
	for len(pat) < 70000 {
		pat = append(pat, random(5+rng.Intn(40))...)
		pat = append(pat, bytes.Repeat([]byte{byte(rng.Intn(3))}, rng.Intn(600))...)
	}
	cases["runs"] = pat
	// Either side of the page-sized path's limit (compressSmall), with
	// matches reaching back across the whole input.
	for _, n := range []int{smallMax - 1, smallMax, smallMax + 1} {
		b := append(append([]byte(nil), base...), random(n-2*len(base))...)
		cases[fmt.Sprintf("%d bytes", n)] = append(b, base...)
	}
	for name, src := range cases {
		t.Run(name, func(t *testing.T) {
			c := roundTrip(t, src)
			if (name == "zero page" || name == "text") && len(c) >= len(src)/10 {
				t.Errorf("%d bytes compressed only to %d", len(src), len(c))
			}
		})
	}
}

func FuzzCompressRoundTrip(f *testing.F) {
	f.Add([]byte{})
	f.Add(make([]byte, 4096))
	f.Add([]byte("abcabcabcabcabcabcabc1234abcabc"))
	f.Fuzz(func(t *testing.T, src []byte) {
		roundTrip(t, src)
	})
}

func BenchmarkCompressPage(b *testing.B) {
	page := bytes.Repeat([]byte("kernel page with some repetition 0123456789"), 100)[:4096]
	b.SetBytes(4096)
	var buf []byte
	for i := 0; i < b.N; i++ {
		buf = Compress(buf[:0], page)
	}
}
