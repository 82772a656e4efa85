package analyze

import (
	"fmt"
	"io"
	"strings"

	"salvage/debuginfo"
	"salvage/kernel"
)

func init() { register(devCommand) }

func devCommand() *Command {
	return &Command{
		Name:    "dev",
		Summary: "list the character and block device majors, or the I/O resources",
		Usage:   "[-i | -d | -D]",
		Help: `Lists the registered device numbers as crash's dev does. CHRDEV: each
character device range of the chrdevs[] hash (slot by slot, each chain in
order): its major, name, the struct cdev serving it and that cdev's
file_operations by symbol, or (none) when no cdev is registered for the
range's first minor. BLKDEV: the block majors heading the major_names[]
slots, with the first gendisk of the major among the block device inodes
and its block_device_operations. --json lists every block major,
including those further down a slot's chain, which crash leaves out.

-i shows the I/O port and I/O memory resource trees instead
(ioport_resource and iomem_resource, as /proc/ioports and /proc/iomem):
each struct resource's address, range and name, depth first.

-d shows each disk's requests in flight (ram and loop disks left out):
its major, gendisk, name, request_queue, and the reads and writes in
flight — for blk-mq queues, the busy tags of the hardware queues whose
request is in flight on the disk's queue. -D shows only the disks with
requests in flight.

Examples:
  dev
  dev -i
  dev -d
  dev --json
`,
		Options: []Option{
			{Name: "i", Help: "show the I/O port and I/O memory resources"},
			{Name: "d", Help: "show the disks' requests in flight"},
			{Name: "D", Help: "as -d, only the disks with requests in flight"},
		},
		Run: runDev,
	}
}

// devCharJSON is one character device range as dev --json shows it.
type devCharJSON struct {
	Major      uint32 `json:"major"`
	BaseMinor  uint32 `json:"baseminor"`
	MinorCount int32  `json:"minorct"`
	Name       string `json:"name"`
	Struct     uint64 `json:"char_device_struct"`
	Cdev       uint64 `json:"cdev,omitempty"`
	Ops        uint64 `json:"ops,omitempty"`
	OpsSymbol  string `json:"ops_symbol,omitempty"`
	Error      string `json:"error,omitempty"`
}

// devBlockJSON is one block major as dev --json shows it.
type devBlockJSON struct {
	Major     uint32 `json:"major"`
	Name      string `json:"name"`
	Struct    uint64 `json:"blk_major_name"`
	Chained   bool   `json:"chained,omitempty"`
	Gendisk   uint64 `json:"gendisk,omitempty"`
	Ops       uint64 `json:"ops,omitempty"`
	OpsSymbol string `json:"ops_symbol,omitempty"`
	Error     string `json:"error,omitempty"`
}

func runDev(ctx *Context) error {
	k, err := ctx.Session.Kernel()
	if err != nil {
		return err
	}
	if n := btoi(ctx.Opts.Has("i")) + btoi(ctx.Opts.Has("d")) + btoi(ctx.Opts.Has("D")); n > 1 {
		return usagef("-i, -d and -D go alone")
	}
	if ctx.Opts.Has("i") {
		return runDevIO(ctx, k)
	}
	if ctx.Opts.Has("d") || ctx.Opts.Has("D") {
		return runDevDisks(ctx, k, ctx.Opts.Has("D"))
	}
	chr, chrErr := k.CharDevices()
	if chrErr != nil && len(chr) == 0 {
		return chrErr
	}
	blk, blkErr := k.BlockMajors()
	if ctx.JSON {
		out := struct {
			Char  []devCharJSON  `json:"chrdev"`
			Block []devBlockJSON `json:"blkdev"`
			Error string         `json:"error,omitempty"`
		}{Char: []devCharJSON{}, Block: []devBlockJSON{}}
		for _, c := range chr {
			j := devCharJSON{Major: c.Major, BaseMinor: c.BaseMinor, MinorCount: c.MinorCount, Name: c.Name,
				Struct: c.Addr, Cdev: c.Cdev, Ops: c.Ops, Error: devErrString(c.Err)}
			if c.Ops != 0 {
				j.OpsSymbol = devSymbol(k.Symbols, c.Ops)
			}
			out.Char = append(out.Char, j)
		}
		for _, b := range blk {
			j := devBlockJSON{Major: b.Major, Name: b.Name, Struct: b.Addr, Chained: b.Chained,
				Gendisk: b.Gendisk, Ops: b.Ops, Error: devErrString(b.Err)}
			if b.Ops != 0 {
				j.OpsSymbol = devSymbol(k.Symbols, b.Ops)
			}
			out.Block = append(out.Block, j)
		}
		if err := devJoinErrs(chrErr, blkErr); err != nil {
			out.Error = err.Error()
		}
		return writeJSON(ctx, out)
	}
	// crash's layout (dev.c dump_chrdevs, dump_blkdevs_v3): the major in
	// 3 columns, the name in 13, then the 16-digit cdev or gendisk and
	// the operations' symbol; "(none)" centred where there is no cdev.
	fmt.Fprintf(ctx.Out, "CHRDEV    NAME           %s  %-16s\n", center(16, "CDEV", false), "OPERATIONS")
	for _, c := range chr {
		writeDevLine(ctx.Out, k.Symbols, c.Major, c.Name, c.Cdev, c.Ops)
		if c.Err != nil {
			fmt.Fprintf(ctx.Out, "dev: char_device_struct at %x: %v\n", c.Addr, c.Err)
		}
	}
	if chrErr != nil {
		fmt.Fprintf(ctx.Out, "dev: %v\n", chrErr)
	}
	fmt.Fprintln(ctx.Out)
	if blkErr != nil && len(blk) == 0 {
		return blkErr
	}
	fmt.Fprintf(ctx.Out, "BLKDEV    NAME           %s  %-16s\n", center(16, "GENDISK", true), "OPERATIONS")
	for _, b := range blk {
		if b.Chained {
			continue
		}
		name := b.Name
		if name == "" {
			name = "(unknown)"
		}
		writeDevLine(ctx.Out, k.Symbols, b.Major, name, b.Gendisk, b.Ops)
		if b.Err != nil && b.Gendisk == 0 {
			fmt.Fprintf(ctx.Out, "dev: blk_major_name at %x: %v\n", b.Addr, b.Err)
		}
	}
	return blkErr
}

// writeDevLine prints one CHRDEV or BLKDEV line as crash does.
func writeDevLine(w io.Writer, syms debuginfo.Symbols, major uint32, name string, obj, ops uint64) {
	if ops == 0 {
		fmt.Fprintf(w, " %3d      %-13s  %s\n", major, name, center(16, "(none)", false))
		return
	}
	fmt.Fprintf(w, " %3d      %-13s  %16x  %s\n", major, name, obj, devSymbol(syms, ops))
}

// devSymbol is crash's value_to_symstr of an operations pointer: the
// symbol, "+offset" (decimal) when inside it, else the bare hex value.
func devSymbol(syms debuginfo.Symbols, addr uint64) string {
	if syms != nil {
		if s, off, ok := crashByAddr(syms, addr); ok {
			if off != 0 {
				return fmt.Sprintf("%s+%d", s.Name, off)
			}
			return s.Name
		}
	}
	return fmt.Sprintf("%x", addr)
}

// devErrString is err's message, "" for nil.
func devErrString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// devJoinErrs joins the non-nil errors into one line.
func devJoinErrs(errs ...error) error {
	var msgs []string
	for _, e := range errs {
		if e != nil {
			msgs = append(msgs, e.Error())
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(msgs, "; "))
}

// devResourceJSON is one I/O resource as dev -i --json shows it.
type devResourceJSON struct {
	Resource uint64 `json:"resource"`
	Start    uint64 `json:"start"`
	End      uint64 `json:"end"`
	Name     string `json:"name"`
	Depth    int    `json:"depth"`
	Error    string `json:"error,omitempty"`
}

// runDevIO is dev -i: the ioport_resource tree, then iomem_resource's,
// as crash's do_io and do_resource_list print them.
func runDevIO(ctx *Context, k *kernel.Kernel) error {
	type tree struct {
		root string
		list []kernel.Resource
		err  error
	}
	trees := []tree{{root: "ioport_resource"}, {root: "iomem_resource"}}
	for i := range trees {
		trees[i].list, trees[i].err = k.Resources(trees[i].root)
		if trees[i].err != nil && len(trees[i].list) == 0 {
			return trees[i].err
		}
	}
	if ctx.JSON {
		out := map[string][]devResourceJSON{}
		for _, t := range trees {
			l := []devResourceJSON{}
			for _, r := range t.list {
				l = append(l, devResourceJSON{Resource: r.Addr, Start: r.Start, End: r.End, Name: r.Name, Depth: r.Depth, Error: devErrString(r.Err)})
			}
			out[strings.TrimSuffix(t.root, "_resource")] = l
		}
		return writeJSON(ctx, out)
	}
	for i, t := range trees {
		// The range's digits: 4 each for a tree ending at or below
		// 0xffff (the ports), else 8 (wider values just widen).
		size := 4
		if t.list[0].End > 0xffff {
			size = 8
		}
		if i > 0 {
			fmt.Fprintln(ctx.Out)
		}
		fmt.Fprintf(ctx.Out, "%s  %s  NAME\n", center(16, "RESOURCE", false), center(2*size+1, "RANGE", false))
		wrap := 16 + 2 + 2*size + 1 + 2
		for _, r := range t.list {
			name := r.Name
			if r.Err != nil && name == "" {
				name = "(unknown)"
			}
			fmt.Fprintf(ctx.Out, "%16x  %0*x-%0*x", r.Addr, size, r.Start, size, r.End)
			first, rest := devWrapName(name, wrap)
			fmt.Fprintf(ctx.Out, "  %s\n", first)
			if rest != "" {
				fmt.Fprintf(ctx.Out, "%s%s\n", strings.Repeat(" ", wrap), rest)
			}
		}
		if t.err != nil {
			fmt.Fprintf(ctx.Out, "dev: %v\n", t.err)
		}
	}
	return nil
}

// devWrapName splits a resource name that would pass column 80 as crash
// does: at the rightmost space that leaves the first part short enough,
// the rest going on the next line under the name column. A name without
// such a space is not split.
func devWrapName(name string, wrap int) (string, string) {
	excess := wrap + len(name) - 80
	if excess <= 0 {
		return name, ""
	}
	for i := len(name) - 1; i > 0; i-- {
		if name[i] == ' ' && len(name)-1-i >= excess {
			return name[:i], name[i+1:]
		}
	}
	return name, ""
}

// btoi is 1 for true.
func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// devDiskJSON is one disk as dev -d --json shows it.
type devDiskJSON struct {
	Major          int32   `json:"major"`
	Gendisk        uint64  `json:"gendisk"`
	Name           string  `json:"name"`
	RequestQueue   uint64  `json:"request_queue"`
	Total          uint64  `json:"total"`
	Read           uint64  `json:"read"`
	Write          uint64  `json:"write"`
	MQ             bool    `json:"mq"`
	DriverInFlight *uint64 `json:"driver_in_flight,omitempty"`
	Error          string  `json:"error,omitempty"`
}

// runDevDisks is dev -d and -D (crash's display_all_diskio): the
// columns' odd spacing is crash 8.0.6's own.
func runDevDisks(ctx *Context, k *kernel.Kernel, nonzero bool) error {
	disks, err := k.Disks()
	if err != nil && len(disks) == 0 {
		return err
	}
	var sel []kernel.DiskIO
	for _, d := range disks {
		if !nonzero || d.Read+d.Write != 0 || d.Err != nil {
			sel = append(sel, d)
		}
	}
	if ctx.JSON {
		out := []devDiskJSON{}
		for _, d := range sel {
			j := devDiskJSON{Major: d.Major, Gendisk: d.Gendisk, Name: d.Name, RequestQueue: d.Queue,
				Total: d.Read + d.Write, Read: d.Read, Write: d.Write, MQ: d.MQ, Error: devErrString(d.Err)}
			if d.HasDriverInFlight && !d.MQ {
				n := d.DriverInFlight
				j.DriverInFlight = &n
			}
			out = append(out, j)
		}
		if werr := writeJSON(ctx, out); werr != nil {
			return werr
		}
		return err
	}
	drv := ""
	if len(disks) > 0 && disks[0].HasDriverInFlight {
		drv = "  DRV"
	}
	fmt.Fprintf(ctx.Out, "MAJOR %-18s %-10s %-18s %5s %5s %5s %s\n", "GENDISK", "NAME", "REQUEST_QUEUE", "TOTAL", "READ", "WRITE", drv)
	for _, d := range sel {
		if d.Err != nil {
			fmt.Fprintf(ctx.Out, "dev: gendisk %x (%s): %v\n", d.Gendisk, d.Name, d.Err)
			continue
		}
		last := ""
		switch {
		case d.HasDriverInFlight && d.MQ:
			last = "N/A(MQ)"
		case d.HasDriverInFlight:
			last = fmt.Sprintf("%5d", d.DriverInFlight)
		}
		fmt.Fprintf(ctx.Out, "%5d %-16x   %-10s %-16x   %5d %5d %5d %s\n", d.Major, d.Gendisk, d.Name, d.Queue, d.Read+d.Write, d.Read, d.Write, last)
	}
	return err
}
