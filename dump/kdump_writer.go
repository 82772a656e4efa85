package dump

import "math/bits"

// PFNSet is a set of page frame numbers below a bound, one bit per frame:
// the kdump bitmaps a writer stores (bit n, LSB first within each byte,
// stands for frame n, as in makedumpfile's bitmaps).
type PFNSet struct {
	words []uint64
	n     uint64
}

// NewPFNSet makes an empty set of frames [0, n).
func NewPFNSet(n uint64) *PFNSet {
	return &PFNSet{words: make([]uint64, (n+63)/64), n: n}
}

// Clone returns a copy of the set.
func (s *PFNSet) Clone() *PFNSet {
	return &PFNSet{words: append([]uint64(nil), s.words...), n: s.n}
}

// Len is the bound: frames [0, Len()) can be in the set.
func (s *PFNSet) Len() uint64 { return s.n }

// Add puts pfn in the set; frames at or past the bound are ignored.
func (s *PFNSet) Add(pfn uint64) {
	if pfn < s.n {
		s.words[pfn/64] |= 1 << (pfn % 64)
	}
}

// AddRange puts frames [start, end) in the set.
func (s *PFNSet) AddRange(start, end uint64) {
	end = min(end, s.n)
	for p := start; p < end; {
		if p%64 == 0 && end-p >= 64 {
			s.words[p/64] = ^uint64(0)
			p += 64
			continue
		}
		s.Add(p)
		p++
	}
}

// Remove takes pfn out of the set and reports whether it was in it.
func (s *PFNSet) Remove(pfn uint64) bool {
	if pfn >= s.n {
		return false
	}
	m := uint64(1) << (pfn % 64)
	was := s.words[pfn/64]&m != 0
	s.words[pfn/64] &^= m
	return was
}

// Has reports whether pfn is in the set.
func (s *PFNSet) Has(pfn uint64) bool {
	return pfn < s.n && s.words[pfn/64]&(1<<(pfn%64)) != 0
}

// Count is the number of frames in the set.
func (s *PFNSet) Count() uint64 {
	var c uint64
	for _, w := range s.words {
		c += uint64(bits.OnesCount64(w))
	}
	return c
}

// Next returns the first frame in the set at or after pfn, or Len() when
// there is none.
func (s *PFNSet) Next(pfn uint64) uint64 {
	for pfn < s.n {
		w := s.words[pfn/64] >> (pfn % 64)
		if w != 0 {
			return min(pfn+uint64(bits.TrailingZeros64(w)), s.n)
		}
		pfn = (pfn/64 + 1) * 64
	}
	return s.n
}

// Bytes returns the set as kdump bitmap bytes, padded with zeroes to size
// bytes (size 0: just long enough).
func (s *PFNSet) Bytes(size int) []byte {
	need := int((s.n + 7) / 8)
	if size < need {
		size = need
	}
	b := make([]byte, size)
	for i, w := range s.words {
		for j := 0; j < 8 && i*8+j < need; j++ {
			b[i*8+j] = byte(w >> (8 * j))
		}
	}
	return b
}
