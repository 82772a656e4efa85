package analyze

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"

	"salvage/dump"
	"salvage/kernel"
)

func rdCommand() *Command {
	return &Command{
		Name:    "rd",
		Summary: "read memory: values, with an ASCII column, or text",
		Usage:   "[-8|-16|-32|-64|-a] [-d|-D|-x|-s] [-N] [-R] [-o OFFSET] [-e END] [-p] ADDRESS|SYMBOL [COUNT]",
		Help: `Prints COUNT values of memory from ADDRESS (default 1; with -a, up to the
end of the string), 16 bytes a line, as crash's rd does: in hexadecimal
with the bytes as ASCII on the right, or in decimal. COUNT counts values
of the chosen size, not bytes. ADDRESS is hexadecimal (0x optional);
COUNT and OFFSET are decimal when all digits, hexadecimal otherwise.

ADDRESS is a kernel virtual address, or a SYMBOL, unless -p makes it
physical. -s shows 64-bit values that are kernel addresses as symbols
("init_task+2360").

--json prints the address, the values (as numbers) and the bytes read.

Examples:
  rd linux_banner 4      four 64-bit values at the symbol linux_banner
  rd -a linux_banner     the string there
  rd -s ffff8884bf59b000 16
  rd -p 1000             one 64-bit value at physical 0x1000
  rd -p 0x3d91ffe0 8     eight 64-bit values
  rd -8 -p 3d91ffe0 19   nineteen bytes
  rd -32 -d -p 1000 4    four 32-bit values in signed decimal
  rd -a -p 3d91ffe0      the string at 0x3d91ffe0
  rd -p -e 2000 1000     from 0x1000 up to 0x2000
`,
		Options: []Option{
			{Name: "p", Help: "ADDRESS is a physical address"},
			{Name: "8", Help: "8-bit values"},
			{Name: "16", Help: "16-bit values"},
			{Name: "32", Help: "32-bit values"},
			{Name: "64", Help: "64-bit values (the default)"},
			{Name: "a", Help: "printable ASCII text; COUNT counts bytes"},
			{Name: "d", Help: "signed decimal"},
			{Name: "D", Help: "unsigned decimal"},
			{Name: "x", Help: "no ASCII column"},
			{Name: "N", Help: "16- and 32-bit values in network byte order"},
			{Name: "R", Help: "show the COUNT values that end at ADDRESS"},
			{Name: "o", Arg: "OFFSET", Help: "start OFFSET bytes after ADDRESS"},
			{Name: "e", Arg: "END", Help: "read up to END (hexadecimal) instead of a COUNT"},
			{Name: "s", Help: "show 64-bit values that are kernel addresses as symbols"},
			{Name: "u", Help: "ADDRESS is a user virtual address (not yet)"},
		},
		MinArgs: 1,
		MaxArgs: 2,
		Run:     runRd,
	}
}

// rdRequest is an rd command line, decoded the way crash's cmd_rd does.
type rdRequest struct {
	addr  uint64
	count uint64 // values; 0 when toEnd
	ascii bool   // -a
	// toEnd: -a without a COUNT or END reads up to the first unprintable
	// byte.
	toEnd bool
	l     memLayout
	// endIgnored: -e was given with a COUNT, which wins (crash warns).
	endIgnored bool
	virtual    bool // addr is kernel virtual (no -p)
}

func parseRd(ctx *Context) (rdRequest, error) {
	var r rdRequest
	o := ctx.Opts
	switch {
	case o.Has("u"):
		return r, errors.New("-u reads user virtual memory, which salvage cannot read yet")
	}
	r.l = memLayout{Size: 8, Style: styleHex}
	switch o.Last("8", "16", "32", "64", "a") {
	case "8":
		r.l.Size = 1
	case "16":
		r.l.Size = 2
	case "32":
		r.l.Size = 4
	case "a":
		r.ascii, r.l.Size = true, 1
	}
	switch {
	case o.Has("d"): // crash: -d wins over -D
		r.l.Style = styleSigned
	case o.Has("D"):
		r.l.Style = styleUnsigned
	}
	r.l.ASCII = r.l.Style == styleHex && !o.Has("x") && !o.Has("s")
	r.l.Swap = o.Has("N")

	var addr uint64
	var err error
	if o.Has("p") {
		if addr, err = parseHex("address", ctx.Args[0]); err != nil {
			return r, err
		}
	} else {
		r.virtual = true
		if addr, err = resolveAddress(ctx, ctx.Args[0]); err != nil {
			return r, err
		}
	}
	if o.Has("s") && r.l.Size != 8 && !r.ascii {
		return r, errors.New("-s option is only allowed with 64-bit display")
	}
	if o.Has("s") && r.l.Style == styleHex && r.l.Size == 8 {
		k, err := ctx.Session.Kernel()
		if err != nil {
			return r, err
		}
		p := &valuePrinter{k: k}
		r.l.Symbol = p.rdSymbol
	}
	if v, ok := o.Value("o"); ok {
		off, err := parseNumber("offset", v)
		if err != nil {
			return r, err
		}
		if addr+off < addr {
			return r, fmt.Errorf("address %#x plus offset %#x is past the end of the address space", addr, off)
		}
		addr += off
	}
	size := uint64(r.l.Size)
	countGiven := len(ctx.Args) > 1
	switch {
	case countGiven:
		if r.count, err = parseNumber("count", ctx.Args[1]); err != nil {
			return r, err
		}
		r.endIgnored = o.Has("e")
	case o.Has("e"):
		v, _ := o.Value("e")
		end, err := parseHex("end address", v)
		if err != nil {
			return r, err
		}
		if end <= addr {
			return r, fmt.Errorf("invalid end address %#x: not after %#x", end, addr)
		}
		r.count = (end - addr) / size
	case r.ascii:
		r.toEnd = true
	default:
		r.count = 1
	}
	if o.Has("R") {
		if r.toEnd {
			return r, errors.New("-R with -a needs a COUNT")
		}
		if r.count == 0 {
			r.count = 1 // as crash does
		}
		back := (r.count - 1) * size
		if r.count > math.MaxUint64/size || back > addr {
			return r, fmt.Errorf("count %d before %#x is before address 0", r.count, addr)
		}
		addr -= back
	}
	if r.count == 0 && !r.toEnd {
		return r, fmt.Errorf("invalid count %d", r.count)
	}
	if r.count > 0 && (r.count > math.MaxUint64/size || addr+r.count*size-1 < addr) {
		return r, fmt.Errorf("count %d from %#x runs past the end of the address space", r.count, addr)
	}
	r.addr = addr
	return r, nil
}

func runRd(ctx *Context) error {
	r, err := parseRd(ctx)
	if err != nil {
		return err
	}
	if r.endIgnored {
		fmt.Fprintf(ctx.Session.Err, "rd: warning: END (-e) ignored when COUNT is given\n")
	}
	mem := ctx.Dump.Memory
	if mem == nil {
		return errors.New("the dump has no memory to read")
	}
	if r.virtual {
		k, err := ctx.Session.Kernel()
		if err != nil {
			return err
		}
		mem = virtMemory{Memory: mem, k: k}
	}
	var j *rdJSON
	var out rdSink
	switch {
	case ctx.JSON:
		j = newRdJSON(r)
		if r.virtual {
			j.Space = "virtual"
		}
		out = j
	case r.ascii:
		out = newASCIIDumper(ctx.Out, r.addr, r.toEnd)
	default:
		out = &valueSink{d: newLineDumper(ctx.Out, r.l, r.addr), size: r.l.Size}
	}
	rerr := readPhys(mem, r, out)
	werr := out.finish()
	if j != nil {
		if rerr != nil {
			j.Error = memError(rerr).Error()
		}
		werr = writeJSON(ctx, j)
	}
	if rerr != nil {
		return memError(rerr)
	}
	return werr
}

// rdSink receives what rd reads.
type rdSink interface {
	bytes(b []byte) // whole values, in order
	finish() error
}

// readPhys reads r's values from mem into out, in chunks, stopping at the
// first page the dump lacks. Values before it are delivered, as crash
// shows the lines read before it fails.
func readPhys(mem dump.Memory, r rdRequest, out rdSink) error {
	const chunk = 64 << 10 // a multiple of every value size
	buf := make([]byte, chunk)
	addr := r.addr
	if r.toEnd {
		// -a without a count: read to the first unprintable byte, a page
		// at a time so a short string costs one page.
		ps := uint64(mem.PageSize())
		if ps == 0 {
			ps = 4096
		}
		for {
			n := ps - addr%ps
			got, err := readFull(mem, buf[:min(n, chunk)], addr)
			for i, c := range buf[:got] {
				if !isPrint(c) {
					out.bytes(buf[:i])
					return nil
				}
			}
			out.bytes(buf[:got])
			if err != nil {
				return err
			}
			addr += uint64(got)
			if addr == 0 {
				return nil // wrapped past the top of the address space
			}
		}
	}
	left := r.count * uint64(r.l.Size)
	for left > 0 {
		n := min(left, chunk)
		got, err := readFull(mem, buf[:n], addr)
		got -= got % r.l.Size
		out.bytes(buf[:got])
		if err != nil {
			return err
		}
		addr += n
		left -= n
	}
	return nil
}

// virtMemory reads kernel virtual memory through the page tables, for rd
// without -p: its ReadPhys takes virtual addresses.
type virtMemory struct {
	dump.Memory
	k *kernel.Kernel
}

func (v virtMemory) ReadPhys(p []byte, addr uint64) (int, error) {
	return v.k.Arch.ReadVirt(p, addr)
}

// readFull is ReadPhys, holding a Memory to its contract: a short read
// comes with an error.
func readFull(mem dump.Memory, p []byte, addr uint64) (int, error) {
	n, err := mem.ReadPhys(p, addr)
	if err == nil && n < len(p) {
		err = fmt.Errorf("physical address %#x: short read", addr+uint64(n))
	}
	return n, err
}

// memError words a read failure for the command's error line: the dump's
// name is left out (the session has one dump), the address kept.
func memError(err error) error {
	var pe *dump.PageError
	if errors.As(err, &pe) {
		return fmt.Errorf("physical address %#x: page %s", pe.Addr, pe.State)
	}
	return err
}

// valueSink feeds a lineDumper whole values.
type valueSink struct {
	d    *lineDumper
	size int
}

func (s *valueSink) bytes(b []byte) {
	for i := 0; i+s.size <= len(b); i += s.size {
		s.d.value(b[i : i+s.size])
	}
}

func (s *valueSink) finish() error { return s.d.finish() }

func (d *asciiDumper) bytes(b []byte) {
	for _, c := range b {
		d.byte(c)
	}
}

// rdJSON is rd --json's document.
type rdJSON struct {
	Address uint64 `json:"address"`
	Space   string `json:"space"`  // "physical" or "virtual"
	Format  string `json:"format"` // hex, decimal, unsigned, ascii
	Size    int    `json:"size"`   // bytes per value
	// Count is the number of values asked for; 0 for -a without a count.
	Count  uint64        `json:"count"`
	Values []json.Number `json:"values"`
	// Strings are -a's runs of printable characters.
	Strings []rdString `json:"strings,omitempty"`
	Bytes   string     `json:"bytes"` // every byte read, in hexadecimal
	Error   string     `json:"error,omitempty"`

	l   memLayout
	raw []byte
}

type rdString struct {
	Address uint64 `json:"address"`
	Text    string `json:"text"`
}

func newRdJSON(r rdRequest) *rdJSON {
	j := &rdJSON{Address: r.addr, Space: "physical", Size: r.l.Size, Count: r.count, Values: []json.Number{}, l: r.l}
	switch {
	case r.ascii:
		j.Format, j.Values = "ascii", nil
	case r.l.Style == styleSigned:
		j.Format = "decimal"
	case r.l.Style == styleUnsigned:
		j.Format = "unsigned"
	default:
		j.Format = "hex"
	}
	return j
}

func (j *rdJSON) bytes(b []byte) { j.raw = append(j.raw, b...) }

func (j *rdJSON) finish() error {
	j.Bytes = hex.EncodeToString(j.raw)
	if j.Format == "ascii" {
		start := -1
		for i := 0; i <= len(j.raw); i++ {
			if i < len(j.raw) && isPrint(j.raw[i]) {
				if start < 0 {
					start = i
				}
				continue
			}
			if start >= 0 {
				j.Strings = append(j.Strings, rdString{Address: j.Address + uint64(start), Text: string(j.raw[start:i])})
				start = -1
			}
		}
		return nil
	}
	for i := 0; i+j.Size <= len(j.raw); i += j.Size {
		v := value(j.raw[i:], j.Size)
		if j.l.Swap && (j.Size == 2 || j.Size == 4) {
			v = swap(v, j.Size)
		}
		s := strconv.FormatUint(v, 10)
		if j.l.Style == styleSigned {
			switch j.Size {
			case 8:
				s = strconv.FormatInt(int64(v), 10)
			case 4:
				s = strconv.FormatInt(int64(int32(v)), 10)
			}
		}
		j.Values = append(j.Values, json.Number(s))
	}
	return nil
}
