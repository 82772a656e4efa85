package kernel

import (
	"encoding/binary"
	"slices"
	"strings"
	"testing"

	"salvage/debuginfo"
	"salvage/lab/corpus"
)

// modMemTypes builds the types of a 6.4+ kernel's struct module, in
// which the memory regions are mem[MOD_MEM_NUM_TYPES] (struct
// module_memory) rather than core_layout; no refcnt or source_list
// (!CONFIG_MODULE_UNLOAD).
func modMemTypes(typetab bool) fakeTypes {
	ts := testTypes()
	ulong := &debuginfo.Type{Kind: debuginfo.KindInt, Name: "unsigned long", Size: 8}
	uint := &debuginfo.Type{Kind: debuginfo.KindInt, Name: "unsigned int", Size: 4}
	char := &debuginfo.Type{Kind: debuginfo.KindInt, Name: "char", Size: 1, Encoding: debuginfo.EncChar}
	voidp := &debuginfo.Type{Kind: debuginfo.KindPointer, Size: 8}
	charp := &debuginfo.Type{Kind: debuginfo.KindPointer, Size: 8, Elem: char}
	state := &debuginfo.Type{Kind: debuginfo.KindEnum, Name: "module_state", Size: 4, Elem: uint}
	mm := &debuginfo.Type{Kind: debuginfo.KindStruct, Name: "module_memory", Size: 16,
		Members: []debuginfo.Member{{Name: "base", Type: voidp}, {Name: "size", Type: uint, Offset: 8}}}
	mk := &debuginfo.Type{Kind: debuginfo.KindStruct, Name: "mod_kallsyms", Size: 32,
		Members: []debuginfo.Member{{Name: "symtab", Type: voidp}, {Name: "num_symtab", Type: uint, Offset: 8},
			{Name: "strtab", Type: charp, Offset: 16}, {Name: "typetab", Type: charp, Offset: 24}}}
	mod := &debuginfo.Type{Kind: debuginfo.KindStruct, Name: "module", Size: 256}
	mod.Members = []debuginfo.Member{
		{Name: "state", Type: state},
		{Name: "list", Type: ts["struct list_head"], Offset: 8},
		{Name: "name", Type: &debuginfo.Type{Kind: debuginfo.KindArray, Elem: char, Len: 56, Size: 56}, Offset: 24},
		{Name: "mem", Type: &debuginfo.Type{Kind: debuginfo.KindArray, Elem: mm, Len: 7, Size: 112}, Offset: 80},
		{Name: "taints", Type: ulong, Offset: 192},
		{Name: "kallsyms", Type: &debuginfo.Type{Kind: debuginfo.KindPointer, Size: 8, Elem: mk}, Offset: 200},
	}
	if !typetab { // before 5.0
		mk.Members = mk.Members[:3]
	}
	ts["struct module"] = mod
	ts["struct mod_kallsyms"] = mk
	return ts
}

// elfSym is an Elf64_Sym.
func elfSym(name uint32, info byte, shndx uint16, value, size uint64) []byte {
	b := make([]byte, elf64SymSize)
	binary.LittleEndian.PutUint32(b, name)
	b[4] = info
	binary.LittleEndian.PutUint16(b[6:], shndx)
	binary.LittleEndian.PutUint64(b[8:], value)
	binary.LittleEndian.PutUint64(b[16:], size)
	return b
}

const (
	synthModules = 0xffffffff81010000 // the modules list_head
	synthModA    = 0xffffffffc0001000 // struct module of "alpha"
	synthModB    = 0xffffffffc0101000
	synthKsA     = 0xffffffffc0002000 // its mod_kallsyms, symtab, strtab, typetab
	synthTextA   = 0xffffffffc0000000
	synthTextB   = 0xffffffffc0100000
)

// memLayoutVM holds two modules of a 6.4+ kernel: alpha, live, with
// symbols; beta, coming, without.
func memLayoutVM() fakeVM {
	vm := fakeVM{}
	vm.put64(synthModules, synthModA+8)
	vm.put64(synthModA+8, synthModB+8)
	vm.put64(synthModB+8, synthModules)
	for _, m := range []struct {
		addr, text uint64
		name       string
		taints     uint64
		ks         uint64
	}{{synthModA, synthTextA, "alpha", 1<<12 | 1<<13, synthKsA}, {synthModB, synthTextB, "beta", 0, 0}} {
		vm.write(m.addr+24, []byte(m.name+"\x00"))
		sizes := []uint64{0x3000, 0x1000, 0x2000, 0, 0, 0, 0} // text, data, rodata, …
		for i, s := range sizes {
			base := uint64(0)
			if s != 0 {
				base = m.text + uint64(i)*0x10000
			}
			vm.put64(m.addr+80+uint64(i)*16, base)
			vm.put64(m.addr+80+uint64(i)*16+8, s)
		}
		vm.put64(m.addr+192, m.taints)
		vm.put64(m.addr+200, m.ks)
	}
	vm.write(synthModB, []byte{1, 0, 0, 0}) // MODULE_STATE_COMING
	strtab := "\x00alpha_fn\x00alpha_data\x00$x\x00.text\x00"
	var symtab []byte
	symtab = append(symtab, elfSym(0, 0, 0, 0, 0)...)                      // the null symbol
	symtab = append(symtab, elfSym(1, 0x12, 1, synthTextA+0x100, 0x40)...) // alpha_fn, FUNC GLOBAL
	symtab = append(symtab, elfSym(10, 0x01, 2, synthTextA+0x10000, 8)...) // alpha_data, OBJECT LOCAL
	symtab = append(symtab, elfSym(21, 0x00, 1, synthTextA+0x100, 0)...)   // $x, a mapping symbol
	symtab = append(symtab, elfSym(24, 0x03, 1, synthTextA, 0)...)         // .text, a section
	vm.put64(synthKsA, synthKsA+0x100)
	vm.put64(synthKsA+8, 5)
	vm.put64(synthKsA+16, synthKsA+0x400)
	vm.put64(synthKsA+24, synthKsA+0x600)
	vm.write(synthKsA+0x100, symtab)
	vm.write(synthKsA+0x400, []byte(strtab))
	vm.write(synthKsA+0x600, []byte{' ', 'T', 'd', 't', 't'})
	return vm
}

func TestModulesMemLayout(t *testing.T) {
	vm := memLayoutVM()
	k, err := New(nil, fakeSyms{"modules": synthModules}, modMemTypes(true), vm)
	if err != nil {
		t.Fatal(err)
	}
	s, ok := k.Symbols.Lookup("alpha:alpha_fn")
	if want := (debuginfo.Symbol{Name: "alpha_fn", Addr: synthTextA + 0x100, Size: 0x40, Type: 'T', Module: "alpha"}); !ok || s != want {
		t.Errorf("Lookup(alpha:alpha_fn) = %+v, %v; want %+v", s, ok, want)
	}
	if s, off, ok := k.Symbols.ByAddr(synthTextA + 0x10004); !ok || s.Name != "alpha_data" || off != 4 || s.Type != 'd' {
		t.Errorf("ByAddr(alpha_data+4) = %+v+%d, %v", s, off, ok)
	}
	for _, n := range []string{"$x", ".text", ""} {
		if s, ok := k.Symbols.Lookup(n); ok {
			t.Errorf("Lookup(%q) = %+v: /proc/kallsyms does not list it", n, s)
		}
	}
	mods, err := k.Modules()
	if err != nil {
		t.Fatal(err)
	}
	if len(mods) != 2 {
		t.Fatalf("%d modules, want 2", len(mods))
	}
	a, b := mods[0], mods[1]
	if a.Name != "alpha" || a.Addr != synthModA || a.Base != synthTextA || a.Size != 0x6000 || a.TextSize != 0x3000 ||
		a.State != ModuleLive || a.TaintString() != "OE" || a.Refcount != -1 || a.UsedBy != nil || len(a.Symbols) != 2 {
		t.Errorf("alpha: %+v", a)
	}
	if b.Name != "beta" || b.Base != synthTextB || b.State.String() != "Loading" || b.Err != nil || b.Symbols != nil {
		t.Errorf("beta: %+v (a NULL kallsyms: no symbols yet)", b)
	}
	want := []ModuleRegion{{synthTextA, 0x3000}, {synthTextA + 0x10000, 0x1000}, {synthTextA + 0x20000, 0x2000}}
	if !slices.Equal(a.Regions, want) {
		t.Errorf("alpha's regions %x, want %x", a.Regions, want)
	}
	for _, c := range []struct {
		addr uint64
		want bool
	}{{synthTextA, true}, {synthTextA + 0x2fff, true}, {synthTextA + 0x3000, false}, {synthTextA + 0x10010, true}, {synthTextA + 0x21fff, true}, {synthTextA + 0x22000, false}} {
		if got := a.Contains(c.addr); got != c.want {
			t.Errorf("alpha.Contains(%#x) = %v", c.addr, got)
		}
	}
	if mod, ok := k.ModuleOf(synthTextA + 0x20010); !ok || mod.Name != "alpha" {
		t.Errorf("ModuleOf(alpha's rodata) = %v, %v", mod, ok)
	}
	if !slices.ContainsFunc(a.Symbols, func(s debuginfo.Symbol) bool { return s.Name == "alpha_fn" }) {
		t.Errorf("alpha's symbols: %+v", a.Symbols)
	}
}

// TestModuleSymbolsNoTypetab reads a module's symbols from a kernel
// without mod_kallsyms.typetab, whose st_info holds the type letter.
func TestModuleSymbolsNoTypetab(t *testing.T) {
	const (
		mod  = 0xffffffffc0001000
		ks   = 0xffffffffc0002000
		text = 0xffffffffc0000000
	)
	vm := fakeVM{}
	vm.put64(synthModules, mod+8)
	vm.put64(mod+8, synthModules)
	vm.write(mod+24, []byte("old\x00"))
	vm.put64(mod+80, text)
	vm.put64(mod+88, 0x1000)
	vm.put64(mod+200, ks)
	var symtab []byte
	symtab = append(symtab, elfSym(0, 0, 0, 0, 0)...)
	symtab = append(symtab, elfSym(1, 't', 1, text+0x10, 0x20)...) // 't' & 0xf is STT_FILE's 4
	symtab = append(symtab, elfSym(4, 'T', 1, text+0x30, 0x20)...)
	vm.put64(ks, ks+0x100)
	vm.put64(ks+8, 3)
	vm.put64(ks+16, ks+0x400)
	vm.write(ks+0x100, symtab)
	vm.write(ks+0x400, []byte("\x00fn\x00gn\x00"))
	k, err := New(nil, fakeSyms{"modules": synthModules}, modMemTypes(false), vm)
	if err != nil {
		t.Fatal(err)
	}
	mods, err := k.Modules()
	if err != nil || len(mods) != 1 {
		t.Fatalf("Modules() = %+v, %v", mods, err)
	}
	want := []debuginfo.Symbol{
		{Name: "fn", Addr: text + 0x10, Size: 0x20, Type: 't', Module: "old"},
		{Name: "gn", Addr: text + 0x30, Size: 0x20, Type: 'T', Module: "old"},
	}
	if !slices.Equal(mods[0].Symbols, want) {
		t.Errorf("symbols %+v, want %+v", mods[0].Symbols, want)
	}
}

// BenchmarkModules walks a lab dump's modules and reads their symbol
// tables, as the first lookup of a module symbol does.
func BenchmarkModules(b *testing.B) {
	m := corpus.Require(b)
	d := m.Select(func(d corpus.Dump) bool { return d.Truth != "" && d.Format == "kdump" })[0]
	k := openTypedKernel(b, m, d)
	for b.Loop() {
		k2, err := New(k.Dump, k.Symbols.(*moduleSymbols).base, k.Types, k.Arch)
		if err != nil {
			b.Fatal(err)
		}
		mods, err := k2.Modules()
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for _, m := range mods {
			n += len(m.Symbols)
		}
		b.ReportMetric(float64(len(mods)), "modules")
		b.ReportMetric(float64(n), "symbols")
	}
}

// TestModulesWithoutTypes: a kernel opened without types keeps its own
// symbols; the modules wait for types, and come once they are set.
func TestModulesWithoutTypes(t *testing.T) {
	k, err := New(nil, fakeSyms{"modules": synthModules}, nil, memLayoutVM())
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := k.Symbols.Lookup("modules"); !ok || s.Addr != synthModules {
		t.Errorf("Lookup(modules) = %+v, %v", s, ok)
	}
	if s, ok := k.Symbols.Lookup("alpha:alpha_fn"); ok {
		t.Errorf("Lookup(alpha:alpha_fn) = %+v without types", s)
	}
	if _, err := k.Modules(); err == nil || !strings.Contains(err.Error(), "no type information") {
		t.Errorf("Modules() error %v, want one saying types are missing", err)
	}
	k.Types = modMemTypes(true)
	if s, ok := k.Symbols.Lookup("alpha:alpha_fn"); !ok || s.Addr != synthTextA+0x100 {
		t.Errorf("after types: Lookup(alpha:alpha_fn) = %+v, %v", s, ok)
	}
	if mods, err := k.Modules(); err != nil || len(mods) != 2 {
		t.Errorf("after types: Modules() = %d modules, %v", len(mods), err)
	}
}
