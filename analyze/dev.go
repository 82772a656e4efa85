package analyze

import (
	"fmt"
	"io"
	"strings"

	"salvage/debuginfo"
)

func init() { register(devCommand) }

func devCommand() *Command {
	return &Command{
		Name:    "dev",
		Summary: "list the character and block device majors",
		Help: `Lists the registered device numbers as crash's dev does. CHRDEV: each
character device range of the chrdevs[] hash (slot by slot, each chain in
order): its major, name, the struct cdev serving it and that cdev's
file_operations by symbol, or (none) when no cdev is registered for the
range's first minor. BLKDEV: the block majors heading the major_names[]
slots, with the first gendisk of the major among the block device inodes
and its block_device_operations. --json lists every block major,
including those further down a slot's chain, which crash leaves out.

Examples:
  dev
  dev --json
`,
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
