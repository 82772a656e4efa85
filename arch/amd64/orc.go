package amd64

import (
	"encoding/binary"
	"fmt"
	"sort"
)

// ORC register numbers (arch/x86/include/asm/orc_types.h): which register
// a frame's CFA (sp_reg) or saved frame pointer (bp_reg) is relative to.
const (
	orcRegUndefined  = 0
	orcRegPrevSP     = 1
	orcRegDX         = 2
	orcRegDI         = 3
	orcRegBP         = 4
	orcRegSP         = 5
	orcRegR10        = 6
	orcRegR13        = 7
	orcRegBPIndirect = 8
	orcRegSPIndirect = 9
)

// ORCType is what an ORC entry says the frame is, independent of the
// kernel's numbering (which changed when the type field grew to 3 bits).
type ORCType uint8

// The frame kinds ORC describes.
const (
	ORCCall        ORCType = iota // an ordinary call frame: return address at CFA-8
	ORCRegs                       // a full struct pt_regs at the CFA
	ORCRegsPartial                // only the iret frame (ip, cs, flags, sp, ss) at the CFA
	ORCUndefined                  // unwinding is not possible here
	ORCEndOfStack                 // the outermost frame
)

// String names the type as objtool's --dump does.
func (t ORCType) String() string {
	switch t {
	case ORCCall:
		return "call"
	case ORCRegs:
		return "regs"
	case ORCRegsPartial:
		return "regs (partial)"
	case ORCUndefined:
		return "undefined"
	case ORCEndOfStack:
		return "end of stack"
	}
	return fmt.Sprintf("ORCType(%d)", uint8(t))
}

// ORCEntry is one decoded struct orc_entry.
type ORCEntry struct {
	SPOffset, BPOffset int16
	SPReg, BPReg       uint8
	Type               ORCType
	// Signal (6.3+) marks entry code where the saved ip is where the CPU
	// was, not a return address; End (before 6.3) marks the outermost frame.
	Signal, End bool
}

// ORCBitfield is where one bitfield of struct orc_entry lies.
type ORCBitfield struct {
	Offset int // byte offset of the storage unit
	Bit    int // bit offset within it, little-endian numbering
	Size   int // width in bits; 0 when the member does not exist
}

// ORCLayout is struct orc_entry as one kernel has it, read from its DWARF
// or BTF. Kernels differ: before 6.3 the last bit is "end"; 6.3 renamed it
// "signal"; 6.4 widened "type" to 3 bits and renumbered the types
// (UNDEFINED=0, END_OF_STACK=1, CALL=2, REGS=3, REGS_PARTIAL=4 instead of
// CALL=0, REGS=1, REGS_PARTIAL=2).
type ORCLayout struct {
	Size                int // sizeof(struct orc_entry): 6
	SPOffset, BPOffset  int // byte offsets of the two s16 fields
	SPReg, BPReg, Type  ORCBitfield
	End, Signal         ORCBitfield
	UndefinedEndOfStack bool // the 3-bit type numbering with UNDEFINED and END_OF_STACK
}

// DefaultORCLayout is the 6.1 layout (bitfields after the two s16
// offsets: sp_reg:4 bp_reg:4 type:2 end:1), for when no type describes
// struct orc_entry.
var DefaultORCLayout = ORCLayout{
	Size: 6, SPOffset: 0, BPOffset: 2,
	SPReg: ORCBitfield{4, 0, 4}, BPReg: ORCBitfield{4, 4, 4},
	Type: ORCBitfield{4, 8, 2}, End: ORCBitfield{4, 10, 1},
}

// Validate checks that the layout can be decoded.
func (l ORCLayout) Validate() error {
	if l.Size < 6 || l.Size > 16 {
		return fmt.Errorf("struct orc_entry: size %d, want 6–16", l.Size)
	}
	for _, f := range []struct {
		name string
		b    ORCBitfield
	}{{"sp_reg", l.SPReg}, {"bp_reg", l.BPReg}, {"type", l.Type}} {
		if f.b.Size == 0 || f.b.Size > 8 || f.b.Offset < 0 || f.b.Offset+(f.b.Bit+f.b.Size+7)/8 > l.Size {
			return fmt.Errorf("struct orc_entry: member %s at byte %d bit %d width %d does not fit", f.name, f.b.Offset, f.b.Bit, f.b.Size)
		}
	}
	if l.SPOffset < 0 || l.SPOffset+2 > l.Size || l.BPOffset < 0 || l.BPOffset+2 > l.Size {
		return fmt.Errorf("struct orc_entry: sp_offset/bp_offset outside the %d-byte entry", l.Size)
	}
	return nil
}

func (b ORCBitfield) get(e []byte) uint64 {
	if b.Size == 0 {
		return 0
	}
	var w uint64
	for i := 0; i < 8 && b.Offset+i < len(e); i++ {
		w |= uint64(e[b.Offset+i]) << (8 * i)
	}
	return w >> uint(b.Bit) & (1<<uint(b.Size) - 1)
}

// Decode decodes one entry.
func (l ORCLayout) Decode(e []byte) ORCEntry {
	var o ORCEntry
	o.SPOffset = int16(binary.LittleEndian.Uint16(e[l.SPOffset:]))
	o.BPOffset = int16(binary.LittleEndian.Uint16(e[l.BPOffset:]))
	o.SPReg = uint8(l.SPReg.get(e))
	o.BPReg = uint8(l.BPReg.get(e))
	o.End = l.End.get(e) != 0
	o.Signal = l.Signal.get(e) != 0
	t := l.Type.get(e)
	if l.UndefinedEndOfStack {
		// orc_types.h of 6.4+.
		switch t {
		case 0:
			o.Type = ORCUndefined
		case 1:
			o.Type = ORCEndOfStack
		case 2:
			o.Type = ORCCall
		case 3:
			o.Type = ORCRegs
		case 4:
			o.Type = ORCRegsPartial
		default:
			o.Type = ORCUndefined
		}
	} else {
		switch t {
		case 0:
			o.Type = ORCCall
		case 1:
			o.Type = ORCRegs
		case 2:
			o.Type = ORCRegsPartial
		default:
			o.Type = ORCUndefined
		}
		// Before 6.4 the outermost frame is sp_reg UNDEFINED with end set.
		if o.SPReg == orcRegUndefined {
			if o.End {
				o.Type = ORCEndOfStack
			} else {
				o.Type = ORCUndefined
			}
		}
	}
	return o
}

// ORCTable is one object's ORC unwind table (vmlinux's, or a module's):
// sorted instruction addresses, each with the entry that holds from it up
// to the next.
type ORCTable struct {
	Name    string // "vmlinux" or the module's name
	IPs     []uint64
	Entries []ORCEntry
}

// ParseORC decodes an ORC table from the raw .orc_unwind_ip array (s32
// offsets, each relative to its own address; ipBase is the address of
// the first) and the .orc_unwind array of entries in layout l.
func ParseORC(name string, ipData []byte, ipBase uint64, orcData []byte, l ORCLayout) (*ORCTable, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	if len(ipData)%4 != 0 {
		return nil, fmt.Errorf("%s ORC: .orc_unwind_ip is %d bytes, not a multiple of 4", name, len(ipData))
	}
	n := len(ipData) / 4
	if len(orcData) < n*l.Size {
		return nil, fmt.Errorf("%s ORC: %d instruction addresses but only %d bytes of entries (want %d)", name, n, len(orcData), n*l.Size)
	}
	t := &ORCTable{Name: name, IPs: make([]uint64, n), Entries: make([]ORCEntry, n)}
	sorted := true
	for i := 0; i < n; i++ {
		rel := int32(binary.LittleEndian.Uint32(ipData[4*i:]))
		t.IPs[i] = ipBase + uint64(4*i) + uint64(int64(rel))
		t.Entries[i] = l.Decode(orcData[i*l.Size : (i+1)*l.Size])
		if i > 0 && t.IPs[i] < t.IPs[i-1] {
			sorted = false
		}
	}
	if !sorted {
		// vmlinux's table is sorted at build time and modules' at load
		// time; a table read from an unfinished load may not be.
		sort.Sort(byIP{t})
	}
	return t, nil
}

// byIP sorts a table's addresses and entries together.
type byIP struct{ t *ORCTable }

func (b byIP) Len() int           { return len(b.t.IPs) }
func (b byIP) Less(i, j int) bool { return b.t.IPs[i] < b.t.IPs[j] }
func (b byIP) Swap(i, j int) {
	b.t.IPs[i], b.t.IPs[j] = b.t.IPs[j], b.t.IPs[i]
	b.t.Entries[i], b.t.Entries[j] = b.t.Entries[j], b.t.Entries[i]
}

// Covers reports whether pc is within the table's address range.
func (t *ORCTable) Covers(pc uint64) bool {
	return len(t.IPs) > 0 && pc >= t.IPs[0] && pc <= t.IPs[len(t.IPs)-1]
}

// Lookup returns the entry in force at pc: that of the last address at
// or below it.
func (t *ORCTable) Lookup(pc uint64) (ORCEntry, bool) {
	i := sort.Search(len(t.IPs), func(i int) bool { return t.IPs[i] > pc })
	if i == 0 {
		return ORCEntry{}, false
	}
	return t.Entries[i-1], true
}
