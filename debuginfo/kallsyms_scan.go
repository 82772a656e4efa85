package debuginfo

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"salvage/dump"
)

// Kernels before 6.0 do not locate kallsyms in VMCOREINFO. Their tables
// are still in the kernel image, in the order scripts/kallsyms emits
// them — kallsyms_offsets and kallsyms_relative_base (or
// kallsyms_addresses), kallsyms_num_syms, kallsyms_names,
// kallsyms_markers, kallsyms_token_table, kallsyms_token_index; since
// 6.2 ("kallsyms: change the output order to fill the padding between
// sections") the addresses come last, after the token index, and
// kallsyms_seqs_of_names after them — so scanKallsyms finds them by their
// shape:
//
//  1. kallsyms_token_index: 256 increasing u16 offsets from 0, each step
//     the length of a NUL-terminated token of the table just before it;
//  2. kallsyms_num_syms: going back from the token table, a u32 count
//     after a kernel address (kallsyms_relative_base, or the last of
//     kallsyms_addresses) whose names stream, right after it, decodes to
//     exactly that many symbols ending before the token table;
//  3. the addresses before it, which must come out in ascending order —
//     or, in the newer order, the offsets and relative base right after
//     the token index, with the names stream ending at the markers.

const (
	scanChunk    = 1 << 20
	scanPage     = 4096
	scanMaxGap   = 4 << 20   // of pages not in the dump in a row: past the image (the text-rodata gap is < 2 MiB)
	scanMaxBytes = 128 << 20 // of the kernel image, from _stext
	scanMaxToken = 128       // bytes of one token; real ones are a few
	// scanAfterIndex is how much of the image after the token index the
	// scan reads: room for kallsyms_offsets of 1M symbols.
	scanAfterIndex = 4 << 20
)

// scanKallsyms locates the kallsyms tables in the kernel image.
func scanKallsyms(r VirtReader, vi *dump.VMCoreInfo) (kallsymsInfo, error) {
	start, ok := vi.Symbol("_stext")
	if !ok {
		off, ok := vi.KernelOffset()
		if !ok {
			return kallsymsInfo{}, errors.New("VMCOREINFO has neither SYMBOL(_stext) nor KERNELOFFSET to say where the kernel image is")
		}
		start = 0xffffffff81000000 + off // x86_64's __START_KERNEL
	}
	// Read the image until the token index is found. Pages the dump
	// lacks read as zeroes: makedumpfile drops the free pages between
	// the end of the text and the start of rodata, which the kernel
	// gives back at boot.
	var img []byte
	searched, missing, gap := 0, 0, 0
	grow := func() {
		old := len(img)
		if cap(img)-old < scanChunk {
			img = slices.Grow(img, max(scanChunk, 2*cap(img))) // double: the image is tens of MiB
		}
		img = img[:old+scanChunk]
		clear(img[old:])
		for at := old; at < len(img) && gap < scanMaxGap; {
			n, err := r.ReadVirt(img[at:], start+uint64(at))
			at += n
			if n > 0 {
				gap = 0
			}
			if err == nil {
				break
			}
			at = (at + scanPage) &^ (scanPage - 1) // skip the page, left zero
			missing++
			gap += scanPage
		}
	}
	for len(img) < scanMaxBytes && gap < scanMaxGap {
		grow()
		if k, ok := findTokenIndex(img, searched); ok {
			// Since 6.2 the addresses follow the token index: read on
			// far enough for the largest offsets table there can be.
			for len(img) < k.index+512+scanAfterIndex && len(img) < scanMaxBytes && gap < scanMaxGap {
				grow()
			}
			return finishScan(img, start, k)
		}
		searched = max(0, len(img)-512)
	}
	return kallsymsInfo{}, fmt.Errorf("no kallsyms token table in %d MiB of kernel image from %#x (%d pages not in the dump)", len(img)>>20, start, missing)
}

// tokenLayout is a found token table and index, as offsets into img.
type tokenLayout struct {
	table, index int
}

// findTokenIndex looks for kallsyms_token_index at even offsets from
// `from`, and the token table it describes right before it.
func findTokenIndex(img []byte, from int) (tokenLayout, bool) {
	le := binary.LittleEndian
	for at := from &^ 1; at+512 <= len(img); at += 2 {
		if le.Uint16(img[at:]) != 0 {
			continue
		}
		if d := le.Uint16(img[at+2:]); d < 2 || d > scanMaxToken {
			continue
		}
		ok := true
		var idx [256]int
		for i := 1; i < 256 && ok; i++ {
			idx[i] = int(le.Uint16(img[at+2*i:]))
			d := idx[i] - idx[i-1]
			ok = d >= 2 && d <= scanMaxToken
		}
		if !ok {
			continue
		}
		if table, ok := tokenTableBefore(img, at, &idx); ok {
			return tokenLayout{table: table, index: at}, true
		}
	}
	return tokenLayout{}, false
}

// tokenTableBefore finds where the token table described by idx starts,
// ending (up to alignment padding) just before the index at `at`.
func tokenTableBefore(img []byte, at int, idx *[256]int) (int, bool) {
	for pad := 0; pad < 8; pad++ {
		end := at - pad // one past the last token's NUL
		if end < 1 || img[end-1] != 0 {
			continue
		}
		// The last token runs from its start to end-1.
		for last := 1; last <= scanMaxToken; last++ {
			table := end - 1 - last - idx[255]
			if table < 0 {
				break
			}
			if validTokens(img, table, idx, end) {
				return table, true
			}
		}
	}
	return 0, false
}

// validTokens checks that every token is printable and NUL-terminated
// where the index says.
func validTokens(img []byte, table int, idx *[256]int, end int) bool {
	for i := 0; i < 256; i++ {
		s := table + idx[i]
		e := end - 1
		if i < 255 {
			e = table + idx[i+1] - 1
		}
		if e <= s || img[e] != 0 {
			return false
		}
		for _, c := range img[s:e] {
			if c < 0x20 || c > 0x7e {
				return false
			}
		}
	}
	return true
}

// finishScan finds kallsyms_num_syms and the addresses before the token
// table, trying candidates from the nearest back.
func finishScan(img []byte, start uint64, tl tokenLayout) (kallsymsInfo, error) {
	le := binary.LittleEndian
	var tokens [256]string
	for i := 0; i < 256; i++ {
		s := tl.table + int(le.Uint16(img[tl.index+2*i:]))
		e := s
		for img[e] != 0 {
			e++
		}
		tokens[i] = string(img[s:e])
	}
	va := func(off int) uint64 { return start + uint64(off) }
	if k, ok := scanNewOrder(img, tl, &tokens, va); ok {
		return k, nil
	}
	for x := (tl.table - 4) &^ 3; x >= 8; x -= 4 {
		n := int(le.Uint32(img[x:]))
		if n == 0 || n > maxKallsyms || le.Uint64(img[x-8:]) < 1<<63 {
			continue
		}
		for _, names := range []int{x + 4, (x + 4 + 7) &^ 7} {
			end, ok := namesEnd(img, names, n, &tokens)
			if !ok || end > tl.table {
				continue
			}
			k := kallsymsInfo{numSyms: va(x), names: va(names), tokenTable: va(tl.table), tokenIndex: va(tl.index), ptrSize: 8}
			// Base-relative: relative_base at x-8, offsets before it.
			for _, off := range []int{x - 8 - 4*n, (x - 8 - 4*n) &^ 7} {
				if off >= 0 && sortedAddrs(img, off, x-8, n, false) {
					k.offsets, k.relativeBase = va(off), va(x-8)
					return k, nil
				}
			}
			// Absolute: kallsyms_addresses right before num_syms.
			if off := x - 8*n; off >= 0 && sortedAddrs(img, off, 0, n, true) {
				k.addresses = va(off)
				return k, nil
			}
		}
	}
	return kallsymsInfo{}, fmt.Errorf("found kallsyms_token_table at %#x but no kallsyms_num_syms and names before it", va(tl.table))
}

// scanNewOrder finds the tables in the order of 6.2+ scripts/kallsyms:
// kallsyms_num_syms, kallsyms_names, kallsyms_markers (a u32 per 256
// symbols), kallsyms_token_table, kallsyms_token_index, then
// kallsyms_offsets and kallsyms_relative_base, each label 8-aligned.
func scanNewOrder(img []byte, tl tokenLayout, tokens *[256]string, va func(int) uint64) (kallsymsInfo, bool) {
	le := binary.LittleEndian
	align8 := func(x int) int { return (x + 7) &^ 7 }
	for x := (tl.table - 4) &^ 7; x >= 0; x -= 8 {
		n := int(le.Uint32(img[x:]))
		if n < 2 || n > maxKallsyms {
			continue
		}
		for _, names := range []int{x + 4, align8(x + 4)} {
			end, ok := namesEnd(img, names, n, tokens)
			if !ok || end > tl.table {
				continue
			}
			// The markers fill what is between the names and the table.
			markers := (n + 255) >> 8
			if gap := tl.table - align8(end); gap != align8(4*markers) && gap != 8*markers {
				continue
			}
			off := align8(tl.index + 512)
			base := align8(off + 4*n)
			if base+8 > len(img) || !sortedAddrs(img, off, base, n, false) {
				continue
			}
			return kallsymsInfo{numSyms: va(x), names: va(names), tokenTable: va(tl.table), tokenIndex: va(tl.index),
				offsets: va(off), relativeBase: va(base), ptrSize: 8}, true
		}
	}
	return kallsymsInfo{}, false
}

// namesEnd decodes n names from img[at:] just enough to find where the
// stream ends; false if it is not a well-formed names stream.
func namesEnd(img []byte, at, n int, tokens *[256]string) (int, bool) {
	for i := 0; i < n; i++ {
		if at >= len(img) {
			return 0, false
		}
		l := int(img[at])
		at++
		if l&0x80 != 0 {
			if at >= len(img) {
				return 0, false
			}
			l = l&0x7f | int(img[at])<<7
			at++
		}
		if l == 0 || at+l > len(img) {
			return 0, false
		}
		t := tokens[img[at]][0]
		if !(t >= 'A' && t <= 'Z' || t >= 'a' && t <= 'z') {
			return 0, false
		}
		at += l
	}
	return at, true
}

// sortedAddrs checks that the table at img[off:] gives n ascending
// addresses (as readKallsymsAddrs computes them).
func sortedAddrs(img []byte, off, baseAt, n int, absolute bool) bool {
	le := binary.LittleEndian
	if n < 2 {
		return false
	}
	var addr func(i int) uint64
	if absolute {
		addr = func(i int) uint64 { return le.Uint64(img[off+8*i:]) }
	} else {
		base := le.Uint64(img[baseAt:])
		absPercpu := false
		for i := 0; i < n; i++ {
			if int32(le.Uint32(img[off+4*i:])) < 0 {
				absPercpu = true
				break
			}
		}
		addr = func(i int) uint64 {
			o := int32(le.Uint32(img[off+4*i:]))
			switch {
			case !absPercpu:
				return base + uint64(uint32(o))
			case o >= 0:
				return uint64(o)
			}
			return base - 1 - uint64(int64(o))
		}
	}
	prev := addr(0)
	for i := 1; i < n; i++ {
		a := addr(i)
		if a < prev {
			return false
		}
		prev = a
	}
	// The last address is the kernel's, not a small number.
	return prev >= 1<<63
}
