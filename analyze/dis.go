package analyze

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/arch/x86/x86asm"

	"salvage/debuginfo"
)

func disCommand() *Command {
	return &Command{
		Name:    "dis",
		Summary: "disassemble kernel code",
		Usage:   "[-r|-f] [-x|-d] ADDRESS|SYMBOL[+OFFSET] [COUNT]",
		Help: `Disassembles kernel (or module) code read from the dump's memory, in the
AT&T syntax crash's gdb prints. A symbol alone disassembles the whole
function; an address or symbol+offset, one instruction; COUNT, that many
instructions from there. Branch targets and %rip-relative operands are
shown with their symbols; the nop at a function's start that ftrace
patches is marked [FTRACE NOP].

Examples:
  dis sysrq_handle_crash
  dis schedule+21 4
  dis -r schedule+90        (from the start of schedule up to schedule+90)
  dis -f __schedule+1200    (from there to the end of the function)
  dis -x schedule 4         (offsets in hexadecimal)
`,
		Options: []Option{
			{Name: "r", Help: "from the start of the function up to and including ADDRESS"},
			{Name: "f", Help: "from ADDRESS to the end of the function"},
			{Name: "x", Help: "show symbol offsets in hexadecimal"},
			{Name: "d", Help: "show symbol offsets in decimal (the default)"},
			{Name: "l", Help: "show the source file and line before the instructions of each (needs the debug vmlinux)"},
			{Name: "s", Help: "show source code (not available)"},
			{Name: "u", Help: "ADDRESS is a user virtual address (not yet)"},
		},
		MinArgs: 1,
		MaxArgs: 2,
		Run:     runDis,
	}
}

// disLine is one disassembled instruction.
type disLine struct {
	Addr   uint64 `json:"address"`
	File   string `json:"file,omitempty"` // with -l
	Line   int    `json:"line,omitempty"`
	Symbol string `json:"symbol,omitempty"`
	Offset uint64 `json:"offset"`
	Bytes  string `json:"bytes"`
	Text   string `json:"text"`
}

// maxDisFunction bounds a whole-function disassembly: kallsyms sizes are
// distances to the next symbol, which can be large past a function's end.
const maxDisFunction = 1 << 20

func runDis(ctx *Context) error {
	o := ctx.Opts
	switch {
	case o.Has("u"):
		return errors.New("-u: disassembling user memory is not supported yet")
	case o.Has("s"):
		return errors.New("-s: source code is not available")
	case o.Has("r") && o.Has("f"):
		return usagef("-r and -f exclude each other")
	}
	k, err := ctx.Session.Kernel()
	if err != nil {
		return err
	}
	syms, err := ctx.symbols()
	if err != nil {
		return err
	}
	addr, exact, err := resolveCode(syms, ctx.Args[0])
	if err != nil {
		return err
	}
	count := uint64(0)
	if len(ctx.Args) > 1 {
		if count, err = parseNumber("count", ctx.Args[1]); err != nil {
			return err
		}
		if count == 0 {
			return fmt.Errorf("invalid count: %s", ctx.Args[1])
		}
	}
	fn, off, inFn := syms.ByAddr(addr)
	var start, end uint64 // what to decode
	var from uint64       // print instructions at or after from
	switch {
	case o.Has("r") || o.Has("f"):
		if !inFn || fn.Size == 0 {
			return fmt.Errorf("%#x: not in a function of known size", addr)
		}
		start, end = fn.Addr, fn.Addr+min(fn.Size, maxDisFunction)
		from = start
		if o.Has("f") {
			from = addr
		}
	case count > 0:
		start, end, from = addr, 0, addr
	case exact && inFn && off == 0 && fn.Size > 0:
		start, end, from = addr, addr+min(fn.Size, maxDisFunction), addr
	default:
		start, end, from, count = addr, 0, addr, 1
	}

	r := &disReader{read: k.Read}
	hexOff := o.Last("x", "d") == "x"
	var lines []disLine
	pc := start
	for {
		if end != 0 && pc >= end {
			break
		}
		if count > 0 && uint64(len(lines)) >= count {
			break
		}
		code, err := r.at(pc)
		if err != nil {
			if len(lines) == 0 {
				return err
			}
			fmt.Fprintf(ctx.Session.Err, "dis: %v\n", err)
			break
		}
		inst, derr := x86asm.Decode(code, 64)
		n := inst.Len
		text := "(bad)"
		if derr != nil || n == 0 {
			n = 1
		} else {
			text = gdbInstruction(inst, code, pc, syms)
		}
		if pc >= from {
			l := disLine{Addr: pc, Bytes: fmt.Sprintf("%x", code[:n]), Text: text}
			if o.Has("l") {
				l.File, l.Line, _ = k.SourceLine(pc)
			}
			if s, so, ok := crashByAddr(syms, pc); ok {
				l.Symbol, l.Offset = crashSymbolName(s.Name), so
				if so == 0 && isFtraceNop(code[:n]) {
					l.Text += " [FTRACE NOP]"
				}
			}
			lines = append(lines, l)
			if o.Has("r") && pc >= addr {
				break
			}
		}
		pc += uint64(n)
	}
	if end != 0 && fn.Size > 0 && !strings.HasPrefix(syms.Source(), "vmlinux") {
		// kallsyms' sizes run to the next symbol: leave out the padding
		// after the function's code, as a vmlinux's sizes do.
		for len(lines) > 1 && isPadding(lines[len(lines)-1].Text) {
			lines = lines[:len(lines)-1]
		}

	}
	if ctx.JSON {
		if lines == nil {
			lines = []disLine{}
		}
		return writeJSON(ctx, lines)
	}
	if o.Has("l") && len(lines) > 0 && lines[0].File == "" {
		return fmt.Errorf("-l: no source lines for %#x (they come from the debug vmlinux's DWARF)", lines[0].Addr)
	}
	lastFile, lastLine := "", 0
	for _, l := range lines {
		if l.File != "" && (l.File != lastFile || l.Line != lastLine) {
			fmt.Fprintf(ctx.Out, "%s: %d\n", l.File, l.Line)
			lastFile, lastLine = l.File, l.Line
		}
		label := fmt.Sprintf("   %#x", l.Addr)
		if l.Symbol != "" {
			label = fmt.Sprintf("%#x <%s>", l.Addr, disSymbol(l.Symbol, l.Offset, hexOff))
		}
		fmt.Fprintf(ctx.Out, "%s:\t%s\n", label, l.Text)
	}
	return nil
}

// resolveCode parses SYMBOL, SYMBOL+OFFSET or a hexadecimal address;
// exact reports a bare symbol (whose whole function dis shows).
func resolveCode(syms debuginfo.Symbols, arg string) (addr uint64, exact bool, err error) {
	name, offStr, hasOff := strings.Cut(arg, "+")
	if s, ok := syms.Lookup(name); ok {
		if !hasOff {
			return s.Addr, true, nil
		}
		off, err := parseNumber("offset", offStr)
		if err != nil {
			return 0, false, err
		}
		return s.Addr + off, false, nil
	}
	a, err := parseHex("address", arg)
	if err != nil {
		return 0, false, fmt.Errorf("symbol not found: %s", name)
	}
	return a, false, nil
}

func disSymbol(name string, off uint64, hex bool) string {
	switch {
	case off == 0:
		return name
	case hex:
		return fmt.Sprintf("%s+%#x", name, off)
	default:
		return name + "+" + strconv.FormatUint(off, 10)
	}
}

// isFtraceNop recognises the 5-byte nop (nopl 0x0(%rax,%rax,1)) that
// ftrace patches over a function's first call to __fentry__.
func isFtraceNop(b []byte) bool {
	return len(b) == 5 && b[0] == 0x0f && b[1] == 0x1f && b[2] == 0x44 && b[3] == 0 && b[4] == 0
}

// disReader reads code a page at a time.
type disReader struct {
	read     func(p []byte, addr uint64) error
	base     uint64
	buf      []byte
	haveNext bool
}

// at returns up to 15 bytes (an instruction's longest) at pc; fewer only
// when the page after is unreadable.
func (r *disReader) at(pc uint64) ([]byte, error) {
	const page = 4096
	base := pc &^ (page - 1)
	if r.buf == nil || base != r.base {
		buf := make([]byte, 2*page)
		if err := r.read(buf[:page], base); err != nil {
			return nil, fmt.Errorf("cannot read code at %#x: %w", pc, err)
		}
		r.haveNext = r.read(buf[page:], base+page) == nil
		if !r.haveNext {
			buf = buf[:page]
		}
		r.base, r.buf = base, buf
	}
	off := pc - r.base
	return r.buf[off:min(off+15, uint64(len(r.buf)))], nil
}

// gdbInstruction prints inst as gdb (libopcodes) does in crash's dis:
// the mnemonic padded to six columns, unsigned immediates of the
// operand's size, branch targets and %rip-relative operands followed by
// their symbol.
func gdbInstruction(inst x86asm.Inst, code []byte, pc uint64, syms debuginfo.Symbols) string {
	switch {
	case len(code) > 0 && code[0] == 0x90 && inst.Len == 1:
		return "nop" // libopcodes prints it bare, without the padding
	case inst.Len == 2 && code[0] == 0x66 && code[1] == 0x90:
		return "xchg   %ax,%ax"
	}
	s := x86asm.GNUSyntax(inst, pc, nil)
	s = strings.Replace(s, "data32 nopw", "data16 nopw", 1) // libopcodes' name for the 66 padding prefix
	mnemonic, operands, _ := strings.Cut(s, " ")
	for isGNUPrefix(mnemonic) && operands != "" {
		next, rest, _ := strings.Cut(operands, " ")
		mnemonic, operands = mnemonic+" "+next, rest
	}
	if m, ok := gnuShortNames[mnemonic]; ok {
		mnemonic = m
	}
	if inst.Op == x86asm.MOV && inst.Len >= 10 && inst.DataSize == 64 {
		_, toReg := inst.Args[0].(x86asm.Reg)
		if _, ok := inst.Args[1].(x86asm.Imm); ok && toReg {
			mnemonic = "movabs" // a 64-bit immediate
		}
	}
	operands = fixImmediates(inst, operands)
	operands = fixMemory(inst, code, operands)
	text := fmt.Sprintf("%-6s %s", mnemonic, operands)
	for _, a := range inst.Args {
		switch a := a.(type) {
		case x86asm.Rel:
			target := pc + uint64(inst.Len) + uint64(int64(a))
			if sym := symbolSuffix(syms, target); sym != "" {
				text += " " + sym
			}
		case x86asm.Mem:
			if a.Base == x86asm.RIP {
				target := pc + uint64(inst.Len) + uint64(signedDisp(a.Disp))
				if a.Segment != 0 {
					// A per-CPU offset: gdb shows the number only.
					text += fmt.Sprintf("        # %#x", target)
				} else {
					text += fmt.Sprintf("        # %#x", target)
					if sym := symbolSuffix(syms, target); sym != "" {
						text += " " + sym
					}
				}
			}
		}
	}
	return text
}

// symbolSuffix is gdb's " <symbol+offset>" for a kernel address.
func symbolSuffix(syms debuginfo.Symbols, addr uint64) string {
	if addr < 1<<63 {
		return ""
	}
	s, off, ok := gdbByAddr(syms, addr)
	if !ok {
		return ""
	}
	return "<" + disSymbol(crashSymbolName(s.Name), off, false) + ">"
}

func isGNUPrefix(s string) bool {
	switch s {
	case "lock", "rep", "repz", "repnz", "repe", "repne", "notrack", "bnd", "data16", "addr32", "rex", "rex.W":
		return true
	}
	return false
}

// fixImmediates rewrites x86asm's signed immediates ($-0x1801) as the
// unsigned value of the operand's size, as libopcodes prints them.
func fixImmediates(inst x86asm.Inst, operands string) string {
	for _, a := range inst.Args {
		imm, ok := a.(x86asm.Imm)
		if !ok || int64(imm) >= 0 {
			continue
		}
		size := inst.DataSize
		if size == 0 || inst.Op == x86asm.PUSH {
			size = 64 // push sign-extends its immediate to 64 bits
		}
		if mem := inst.MemBytes; mem != 0 && size > mem*8 {
			size = mem * 8
		}
		if size > 64 {
			size = 64
		}
		v := uint64(imm)
		if size < 64 {
			v &= 1<<uint(size) - 1
		}
		operands = strings.Replace(operands, fmt.Sprintf("$%#x", int64(imm)), fmt.Sprintf("$%#x", v), 1)
	}
	return operands
}

// gnuShortNames are the suffixed mnemonics of older binutils (x86asm's
// model) that binutils 2.40, which crash's gdb uses, prints without the
// suffix in 64-bit code.
var gnuShortNames = map[string]string{
	"callq": "call", "jmpq": "jmp", "retq": "ret", "pushq": "push", "popq": "pop",
	"pushfq": "pushf", "popfq": "popf",
	"leaveq": "leave", "cdqe": "cltq", "cwde": "cwtl", "cbw": "cbtw", "cqo": "cqto", "cdq": "cltd", "cwd": "cwtd",
	"movsxd": "movslq",
}

var (
	indexNoScale = regexp.MustCompile(`\(([^,()]*),(%[a-z0-9]+)\)`)
	bareMemory   = regexp.MustCompile(`(^|[ ,*:])\(`)
)

// fixMemory prints memory operands as libopcodes does: an index always
// with its scale ("(%rax,%rax,1)"), and a displacement the encoding has
// even when it is zero ("0x0(%rbp)"), which x86asm leaves out.
func fixMemory(inst x86asm.Inst, code []byte, operands string) string {
	var mem *x86asm.Mem
	for _, a := range inst.Args {
		if m, ok := a.(x86asm.Mem); ok {
			mem = &m
		}
	}
	if mem == nil {
		return operands
	}
	switch inst.Op {
	case x86asm.STOSB, x86asm.STOSW, x86asm.STOSD, x86asm.STOSQ, x86asm.MOVSB, x86asm.MOVSW, x86asm.MOVSD, x86asm.MOVSQ,
		x86asm.LODSB, x86asm.LODSW, x86asm.LODSD, x86asm.LODSQ, x86asm.SCASB, x86asm.SCASW, x86asm.SCASD, x86asm.SCASQ,
		x86asm.CMPSB, x86asm.CMPSW, x86asm.CMPSD, x86asm.CMPSQ, x86asm.INSB, x86asm.INSW, x86asm.INSD,
		x86asm.OUTSB, x86asm.OUTSW, x86asm.OUTSD, x86asm.XLATB:
		return operands // string instructions have no ModRM
	}
	operands = indexNoScale.ReplaceAllString(operands, "($1,$2,1)")
	operands = strings.Replace(operands, ",%riz,1)", ")", 1)
	if d := signedDisp(mem.Disp); d < 0 {
		operands = strings.Replace(operands, fmt.Sprintf("%#x(", uint32(mem.Disp)), fmt.Sprintf("-%#x(", -d), 1)
	}
	if mem.Disp == 0 && mem.Base != x86asm.RIP {
		if mod := modrmMod(code); mod == 1 || mod == 2 {
			if loc := bareMemory.FindStringIndex(operands); loc != nil {
				i := loc[1] - 1
				operands = operands[:i] + "0x0" + operands[i:]
			}
		}
	}
	return operands
}

// modrmMod returns the mod field of the instruction's ModRM byte (-1 when
// it cannot tell): after the legacy and REX prefixes and a one-, two- or
// three-byte opcode.
func modrmMod(code []byte) int {
	i := 0
	for i < len(code) {
		switch b := code[i]; {
		case b == 0x66 || b == 0x67 || b == 0xf2 || b == 0xf3 || b == 0xf0 ||
			b == 0x2e || b == 0x36 || b == 0x3e || b == 0x26 || b == 0x64 || b == 0x65:
			i++
			continue
		case b >= 0x40 && b <= 0x4f:
			i++
		}
		break
	}
	if i >= len(code) {
		return -1
	}
	switch {
	case code[i] == 0xc4 || code[i] == 0xc5 || code[i] == 0x62:
		return -1 // VEX and EVEX: rare in the kernel, left as x86asm prints them
	case code[i] == 0x0f && i+1 < len(code) && (code[i+1] == 0x38 || code[i+1] == 0x3a):
		i += 3
	case code[i] == 0x0f:
		i += 2
	default:
		i++
	}
	if i >= len(code) {
		return -1
	}
	return int(code[i] >> 6)
}

// signedDisp is a displacement sign-extended from 32 bits: x86asm keeps
// some as their unsigned 32-bit encoding.
func signedDisp(d int64) int64 {
	if d >= 1<<31 && d < 1<<32 {
		return d - 1<<32
	}
	return d
}

// isPadding recognises the nops that pad code to the next function's
// alignment (an int3 after a ret is the function's own: straight-line
// speculation hardening).
func isPadding(text string) bool {
	return text == "nop" || text == "xchg   %ax,%ax" ||
		strings.HasPrefix(text, "nop") || strings.HasPrefix(text, "data16 nop") || strings.HasPrefix(text, "cs nop")
}
