package analyze

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"salvage/debuginfo"
	"salvage/kernel"
)

func modCommand() *Command {
	return &Command{
		Name:    "mod",
		Aliases: []string{"lsmod"},
		Summary: "list the loaded kernel modules",
		Usage:   "[-t] | -s MODULE [OBJECT] | -S [DIRECTORY]",
		Help: `Lists the loaded modules as crash's mod does: the struct module's address,
the name, the base of the module's text, its size, and its object file
("(not loaded)" until one is loaded: each module's symbols come from the
dump's kallsyms anyway). -t lists the tainted modules with their taint
flags. -s loads one module's debug object (a .ko with DWARF, such as the
-dbg package's), -S every module's found under a directory (by default
/usr/lib/debug/lib/modules/RELEASE and /lib/modules/RELEASE): their
types (struct virtio_blk…) then resolve like the kernel's. Without a
vmlinux, module types come from the modules' BTF in the dump already.

Examples:
  mod
  mod -t
  mod -S /usr/lib/debug/lib/modules/6.1.0-56-cloud-amd64
  mod -s virtio_blk /tmp/virtio_blk.ko
`,
		Options: []Option{
			{Name: "t", Help: "show the modules that taint the kernel, with their flags"},
			{Name: "s", Arg: "MODULE", Help: "load MODULE's debug object (the operand, or found in the default directories)"},
			{Name: "S", Help: "load the debug objects of every module found under DIRECTORY"},
		},
		MaxArgs: 1,
		Run:     runMod,
	}
}

// modJSON is one module as mod --json shows it.
type modJSON struct {
	Name     string   `json:"name"`
	Module   uint64   `json:"module"` // the struct module
	Base     uint64   `json:"base"`
	Size     uint64   `json:"size"`
	State    string   `json:"state"`
	Taints   string   `json:"taints,omitempty"`
	Refcount int64    `json:"refcount"`
	UsedBy   []string `json:"used_by,omitempty"`
	Symbols  int      `json:"symbols"`
	Error    string   `json:"error,omitempty"`
}

func runMod(ctx *Context) error {
	k, err := ctx.Session.Kernel()
	if err != nil {
		return err
	}
	mods, err := k.Modules()
	if err != nil && len(mods) == 0 {
		return err
	}
	list := append([]kernel.Module(nil), mods...)
	sort.SliceStable(list, func(i, j int) bool { return list[i].Addr < list[j].Addr })
	var missing []string
	name, one := ctx.Opts.Value("s")
	switch {
	case one || ctx.Opts.Has("S"):
		var dirs []string
		file := ""
		switch {
		case one && len(ctx.Args) == 1:
			file = ctx.Args[0]
		case len(ctx.Args) == 1:
			dirs = []string{ctx.Args[0]}
		default:
			rel := k.VMCoreInfo().OSRelease()
			dirs = []string{"/usr/lib/debug/lib/modules/" + rel, "/lib/modules/" + rel}
		}
		var sel []kernel.Module
		for _, m := range list {
			if !one || m.Name == name {
				sel = append(sel, m)
			}
		}
		if len(sel) == 0 {
			return fmt.Errorf("%s: no such module is loaded", name)
		}
		if missing, err = ctx.Session.loadModuleObjects(k, sel, file, dirs); err != nil {
			return err
		}
		// crash lists the modules in order, saying in its place which
		// it found no object for.
		list = sel
	case len(ctx.Args) > 0:
		return usagef("a file or directory goes with -s or -S")
	}
	if ctx.Opts.Has("t") {
		var tainted []kernel.Module
		for _, m := range list {
			if m.TaintString() != "" {
				tainted = append(tainted, m)
			}
		}
		list = tainted
	}
	if ctx.JSON {
		out := []modJSON{}
		for _, m := range list {
			j := modJSON{Name: m.Name, Module: m.Addr, Base: m.Base, Size: m.Size, State: m.State.String(),
				Taints: m.TaintString(), Refcount: m.Refcount, UsedBy: m.UsedBy, Symbols: len(m.Symbols)}
			if m.Err != nil {
				j.Error = m.Err.Error()
			}
			out = append(out, j)
		}
		return writeJSON(ctx, out)
	}
	if ctx.Opts.Has("t") {
		if len(list) == 0 {
			fmt.Fprintln(ctx.Out, "no tainted modules")
			return nil
		}
		width := len("NAME")
		for _, m := range list {
			width = max(width, len(m.Name))
		}
		fmt.Fprintf(ctx.Out, "%-*s  TAINTS\n", width, "NAME")
		for _, m := range list {
			fmt.Fprintf(ctx.Out, "%-*s  %s\n", width, m.Name, m.TaintString())
		}
		return nil
	}
	// crash's column widths: the longest name, the widest size (at least
	// five digits); MODULE and BASE centred over 16 hex digits.
	nameW, sizeW := len("NAME"), 5
	for _, m := range list {
		nameW = max(nameW, len(m.Name))
		sizeW = max(sizeW, len(strconv.FormatUint(m.Size, 10)))
	}
	// crash names the column after what it holds: the core layout's base
	// before 6.4, the text region's (mem[MOD_TEXT]) since.
	baseHead := "BASE"
	if mem, err := k.ModuleMemRegions(); err == nil && mem {
		baseHead = "TEXT_BASE"
	}
	fmt.Fprintf(ctx.Out, "%s  %-*s  %s  %*s  OBJECT FILE\n", center(16, "MODULE", false), nameW, "NAME", center(16, baseHead, false), sizeW, "SIZE")
	failed := map[string]bool{}
	for _, n := range missing {
		failed[n] = true
	}
	for _, m := range list {
		if failed[m.Name] {
			fmt.Fprintf(ctx.Out, "mod: cannot find or load object file for %s module\n", m.Name)
			continue
		}
		obj := "(not loaded)  [CONFIG_KALLSYMS]"
		if p, ok := ctx.Session.modObjects[m.Name]; ok {
			obj = p + " "
		}
		fmt.Fprintf(ctx.Out, "%016x  %-*s  %016x  %*d  %s\n", m.Addr, nameW, m.Name, m.Base, sizeW, m.Size, obj)
	}
	return nil
}

// loadModuleObjects loads the DWARF of the modules' debug objects (file
// for a single module, else NAME.ko found under dirs, "-" and "_" alike)
// and adds their types to the kernel's; it returns the modules it found
// no object for.
func (s *Session) loadModuleObjects(k *kernel.Kernel, mods []kernel.Module, file string, dirs []string) (missing []string, err error) {
	if s.modObjects == nil {
		s.modObjects = map[string]string{}
	}
	found := map[string]string{}
	if file != "" {
		found[mods[0].Name] = file
	} else {
		want := map[string]bool{}
		for _, m := range mods {
			want[m.Name] = true
		}
		for _, dir := range dirs {
			filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
				if err != nil || e.IsDir() {
					return nil
				}
				base := strings.TrimSuffix(e.Name(), ".ko")
				if base == e.Name() {
					return nil
				}
				n := strings.ReplaceAll(base, "-", "_")
				if want[n] && found[n] == "" {
					found[n] = p
				}
				return nil
			})
		}
	}
	var types []debuginfo.Types
	for _, m := range mods {
		p, ok := found[m.Name]
		if !ok {
			missing = append(missing, m.Name)
			continue
		}
		t, err := debuginfo.LoadDWARFModule(p)
		if err != nil {
			if file != "" {
				return nil, err
			}
			missing = append(missing, m.Name)
			continue
		}
		types = append(types, t)
		s.modObjects[m.Name] = p
	}
	if len(types) > 0 {
		k.Types = debuginfo.WithFallback(k.Types, func() []debuginfo.Types { return types })
	}
	return missing, nil
}
