package debuginfo

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
)

// btfObject is an ELF relocatable object with one .BTF section (and the
// empty symbol table cilium/ebpf asks an object for) whose contents are
// a BTF blob in the dump's memory, read on demand: cilium/ebpf loads an
// object's .BTF section into a buffer of its exact size (debug/elf's
// Section.Data), where it would grow a buffer step by step for a raw
// blob. The layout (System V gABI, "ELF Header" and "Sections"):
//
//	0    ELF header
//	64   section headers: null, .shstrtab, .strtab, .symtab, .BTF
//	384  .shstrtab, then .strtab (one NUL), then .symtab (the null symbol)
//	data the .BTF section, 8-aligned
type btfObject struct {
	r          VirtReader
	start, len uint64 // the blob in virtual memory
	head       []byte // everything before the section's data
}

// newBTFObject wraps the n-byte blob at start; magic is its first two
// bytes, whose order (BTF_MAGIC 0xeb9f) gives the object's byte order.
func newBTFObject(r VirtReader, start, n uint64, magic [2]byte) *btfObject {
	var bo binary.ByteOrder = binary.LittleEndian
	data := elf.ELFDATA2LSB
	if magic == [2]byte{0xeb, 0x9f} {
		bo, data = binary.BigEndian, elf.ELFDATA2MSB
	}
	const (
		ehsize, shentsize, nsect = 64, 64, 5
		strs                     = ehsize + shentsize*nsect
	)
	shstr := "\x00.shstrtab\x00.strtab\x00.symtab\x00.BTF\x00"
	strtab := uint64(strs + len(shstr))
	symtab := (strtab + 1 + 7) &^ 7
	dataOff := symtab + elf.Sym64Size
	head := make([]byte, dataOff)
	copy(head, elf.ELFMAG)
	head[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	head[elf.EI_DATA] = byte(data)
	head[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	bo.PutUint16(head[16:], uint16(elf.ET_REL))
	bo.PutUint16(head[18:], uint16(elf.EM_NONE))
	bo.PutUint32(head[20:], uint32(elf.EV_CURRENT))
	bo.PutUint64(head[40:], ehsize) // e_shoff
	bo.PutUint16(head[52:], ehsize)
	bo.PutUint16(head[58:], shentsize)
	bo.PutUint16(head[60:], nsect)
	bo.PutUint16(head[62:], 1) // e_shstrndx
	copy(head[strs:], shstr)
	sect := func(i int, name uint32, typ elf.SectionType, off, size uint64, link uint32, entsize uint64) {
		h := head[ehsize+shentsize*i:]
		bo.PutUint32(h[0:], name)
		bo.PutUint32(h[4:], uint32(typ))
		bo.PutUint64(h[24:], off)
		bo.PutUint64(h[32:], size)
		bo.PutUint32(h[40:], link)
		bo.PutUint64(h[48:], 1) // sh_addralign
		bo.PutUint64(h[56:], entsize)
	}
	sect(1, 1, elf.SHT_STRTAB, strs, uint64(len(shstr)), 0, 0)
	sect(2, 11, elf.SHT_STRTAB, strtab, 1, 0, 0)
	sect(3, 19, elf.SHT_SYMTAB, symtab, elf.Sym64Size, 2, elf.Sym64Size)
	sect(4, 27, elf.SHT_PROGBITS, dataOff, n, 0, 0)
	return &btfObject{r: r, start: start, len: n, head: head}
}

// ReadAt reads the object: its made-up head, or the blob from memory.
func (o *btfObject) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("BTF in memory: negative offset %d", off)
	}
	got := 0
	if off < int64(len(o.head)) {
		got = copy(p, o.head[off:])
	}
	at := uint64(off) + uint64(got) - uint64(len(o.head)) // into the blob
	for got < len(p) {
		if at >= o.len {
			return got, io.EOF
		}
		const chunk = 1 << 20
		q := p[got:min(len(p), got+chunk, got+int(o.len-at))]
		n, err := o.r.ReadVirt(q, o.start+at)
		if err != nil {
			return got, fmt.Errorf("BTF in memory: reading %#x (%d bytes after __start_BTF %#x): %w", o.start+at+uint64(max(n, 0)), at+uint64(max(n, 0)), o.start, err)
		}
		if n <= 0 {
			return got, fmt.Errorf("BTF in memory: short read at %#x", o.start+at)
		}
		got += n
		at += uint64(n)
	}
	return got, nil
}
