package debuginfo

// bitfieldPlacement splits a bitfield's bit position (from the start of
// its struct) into the byte offset of its storage unit — aligned to the
// size of the member's type, as a C compiler lays it out and as crash
// reads it — and the bit offset within that unit. DWARF 5
// (DW_AT_data_bit_offset) and BTF (bit offsets) both give the position,
// so both sources place bitfields identically.
func bitfieldPlacement(bitPos, unitSize int64) (off int64, bitOff int) {
	if unitSize <= 0 {
		unitSize = 1
	}
	off = bitPos / (unitSize * 8) * unitSize
	return off, int(bitPos - off*8)
}
