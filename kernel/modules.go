package kernel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"salvage/debuginfo"
)

// Module is one loaded kernel module, read from its struct module
// (include/linux/module.h) on the kernel's modules list.
type Module struct {
	Name string
	Addr uint64 // the struct module itself (crash's mod "MODULE" column)
	// Base is where the module's core text starts: core_layout.base
	// (kernels before 6.4) or mem[MOD_TEXT].base (6.4+). /proc/modules
	// prints it as the module's address, crash's mod as BASE.
	Base uint64
	// Size is the module's size as /proc/modules prints it: the init,
	// core (and 6.2–6.3's data) layouts together before 6.4, every
	// memory region since.
	// Once a module is live its init sections are freed, so this is the
	// core size crash's mod shows.
	Size     uint64
	TextSize uint64 // core text (core_layout.text_size, mem[MOD_TEXT].size)
	// Regions are the module's allocations, which 6.4+ (and data_layout
	// before it) do not keep together: core, init while loading, data;
	// or each non-empty mem[] region.
	Regions  []ModuleRegion
	State    ModuleState
	Taints   uint64 // bit i set: taint flag i (kernel/panic.c taint_flags)
	Refcount int64  // module_refcount(): refcnt less the base reference; -1 when unknown
	// UsedBy names the modules that depend on this one (source_list),
	// as /proc/modules's fourth column lists them.
	UsedBy []string
	// Symbols are the module's kallsyms (mod->kallsyms), as
	// /proc/kallsyms lists them: unnamed, section and file symbols left out.
	Symbols []debuginfo.Symbol
	// Err is why this module's symbols or dependencies could not be read
	// (nil when they were).
	Err error
}

// ModuleState is enum module_state.
type ModuleState int

// The values of enum module_state (include/linux/module.h), unchanged
// since 2.6.
const (
	ModuleLive ModuleState = iota
	ModuleComing
	ModuleGoing
	ModuleUnformed
)

func (s ModuleState) String() string {
	// /proc/modules's words (kernel/module/procfs.c m_show).
	switch s {
	case ModuleLive:
		return "Live"
	case ModuleComing:
		return "Loading"
	case ModuleGoing:
		return "Unloading"
	case ModuleUnformed:
		return "Unformed"
	}
	return fmt.Sprintf("state %d", int(s))
}

// moduleTaintLetters are the taint flags a module can carry and the
// letter /proc/modules shows for each, by bit number (kernel/panic.c
// taint_flags, the entries with module = true).
var moduleTaintLetters = []struct {
	bit    uint
	letter byte
}{
	{0, 'P'}, {1, 'F'}, {10, 'C'}, {12, 'O'}, {13, 'E'}, {15, 'K'}, {16, 'X'}, {17, 'T'},
}

// TaintString is the module's taint letters as /proc/modules prints
// them in parentheses ("OE"), "" when untainted.
func (m *Module) TaintString() string {
	var b []byte
	for _, t := range moduleTaintLetters {
		if m.Taints&(1<<t.bit) != 0 {
			b = append(b, t.letter)
		}
	}
	return string(b)
}

// ModuleRegion is one allocation of a module's memory.
type ModuleRegion struct {
	Base, Size uint64
}

// Contains reports whether addr lies in one of the module's regions.
func (m *Module) Contains(addr uint64) bool {
	for _, r := range m.Regions {
		if addr >= r.Base && addr-r.Base < r.Size {
			return true
		}
	}
	return false
}

// ModuleError is a module that could not be read: which struct module,
// its name when known, what was being read, and why (wrapping the
// *ReadError and the dump's *dump.PageError with the page's state).
type ModuleError struct {
	Addr uint64 // the struct module
	Name string
	What string
	Err  error
}

func (e *ModuleError) Error() string {
	name := ""
	if e.Name != "" {
		name = " " + e.Name
	}
	return fmt.Sprintf("module%s at %#x: %s: %v", name, e.Addr, e.What, e.Err)
}

func (e *ModuleError) Unwrap() error { return e.Err }

// Modules lists the loaded modules in the order of the kernel's modules
// list (most recently loaded first, as /proc/modules lists them). It is
// read once and shared: callers must not modify it. The error, when some module or the list could not be read,
// is returned with every module that could. The modules' symbols are
// also part of k.Symbols (Lookup("virtio_blk:virtblk_probe"), ByAddr).
func (k *Kernel) Modules() ([]Module, error) {
	k.mods.mu.Lock()
	defer k.mods.mu.Unlock()
	k.loadModulesLocked()
	return k.mods.list, k.mods.err
}

// ModuleOf is the loaded module whose memory holds addr (a return
// address on a stack, a function pointer), if any.
func (k *Kernel) ModuleOf(addr uint64) (*Module, bool) {
	mods, _ := k.Modules()
	for i := range mods {
		if mods[i].Contains(addr) {
			return &mods[i], true
		}
	}
	return nil, false
}

// loadModulesLocked walks the modules list unless done. Without types it
// fails without remembering the failure, so that types set later (Open
// sets them after New) still let it run.
func (k *Kernel) loadModulesLocked() {
	if k.mods.done {
		return
	}
	if k.Types == nil {
		k.mods.err = errors.New("modules: no type information loaded (need a debug vmlinux or the kernel's BTF)")
		return
	}
	k.mods.done = true
	k.mods.list, k.mods.err = k.readModules()
	var syms []debuginfo.Symbol
	for _, m := range k.mods.list {
		syms = append(syms, m.Symbols...)
	}
	if len(syms) > 0 {
		k.mods.table = debuginfo.NewTable(fmt.Sprintf("symbol tables of %d modules in the dump", len(k.mods.list)), syms)
	}
}

// moduleLayout says where struct module keeps its memory regions: the
// layouts of kernels before 6.4, or the mem[] array since.
type moduleLayout struct {
	mem bool // mem[MOD_MEM_NUM_TYPES], struct module_memory (6.4+)
}

// ModuleMemRegions reports whether struct module keeps its memory in
// mem[] regions (6.4+, struct module_memory) rather than core_layout:
// crash's mod then heads the base column TEXT_BASE.
func (k *Kernel) ModuleMemRegions() (bool, error) {
	t, err := k.types()
	if err != nil {
		return false, err
	}
	m, err := t.Named("struct module")
	if err != nil {
		return false, err
	}
	return hasMember(m, "mem"), nil
}

func (k *Kernel) readModules() ([]Module, error) {
	head, err := k.baseSymbolAddr("modules")
	if err != nil {
		return nil, fmt.Errorf("modules: %w", err)
	}
	t, err := k.Types.Named("struct module")
	if err != nil {
		return nil, fmt.Errorf("modules: %w", err)
	}
	var lay moduleLayout
	switch {
	case hasMember(t, "mem"):
		lay.mem = true
	case hasMember(t, "core_layout"):
	default:
		return nil, fmt.Errorf("modules: struct module has neither mem[] (6.4+) nor core_layout: layout not supported")
	}
	var mods []Module
	var errs []error
	for v, err := range k.ListEntries(head, "struct module", "list") {
		if err != nil {
			errs = append(errs, fmt.Errorf("modules list at %#x: %w", head, err))
			break
		}
		m, err := k.readModule(v, lay)
		if err != nil {
			errs = append(errs, err)
			if m.Name == "" {
				continue
			}
		}
		if m.Err != nil {
			errs = append(errs, m.Err)
		}
		mods = append(mods, m)
	}
	return mods, errors.Join(errs...)
}

func hasMember(t *debuginfo.Type, name string) bool {
	_, err := lookupMember(t, name)
	return err == nil
}

// readModule reads one struct module. An error means the module itself
// is unusable; trouble with its symbols or dependencies is m.Err.
func (k *Kernel) readModule(v Value, lay moduleLayout) (Module, error) {
	m := Module{Addr: v.Address(), Refcount: -1}
	fail := func(what string, err error) (Module, error) {
		return m, &ModuleError{Addr: m.Addr, Name: m.Name, What: what, Err: err}
	}
	name, err := memberString(v, "name", 64)
	if err != nil {
		return fail("name", err)
	}
	m.Name = name
	if st, err := memberUint(v, "state"); err != nil {
		return fail("state", err)
	} else {
		m.State = ModuleState(st)
	}
	if lay.mem {
		// enum mod_mem_type: MOD_TEXT is 0; every region counts in
		// module_total_size.
		mem, err := v.Member("mem")
		if err != nil {
			return fail("mem", err)
		}
		n := int(mem.Type().Resolve().Len)
		for i := 0; i < n; i++ {
			r, err := mem.Index(i)
			if err != nil {
				return fail("mem", err)
			}
			base, err1 := memberUint(r, "base")
			size, err2 := memberUint(r, "size")
			if err := errors.Join(err1, err2); err != nil {
				return fail(fmt.Sprintf("mem[%d]", i), err)
			}
			if i == 0 {
				m.Base, m.TextSize = base, size
			}
			m.Size += size
			if size != 0 {
				m.Regions = append(m.Regions, ModuleRegion{Base: base, Size: size})
			}
		}
	} else {
		base, err1 := memberUint(v, "core_layout.base")
		core, err2 := memberUint(v, "core_layout.size")
		text, err3 := memberUint(v, "core_layout.text_size")
		init, err4 := memberUint(v, "init_layout.size")
		if err := errors.Join(err1, err2, err3, err4); err != nil {
			return fail("core_layout", err)
		}
		m.Base, m.Size, m.TextSize = base, core+init, text
		m.Regions = append(m.Regions, ModuleRegion{Base: base, Size: core})
		// init_layout is freed (size 0) once the module is live.
		for _, l := range []string{"init_layout", "data_layout"} {
			b, err1 := memberUint(v, l+".base")
			n, err2 := memberUint(v, l+".size")
			if err1 != nil || err2 != nil || n == 0 {
				continue
			}
			m.Regions = append(m.Regions, ModuleRegion{Base: b, Size: n})
			// 6.2–6.3 with CONFIG_ARCH_WANTS_MODULES_DATA_IN_VMALLOC
			// keep data apart, in data_layout, and /proc/modules
			// counts it.
			if l == "data_layout" {
				m.Size += n
			}
		}
	}
	if tv, err := memberUint(v, "taints"); err == nil {
		m.Taints = tv
	}
	// refcnt exists with CONFIG_MODULE_UNLOAD; MODULE_REF_BASE is 1.
	if rc, err := v.Member("refcnt.counter"); err == nil {
		if n, err := rc.Int(); err == nil {
			m.Refcount = n - 1
		}
	}
	var errs []error
	if used, err := k.moduleUsers(v); err != nil {
		errs = append(errs, &ModuleError{Addr: m.Addr, Name: m.Name, What: "source_list", Err: err})
	} else {
		m.UsedBy = used
	}
	// An unformed module's symbols are not set up yet; /proc/kallsyms
	// skips them too.
	if m.State == ModuleUnformed {
		m.Err = errors.Join(errs...)
		return m, nil
	}
	if syms, err := k.moduleSymbols(v, m.Name); err != nil {
		errs = append(errs, &ModuleError{Addr: m.Addr, Name: m.Name, What: "kallsyms", Err: err})
	} else {
		m.Symbols = syms
	}
	m.Err = errors.Join(errs...)
	return m, nil
}

// moduleUsers names the modules on mod->source_list (struct module_use,
// kernel/module/main.c add_module_usage): those that use this one.
func (k *Kernel) moduleUsers(v Value) ([]string, error) {
	head, err := v.Member("source_list")
	if err != nil {
		if hasMemberErr(err) {
			return nil, nil // !CONFIG_MODULE_UNLOAD: not tracked
		}
		return nil, err
	}
	var out []string
	for use, err := range k.ListEntries(head.Address(), "struct module_use", "source_list") {
		if err != nil {
			return out, err
		}
		src, err := use.Member("source")
		if err == nil {
			src, err = src.Deref()
		}
		var name string
		if err == nil {
			name, err = memberString(src, "name", 64)
		}
		if err != nil {
			return out, err
		}
		out = append(out, name)
	}
	return out, nil
}

// hasMemberErr reports whether err is a lookup of a member the type does
// not have (as opposed to a failed read).
func hasMemberErr(err error) bool {
	var re *ReadError
	return !errors.As(err, &re)
}

// Elf64_Sym (include/uapi/linux/elf.h): st_name, st_info, st_other,
// st_shndx, st_value, st_size.
const elf64SymSize = 24

const (
	sttSection  = 3   // STT_SECTION
	sttFile     = 4   // STT_FILE
	ksymNameLen = 512 // KSYM_NAME_LEN since 6.1
)

// moduleSymbols reads mod->kallsyms (struct mod_kallsyms,
// kernel/module/kallsyms.c): num_symtab Elf64_Syms at symtab, their
// names in strtab and their nm-style type letters in typetab. The
// symbols /proc/kallsyms would not show (unnamed ones, sections, files,
// ARM mapping symbols) are left out.
func (k *Kernel) moduleSymbols(v Value, module string) ([]debuginfo.Symbol, error) {
	ks, err := v.Member("kallsyms")
	if err != nil {
		return nil, err
	}
	p, err := ks.Uint()
	if err != nil || p == 0 {
		return nil, err // NULL: a module still being loaded has none yet
	}
	ks, err = ks.Deref()
	if err != nil {
		return nil, err
	}
	num, err := memberUint(ks, "num_symtab")
	if err != nil {
		return nil, err
	}
	if num == 0 {
		return nil, nil
	}
	if num > 1<<22 {
		return nil, fmt.Errorf("mod_kallsyms at %#x: num_symtab %d is implausible", ks.Address(), num)
	}
	symtab, err1 := memberUint(ks, "symtab")
	strtab, err2 := memberUint(ks, "strtab")
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	raw := make([]byte, num*elf64SymSize)
	if err := k.Read(raw, symtab); err != nil {
		return nil, fmt.Errorf("symtab of %d symbols: %w", num, err)
	}
	// typetab exists since 5.0 (kallsyms: store type information in its
	// own array); before it add_kallsyms kept the type letter in st_info.
	var types []byte
	if tt, err := memberUint(ks, "typetab"); err == nil {
		types = make([]byte, num)
		if err := k.Read(types, tt); err != nil {
			return nil, fmt.Errorf("typetab of %d symbols: %w", num, err)
		}
	}
	// The names lie in strtab up to the last st_name's end: read that
	// much at once rather than one string at a time.
	var maxName uint64
	for i := uint64(0); i < num; i++ {
		if n := uint64(binary.LittleEndian.Uint32(raw[i*elf64SymSize:])); n > maxName {
			maxName = n
		}
	}
	strs := k.readPrefix(strtab, int(maxName)+ksymNameLen)
	out := make([]debuginfo.Symbol, 0, num)
	for i := uint64(0); i < num; i++ {
		e := raw[i*elf64SymSize:]
		nameOff := uint64(binary.LittleEndian.Uint32(e))
		info := e[4]
		value := binary.LittleEndian.Uint64(e[8:])
		size := binary.LittleEndian.Uint64(e[16:])
		if nameOff == 0 {
			continue
		}
		// Without a typetab, st_info holds the type letter instead.
		if types != nil && (info&0xf == sttSection || info&0xf == sttFile) {
			continue
		}
		name, err := cString(strs, nameOff)
		if err != nil {
			if name, err = k.ReadCString(strtab+nameOff, ksymNameLen); err != nil {
				return nil, fmt.Errorf("name of symbol %d at %#x: %w", i, strtab+nameOff, err)
			}
		}
		if name == "" || isMappingSymbol(name) {
			continue
		}
		typ := info
		if types != nil {
			typ = types[i]
		}
		out = append(out, debuginfo.Symbol{Name: name, Addr: value, Size: size, Type: typ, Module: module})
	}
	return out, nil
}

func cString(b []byte, off uint64) (string, error) {
	if off >= uint64(len(b)) {
		return "", errors.New("beyond the bytes read")
	}
	s := b[off:]
	for i, c := range s {
		if c == 0 {
			return string(s[:i]), nil
		}
	}
	return "", errors.New("unterminated")
}

// isMappingSymbol is the kernel's is_mapping_symbol: ARM's $a, $t, $d,
// $x (optionally followed by ".something") mark code and data, not
// functions.
func isMappingSymbol(s string) bool {
	return len(s) >= 2 && s[0] == '$' && strings.IndexByte("axtd", s[1]) >= 0 && (len(s) == 2 || s[2] == '.')
}

// readPrefix reads up to n bytes at addr, a page at a time, stopping at
// the first page that cannot be read.
func (k *Kernel) readPrefix(addr uint64, n int) []byte {
	out := make([]byte, 0, n)
	for len(out) < n {
		c := 4096 - int(addr&4095)
		if c > n-len(out) {
			c = n - len(out)
		}
		buf := make([]byte, c)
		if err := k.Read(buf, addr); err != nil {
			break
		}
		out = append(out, buf...)
		addr += uint64(c)
	}
	return out
}

func memberUint(v Value, path string) (uint64, error) {
	m, err := v.Member(path)
	if err != nil {
		return 0, err
	}
	return m.Uint()
}

func memberString(v Value, path string, max int) (string, error) {
	m, err := v.Member(path)
	if err != nil {
		return "", err
	}
	return m.CString(max)
}

// baseSymbolAddr is SymbolAddr without the modules' symbols: walking the
// modules must not ask for them.
func (k *Kernel) baseSymbolAddr(name string) (uint64, error) {
	base := k.Symbols
	if ms, ok := base.(*moduleSymbols); ok {
		base = ms.base
	}
	if base != nil {
		if s, ok := base.Lookup(name); ok {
			return s.Addr, nil
		}
	}
	if a, ok := k.VMCoreInfo().Symbol(name); ok {
		return a, nil
	}
	return 0, &debuginfo.NotFoundError{What: "symbol " + name, Source: "the kernel's symbols or VMCOREINFO"}
}
