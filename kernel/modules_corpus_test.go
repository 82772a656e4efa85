package kernel

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"salvage/arch"
	"salvage/debuginfo"
	"salvage/dump"
	"salvage/lab/corpus"
)

// procModule is one line of the guest's /proc/modules
// (kernel/module/procfs.c m_show): name size refcount users state
// address [(taints)].
type procModule struct {
	name     string
	size     uint64
	refcount int64
	usedBy   []string
	state    string
	addr     uint64
	taints   string
}

func parseProcModules(t *testing.T, text string) []procModule {
	t.Helper()
	var out []procModule
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			t.Fatalf("/proc/modules line %q", line)
		}
		p := procModule{name: f[0], state: f[4]}
		var err1, err2, err3 error
		p.size, err1 = strconv.ParseUint(f[1], 10, 64)
		p.refcount, err2 = strconv.ParseInt(f[2], 10, 64)
		p.addr, err3 = strconv.ParseUint(strings.TrimPrefix(f[5], "0x"), 16, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			t.Fatalf("/proc/modules line %q", line)
		}
		if f[3] != "-" {
			p.usedBy = strings.Split(strings.TrimSuffix(f[3], ","), ",")
		}
		if len(f) > 6 {
			p.taints = strings.Trim(f[6], "()")
		}
		out = append(out, p)
	}
	return out
}

// crashMod is one line of crash's mod: MODULE NAME BASE SIZE.
type crashMod struct {
	addr, base, size uint64
	name             string
}

func parseCrashMod(t *testing.T, text string) []crashMod {
	t.Helper()
	var out []crashMod
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || f[0] == "MODULE" {
			continue
		}
		a, err1 := strconv.ParseUint(f[0], 16, 64)
		b, err2 := strconv.ParseUint(f[2], 16, 64)
		s, err3 := strconv.ParseUint(f[3], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			continue // crash's prompt or messages
		}
		out = append(out, crashMod{addr: a, name: f[1], base: b, size: s})
	}
	return out
}

// TestModulesMatchGuest walks the modules of every dump with guest
// truth, opened with the debug vmlinux and with the dump alone (kallsyms
// and BTF), and compares them with the guest's /proc/modules, its
// /proc/kallsyms and crash's mod.
func TestModulesMatchGuest(t *testing.T) {
	m := corpus.Require(t)
	for _, d := range m.Dumps {
		if d.Truth == "" {
			continue
		}
		t.Run(d.ID, func(t *testing.T) {
			f, err := dump.Open(m.Paths(d)...)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			want := parseProcModules(t, truthFile(t, m, d, "modules"))
			kallsyms := truthFile(t, m, d, "kallsyms")
			ref, hasRef, err := m.Ref(d, "mod")
			if err != nil {
				t.Fatal(err)
			}
			vmlinux := m.Path(m.Kernel(d.Release).DebugVmlinux)
			dw := openTypedKernel(t, m, d).Types
			for _, opt := range []Options{{Vmlinux: vmlinux, Types: dw}, {}} {
				name := "vmlinux"
				if opt.Vmlinux == "" {
					name = "btf"
				}
				t.Run(name, func(t *testing.T) {
					k, err := Open(f, opt)
					if err != nil {
						t.Fatal(err)
					}
					// Symbols first: the modules are read on demand.
					checkModuleSymbols(t, k, kallsyms)
					mods, err := k.Modules()
					if err != nil {
						t.Fatal(err)
					}
					checkProcModules(t, mods, want)
					if hasRef {
						checkCrashMod(t, mods, parseCrashMod(t, ref))
					}
				})
			}
		})
	}
}

func checkProcModules(t *testing.T, got []Module, want []procModule) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%d modules, /proc/modules has %d", len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		g, w := got[i], want[i]
		if g.Name != w.name || g.Size != w.size || g.Base != w.addr || g.State.String() != w.state ||
			g.Refcount != w.refcount || !slices.Equal(g.UsedBy, w.usedBy) || g.TaintString() != w.taints {
			t.Errorf("module %d: got %s %d %d %v %s %#x (%s), /proc/modules %s %d %d %v %s %#x (%s)", i,
				g.Name, g.Size, g.Refcount, g.UsedBy, g.State, g.Base, g.TaintString(),
				w.name, w.size, w.refcount, w.usedBy, w.state, w.addr, w.taints)
		}
		if len(g.Symbols) == 0 {
			t.Errorf("module %s: no symbols", g.Name)
		}
		for _, s := range g.Symbols {
			if s.Module != g.Name || !g.Contains(s.Addr) && s.Type != 'U' {
				// A module's symbols lie in its core memory.
				t.Errorf("module %s at %#x size %d: symbol %+v outside it", g.Name, g.Base, g.Size, s)
				break
			}
		}
	}
}

func checkCrashMod(t *testing.T, got []Module, ref []crashMod) {
	t.Helper()
	if len(ref) == 0 {
		t.Fatal("crash's mod output lists no modules")
	}
	byName := map[string]Module{}
	for _, g := range got {
		byName[g.Name] = g
	}
	for _, r := range ref {
		g, ok := byName[r.name]
		if !ok || g.Addr != r.addr || g.Base != r.base || g.Size != r.size {
			t.Errorf("crash mod: %s module %#x base %#x size %d; got %#x %#x %d (found %v)",
				r.name, r.addr, r.base, r.size, g.Addr, g.Base, g.Size, ok)
		}
	}
	if len(ref) != len(got) {
		t.Errorf("crash lists %d modules, we %d", len(ref), len(got))
	}
}

// checkModuleSymbols resolves every symbol of the guest's /proc/kallsyms
// excerpt by name and by address, module symbols with and without their
// module's name.
func checkModuleSymbols(t *testing.T, k *Kernel, kallsyms string) {
	t.Helper()
	nmod := 0
	for _, line := range strings.Split(kallsyms, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		addr, err := strconv.ParseUint(f[0], 16, 64)
		if err != nil {
			t.Fatalf("kallsyms line %q", line)
		}
		name, mod := f[2], ""
		if len(f) > 3 {
			mod = strings.Trim(f[3], "[]")
			nmod++
		}
		names := []string{name}
		if mod != "" {
			names = append(names, mod+":"+name)
		}
		for _, n := range names {
			s, ok := k.Symbols.Lookup(n)
			if !ok || s.Addr != addr || s.Module != mod {
				t.Errorf("Lookup(%q) = %+v, %v; guest kallsyms %#x [%s]", n, s, ok, addr, mod)
			}
		}
		if mod == "" {
			continue
		}
		s, off, ok := k.Symbols.ByAddr(addr + 1)
		if !ok || s.Name != name || s.Module != mod || off != 1 || s.Type != f[1][0] {
			t.Errorf("ByAddr(%#x) = %+v+%d, %v; guest kallsyms %s %s [%s]", addr+1, s, off, ok, f[1], name, mod)
		}
	}
	if nmod == 0 {
		t.Error("the guest's kallsyms lists no module symbol")
	}
	// Every module's symbols, by qualified name.
	// (qemu_fw_cfg is a module in both lab kernels; virtio_ring is built
	// into 6.12's.)
	for _, n := range []string{"virtio_blk:virtblk_probe", "qemu_fw_cfg:fw_cfg_sysfs_probe", "salvage_lab:salvage_lab_hang"} {
		if s, ok := k.Symbols.Lookup(n); !ok || s.Module == "" || !isTextType(s.Type) {
			t.Errorf("Lookup(%q) = %+v, %v", n, s, ok)
		}
	}
}

func isTextType(c byte) bool { return c == 't' || c == 'T' }

// holeyTranslator reads as its translator does, except for one range
// (a page when size is 0), which reads as missing from the dump.
type holeyTranslator struct {
	arch.Translator
	page uint64 // virtual address of the hole (page-aligned when size is 0)
	size uint64
}

func (h holeyTranslator) ReadVirt(p []byte, addr uint64) (int, error) {
	end := addr + uint64(len(p))
	size := h.size
	if size == 0 {
		size = 4096
	}
	if addr < h.page+size && end > h.page {
		n := 0
		if addr < h.page {
			n, _ = h.Translator.ReadVirt(p[:h.page-addr], addr)
		}
		return n, &dump.PageError{Addr: h.page, State: dump.PageMissing}
	}
	return h.Translator.ReadVirt(p, addr)
}

// TestModuleSymbolsMissingPage reads a dump in which one module's symbol
// table is missing: the error names the module, its address and the
// page's state, and every other symbol still resolves.
func TestModuleSymbolsMissingPage(t *testing.T) {
	m := corpus.Require(t)
	d := m.Select(func(d corpus.Dump) bool { return d.Truth != "" && d.Format == "kdump" })[0]
	f, err := dump.Open(m.Paths(d)...)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	k, err := Open(f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mods, err := k.Modules()
	if err != nil {
		t.Fatal(err)
	}
	// One known function of each module the guest loads in both lab
	// kernels. The victim is the first whose symbol table (Elf64_Sym, 24
	// bytes each) does not overlap its struct module.
	known := []struct{ mod, fn string }{
		{"virtio_blk", "virtblk_probe"}, {"qemu_fw_cfg", "fw_cfg_sysfs_probe"}, {"salvage_lab", "salvage_lab_hang"},
	}
	i, victim, symtab, symtabSize := -1, -1, uint64(0), uint64(0)
	for ki, c := range known {
		j := slices.IndexFunc(mods, func(m Module) bool { return m.Name == c.mod })
		if j < 0 {
			t.Fatalf("no %s module", c.mod)
		}
		mod, err := k.ObjectOf(mods[j].Addr, "struct module")
		if err != nil {
			t.Fatal(err)
		}
		st, err := memberUint(mod, "kallsyms->symtab")
		if err != nil {
			t.Fatal(err)
		}
		n, err := memberUint(mod, "kallsyms->num_symtab")
		if err != nil {
			t.Fatal(err)
		}
		if st+24*n <= mods[j].Addr || st >= mods[j].Addr+uint64(mod.Type().Size) {
			i, victim, symtab, symtabSize = j, ki, st, 24*n
			break
		}
	}
	if i < 0 {
		t.Fatal("every module's symbol table overlaps its struct module")
	}
	name := known[victim].mod

	k2, err := Open(f, Options{Types: k.Types})
	if err != nil {
		t.Fatal(err)
	}
	k2.Arch = holeyTranslator{Translator: k2.Arch, page: symtab, size: symtabSize}
	if _, ok := k2.Symbols.Lookup(name + ":" + known[victim].fn); ok {
		t.Errorf("%s's symbols found though its symbol table is missing", name)
	}
	others := []string{"init_task"}
	for ki, c := range known {
		if ki != victim {
			others = append(others, c.mod+":"+c.fn)
		}
	}
	for _, n := range others {
		if _, ok := k2.Symbols.Lookup(n); !ok {
			t.Errorf("Lookup(%q) failed", n)
		}
	}
	got, err := k2.Modules()
	if len(got) != len(mods) {
		t.Errorf("%d modules listed, want %d", len(got), len(mods))
	}
	var me *ModuleError
	if !errors.As(err, &me) || me.Name != name || me.Addr != mods[i].Addr {
		t.Fatalf("error %v, want a *ModuleError for %s at %#x", err, name, mods[i].Addr)
	}
	if st, ok := PageState(err); !ok || st != dump.PageMissing {
		t.Errorf("page state %v, %v; want missing", st, ok)
	}
	msg := err.Error()
	for _, s := range []string{name, fmt.Sprintf("%#x", mods[i].Addr), "missing"} {
		if !strings.Contains(msg, s) {
			t.Errorf("error %q does not say %q", msg, s)
		}
	}
}

// TestModulesUnreadable opens a dump whose modules list cannot be read:
// vmlinux's symbols still resolve and Modules says why there are none.
func TestModulesUnreadable(t *testing.T) {
	m := corpus.Require(t)
	d := m.Select(func(d corpus.Dump) bool { return d.Truth != "" })[0]
	f, err := dump.Open(m.Paths(d)...)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	k, err := Open(f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	head, err := k.SymbolAddr("modules")
	if err != nil {
		t.Fatal(err)
	}
	k.Arch = holeyTranslator{Translator: k.Arch, page: head &^ 4095}
	if _, ok := k.Symbols.Lookup("salvage_lab:salvage_lab_hang"); ok {
		t.Error("a module symbol found though the modules list is unreadable")
	}
	if s, ok := k.Symbols.Lookup("init_task"); !ok || s.Module != "" {
		t.Errorf("Lookup(init_task) = %+v, %v", s, ok)
	}
	mods, err := k.Modules()
	if len(mods) != 0 || err == nil {
		t.Fatalf("Modules() = %d modules, %v; want none and an error", len(mods), err)
	}
	if st, ok := PageState(err); !ok || st != dump.PageMissing || !strings.Contains(err.Error(), fmt.Sprintf("%#x", head)) {
		t.Errorf("error %q (page state %v, %v) should name the list head %#x and the missing page", err, st, ok, head)
	}
}

// TestModuleFunctionByAddr resolves addresses inside salvage_lab's
// crashing function, which gcc specialised (salvage_lab_oops.constprop.0,
// as the guest's /proc/kallsyms also names it).
func TestModuleFunctionByAddr(t *testing.T) {
	m := corpus.Require(t)
	d := m.Select(func(d corpus.Dump) bool { return d.Scenario == "oops" })[0]
	f, err := dump.Open(m.Paths(d)...)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	k, err := Open(f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	const name = "salvage_lab_oops.constprop.0"
	s, ok := k.Symbols.Lookup(name)
	if !ok || s.Module != "salvage_lab" || s.Size == 0 || s.Type != 't' {
		t.Fatalf("Lookup(%q) = %+v, %v", name, s, ok)
	}
	for _, off := range []uint64{0, 1, s.Size / 2, s.Size - 1} {
		got, goff, ok := k.Symbols.ByAddr(s.Addr + off)
		if !ok || got.Name != name || got.Module != "salvage_lab" || goff != off {
			t.Errorf("ByAddr(%#x) = %+v+%#x, %v; want %s+%#x [salvage_lab]", s.Addr+off, got, goff, ok, name, off)
		}
	}
	if q, ok := k.Symbols.Lookup("salvage_lab:" + name); !ok || q != s {
		t.Errorf("qualified Lookup = %+v, %v; want %+v", q, ok, s)
	}
}

func TestModuleSymbolFilters(t *testing.T) {
	for _, c := range []struct {
		name string
		want bool
	}{{"$x", true}, {"$d.42", true}, {"$a", true}, {"$xyz", false}, {"$", false}, {"x$d", false}, {"$q", false}} {
		if got := isMappingSymbol(c.name); got != c.want {
			t.Errorf("isMappingSymbol(%q) = %v", c.name, got)
		}
	}
	for _, c := range []struct {
		taints uint64
		want   string
	}{{0, ""}, {1<<12 | 1<<13, "OE"}, {1 | 1<<9, "P"}, {1<<15 | 1<<17, "KT"}} {
		m := Module{Taints: c.taints}
		if got := m.TaintString(); got != c.want {
			t.Errorf("TaintString(%#x) = %q, want %q", c.taints, got, c.want)
		}
	}
}

func TestModuleOf(t *testing.T) {
	m := corpus.Require(t)
	d := m.Select(func(d corpus.Dump) bool { return d.Truth != "" })[0]
	f, err := dump.Open(m.Paths(d)...)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	k, err := Open(f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, ok := k.Symbols.Lookup("virtio_blk:virtblk_probe")
	if !ok {
		t.Fatal("no virtblk_probe")
	}
	if mod, ok := k.ModuleOf(s.Addr + 4); !ok || mod.Name != "virtio_blk" {
		t.Errorf("ModuleOf(virtblk_probe+4) = %v, %v", mod, ok)
	}
	init, _ := k.SymbolAddr("init_task")
	if mod, ok := k.ModuleOf(init); ok {
		t.Errorf("ModuleOf(init_task) = %s", mod.Name)
	}
}

// TestModuleSymbolsMatchObjects compares each module's symbols with its
// debug object file: every function outside the init sections is there,
// with the object's size, and the functions of one section keep the
// object's distances between them (relocation moves a section whole).
func TestModuleSymbolsMatchObjects(t *testing.T) {
	m := corpus.Require(t)
	d := m.Select(func(d corpus.Dump) bool { return d.Truth != "" && d.Format == "kdump" })[0]
	kern := m.Kernel(d.Release)
	if kern.DebugModules == "" {
		t.Fatalf("corpus kernel %s has no debug modules", d.Release)
	}
	f, err := dump.Open(m.Paths(d)...)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	k, err := Open(f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mods, err := k.Modules()
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, mod := range mods {
		path := filepath.Join(m.Path(kern.DebugModules), mod.Name+".ko")
		if _, err := os.Stat(path); err != nil {
			continue // salvage_lab is built per run, outside the package
		}
		ef, err := elf.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		syms, err := ef.Symbols()
		ef.Close()
		if err != nil {
			t.Fatal(err)
		}
		ours := map[string]debuginfo.Symbol{}
		for _, s := range mod.Symbols {
			ours[s.Name] = s
		}
		// Static functions of one name in two files (virtio_pci's
		// setup_vq) cannot be told apart by name.
		dup := map[string]int{}
		for _, s := range syms {
			dup[s.Name]++
		}
		shift := map[elf.SectionIndex]uint64{}
		n := 0
		for _, s := range syms {
			if elf.ST_TYPE(s.Info) != elf.STT_FUNC || s.Name == "" || dup[s.Name] > 1 || int(s.Section) >= len(ef.Sections) {
				continue
			}
			if sec := ef.Sections[s.Section].Name; strings.HasPrefix(sec, ".init") {
				continue
			}
			o, ok := ours[s.Name]
			if !ok {
				t.Errorf("%s: function %s not among the module's symbols", mod.Name, s.Name)
				continue
			}
			if o.Size != s.Size {
				t.Errorf("%s: %s size %d, object file %d", mod.Name, s.Name, o.Size, s.Size)
			}
			if sh, ok := shift[s.Section]; ok && o.Addr-s.Value != sh {
				t.Errorf("%s: %s at %#x is not where its section's other functions put it (%#x+%#x)", mod.Name, s.Name, o.Addr, s.Value, sh)
			}
			shift[s.Section] = o.Addr - s.Value
			n++
		}
		if n == 0 {
			t.Errorf("%s: no function compared", mod.Name)
		}
		checked++
	}
	// Every module the lab took from Debian's package (the guest loads
	// them all): 7 for 6.1, 2 for 6.12, whose virtio core is built in.
	objs, _ := filepath.Glob(filepath.Join(m.Path(kern.DebugModules), "*.ko"))
	if checked != len(objs) || checked == 0 {
		t.Errorf("compared %d modules with their object files, want the %d of Debian's package", checked, len(objs))
	}
}
