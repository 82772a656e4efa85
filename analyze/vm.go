package analyze

import (
	"fmt"
	"io"
	"strings"

	"salvage/kernel"
)

func init() { register(vmCommand) }

func vmCommand() *Command {
	return &Command{
		Name:    "vm",
		Summary: "show a task's address space: its mm_struct and VMAs",
		Usage:   "[-m|-v] [-x|-d] [PID|TASK]... | -f FLAGS",
		Help: `Shows, as crash's vm does, a task's mm_struct, page directory, resident
set size and total virtual size, then each of its VMAs (struct
vm_area_struct): its address, start and end, vm_flags in hexadecimal and
the path of the file it maps. The VMAs come from the mm's maple tree
(6.1+) or its mmap list (older kernels). Without an argument, shows the
current task (the panic task unless set chose another). -m shows the
whole mm_struct instead, -v each VMA's whole vm_area_struct (-x or -d
for hexadecimal or decimal numbers). -f names the bits of a vm_flags
value as crash does.

Examples:
  vm
  vm 1
  vm ffff8b917e904800
  vm -m 1
  vm -v -x 414
  vm -f 8100073
`,
		Options: []Option{
			{Name: "f", Arg: "FLAGS", Help: "translate a vm_flags value (hexadecimal) into its flag names"},
			{Name: "m", Help: "show the task's mm_struct"},
			{Name: "v", Help: "show each of the task's vm_area_structs"},
			{Name: "x", Help: "with -m or -v: numbers in hexadecimal"},
			{Name: "d", Help: "with -m or -v: numbers in decimal"},
		},
		MaxArgs: -1,
		Run:     runVM,
	}
}

// vmJSON is one task's address space as vm --json shows it.
type vmJSON struct {
	PID     int64     `json:"pid"`
	Task    uint64    `json:"task"`
	CPU     int       `json:"cpu"`
	Command string    `json:"command"`
	MM      uint64    `json:"mm"`
	PGD     uint64    `json:"pgd"`
	RSSKB   uint64    `json:"rss_kb"`
	TotalKB uint64    `json:"total_vm_kb"`
	VMAs    []vmaJSON `json:"vmas"`
}

type vmaJSON struct {
	VMA   uint64 `json:"vma"`
	Start uint64 `json:"start"`
	End   uint64 `json:"end"`
	Flags uint64 `json:"flags"`
	File  uint64 `json:"file,omitempty"`
	Path  string `json:"path,omitempty"`
	Error string `json:"error,omitempty"`
}

func runVM(ctx *Context) error {
	k, err := ctx.Session.Kernel()
	if err != nil {
		return err
	}
	if arg, ok := ctx.Opts.Value("f"); ok {
		if len(ctx.Args) > 0 {
			return usagef("-f takes a flags value, not a task")
		}
		flags, err := parseHex("vm_flags", arg)
		if err != nil {
			return err
		}
		names := vmFlagNames(k, flags)
		if ctx.JSON {
			return writeJSON(ctx, struct {
				Flags uint64   `json:"flags"`
				Names []string `json:"names"`
			}{flags, names})
		}
		fmt.Fprintf(ctx.Out, "%x: (%s)\n", flags, strings.Join(names, "|"))
		return nil
	}
	ops, invalid, err := taskOperands(ctx)
	if err != nil {
		return err
	}
	var js []vmJSON
	var firstErr error
	for i, op := range ops {
		t := op.task
		mm, err := k.MM(t.Task)
		if err != nil {
			return fmt.Errorf("vm of PID %d (task %#x): %w", t.PID, t.Task, err)
		}
		// crash's get_task_mem_usage, as ps shows it: pages to KiB.
		rss, total := t.RSS*4096/1024, t.TotalVM*4096/1024
		if mm.MM == 0 {
			rss, total = 0, 0
		}
		var vmas []kernel.VMA
		if mm.MM != 0 {
			if vmas, err = k.VMAs(mm.MM); err != nil {
				return fmt.Errorf("vm of PID %d: %w", t.PID, err)
			}
		}
		for _, v := range vmas {
			if v.Err != nil && firstErr == nil {
				firstErr = fmt.Errorf("PID %d: %w", t.PID, v.Err)
			}
		}
		if ctx.JSON {
			j := vmJSON{PID: t.PID, Task: t.Task, CPU: t.CPU, Command: t.Comm, MM: mm.MM, PGD: mm.PGD, RSSKB: rss, TotalKB: total, VMAs: []vmaJSON{}}
			for _, v := range vmas {
				vj := vmaJSON{VMA: v.Addr, Start: v.Start, End: v.End, Flags: v.Flags, File: v.File, Path: v.Path}
				if v.Err != nil {
					vj.Error = v.Err.Error()
				}
				j.VMAs = append(j.VMAs, vj)
			}
			js = append(js, j)
			continue
		}
		if i > 0 {
			fmt.Fprintln(ctx.Out)
		}
		writeTaskHeader(ctx.Out, &t, 0)
		if ctx.Opts.Has("m") || ctx.Opts.Has("v") {
			// crash's PRINT_MM_STRUCT and PRINT_VMA_STRUCTS: the objects
			// as its struct command prints them, nothing for a task
			// without an mm.
			if err := writeVMStructs(ctx, mm, vmas); err != nil {
				return err
			}
			continue
		}
		writeVM(ctx.Out, mm, rss, total, vmas)
	}
	if ctx.JSON {
		if js == nil {
			js = []vmJSON{}
		}
		// -m and -v's JSON is vm's: the same objects, by address.
		if err := writeJSON(ctx, js); err != nil {
			return err
		}
	}
	if err := invalidTasks(invalid); err != nil {
		return err
	}
	return firstErr
}

// writeVM prints an address space as crash's vm_area_dump does
// (memory.c: PRINT_VM_DATA, then PRINT_VMA_DATA per VMA, START and END
// right-justified over UVADDR_PRLEN, 10 columns on x86_64).
func writeVM(w io.Writer, mm kernel.MMInfo, rssKB, totalKB uint64, vmas []kernel.VMA) {
	fmt.Fprint(w, "       MM               PGD          RSS    TOTAL_VM\n")
	fmt.Fprintf(w, "%s  %s  %s  %s\n",
		center(16, fmt.Sprintf("%x", mm.MM), false), center(16, fmt.Sprintf("%x", mm.PGD), false),
		center(6, fmt.Sprintf("%dk", rssKB), false), center(8, fmt.Sprintf("%dk", totalKB), false))
	if mm.MM == 0 {
		return
	}
	fmt.Fprint(w, "      VMA           START       END     FLAGS FILE\n")
	for _, v := range vmas {
		path := v.Path
		if v.PathErr != nil {
			// A partial path would name the wrong file.
			path = "(unknown)"
		}
		fmt.Fprintf(w, "%s %10x %10x %6x %s\n", center(16, fmt.Sprintf("%x", v.Addr), false), v.Start, v.End, v.Flags, path)
	}
}

// vmFlagNames names the bits of flags as crash's do_vm_flags does
// (memory.c), with crash's own table of VM_* values: some bits have two
// names, chosen as crash chooses them — GROWSUP where the kernel has
// expand_upwards (else NOHUGEPAGE), PFNMAP for VM_SHM (every kernel
// after 2.6.17), HUGEPAGE where mm_struct has pmd_huge_pte (else
// MAPPED_COPY). Bits crash has no name for are not shown.
func vmFlagNames(k *kernel.Kernel, flags uint64) []string {
	type bit struct {
		mask uint64
		name string
	}
	growsup := "NOHUGEPAGE"
	if _, err := k.SymbolAddr("expand_upwards"); err == nil {
		growsup = "GROWSUP"
	}
	hugepage := "MAPPED_COPY"
	if v, err := k.ObjectOf(0, "struct mm_struct"); err == nil {
		if _, err := v.Member("pmd_huge_pte"); err == nil {
			hugepage = "HUGEPAGE"
		}
	}
	table := []bit{
		{0x1, "READ"}, {0x2, "WRITE"}, {0x4, "EXEC"}, {0x8, "SHARED"},
		{0x10, "MAYREAD"}, {0x20, "MAYWRITE"}, {0x40, "MAYEXEC"}, {0x80, "MAYSHARE"},
		{0x100, "GROWSDOWN"}, {0x200, growsup}, {0x400, "PFNMAP"}, {0x800, "DENYWRITE"},
		{0x1000, "EXECUTABLE"}, {0x2000, "LOCKED"}, {0x4000, "IO"}, {0x8000, "SEQ_READ"},
		{0x10000, "RAND_READ"}, {0x20000, "DONTCOPY"}, {0x40000, "DONTEXPAND"}, {0x80000, "RESERVED"},
		{0x400000, "HUGETLB"}, {0x100000, "ACCOUNT"}, {0x800000, "NONLINEAR"}, {0x1000000, hugepage},
		{0x2000000, "INSERTPAGE"}, {0x4000000, "ALWAYSDUMP"}, {0x8000000, "CAN_NONLINEAR"}, {0x10000000, "MIXEDMAP"},
		{0x20000000, "SAO"}, {0x40000000, "PFN_AT_MMAP"}, {0x80000000, "MERGEABLE"},
	}
	names := []string{}
	for _, b := range table {
		if flags&b.mask != 0 {
			names = append(names, b.name)
		}
	}
	return names
}

// writeVMStructs prints the mm_struct (-m) or every vm_area_struct (-v)
// of an address space as crash's struct command would.
func writeVMStructs(ctx *Context, mm kernel.MMInfo, vmas []kernel.VMA) error {
	if mm.MM == 0 {
		return nil
	}
	if ctx.Opts.Has("m") && ctx.Opts.Has("v") {
		return usagef("-m and -v exclude each other")
	}
	ts, err := ctx.types()
	if err != nil {
		return err
	}
	name := "vm_area_struct"
	if ctx.Opts.Has("m") {
		name = "mm_struct"
	}
	t, err := ts.Struct(name)
	if err != nil {
		return err
	}
	k, err := ctx.Session.Kernel()
	if err != nil {
		return err
	}
	p := &valuePrinter{k: k, hex: ctx.Opts.Last("x", "d") == "x"}
	if ctx.Opts.Has("m") {
		return writeObject(ctx, p, t, nil, mm.MM)
	}
	for _, v := range vmas {
		if err := writeObject(ctx, p, t, nil, v.Addr); err != nil {
			return err
		}
	}
	return nil
}
