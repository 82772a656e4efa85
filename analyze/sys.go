package analyze

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"salvage/debuginfo"

	"salvage/dump"
	"salvage/kernel"
)

func sysCommand() *Command {
	return &Command{
		Name:    "sys",
		Summary: "show system data",
		Usage:   "[-t | -i | -c [NAME | NUMBER] ...]",
		Help: `Prints the system data crash prints on start-up and for sys: the kernel
and dump files, number of CPUs, the date of the dump, the uptime, the load
average, the number of tasks, the node name, release, version and machine
(with the CPU clock), the memory size and the panic message. [TAINTED]
follows KERNEL when the kernel is tainted, [PARTIAL DUMP] follows a
kdump-compressed DUMPFILE that makedumpfile filtered.

-t prints the taint mask and its flags, as the kernel's taint_flags table
spells them (O: out-of-tree module, E: unsigned module…). -i prints the
firmware's DMI strings the kernel kept (dmi_ident[], named by enum
dmi_field): BIOS, system, board and chassis. -c prints the system call
table (sys_call_table): each number, its function and, with the
vmlinux, the source file and line that define it; with NAMEs (any part
of a function's name) or NUMBERs, only those calls.

The PANIC message is the first line of the kernel log containing one of
crash's panic strings ("Kernel panic - ", "Oops: ", "BUG: unable to handle
kernel "…), empty when none does (a dump of a live system). DATE is in
UTC; crash uses the local time zone. Without a vmlinux, KERNEL says that
the symbols and types come from the dump.

--json prints the same fields as one object, with the panic task (PID,
command, task address, CPU, state) found from panic_cpu's running task.

Examples:
  sys
  sys -t
  sys -i
  sys -c
  sys -c read
  sys -c 59
`,
		Options: []Option{
			{Name: "t", Help: "the taint mask and its flags"},
			{Name: "i", Help: "the firmware's DMI strings"},
			{Name: "c", Help: "the system call table, or the calls named or numbered"},
		},
		MaxArgs: -1,
		Run:     runSys,
	}
}

// sysJSON is sys --json's document.
type sysJSON struct {
	Kernel      string   `json:"kernel"`
	Tainted     bool     `json:"tainted"`
	DumpFiles   []string `json:"dumpfiles"`
	Partial     bool     `json:"partial_dump"`
	Incomplete  bool     `json:"incomplete,omitempty"`
	CPUs        int      `json:"cpus"`
	OfflineCPUs int      `json:"offline_cpus,omitempty"`
	Date        int64    `json:"date"` // seconds since the epoch
	DateText    string   `json:"date_text"`
	Uptime      string   `json:"uptime"`
	UptimeSec   uint64   `json:"uptime_seconds"`
	LoadAverage string   `json:"load_average"`
	Tasks       int      `json:"tasks"`
	Nodename    string   `json:"nodename"`
	Release     string   `json:"release"`
	Version     string   `json:"version"`
	Machine     string   `json:"machine"`
	MHz         uint64   `json:"mhz"`
	Memory      string   `json:"memory"`
	MemoryBytes uint64   `json:"memory_bytes"`
	Panic       string   `json:"panic"`
	TaintedMask uint64   `json:"tainted_mask"`
	TaintFlags  string   `json:"taint_flags"`
	PanicTask   *struct {
		PID     int64  `json:"pid"`
		Command string `json:"command"`
		Task    string `json:"task"`
		CPU     int    `json:"cpu"`
		State   string `json:"state"`
	} `json:"panic_task,omitempty"`
}

// sysKernelNone is KERNEL when no vmlinux was given; crash needs one.
const sysKernelNone = "(none: symbols from the dump's kallsyms, types from its BTF)"

func runSys(ctx *Context) error {
	k, err := ctx.Session.Kernel()
	if err != nil {
		return err
	}
	mask, err := k.TaintedMask()
	if err != nil {
		return fmt.Errorf("tainted_mask: %w", err)
	}
	flags, err := k.TaintFlags(mask)
	if err != nil {
		return err
	}
	if ctx.Opts.Has("t") && !ctx.JSON {
		fmt.Fprintf(ctx.Out, "TAINTED_MASK: %x  %s\n", mask, flags)
		return nil
	}
	if ctx.Opts.Has("i") {
		return writeDMI(ctx, k)
	}
	if ctx.Opts.Has("c") {
		return writeSysCalls(ctx, k)
	}
	if len(ctx.Args) > 0 {
		return usagef("operands are system calls, for -c")
	}
	s, err := gatherSys(ctx, k)
	if err != nil {
		return err
	}
	s.TaintedMask, s.TaintFlags, s.Tainted = mask, flags, mask != 0
	if ctx.JSON {
		return writeJSON(ctx, s)
	}
	writeSys(ctx.Out, ctx.Session.Dump, s)
	return nil
}

func gatherSys(ctx *Context, k *kernel.Kernel) (*sysJSON, error) {
	d := ctx.Session.Dump
	s := &sysJSON{Kernel: ctx.Session.Vmlinux}
	if s.Kernel == "" {
		s.Kernel = sysKernelNone
	}
	if d.Format == dump.FormatSplit && len(d.Parts) > 0 {
		for _, p := range d.Parts {
			s.DumpFiles = append(s.DumpFiles, p.Path)
		}
	} else {
		s.DumpFiles = []string{d.Path}
	}
	// crash marks kdump-compressed dumps with a dump level as partial
	// (is_partial_diskdump); its ELF reader does not look.
	s.Partial = d.Inner == dump.FormatKdump && d.DumpLevel > 0
	s.Incomplete = d.Incomplete
	var err error
	if s.CPUs, err = k.CPUsPresent(); err != nil || s.CPUs == 0 {
		s.CPUs = d.CPUs
	}
	if on, err := k.CPUsOnline(); err == nil && on < s.CPUs {
		s.OfflineCPUs = s.CPUs - on
	}
	if s.Date, err = k.Date(); err != nil {
		return nil, fmt.Errorf("date: %w", err)
	}
	s.DateText = crashDate(s.Date)
	hz := k.HZ()
	j, err := k.UptimeJiffies(hz)
	if err != nil {
		return nil, fmt.Errorf("uptime: %w", err)
	}
	s.Uptime = formatJiffies(j, hz)
	s.UptimeSec = j / uint64(hz)
	avg, err := k.LoadAverage()
	if err != nil {
		return nil, fmt.Errorf("load average: %w", err)
	}
	s.LoadAverage = loadAverage(avg)
	// TASKS counts what can be read, as crash's task table does.
	tasks, err := k.TaskTable()
	if err != nil && len(tasks) == 0 {
		return nil, err
	}
	s.Tasks = len(tasks)
	uts, err := k.UTSName()
	if err != nil {
		return nil, err
	}
	s.Nodename, s.Release, s.Version, s.Machine = uts.Nodename, uts.Release, uts.Version, uts.Machine
	if khz, err := k.CPUKHz(); err == nil {
		s.MHz = khz / 1000
	}
	if s.MemoryBytes, err = k.MemoryBytes(); err != nil {
		return nil, fmt.Errorf("memory size: %w", err)
	}
	s.Memory = memorySize(s.MemoryBytes)
	s.Panic = panicMessage(k)
	if pt := k.PanickedTask(); pt != 0 {
		for i := range tasks {
			if t := &tasks[i]; t.Task == pt {
				s.PanicTask = &struct {
					PID     int64  `json:"pid"`
					Command string `json:"command"`
					Task    string `json:"task"`
					CPU     int    `json:"cpu"`
					State   string `json:"state"`
				}{t.PID, t.Comm, fmt.Sprintf("%x", t.Task), t.CPU, kernel.StateCode(t.State)}
				break
			}
		}
	}
	return s, nil
}

// writeSys prints crash's display_sys_stats (crash's kernel.c).
func writeSys(w io.Writer, d *dump.File, s *sysJSON) {
	tainted := ""
	if s.Tainted {
		tainted = "  [TAINTED]"
	}
	fmt.Fprintf(w, "      KERNEL: %s%s\n", s.Kernel, tainted)
	if len(s.DumpFiles) > 1 || d.Format == dump.FormatSplit {
		// show_split_dumpfiles: one file a line, each marked.
		fmt.Fprint(w, "   DUMPFILES: ")
		for i, p := range s.DumpFiles {
			if i > 0 {
				fmt.Fprint(w, "\n              ")
			}
			fmt.Fprint(w, p)
			if s.Partial {
				fmt.Fprint(w, " [PARTIAL DUMP]")
			}
			if s.Incomplete {
				fmt.Fprint(w, " [INCOMPLETE]")
			}
		}
		fmt.Fprintln(w)
	} else {
		fmt.Fprintf(w, "    DUMPFILE: %s", s.DumpFiles[0])
		if d.Inner == dump.FormatKdump && (s.Partial || s.Incomplete) {
			fmt.Fprint(w, " ")
			if s.Partial {
				fmt.Fprint(w, " [PARTIAL DUMP]")
			}
			if s.Incomplete {
				fmt.Fprint(w, " [INCOMPLETE]")
			}
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "        CPUS: %d", s.CPUs)
	if s.OfflineCPUs > 0 {
		fmt.Fprintf(w, " [OFFLINE: %d]", s.OfflineCPUs)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "        DATE: %s\n", s.DateText)
	fmt.Fprintf(w, "      UPTIME: %s\n", s.Uptime)
	fmt.Fprintf(w, "LOAD AVERAGE: %s\n", s.LoadAverage)
	fmt.Fprintf(w, "       TASKS: %d\n", s.Tasks)
	fmt.Fprintf(w, "    NODENAME: %s\n", s.Nodename)
	fmt.Fprintf(w, "     RELEASE: %s\n", s.Release)
	fmt.Fprintf(w, "     VERSION: %s\n", s.Version)
	if s.MHz > 0 {
		fmt.Fprintf(w, "     MACHINE: %s  (%d Mhz)\n", s.Machine, s.MHz)
	} else {
		fmt.Fprintf(w, "     MACHINE: %s  (unknown Mhz)\n", s.Machine)
	}
	fmt.Fprintf(w, "      MEMORY: %s\n", s.Memory)
	oops := ""
	if strings.Contains(s.Panic, "Oops: ") {
		oops = " (check log for details)"
	}
	fmt.Fprintf(w, "       PANIC: \"%s\"%s\n", s.Panic, oops)
}

// writeDMI prints sys -i as crash's dump_dmi_info does: each set
// string under its enum dmi_field name, the names right-aligned.
func writeDMI(ctx *Context, k *kernel.Kernel) error {
	fields, err := k.DMI()
	if err != nil {
		return err
	}
	if ctx.JSON {
		m := map[string]string{}
		for _, f := range fields {
			if f.Set {
				m[f.Name] = f.Value
			}
		}
		return writeJSON(ctx, map[string]any{"dmi": m})
	}
	width := 0
	for _, f := range fields {
		width = max(width, len(f.Name))
	}
	for _, f := range fields {
		if f.Set {
			fmt.Fprintf(ctx.Out, "  %*s: %s\n", width, f.Name, f.Value)
		}
	}
	return nil
}

// sysCallJSON is one system call of sys -c --json.
type sysCallJSON struct {
	Number   int    `json:"number"`
	Function string `json:"function"`
	File     string `json:"file,omitempty"`
	Line     int    `json:"line,omitempty"`
}

// writeSysCalls prints sys -c as crash's dump_sys_call_table does: every
// entry of sys_call_table (its length from the DWARF array type, else
// the distance to the next symbol) with the function's name, sys_ni_syscall
// for unimplemented ones, and the first source line in its body that is
// not in an include/ header, relative to the build directory (the
// directory of schedule()'s file above kernel/), as "../FILE: LINE".
// Operands pick calls by number, or by a part of the function's name.
func writeSysCalls(ctx *Context, k *kernel.Kernel) error {
	syms, err := ctx.symbols()
	if err != nil {
		return err
	}
	table, ok := syms.Lookup("sys_call_table")
	if !ok {
		return errors.New("sys_call_table is not in the symbols")
	}
	n := 0
	if ts, err := ctx.types(); err == nil {
		if t, err := ts.Var("sys_call_table"); err == nil {
			if r := t.Resolve(); r != nil && r.Kind == debuginfo.KindArray && r.Len > 0 {
				n = int(r.Len)
			}
		}
	}
	if n == 0 {
		next, _, ok := syms.ByAddr(table.Addr + table.Size)
		if table.Size > 0 {
			n = int(table.Size / 8)
		} else if ok && next.Addr > table.Addr {
			n = int((next.Addr - table.Addr) / 8)
		} else {
			n = 256
		}
	}
	if n <= 0 || n > 4096 {
		return fmt.Errorf("sys_call_table: implausible length %d", n)
	}
	raw := make([]byte, 8*n)
	if err := k.Read(raw, table.Addr); err != nil {
		return fmt.Errorf("sys_call_table: %w", err)
	}
	var ni uint64
	if s, ok := syms.Lookup("sys_ni_syscall"); ok {
		ni = s.Addr
	}
	buildDir := ""
	if s, ok := syms.Lookup("schedule"); ok {
		if f, _, ok := k.SourceLine(s.Addr); ok {
			if i := strings.Index(f, "/kernel/"); i >= 0 {
				buildDir = f[:i]
			}
		}
	}
	if buildDir == "" && !ctx.JSON {
		// crash says so too, and prints no FILE AND LINE NUMBER.
		fmt.Fprintln(ctx.Out, "sys: line numbers are not available")
	}
	var calls []sysCallJSON
	for i := 0; i < n; i++ {
		addr := binary.LittleEndian.Uint64(raw[8*i:])
		sym, off, ok := crashByAddr(syms, addr)
		if !ok || off != 0 || addr == 0 || !strings.ContainsRune("tTwW", rune(sym.Type)) {
			// crash's value_symbol names only exact addresses of kernel
			// symbols; without the DWARF length the table's end is
			// guessed long, and what follows it is no function.
			continue
		}
		c := sysCallJSON{Number: i, Function: sym.Name}
		if ni != 0 && addr == ni {
			c.Function = "sys_ni_syscall"
		}
		if buildDir != "" {
			end := addr + 4096
			if sym.Size > 0 {
				end = addr + sym.Size
			}
			if next, _, ok := syms.ByAddr(end); ok && next.Addr > addr && next.Addr < end {
				end = next.Addr
			}
			for a := addr; a < end; a++ {
				f, l, ok := k.SourceLine(a)
				if !ok {
					continue
				}
				if strings.HasSuffix(f, ".h") && strings.Contains(f, "include/") {
					continue
				}
				if strings.Contains(f, buildDir) {
					c.File, c.Line = ".."+f[strings.Index(f, buildDir)+len(buildDir):], l
					break
				}
			}
		}
		calls = append(calls, c)
	}
	if len(ctx.Args) > 0 {
		var picked []sysCallJSON
		for _, a := range ctx.Args {
			if isDecimal(a) {
				num, _ := strconv.Atoi(a)
				for _, c := range calls {
					if c.Number == num {
						picked = append(picked, c)
						break
					}
				}
				continue
			}
			for _, c := range calls {
				if strings.Contains(c.Function, a) {
					picked = append(picked, c)
				}
			}
		}
		calls = picked
	}
	if ctx.JSON {
		if calls == nil {
			calls = []sysCallJSON{}
		}
		return writeJSON(ctx, map[string]any{"syscalls": calls})
	}
	fmt.Fprintln(ctx.Out, "NUM  SYSTEM CALL                FILE AND LINE NUMBER")
	for _, c := range calls {
		fmt.Fprintf(ctx.Out, "%3d  %-26s ", c.Number, c.Function)
		if c.File != "" {
			fmt.Fprintf(ctx.Out, "%s: %d", c.File, c.Line)
		}
		fmt.Fprintln(ctx.Out)
	}
	return nil
}

// crashDate is ctime_tz's "%a %b %e %T %Z %Y", in UTC.
func crashDate(sec int64) string {
	return time.Unix(sec, 0).UTC().Format("Mon Jan _2 15:04:05 MST 2006")
}

// loadAverage is crash's get_loadavg: each avenrun value (FSHIFT 11)
// rounded to hundredths.
func loadAverage(avg [3]uint64) string {
	const fshift, fixed1 = 11, 1 << 11
	var parts []string
	for _, a := range avg {
		a += fixed1 / 200
		parts = append(parts, fmt.Sprintf("%d.%02d", a>>fshift, (a&(fixed1-1))*100>>fshift))
	}
	return strings.Join(parts, ", ")
}

// memorySize is crash's get_memory_size: the total, rounded up to the
// next GiB when within 64 MiB of it, in crash's pages_to_size units.
func memorySize(total uint64) string {
	const gb, mb = 1 << 30, 1 << 20
	if next := (total + gb - 1) / gb * gb; next-total <= 64*mb {
		total = next
	}
	var s string
	switch {
	case total == 0:
		return "0"
	case total >= gb:
		s = fmt.Sprintf("%.1f GB", float64(total)/gb)
	case total >= mb:
		s = fmt.Sprintf("%.1f MB", float64(total)/mb)
	default:
		return fmt.Sprintf("%d KB", total/1024)
	}
	return strings.Replace(s, ".0 ", " ", 1)
}

// panicStrings are crash's panic_msg[] (crash's task.c), in its order of
// preference: the first string found in any log line picks that line.
var panicStrings = []string{
	"SysRq : Crash",
	"SysRq : Trigger a crash",
	"SysRq : Netdump",
	"Kernel panic: ",
	"Kernel panic - ",
	"Kernel BUG at",
	"kernel BUG at",
	"Unable to handle kernel paging request",
	"Unable to handle kernel NULL pointer dereference",
	"BUG: unable to handle kernel ",
	"general protection fault: ",
	"double fault: ",
	"divide error: ",
	"stack segment: ",
	"[Hardware Error]: ",
	"Bad mode in ",
	"Oops: ",
}

// panicMessage is the PANIC line's text as crash's get_panicmsg finds it
// in the log's text lines; "" when no line has a panic string or the
// log cannot be read.
func panicMessage(k *kernel.Kernel) string {
	recs, err := k.Log()
	if err != nil {
		return ""
	}
	var lines []string
	for _, r := range recs {
		lines = append(lines, strings.Split(r.Text, "\n")...)
	}
	for _, p := range panicStrings {
		for _, l := range lines {
			if strings.Contains(l, p) {
				return l
			}
		}
	}
	return ""
}
