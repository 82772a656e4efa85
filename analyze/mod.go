package analyze

import (
	"fmt"
	"sort"
	"strconv"

	"salvage/kernel"
)

func modCommand() *Command {
	return &Command{
		Name:    "mod",
		Aliases: []string{"lsmod"},
		Summary: "list the loaded kernel modules",
		Usage:   "[-t]",
		Help: `Lists the loaded modules as crash's mod does: the struct module's address,
the name, the base of the module's text, its size, and its object file
("(not loaded)": salvage reads each module's symbols from the dump's
kallsyms). -t lists the tainted modules with their taint flags.

Examples:
  mod
  mod -t
  mod --json
`,
		Options: []Option{{Name: "t", Help: "show the modules that taint the kernel, with their flags"}},
		MaxArgs: 0,
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
	fmt.Fprintf(ctx.Out, "%s  %-*s  %s  %*s  OBJECT FILE\n", center(16, "MODULE", false), nameW, "NAME", center(16, "BASE", false), sizeW, "SIZE")
	for _, m := range list {
		fmt.Fprintf(ctx.Out, "%016x  %-*s  %016x  %*d  (not loaded)  [CONFIG_KALLSYMS]\n", m.Addr, nameW, m.Name, m.Base, sizeW, m.Size)
	}
	return nil
}
