package dump

import (
	"encoding/binary"
	"io"
	"math/bits"
)

// pfnBitmap is one kdump bitmap: bit n (LSB first within each byte, bytes
// in file order) stands for page frame n. The first bitmap marks the frames
// that are RAM, the second those whose page_desc is in the file; the
// descriptor of a dumped frame is found by its rank in the second bitmap
// (the number of set bits before it), as crash's pfn_to_pos does.
type pfnBitmap struct {
	words []uint64
	nbits uint64
	// ranks[i] is the number of set bits in words[:i*rankWords]: one
	// count per 1024 frames, so rank() adds at most 16 popcounts.
	ranks []uint64
}

const rankWords = 16

// newPFNBitmap builds a bitmap of nbits frames from raw bitmap bytes;
// bits at or past nbits are ignored.
func newPFNBitmap(raw []byte, nbits uint64, withRanks bool) *pfnBitmap {
	b := &pfnBitmap{words: make([]uint64, (nbits+63)/64), nbits: nbits}
	b.fill(raw, 0)
	b.finish(withRanks)
	return b
}

// readPFNBitmap reads a bitmap of nbits frames at off, through a bounded
// buffer so that the bitmap is held once, as words.
func readPFNBitmap(r io.ReaderAt, off int64, nbits uint64, withRanks bool, name string) (*pfnBitmap, error) {
	b := &pfnBitmap{words: make([]uint64, (nbits+63)/64), nbits: nbits}
	total := int64((nbits + 7) / 8)
	buf := make([]byte, min(total, 1<<20))
	for done := int64(0); done < total; {
		chunk := buf[:min(int64(len(buf)), total-done)]
		if err := kdumpRead(r, chunk, off+done, name); err != nil {
			return nil, err
		}
		b.fill(chunk, done)
		done += int64(len(chunk))
	}
	b.finish(withRanks)
	return b, nil
}

// fill stores raw bitmap bytes that start at byte at of the bitmap; at
// is a multiple of 8.
func (b *pfnBitmap) fill(raw []byte, at int64) {
	for i := 0; i < len(raw); i += 8 {
		w := int(at/8) + i/8
		if w >= len(b.words) {
			return
		}
		var x [8]byte
		copy(x[:], raw[i:])
		b.words[w] = binary.LittleEndian.Uint64(x[:])
	}
}

// finish clears the bits past nbits and builds the rank index.
func (b *pfnBitmap) finish(withRanks bool) {
	n := uint64(len(b.words))
	nbits := b.nbits
	if r := nbits % 64; r != 0 {
		b.words[n-1] &= 1<<r - 1
	}
	if withRanks {
		b.ranks = make([]uint64, (n+rankWords-1)/rankWords+1)
		var sum uint64
		for i, w := range b.words {
			if i%rankWords == 0 {
				b.ranks[i/rankWords] = sum
			}
			sum += uint64(bits.OnesCount64(w))
		}
		b.ranks[len(b.ranks)-1] = sum
	}
}

func (b *pfnBitmap) test(pfn uint64) bool {
	return pfn < b.nbits && b.words[pfn/64]&(1<<(pfn%64)) != 0
}

// rank returns the number of set bits for frames below pfn. It needs the
// bitmap built withRanks.
func (b *pfnBitmap) rank(pfn uint64) uint64 {
	if pfn >= b.nbits {
		return b.ranks[len(b.ranks)-1]
	}
	w := pfn / 64
	block := w / rankWords
	r := b.ranks[block]
	for i := block * rankWords; i < w; i++ {
		r += uint64(bits.OnesCount64(b.words[i]))
	}
	return r + uint64(bits.OnesCount64(b.words[w]&(1<<(pfn%64)-1)))
}

// count returns the number of set bits.
func (b *pfnBitmap) count() uint64 { return b.rank(b.nbits) }

// runs returns the runs of set bits as frame ranges [Start, End).
func (b *pfnBitmap) runs() []Range {
	var out []Range
	var start uint64
	in := false
	for i, w := range b.words {
		base := uint64(i) * 64
		// cur has a 1 where the next transition can be: set bits
		// while outside a run, clear bits while inside one.
		cur := w
		if in {
			cur = ^w
		}
		for pos := uint64(0); pos < 64; {
			m := cur >> pos
			if m == 0 {
				break
			}
			z := pos + uint64(bits.TrailingZeros64(m))
			if in {
				out = append(out, Range{Start: start, End: base + z})
			} else {
				start = base + z
			}
			in = !in
			cur = ^cur
			pos = z
		}
	}
	if in {
		out = append(out, Range{Start: start, End: b.nbits})
	}
	return out
}
