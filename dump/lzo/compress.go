package lzo

// LZO1X compression, in the spirit of liblzo2's lzo1x_1_compress: a greedy
// match finder over a hash of the next four bytes, matches of four bytes
// or more, and the instruction encodings of the kernel's
// Documentation/staging/lzo.rst ("Byte sequences"). Any LZO1X decoder
// (liblzo2's lzo1x_decompress_safe, which crash uses, the kernel's, or
// Decompress) reads the output.

import (
	"encoding/binary"
	"math/bits"
)

const (
	minMatch  = 4
	m2MaxOff  = 0x0800 // 01LDDDSS / 1LLDDDSS: length 3–8, distance ≤ 2048
	m3MaxOff  = 0x4000 // 001LLLLL: distance ≤ 16384
	m4MaxOff  = 0xbfff // 0001HLLL: distance ≤ 49151
	m2MaxLen  = 8
	m3MaxLen  = 33 // longest M3 length without extension bytes
	m4MaxLen  = 9  // longest M4 length without extension bytes
	hashBits  = 12
	hashShift = 32 - hashBits
)

// MaxCompressedLen is the largest output Compress can produce for n input
// bytes (liblzo2's bound: n + n/16 + 64 + 3).
func MaxCompressedLen(n int) int { return n + n/16 + 64 + 3 }

// Compressor compresses with a match table of its own, reused from call
// to call (a goroutine should have its own). The zero value is ready.
type Compressor struct {
	// table[h] is base plus one plus the last position whose next four
	// bytes hash to h: entries at or below base are from earlier calls
	// and mean none. Moving base past each input instead of clearing the
	// table saves a 16 KiB clear per 4 KiB page.
	table [1 << hashBits]int32
	base  int32
	small [1 << smallBits]uint16
}

// Compress appends the LZO1X compression of src to dst and returns the
// extended slice. The output ends with the end-of-stream marker.
func Compress(dst, src []byte) []byte {
	return new(Compressor).Compress(dst, src)
}

// Compress is the package's Compress, with c's table.
func (c *Compressor) Compress(dst, src []byte) []byte {
	if len(src) <= smallMax {
		return c.compressSmall(dst, src)
	}
	return c.compressLarge(dst, src)
}

// compressLarge compresses an input longer than smallMax.
func (c *Compressor) compressLarge(dst, src []byte) []byte {
	table := &c.table
	if int64(c.base)+int64(len(src))+1 >= 1<<31-1 {
		clear(table[:])
		c.base = 0
	}
	base := c.base
	c.base += int32(len(src)) + 1
	out := dst
	start := len(dst) // where this stream's output begins
	lit := 0          // first byte not yet emitted
	ip := 0
	n := len(src)
	le := binary.LittleEndian
	for ip+minMatch <= n {
		v := le.Uint32(src[ip:])
		h := (v * 0x9E3779B1) >> hashShift
		cand := int(table[h&(1<<hashBits-1)]-base) - 1
		table[h&(1<<hashBits-1)] = base + int32(ip+1)
		if uint(cand) >= uint(ip) || ip-cand > m4MaxOff || le.Uint32(src[cand:cand+4]) != v {
			// No match: step further the longer the literal run, as
			// lzo1x_1 does, so that incompressible data goes fast.
			ip += 1 + (ip-lit)>>5
			continue
		}
		mlen := minMatch
		for ip+mlen+8 <= n {
			a, b := src[cand+mlen:cand+mlen+8], src[ip+mlen:ip+mlen+8]
			if x := le.Uint64(a) ^ le.Uint64(b); x != 0 {
				mlen += bits.TrailingZeros64(x) / 8
				goto matched
			}
			mlen += 8
		}
		for ip+mlen < n && src[cand+mlen] == src[ip+mlen] {
			mlen++
		}
	matched:
		out = emitLiterals(out, start, src[lit:ip])
		out = emitMatch(out, ip-cand, mlen)
		// Positions inside a match are not indexed, as in lzo1x_1: it
		// costs more time than it saves bytes on kernel pages.
		ip += mlen
		lit = ip
	}
	out = emitLiterals(out, start, src[lit:])
	return append(out, 0x10|1, 0, 0) // M4 with distance 16384: end of stream
}

func hash4(b []byte) uint32 {
	return (binary.LittleEndian.Uint32(b) * 0x9E3779B1) >> hashShift
}

// emitLiterals writes a literal run. One to three literals after a match
// ride in the match's last two bits (SS, in the byte two back); the
// stream's first run of up to 238 uses the one-byte 17+n form; others the
// 0000LLLL form, with zero bytes extending the length by 255 each.
func emitLiterals(out []byte, start int, lits []byte) []byte {
	t := len(lits)
	switch {
	case t == 0:
		return out
	case len(out) == start && t <= 238:
		out = append(out, byte(17+t))
	case t <= 3:
		out[len(out)-2] |= byte(t)
	case t <= 18:
		out = append(out, byte(t-3))
	default:
		out = append(out, 0)
		out = appendLength(out, t-18)
	}
	return append(out, lits...)
}

// appendLength writes the extension of a long length: a zero byte per
// 255, then the remainder (never zero).
func appendLength(out []byte, n int) []byte {
	for n > 255 {
		out = append(out, 0)
		n -= 255
	}
	return append(out, byte(n))
}

// emitMatch writes a match of mlen ≥ 4 bytes at distance off, in the
// shortest of the M2, M3 and M4 forms that can hold it. The trailing
// literal count (SS) is left zero for emitLiterals to fill.
func emitMatch(out []byte, off, mlen int) []byte {
	switch {
	case mlen <= m2MaxLen && off <= m2MaxOff:
		off--
		return append(out, byte((mlen-1)<<5|(off&7)<<2), byte(off>>3))
	case off <= m3MaxOff:
		off--
		if mlen <= m3MaxLen {
			out = append(out, byte(0x20|(mlen-2)))
		} else {
			out = append(out, 0x20)
			out = appendLength(out, mlen-m3MaxLen)
		}
		return append(out, byte(off<<2), byte(off>>6))
	default:
		off -= 0x4000
		hi := byte((off >> 11) & 8)
		if mlen <= m4MaxLen {
			out = append(out, 0x10|hi|byte(mlen-2))
		} else {
			out = append(out, 0x10|hi)
			out = appendLength(out, mlen-m4MaxLen)
		}
		return append(out, byte(off<<2), byte(off>>6))
	}
}

// smallMax is the longest input compressSmall takes: every distance in
// it fits an M4 match (≤ m4MaxOff), and every position a uint16.
const smallMax = m4MaxOff

// smallBits sizes compressSmall's table (lzo1x_1's D_BITS is 14; 12 is
// enough for a 4 KiB page and clears four times faster).
const smallBits = 12

// compressSmall is Compress for inputs of at most smallMax bytes, the
// page-sized ones a dump is made of, shaped like lzo1x_1's inner loop:
// a table of 16-bit positions cleared per call, so that an empty slot
// means position 0 — always an earlier position and so a valid candidate
// — and the loop needs no test but the four-byte comparison; the output
// is written by index into room reserved up front (MaxCompressedLen).
func (c *Compressor) compressSmall(dst, src []byte) []byte {
	n := len(src)
	start := len(dst)
	need := start + MaxCompressedLen(n)
	if cap(dst) < need {
		d := make([]byte, start, need)
		copy(d, dst)
		dst = d
	}
	out := dst[:need]
	o := start
	table := &c.small
	clear(table[:])
	lit := 0
	// Position 0 is in every slot already; the search starts at 1.
	for ip := 1; ip < n-3; {
		b := src[ip : ip+4 : ip+4]
		v := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
		h := (v * 0x1824429d) >> (32 - smallBits)
		cand := int(table[h&(1<<smallBits-1)])
		table[h&(1<<smallBits-1)] = uint16(ip)
		if c := src[cand : cand+4 : cand+4]; uint32(c[0])|uint32(c[1])<<8|uint32(c[2])<<16|uint32(c[3])<<24 != v {
			ip += 1 + (ip-lit)>>5
			continue
		}
		mlen := matchLen(src[ip:], src[cand:])
		o = putLiterals(out, o, start, src[lit:ip])
		o = putMatch(out, o, ip-cand, mlen)
		ip += mlen
		lit = ip
	}
	o = putLiterals(out, o, start, src[lit:])
	out[o], out[o+1], out[o+2] = 0x10|1, 0, 0
	return out[:o+3]
}

// putLiterals is emitLiterals writing at out[o:], returning the new end.
func putLiterals(out []byte, o, start int, lits []byte) int {
	t := len(lits)
	switch {
	case t == 0:
		return o
	case o == start && t <= 238:
		out[o] = byte(17 + t)
		o++
	case t <= 3:
		out[o-2] |= byte(t)
	case t <= 18:
		out[o] = byte(t - 3)
		o++
	default:
		out[o] = 0
		o = putLength(out, o+1, t-18)
	}
	return o + copy(out[o:], lits)
}

// putLength is appendLength writing at out[o:].
func putLength(out []byte, o, n int) int {
	for n > 255 {
		out[o] = 0
		o++
		n -= 255
	}
	out[o] = byte(n)
	return o + 1
}

// putMatch is emitMatch writing at out[o:].
func putMatch(out []byte, o, off, mlen int) int {
	switch {
	case mlen <= m2MaxLen && off <= m2MaxOff:
		off--
		out[o], out[o+1] = byte((mlen-1)<<5|(off&7)<<2), byte(off>>3)
		return o + 2
	case off <= m3MaxOff:
		off--
		if mlen <= m3MaxLen {
			out[o] = byte(0x20 | (mlen - 2))
			o++
		} else {
			out[o] = 0x20
			o = putLength(out, o+1, mlen-m3MaxLen)
		}
	default:
		off -= 0x4000
		hi := byte((off >> 11) & 8)
		if mlen <= m4MaxLen {
			out[o] = 0x10 | hi | byte(mlen-2)
			o++
		} else {
			out[o] = 0x10 | hi
			o = putLength(out, o+1, mlen-m4MaxLen)
		}
	}
	out[o], out[o+1] = byte(off<<2), byte(off>>6)
	return o + 2
}

// matchLen returns how many bytes, four or more, a and b (b the longer,
// an earlier position of the same input) have in common at their start,
// comparing eight at a time.
func matchLen(a, b []byte) int {
	b = b[:len(a)]
	m := minMatch
	for m+8 <= len(a) {
		if x := binary.LittleEndian.Uint64(a[m:]) ^ binary.LittleEndian.Uint64(b[m:]); x != 0 {
			return m + bits.TrailingZeros64(x)/8
		}
		m += 8
	}
	for m < len(a) && a[m] == b[m] {
		m++
	}
	return m
}
