package kernel

import (
	"errors"
	"fmt"
	"strings"

	"salvage/debuginfo"
	"salvage/dump"
)

// LogRecord is one kernel message.
type LogRecord struct {
	Seq    uint64 // the record's sequence number (printk_info.seq; counted for printk_log)
	TimeNS uint64 // local_clock() when it was logged, in nanoseconds since boot
	Level  int    // console log level, 0 (KERN_EMERG) to 7 (KERN_DEBUG)
	// Facility is the syslog facility: 0 for the kernel's own messages,
	// 1 (LOG_USER) for those written to /dev/kmsg.
	Facility int
	// CallerID is the printk caller: a thread ID, or a CPU number with
	// bit 31 set (CONFIG_PRINTK_CALLER, always recorded since 5.10).
	CallerID uint32
	Text     string // the message, without a trailing newline; may hold newlines
	// Subsystem and Device are dev_printk's dictionary (5.10+
	// dev_printk_info; SUBSYSTEM= and DEVICE= of older dictionaries).
	Subsystem, Device string

	// dataless marks a descriptor without text (a record whose data
	// block was never written or has been overwritten): crash prints an
	// empty line for it, makedumpfile nothing.
	dataless bool
	// dict is the whole dictionary of a printk_log record, as
	// NUL-separated KEY=VALUE strings (crash's log -d prints every one).
	dict string
}

// Dataless reports a record whose descriptor is committed but has no text
// block: crash's log prints an empty line for it, makedumpfile skips it.
func (r LogRecord) Dataless() bool { return r.dataless }

// Dictionary is the record's dictionary as KEY=VALUE strings: every entry
// of an old printk_log dictionary, or SUBSYSTEM= and DEVICE= of a 5.10+
// record (those that are set).
func (r LogRecord) Dictionary() []string {
	if r.dict != "" {
		return strings.Split(strings.TrimRight(r.dict, "\x00"), "\x00")
	}
	var d []string
	if r.Subsystem != "" {
		d = append(d, "SUBSYSTEM="+r.Subsystem)
	}
	if r.Device != "" {
		d = append(d, "DEVICE="+r.Device)
	}
	return d
}

// CallerString is the caller ID as crash and makedumpfile print it: "T"
// and the thread ID, or "C" and the CPU number.
func (r LogRecord) CallerString() string {
	const cpuBit = 0x80000000
	if r.CallerID&cpuBit != 0 {
		return fmt.Sprintf("C%d", r.CallerID&^cpuBit)
	}
	return fmt.Sprintf("T%d", r.CallerID)
}

// VirtMemory reads kernel virtual memory. *Kernel satisfies it; so does
// the address translator of a dump alone (see DumpLog).
type VirtMemory interface {
	Read(p []byte, addr uint64) error
}

// LogFormat names the layout of the kernel's message buffer.
type LogFormat string

const (
	// LogLockless is the lockless printk_ringbuffer of Linux 5.10 and
	// later (kernel/printk/printk_ringbuffer.h).
	LogLockless LogFormat = "printk_ringbuffer"
	// LogRecords is the variable-length struct printk_log records of
	// Linux 3.5 to 5.9 (struct log before 3.11), in log_buf.
	LogRecords LogFormat = "printk_log"
)

// LogError reports a message buffer that could not be read, or read only
// in part; Log and ReadLog return it beside the records they could read.
type LogError struct {
	Format LogFormat
	// Missing names what the layout lacks (VMCOREINFO entries that
	// neither VMCOREINFO nor the types supply), when that is the cause.
	Missing []string
	// Skipped counts records that could not be read (their descriptor,
	// info or text lies on a page the dump does not hold); Total is
	// the records read and skipped.
	Skipped, Total int
	Err            error // the first underlying error
}

func (e *LogError) Error() string {
	var b strings.Builder
	b.WriteString("kernel log")
	if e.Format != "" {
		fmt.Fprintf(&b, " (%s)", e.Format)
	}
	switch {
	case len(e.Missing) > 0:
		fmt.Fprintf(&b, ": cannot locate it: VMCOREINFO lacks %s, and no symbols or types supply it", strings.Join(e.Missing, ", "))
	case e.Skipped > 0:
		fmt.Fprintf(&b, ": %d of %d records unreadable", e.Skipped, e.Total)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

func (e *LogError) Unwrap() error { return e.Err }

// Log reads every record of the kernel's message buffer, oldest first.
// The buffer's layout comes from VMCOREINFO, with the kernel's types (and
// symbols) filling in what VMCOREINFO lacks. A partly unreadable buffer
// returns the records read and a *LogError naming what is missing. A
// committed descriptor without text is returned too, with empty Text
// (see Dataless), because crash shows it.
func (k *Kernel) Log() ([]LogRecord, error) {
	src := &printkLayoutSource{vi: k.VMCoreInfo(), types: k.Types}
	if k.Symbols != nil {
		src.symbol = func(name string) (uint64, bool) {
			s, ok := k.Symbols.Lookup(name)
			return s.Addr, ok
		}
	}
	return readPrintk(src, k)
}

// ReadLog reads the kernel's message buffer with nothing but VMCOREINFO to
// find it — what a capture kernel has — and mem to read it.
func ReadLog(vi *dump.VMCoreInfo, mem VirtMemory) ([]LogRecord, error) {
	if vi == nil {
		return nil, &LogError{Err: errors.New("the dump has no VMCOREINFO to locate the message buffer")}
	}
	return readPrintk(&printkLayoutSource{vi: vi}, mem)
}

// DumpLog reads the message buffer of a dump from its VMCOREINFO alone,
// translating addresses with the page tables VMCOREINFO locates: no
// vmlinux, no kallsyms, no BTF (makedumpfile --dump-dmesg's way).
func DumpLog(f *dump.File) ([]LogRecord, error) {
	if f.VMCoreInfo == nil {
		return nil, &LogError{Err: fmt.Errorf("%s: the dump has no VMCOREINFO to locate the message buffer", f.Path)}
	}
	// The layout first: a VMCOREINFO that does not describe the buffer
	// says so before any page table is looked for.
	l, err := (&printkLayoutSource{vi: f.VMCoreInfo}).layout()
	if err != nil {
		return nil, err
	}
	tr, err := newTranslator(f, nil)
	if err != nil {
		return nil, err
	}
	return l.read(printkTranslatorMemory{tr.ReadVirt})
}

// printkTranslatorMemory adapts an arch.Translator's ReadVirt.
type printkTranslatorMemory struct {
	readVirt func(p []byte, addr uint64) (int, error)
}

func (m printkTranslatorMemory) Read(p []byte, addr uint64) error {
	if _, err := m.readVirt(p, addr); err != nil {
		return &ReadError{Addr: addr, Size: len(p), Err: err}
	}
	return nil
}

// readPrintk detects the buffer's format, finds its layout and reads it.
func readPrintk(src *printkLayoutSource, mem VirtMemory) ([]LogRecord, error) {
	l, err := src.layout()
	if err != nil {
		return nil, err
	}
	return l.read(mem)
}

// printkReader is a located message buffer of either format.
type printkReader interface {
	read(mem VirtMemory) ([]LogRecord, error)
}

// layout locates the buffer: the lockless ring when prb is known
// (SYMBOL(prb) in VMCOREINFO since 5.10), the printk_log records when
// log_first_idx is.
func (s *printkLayoutSource) layout() (printkReader, error) {
	if _, ok := s.sym("prb"); ok {
		return s.ringLayout()
	}
	if _, ok := s.sym("log_first_idx"); ok {
		return s.recordLayout()
	}
	return nil, &LogError{Missing: []string{"SYMBOL(prb)", "SYMBOL(log_first_idx)"},
		Err: errors.New("it describes neither the lockless ring buffer (Linux 5.10+) nor printk_log records")}
}

// printkLayoutSource answers layout questions from VMCOREINFO first, then
// from the kernel's types and symbols, and records what neither has.
type printkLayoutSource struct {
	vi      *dump.VMCoreInfo
	types   debuginfo.Types
	symbol  func(string) (uint64, bool)
	missing []string
}

func (s *printkLayoutSource) sym(name string) (uint64, bool) {
	if a, ok := s.vi.Symbol(name); ok {
		return a, true
	}
	if s.symbol != nil {
		return s.symbol(name)
	}
	return 0, false
}

// needSym is sym, recording a missing symbol.
func (s *printkLayoutSource) needSym(name string) uint64 {
	a, ok := s.sym(name)
	if !ok {
		s.missing = append(s.missing, "SYMBOL("+name+")")
	}
	return a
}

func (s *printkLayoutSource) structType(name string) *debuginfo.Type {
	if s.types == nil {
		return nil
	}
	t, err := s.types.Struct(name)
	if err != nil {
		// atomic_long_t is a typedef of a struct.
		if t, err = s.types.Named(name); err != nil {
			return nil
		}
	}
	return t.Resolve()
}

// member finds structName.member in the types.
func (s *printkLayoutSource) member(structName, member string) (debuginfo.MemberPath, bool) {
	t := s.structType(structName)
	if t == nil {
		return debuginfo.MemberPath{}, false
	}
	mp, err := debuginfo.LookupMember(t, member)
	return mp, err == nil
}

// offset is OFFSET(structName.member), recording it when missing.
func (s *printkLayoutSource) offset(structName, member string) uint64 {
	if v, ok := s.vi.Offset(structName, member); ok {
		return v
	}
	if mp, ok := s.member(structName, member); ok {
		return uint64(mp.Offset)
	}
	s.missing = append(s.missing, "OFFSET("+structName+"."+member+")")
	return 0
}

// size is SIZE(name) of a struct, recording it when missing.
func (s *printkLayoutSource) size(name string) uint64 {
	if v, ok := s.vi.Size(name); ok {
		return v
	}
	if t := s.structType(name); t != nil && t.Size > 0 {
		return uint64(t.Size)
	}
	s.missing = append(s.missing, "SIZE("+name+")")
	return 0
}

// bitfield locates an integer member that may be a bitfield (level:3):
// the byte holding it, the shift and the mask. VMCOREINFO never describes
// these, so without types def (the kernel's layout) serves.
func (s *printkLayoutSource) bitfield(structName, member string, def printkBits) printkBits {
	mp, ok := s.member(structName, member)
	if !ok {
		return def
	}
	if mp.BitSize == 0 {
		return printkBits{byteOff: uint64(mp.Offset), shift: 0, mask: 0xff}
	}
	bit := uint64(mp.Offset)*8 + uint64(mp.BitOffset)
	if mp.BitSize > 8 || bit%8+uint64(mp.BitSize) > 8 {
		return def
	}
	return printkBits{byteOff: bit / 8, shift: uint(bit % 8), mask: 1<<uint(mp.BitSize) - 1}
}

func (s *printkLayoutSource) err(f LogFormat) error {
	if len(s.missing) == 0 {
		return nil
	}
	return &LogError{Format: f, Missing: s.missing}
}

// printkBits is a small field inside one byte of a record header.
type printkBits struct {
	byteOff uint64
	shift   uint
	mask    uint8
}

func (b printkBits) get(rec []byte) int {
	if b.byteOff >= uint64(len(rec)) {
		return 0
	}
	return int(rec[b.byteOff] >> b.shift & b.mask)
}

// LogFormat says which layout the kernel's message buffer has: the
// lockless ring when prb is known, the printk_log records when
// log_first_idx is; "" when neither is.
func (k *Kernel) LogFormat() LogFormat {
	src := &printkLayoutSource{vi: k.VMCoreInfo()}
	if k.Symbols != nil {
		src.symbol = func(name string) (uint64, bool) {
			s, ok := k.Symbols.Lookup(name)
			return s.Addr, ok
		}
	}
	if _, ok := src.sym("prb"); ok {
		return LogLockless
	}
	if _, ok := src.sym("log_first_idx"); ok {
		return LogRecords
	}
	return ""
}
