package kernel

import (
	"errors"
	"fmt"

	"salvage/arch"
	"salvage/arch/amd64"
	"salvage/debuginfo"
	"salvage/dump"
)

// Options says where Open finds symbols and types.
type Options struct {
	// Vmlinux is a debug vmlinux; "" uses what the dump itself carries:
	// the kallsyms tables and the kernel's BTF.
	Vmlinux string
	// SystemMap is the kernel's System.map: without a vmlinux, its
	// symbols (all of the link's, where kallsyms has only the kernel's
	// own) are used instead of kallsyms', with the dump's BTF for types.
	// It must match the dump: its linux_banner, relocated, must be where
	// the dump's kallsyms put it.
	SystemMap string
	// NoMatchCheck skips CheckMatch of the vmlinux against the dump.
	NoMatchCheck bool
	// Types, when set, are used instead of loading the vmlinux's DWARF or
	// the dump's BTF (a caller opening several dumps of one kernel loads
	// them once).
	Types debuginfo.Types
}

// Open assembles the Kernel of a dump: the translator of its
// architecture, symbols (the vmlinux's, relocated by the KASLR offset, or
// the dump's kallsyms) and types (the vmlinux's DWARF, or the BTF in the
// dump's memory). With a vmlinux, a mismatch with the dump is an error
// (a *MismatchError) unless NoMatchCheck.
func Open(f *dump.File, opt Options) (*Kernel, error) {
	vi := f.VMCoreInfo
	// First the dump alone: VMCOREINFO places the page tables, and the
	// kallsyms in its memory name its own symbols. A vmlinux is trusted
	// only once it is known to match.
	bare, err := newTranslator(f, nil)
	if err != nil {
		return nil, err
	}
	kallsyms, kerr := debuginfo.LoadKallsyms(bare, vi)
	var syms debuginfo.Symbols
	var kaslrOffset uint64
	if opt.Vmlinux != "" {
		if !opt.NoMatchCheck {
			id, err := VmlinuxIdentity(opt.Vmlinux)
			if err != nil {
				return nil, err
			}
			var banner uint64
			if kallsyms != nil {
				if s, ok := kallsyms.Lookup("linux_banner"); ok {
					banner = s.Addr
				}
			}
			if err := CheckMatch(id.BuildID, id.Banner, f, bare, banner); err != nil {
				return nil, err
			}
		}
		linkTime, err := debuginfo.LoadELFSymbols(opt.Vmlinux, 0)
		if err != nil {
			return nil, err
		}
		kaslr, err := debuginfo.KASLROffset(vi, linkTime)
		if err != nil {
			return nil, err
		}
		kaslrOffset = kaslr.Offset
		if syms, err = debuginfo.LoadELFSymbols(opt.Vmlinux, kaslr.Offset); err != nil {
			return nil, err
		}
	} else if opt.SystemMap != "" {
		if syms, err = loadSystemMap(opt.SystemMap, vi, kallsyms); err != nil {
			return nil, err
		}
	} else {
		if kerr != nil {
			return nil, fmt.Errorf("no vmlinux given and the dump's kallsyms cannot be read: %w", kerr)
		}
		syms = kallsyms
	}
	// Now page_offset_base and the other layout variables have addresses.
	tr, err := newTranslator(f, syms)
	if err != nil {
		return nil, err
	}
	k, err := New(f, syms, nil, tr)
	if err != nil {
		return nil, err
	}
	k.kaslr = kaslrOffset
	switch {
	case opt.Types != nil:
		// Another kernel's module types are not this one's.
		k.Types = debuginfo.WithoutFallback(opt.Types)
	case opt.Vmlinux != "":
		k.Types, err = debuginfo.LoadDWARF(opt.Vmlinux)
	default:
		// Read when a command first needs a type: symbols alone (sym,
		// rd -s, dis) never parse the BTF.
		k.Types = debuginfo.Lazy("the BTF in the dump's memory", k.loadBTF)
	}
	if err != nil {
		return nil, err
	}
	if opt.Vmlinux == "" {
		// Types vmlinux lacks are looked for in the loaded modules' BTF.
		types := k.Types
		k.Types = debuginfo.WithFallback(types, func() []debuginfo.Types {
			if base := debuginfo.BaseBTF(types); base != nil {
				return k.moduleBTF(base)
			}
			return nil
		})
	}
	return k, nil
}

func newTranslator(f *dump.File, syms debuginfo.Symbols) (arch.Translator, error) {
	var lookup func(string) (uint64, bool)
	if syms != nil {
		lookup = func(n string) (uint64, bool) {
			s, ok := syms.Lookup(n)
			return s.Addr, ok
		}
	}
	switch f.Arch {
	case dump.ArchX86_64, "":
		return amd64.NewFromFile(f, lookup)
	}
	return nil, fmt.Errorf("%s: no address translation for %s dumps yet", f.Path, f.Arch)
}

// loadBTF reads the kernel's BTF from its memory (__start_BTF to
// __stop_BTF, CONFIG_DEBUG_INFO_BTF).
func (k *Kernel) loadBTF() (debuginfo.Types, error) {
	start, err1 := k.SymbolAddr("__start_BTF")
	stop, err2 := k.SymbolAddr("__stop_BTF")
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("the kernel carries no BTF (CONFIG_DEBUG_INFO_BTF): %w", err)
	}
	t, err := debuginfo.LoadBTFFromMemory(k.Arch, start, stop)
	if err != nil {
		return nil, err
	}
	// BTF describes few globals; the well-known ones get their declared
	// types by name.
	return debuginfo.WithWellKnownVars(t), nil
}

// maxModuleBTF bounds one module's BTF (the largest in-tree module's is
// a few hundred KiB).
const maxModuleBTF = 16 << 20

// moduleBTF reads the split BTF of every loaded module on top of the
// kernel's. A module's .BTF (struct module's btf_data) is freed once the
// module is live; the BPF subsystem keeps its copy, on the btf_modules
// list (kernel/bpf/btf.c: struct btf_module → struct btf's data and
// data_size). Modules whose BTF cannot be read are left out.
func (k *Kernel) moduleBTF(base debuginfo.Types) []debuginfo.Types {
	head, err := k.SymbolAddr("btf_modules")
	if err != nil {
		return nil
	}
	var out []debuginfo.Types
	for bm, err := range k.ListEntries(head, "struct btf_module", "list") {
		if err != nil {
			break
		}
		addr, err1 := memberUint(bm, "btf->data")
		size, err2 := memberUint(bm, "btf->data_size")
		name, _ := memberString(bm, "module->name", 64)
		if err1 != nil || err2 != nil || addr == 0 || size == 0 || size > maxModuleBTF {
			continue
		}
		raw := make([]byte, size)
		if err := k.Read(raw, addr); err != nil {
			continue
		}
		if t, err := debuginfo.LoadModuleBTF(raw, base, "BTF of module "+name+" in the dump"); err == nil {
			out = append(out, t)
		}
	}
	return out
}

// loadSystemMap reads a System.map, relocates it by the dump's KASLR
// offset and checks it against the dump: its linux_banner must be where
// the dump's own kallsyms have it.
func loadSystemMap(path string, vi *dump.VMCoreInfo, kallsyms debuginfo.Symbols) (debuginfo.Symbols, error) {
	linkTime, err := debuginfo.LoadSystemMap(path, 0)
	if err != nil {
		return nil, err
	}
	kaslr, err := debuginfo.KASLROffset(vi, linkTime)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	syms, err := debuginfo.LoadSystemMap(path, kaslr.Offset)
	if err != nil {
		return nil, err
	}
	mine, ok := syms.Lookup("linux_banner")
	if !ok {
		return nil, fmt.Errorf("%s: no linux_banner: not a kernel's System.map", path)
	}
	if kallsyms != nil {
		if theirs, ok := kallsyms.Lookup("linux_banner"); ok && theirs.Addr != mine.Addr {
			return nil, fmt.Errorf("%s does not match the dump: it puts linux_banner at %#x, the dump's kallsyms at %#x (a System.map of another build of the kernel)", path, mine.Addr, theirs.Addr)
		}
	}
	return syms, nil
}
