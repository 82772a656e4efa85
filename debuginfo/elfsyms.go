package debuginfo

import (
	"debug/elf"
	"fmt"
	"io"
	"os"
)

// LoadELFSymbols reads the symbol table (.symtab) of a vmlinux and
// relocates it by kaslrOffset (the KASLR displacement; 0 for the link-time
// addresses). Symbols get nm-style type letters, as /proc/kallsyms and
// System.map show them.
func LoadELFSymbols(path string, kaslrOffset uint64) (*Table, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	return ReadELFSymbols(fh, path, kaslrOffset)
}

// ReadELFSymbols is LoadELFSymbols for an ELF file already open as r;
// name is used in messages and in the table's Source.
//
// Which symbols are relocated: those defined in a section that has a
// load address, or with a kernel-space value. Absolute symbols (SHN_ABS:
// text_size, phys_startup_64) and x86_64's per-CPU symbols (section
// .data..percpu is linked at 0 and holds offsets into each CPU's area)
// keep their values, as the kernel's own relocation at boot leaves them.
func ReadELFSymbols(r io.ReaderAt, name string, kaslrOffset uint64) (*Table, error) {
	f, err := elf.NewFile(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	defer f.Close()
	symtab := f.Section(".symtab")
	if symtab == nil || symtab.Type != elf.SHT_SYMTAB {
		return nil, fmt.Errorf("%s: no .symtab section (a stripped vmlinux: use the debug one, or System.map)", name)
	}
	if symtab.Link == 0 || int(symtab.Link) >= len(f.Sections) {
		return nil, fmt.Errorf("%s: .symtab links to string table section %d, which does not exist", name, symtab.Link)
	}
	data, err := symtab.Data()
	if err != nil {
		return nil, fmt.Errorf("%s: reading .symtab: %w", name, err)
	}
	strData, err := f.Sections[symtab.Link].Data()
	if err != nil {
		return nil, fmt.Errorf("%s: reading .symtab's string table: %w", name, err)
	}
	// One string for the whole table: names are substrings of it, which
	// spares an allocation per symbol (vmlinux has ~150,000).
	strs := string(strData)

	var entSize int
	switch f.Class {
	case elf.ELFCLASS64:
		entSize = elf.Sym64Size
	case elf.ELFCLASS32:
		entSize = elf.Sym32Size
	default:
		return nil, fmt.Errorf("%s: unknown ELF class %v", name, f.Class)
	}
	if len(data)%entSize != 0 {
		return nil, fmt.Errorf("%s: .symtab size %d is not a multiple of the entry size %d", name, len(data), entSize)
	}
	bo := f.ByteOrder
	n := len(data) / entSize
	syms := make([]Symbol, 0, n)
	for i := 1; i < n; i++ { // entry 0 is the null symbol
		e := data[i*entSize : (i+1)*entSize]
		var es elfSym
		if f.Class == elf.ELFCLASS64 {
			es = elfSym{
				name: bo.Uint32(e[0:]), info: e[4], shndx: elf.SectionIndex(bo.Uint16(e[6:])),
				value: bo.Uint64(e[8:]), size: bo.Uint64(e[16:]),
			}
		} else {
			es = elfSym{
				name: bo.Uint32(e[0:]), value: uint64(bo.Uint32(e[4:])), size: uint64(bo.Uint32(e[8:])),
				info: e[12], shndx: elf.SectionIndex(bo.Uint16(e[14:])),
			}
		}
		s, ok := es.symbol(f, strs)
		if !ok {
			continue
		}
		if es.relocatable(f) {
			s.Addr += kaslrOffset
		}
		syms = append(syms, s)
	}
	t := NewTable("vmlinux "+name, syms)
	t.bounded = true
	return t, nil
}

// elfSym is an Elf32_Sym or Elf64_Sym, decoded.
type elfSym struct {
	name  uint32
	info  byte
	shndx elf.SectionIndex
	value uint64
	size  uint64
}

// symbol converts the entry, or reports false for what nm and kallsyms
// leave out: undefined, file and section symbols, symbols without a name
// or in sections that are not loaded (debugging data).
func (e elfSym) symbol(f *elf.File, strs string) (Symbol, bool) {
	typ := elf.SymType(e.info & 0xf)
	if typ == elf.STT_FILE || typ == elf.STT_SECTION || e.shndx == elf.SHN_UNDEF {
		return Symbol{}, false
	}
	if int(e.name) >= len(strs) {
		return Symbol{}, false
	}
	name := strs[e.name:]
	end := 0
	for end < len(name) && name[end] != 0 {
		end++
	}
	name = name[:end]
	if name == "" {
		return Symbol{}, false
	}
	letter, ok := e.letter(f)
	if !ok {
		return Symbol{}, false
	}
	return Symbol{Name: name, Addr: e.value, Size: e.size, Type: letter}, true
}

// letter is the nm type letter: by the symbol's section (code, data,
// read-only data, bss), lower case for local symbols; weak symbols are
// 'W' ('V' for objects), absolute ones 'A'. Note that vmlinux's .rodata
// is writable at link time, so nm — and the kernel's kallsyms, built from
// nm's output — call its symbols data ('D'), and so do we.
func (e elfSym) letter(f *elf.File) (byte, bool) {
	bind := elf.SymBind(e.info >> 4)
	typ := elf.SymType(e.info & 0xf)
	var c byte
	switch {
	case e.shndx == elf.SHN_ABS:
		c = 'a'
	case e.shndx == elf.SHN_COMMON:
		c = 'c'
	case e.shndx >= elf.SHN_LORESERVE || int(e.shndx) >= len(f.Sections):
		return 0, false
	default:
		sec := f.Sections[e.shndx]
		switch {
		case sec.Flags&elf.SHF_ALLOC == 0:
			return 0, false
		case sec.Flags&elf.SHF_EXECINSTR != 0:
			c = 't'
		case sec.Type == elf.SHT_NOBITS:
			c = 'b'
		case sec.Flags&elf.SHF_WRITE != 0:
			c = 'd'
		default:
			c = 'r'
		}
	}
	switch {
	case bind == elf.STB_WEAK && typ == elf.STT_OBJECT:
		return 'V', true
	case bind == elf.STB_WEAK:
		return 'W', true
	case typ == elf.STT_GNU_IFUNC:
		return 'i', true
	case bind == elf.STB_GLOBAL:
		return c - 'a' + 'A', true
	}
	return c, true
}

// relocatable reports whether KASLR moves the symbol: it must be defined
// in a section with a load address, or have a kernel-space value (x86_64's
// __per_cpu_load and __init_begin are in .data..percpu, linked at 0, but
// mark where the section's load image is).
func (e elfSym) relocatable(f *elf.File) bool {
	if e.shndx == elf.SHN_UNDEF || e.shndx >= elf.SHN_LORESERVE || int(e.shndx) >= len(f.Sections) {
		return false
	}
	return f.Sections[e.shndx].Addr != 0 || e.value >= 1<<63
}
