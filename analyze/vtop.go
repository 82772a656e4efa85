package analyze

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"salvage/arch"
	"salvage/arch/amd64"
	"salvage/kernel"
)

func vtopCommand() *Command {
	return &Command{
		Name:    "vtop",
		Summary: "translate a kernel virtual address to a physical one",
		Usage:   "ADDRESS ...",
		Help: `Walks the kernel page tables for each ADDRESS (hexadecimal) as crash's
vtop does: the physical address, every page-table entry visited, the
mapping entry's flags, and the struct page of the physical page.

User-space addresses (below 0x800000000000) are not translated yet:
they are reported as crash reports an address outside the current
task's memory, "(not accessible)".

--json prints the translation: the entries visited, the page size, the
physical address and the page descriptor.

Examples:
  vtop ffffffff89f1ffe0
`,
		MinArgs: 1,
		MaxArgs: -1,
		Run:     runVtop,
	}
}

// vtopJSON is one address of vtop --json.
type vtopJSON struct {
	Virtual  uint64      `json:"virtual"`
	Physical *uint64     `json:"physical"` // null when not mapped
	PageSize uint64      `json:"page_size,omitempty"`
	Steps    []arch.Step `json:"steps"`
	Page     *pageJSON   `json:"page,omitempty"`
	Error    string      `json:"error,omitempty"`
}

type pageJSON struct {
	Address  uint64   `json:"address"`
	Physical uint64   `json:"physical"`
	Mapping  uint64   `json:"mapping"`
	Index    uint64   `json:"index"`
	Count    int64    `json:"count"`
	Flags    uint64   `json:"flags"`
	Names    []string `json:"flag_names"`
}

func runVtop(ctx *Context) error {
	k, err := ctx.Session.Kernel()
	if err != nil {
		return err
	}
	var all []vtopJSON
	for i, a := range ctx.Args {
		addr, err := parseHex("address", a)
		if err != nil {
			return err
		}
		tr, terr := k.Arch.VirtToPhys(addr)
		j := vtopJSON{Virtual: addr, Steps: tr.Steps}
		if j.Steps == nil {
			j.Steps = []arch.Step{}
		}
		if terr == nil {
			p := tr.Phys
			j.Physical, j.PageSize = &p, tr.PageSize
			if pg, err := readPage(k, tr.Phys); err == nil {
				j.Page = pg
			}
		} else {
			j.Error = terr.Error()
		}
		all = append(all, j)
		if ctx.JSON {
			continue
		}
		if i > 0 {
			fmt.Fprintln(ctx.Out)
		}
		if addr < 1<<47 {
			// A user address: crash looks in the current task's VMAs,
			// which salvage does not model yet, so it is reported as
			// crash reports an address outside them (x86_64's
			// UVADDR_PRLEN is 10).
			fmt.Fprintf(ctx.Out, "%-10s  %-16s\n%-10x  (not accessible)\n\n", "VIRTUAL", "PHYSICAL", addr)
			continue
		}
		writeVtop(ctx.Out, k, j, terr, !ctx.Session.pageHeaderDone)
		if j.Page != nil {
			ctx.Session.pageHeaderDone = true
		}
	}
	if ctx.JSON {
		return writeJSON(ctx, all)
	}
	return nil
}

// writeVtop prints one translation as crash's do_vtop and x86_64_kvtop
// (x86_64.c) do.
func writeVtop(w io.Writer, k *kernel.Kernel, j vtopJSON, terr error, pageHeader bool) {
	fmt.Fprintf(w, "%-16s  %-16s\n", "VIRTUAL", "PHYSICAL")
	if j.Physical != nil {
		fmt.Fprintf(w, "%-16x  %-16x\n\n", j.Virtual, *j.Physical)
	} else {
		var ae *amd64.Error
		if errors.As(terr, &ae) && !ae.NotPresent && len(j.Steps) == 0 {
			fmt.Fprintf(w, "%-8x  (not a kernel virtual address)\n\n", j.Virtual)
			return
		}
		fmt.Fprintf(w, "%-16x  (not mapped)\n\n", j.Virtual)
	}
	if rt, ok := k.Arch.(interface{ Root() (uint64, uint64) }); ok {
		_, virt := rt.Root()
		fmt.Fprintf(w, "PGD DIRECTORY: %x\n", virt)
	}
	var leaf uint64
	for i, s := range j.Steps {
		if i == 0 {
			fmt.Fprintf(w, "PAGE DIRECTORY: %x\n", s.Entry)
		} else {
			fmt.Fprintf(w, "   %s: %x => %x\n", s.Level, s.Addr, s.Entry)
		}
		leaf = s.Entry
	}
	if j.Physical == nil {
		if leaf != 0 && len(j.Steps) > 0 && j.Steps[len(j.Steps)-1].Level == "PTE" {
			fmt.Fprintln(w)
			writePTE(w, leaf)
		}
		fmt.Fprintln(w)
		return
	}
	base := *j.Physical &^ (j.PageSize - 1)
	switch j.PageSize {
	case 1 << 30:
		fmt.Fprintf(w, "  PAGE: %x  (1GB)\n\n", base)
	case 2 << 20:
		fmt.Fprintf(w, "  PAGE: %x  (2MB)\n\n", base)
	default:
		fmt.Fprintf(w, "  PAGE: %x\n\n", base)
	}
	writePTE(w, leaf)
	fmt.Fprintln(w)
	if j.Page != nil {
		writePage(w, j.Page, pageHeader)
	}
}

// writePTE is crash's x86_64_translate_pte for a present entry.
func writePTE(w io.Writer, pte uint64) {
	const physMask = 0x000ffffffffff000
	ptebuf := fmt.Sprintf("%x", pte)
	physbuf := fmt.Sprintf("%x", pte&physMask)
	l1, l2 := max(len(ptebuf), 3), max(len(physbuf), 8)
	fmt.Fprintf(w, "%s  %s  FLAGS\n", center(l1, "PTE", false), center(l2, "PHYSICAL", false))
	names := "no mapping"
	if pte != 0 {
		names = amd64.FlagNames(pte)
	}
	fmt.Fprintf(w, "%s  %s  (%s)\n", center(l1, ptebuf, true), center(l2, physbuf, true), names)
}

// center is crash's mkstring with CENTER: an odd padding goes to the
// right (LJUST) or to the left (RJUST).
func center(width int, s string, rjust bool) string {
	extra := width - len(s)
	if extra <= 0 {
		return s
	}
	left, right := extra/2, extra/2
	if extra%2 == 1 {
		if rjust {
			left++
		} else {
			right++
		}
	}
	return strings.Repeat(" ", left) + s + strings.Repeat(" ", right)
}

// readPage reads the struct page of the physical page holding phys, as
// crash's dump_mem_map shows it: the page's address in the vmemmap, its
// mapping, index, reference count and flags named by the kernel's own
// pageflag_names table.
func readPage(k *kernel.Kernel, phys uint64) (*pageJSON, error) {
	if k.Types == nil {
		return nil, errors.New("no types")
	}
	t, err := k.Types.Struct("page")
	if err != nil {
		return nil, err
	}
	pfn := phys >> 12
	pp := k.Arch.Layout().VmemmapStart + pfn*uint64(t.Size)
	v := k.Object(pp, t)
	pg := &pageJSON{Address: pp, Physical: pfn << 12}
	f, err := v.Member("flags")
	if err != nil {
		return nil, err
	}
	if pg.Flags, err = f.Uint(); err != nil {
		return nil, err
	}
	if m, err := v.Member("mapping"); err == nil {
		pg.Mapping, _ = m.Uint()
	}
	if m, err := v.Member("index"); err == nil {
		pg.Index, _ = m.Uint()
	}
	if m, err := v.Member("_refcount.counter"); err == nil {
		pg.Count, _ = m.Int()
	}
	pg.Names = pageFlagNames(k, pg.Flags)
	return pg, nil
}

// pageFlagNames names the bits of flags with the kernel's pageflag_names
// (struct trace_print_flags {unsigned long mask; const char *name;},
// ended by a NULL name; mm/debug.c), in the table's order as crash does.
func pageFlagNames(k *kernel.Kernel, flags uint64) []string {
	names := []string{}
	if flags == 0 || k.Symbols == nil {
		return names
	}
	s, ok := k.Symbols.Lookup("pageflag_names")
	if !ok {
		return names
	}
	for i := uint64(0); i < 64; i++ {
		mask, err1 := k.ReadPointer(s.Addr + 16*i)
		np, err2 := k.ReadPointer(s.Addr + 16*i + 8)
		if err1 != nil || err2 != nil || np == 0 {
			break
		}
		if flags&mask == 0 {
			continue
		}
		n, err := k.ReadCString(np, 64)
		if err != nil {
			break
		}
		names = append(names, n)
	}
	return names
}

// writePage prints the header and line of crash's dump_mem_map for one
// page (x86_64: VADDR_PRLEN 16; the PHYSICAL column 8 wide). crash
// prints that header once a session (its HEADER_PRINTED flag is not
// cleared between commands), so later vtops show the line alone.
func writePage(w io.Writer, pg *pageJSON, header bool) {
	if header {
		fmt.Fprintf(w, "%s %s %s %sCNT FLAGS\n", center(16, "PAGE", false), "PHYSICAL", center(16, "MAPPING", true), center(8, "INDEX", true))
	}
	fmt.Fprintf(w, "%-16x %8x %16x %8x %2d %x", pg.Address, pg.Physical, pg.Mapping, pg.Index, pg.Count, pg.Flags)
	for i, n := range pg.Names {
		if i == 0 {
			fmt.Fprint(w, " ")
		} else {
			fmt.Fprint(w, ",")
		}
		fmt.Fprint(w, n)
	}
	fmt.Fprintln(w)
}

func ptovCommand() *Command {
	return &Command{
		Name:    "ptov",
		Summary: "translate a physical address to its kernel direct-map address",
		Usage:   "PHYSICAL ...",
		Help: `Prints the kernel virtual address of each PHYSICAL address (hexadecimal)
in the kernel's direct map, as crash's ptov does.

--json prints the pairs.

Examples:
  ptov 2711ffe0
`,
		MinArgs: 1,
		MaxArgs: -1,
		Run:     runPtov,
	}
}

type ptovJSON struct {
	Virtual  uint64 `json:"virtual"`
	Physical uint64 `json:"physical"`
}

func runPtov(ctx *Context) error {
	k, err := ctx.Session.Kernel()
	if err != nil {
		return err
	}
	var all []ptovJSON
	for i, a := range ctx.Args {
		p, err := parseHex("physical address", a)
		if err != nil {
			return err
		}
		j := ptovJSON{Virtual: k.Arch.PhysToVirt(p), Physical: p}
		all = append(all, j)
		if ctx.JSON {
			continue
		}
		if i > 0 {
			fmt.Fprintln(ctx.Out)
		}
		fmt.Fprintf(ctx.Out, "%-16s  %-16s\n%-16x  %-16x\n", "VIRTUAL", "PHYSICAL", j.Virtual, j.Physical)
	}
	if ctx.JSON {
		return writeJSON(ctx, all)
	}
	return nil
}
