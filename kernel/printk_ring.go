package kernel

import (
	"encoding/binary"
	"fmt"
)

// The lockless printk ring buffer of Linux 5.10+ (kernel/printk/
// printk_ringbuffer.h): prb points to a struct printk_ringbuffer holding
// a descriptor ring (prb_desc_ring: 2^count_bits struct prb_desc and as
// many struct printk_info) and a text data ring (prb_data_ring:
// 2^size_bits bytes). A descriptor's state_var holds its ID in the low 62
// bits and its state in the top two; its text_blk_lpos gives the logical
// positions of its text block, which starts with the descriptor's ID (an
// unsigned long) and wraps to the ring's start as a whole when it would
// not fit at the end. Records run from the descriptor ring's tail_id to
// its head_id. crash's printk.c and makedumpfile's printk.c read it the
// same way; the offsets are the kernel's VMCOREINFO (log_buf_vmcoreinfo_setup
// in kernel/printk/printk.c).

const (
	prbDescStateShift = 62
	prbDescIDMask     = 1<<prbDescStateShift - 1
	prbDescCommitted  = 1 // committed by its writer (may be reopened)
	prbDescFinalized  = 2 // committed, no further changes
	prbLongSize       = 8 // sizeof(unsigned long) on the 64-bit machines salvage reads

	// Bounds on the ring's size fields, far above any real kernel's
	// (log_buf_len is at most 2 GiB; the descriptor count 1/32 of it), so
	// that a corrupt header cannot make salvage allocate without limit.
	prbMaxCountBits = 22
	prbMaxSizeBits  = 31
)

// printkRingLayout is where the ring's fields are, in bytes.
type printkRingLayout struct {
	prb uint64 // address of the variable prb (a pointer to the ring)

	ringSize, descRing, textDataRing uint64 // struct printk_ringbuffer

	countBits, descs, infos, headID, tailID uint64 // struct prb_desc_ring

	descSize, stateVar, textBlkLpos uint64 // struct prb_desc
	lposBegin, lposNext             uint64 // struct prb_data_blk_lpos

	infoSize, seq, tsNsec, textLen, callerID, devInfo uint64 // struct printk_info
	hasCallerID                                       bool
	facility, level                                   printkBits

	subsystem, subsystemLen, device, deviceLen uint64 // struct dev_printk_info
	hasDevInfo                                 bool

	sizeBits, data uint64 // struct prb_data_ring
	counter        uint64 // atomic_long_t.counter
}

func (s *printkLayoutSource) ringLayout() (*printkRingLayout, error) {
	l := &printkRingLayout{prb: s.needSym("prb")}
	l.ringSize = s.size("printk_ringbuffer")
	l.descRing = s.offset("printk_ringbuffer", "desc_ring")
	l.textDataRing = s.offset("printk_ringbuffer", "text_data_ring")
	l.countBits = s.offset("prb_desc_ring", "count_bits")
	l.descs = s.offset("prb_desc_ring", "descs")
	l.infos = s.offset("prb_desc_ring", "infos")
	l.headID = s.offset("prb_desc_ring", "head_id")
	l.tailID = s.offset("prb_desc_ring", "tail_id")
	l.descSize = s.size("prb_desc")
	l.stateVar = s.offset("prb_desc", "state_var")
	l.textBlkLpos = s.offset("prb_desc", "text_blk_lpos")
	l.lposBegin = s.offset("prb_data_blk_lpos", "begin")
	l.lposNext = s.offset("prb_data_blk_lpos", "next")
	l.infoSize = s.size("printk_info")
	l.seq = s.offset("printk_info", "seq")
	l.tsNsec = s.offset("printk_info", "ts_nsec")
	l.textLen = s.offset("printk_info", "text_len")
	l.sizeBits = s.offset("prb_data_ring", "size_bits")
	l.data = s.offset("prb_data_ring", "data")
	if err := s.err(LogLockless); err != nil {
		return nil, err
	}
	// Optional members: a missing one leaves its field empty.
	if v, ok := s.vi.Offset("atomic_long_t", "counter"); ok {
		l.counter = v
	}
	if v, ok := s.vi.Offset("printk_info", "caller_id"); ok {
		l.callerID, l.hasCallerID = v, true
	} else if mp, ok := s.member("printk_info", "caller_id"); ok {
		l.callerID, l.hasCallerID = uint64(mp.Offset), true
	}
	l.devInfo, l.hasDevInfo = s.vi.Offset("printk_info", "dev_info")
	if !l.hasDevInfo {
		if mp, ok := s.member("printk_info", "dev_info"); ok {
			l.devInfo, l.hasDevInfo = uint64(mp.Offset), true
		}
	}
	if l.hasDevInfo {
		sub := s.optionalOffset("dev_printk_info", "subsystem", 0)
		dev := s.optionalOffset("dev_printk_info", "device", 16)
		l.subsystem, l.device = sub, dev
		// include/linux/dev_printk.h: char subsystem[16], device[48].
		l.subsystemLen = s.optionalLength("printk_info_subsystem", 16)
		l.deviceLen = s.optionalLength("printk_info_device", 48)
	}
	// struct printk_info: u16 text_len; u8 facility; u8 flags:5; u8
	// level:3 — on little-endian machines level is the top three bits of
	// the byte after facility. VMCOREINFO does not describe them.
	l.facility = s.bitfield("printk_info", "facility", printkBits{byteOff: l.textLen + 2, mask: 0xff})
	l.level = s.bitfield("printk_info", "level", printkBits{byteOff: l.textLen + 3, shift: 5, mask: 7})
	if err := l.check(); err != nil {
		return nil, err
	}
	return l, nil
}

func (s *printkLayoutSource) optionalOffset(structName, member string, def uint64) uint64 {
	if v, ok := s.vi.Offset(structName, member); ok {
		return v
	}
	if mp, ok := s.member(structName, member); ok {
		return uint64(mp.Offset)
	}
	return def
}

func (s *printkLayoutSource) optionalLength(name string, def uint64) uint64 {
	if v, ok := s.vi.Length(name); ok {
		return v
	}
	return def
}

// check refuses a layout whose fields lie outside their structures (a
// corrupt or foreign VMCOREINFO).
func (l *printkRingLayout) check() error {
	bad := func(what string, off, n, size uint64) error {
		if off+n > size || off+n < off {
			return &LogError{Format: LogLockless, Err: fmt.Errorf("layout: %s at offset %d does not fit in its %d-byte structure", what, off, size)}
		}
		return nil
	}
	for _, c := range []struct {
		what         string
		off, n, size uint64
	}{
		{"printk_ringbuffer.desc_ring.count_bits", l.descRing + l.countBits, 4, l.ringSize},
		{"printk_ringbuffer.desc_ring.descs", l.descRing + l.descs, 8, l.ringSize},
		{"printk_ringbuffer.desc_ring.infos", l.descRing + l.infos, 8, l.ringSize},
		{"printk_ringbuffer.desc_ring.head_id", l.descRing + l.headID + l.counter, 8, l.ringSize},
		{"printk_ringbuffer.desc_ring.tail_id", l.descRing + l.tailID + l.counter, 8, l.ringSize},
		{"printk_ringbuffer.text_data_ring.size_bits", l.textDataRing + l.sizeBits, 4, l.ringSize},
		{"printk_ringbuffer.text_data_ring.data", l.textDataRing + l.data, 8, l.ringSize},
		{"prb_desc.state_var", l.stateVar + l.counter, 8, l.descSize},
		{"prb_desc.text_blk_lpos.begin", l.textBlkLpos + l.lposBegin, 8, l.descSize},
		{"prb_desc.text_blk_lpos.next", l.textBlkLpos + l.lposNext, 8, l.descSize},
		{"printk_info.seq", l.seq, 8, l.infoSize},
		{"printk_info.ts_nsec", l.tsNsec, 8, l.infoSize},
		{"printk_info.text_len", l.textLen, 2, l.infoSize},
	} {
		if err := bad(c.what, c.off, c.n, c.size); err != nil {
			return err
		}
	}
	if l.ringSize > 1<<16 || l.descSize > 1<<12 || l.infoSize > 1<<12 {
		return &LogError{Format: LogLockless, Err: fmt.Errorf("layout: implausible structure sizes (printk_ringbuffer %d, prb_desc %d, printk_info %d bytes)", l.ringSize, l.descSize, l.infoSize)}
	}
	return nil
}

// read reads the ring as crash's dump_lockless_record_log does: every
// descriptor from tail_id to head_id whose state is committed or
// finalized.
func (l *printkRingLayout) read(mem VirtMemory) ([]LogRecord, error) {
	fail := func(format string, args ...any) error {
		return &LogError{Format: LogLockless, Err: fmt.Errorf(format, args...)}
	}
	var p [8]byte
	if err := mem.Read(p[:], l.prb); err != nil {
		return nil, fail("reading prb at %#x: %w", l.prb, err)
	}
	ringAddr := binary.LittleEndian.Uint64(p[:])
	hdr := make([]byte, l.ringSize)
	if err := mem.Read(hdr, ringAddr); err != nil {
		return nil, fail("reading struct printk_ringbuffer at %#x: %w", ringAddr, err)
	}
	u32 := func(off uint64) uint64 { return uint64(binary.LittleEndian.Uint32(hdr[off:])) }
	u64 := func(off uint64) uint64 { return binary.LittleEndian.Uint64(hdr[off:]) }
	dr, tr := l.descRing, l.textDataRing
	countBits, sizeBits := u32(dr+l.countBits), u32(tr+l.sizeBits)
	if countBits > prbMaxCountBits || sizeBits > prbMaxSizeBits || sizeBits < 3 {
		return nil, fail("ring at %#x: implausible sizes (2^%d descriptors, 2^%d text bytes)", ringAddr, countBits, sizeBits)
	}
	count, textSize := uint64(1)<<countBits, uint64(1)<<sizeBits
	descsAddr, infosAddr, dataAddr := u64(dr+l.descs), u64(dr+l.infos), u64(tr+l.data)
	headID := u64(dr+l.headID+l.counter) & prbDescIDMask
	tailID := u64(dr+l.tailID+l.counter) & prbDescIDMask

	descs := readPrintkRegion(mem, descsAddr, count*l.descSize)
	infos := readPrintkRegion(mem, infosAddr, count*l.infoSize)
	text := readPrintkRegion(mem, dataAddr, textSize)

	// A consistent ring has fewer than count descriptors between tail and
	// head; a corrupt one is read for its newest count.
	n := (headID - tailID) & prbDescIDMask
	if n >= count {
		n = count - 1
		tailID = (headID - n) & prbDescIDMask
	}
	var (
		out      []LogRecord
		skipped  int
		firstErr error
	)
	skip := func(err error) {
		skipped++
		if firstErr == nil {
			firstErr = err
		}
	}
	for i, id := uint64(0), tailID; i <= n; i, id = i+1, (id+1)&prbDescIDMask {
		slot := id % count
		desc, err := descs.slice(slot*l.descSize, l.descSize)
		if err != nil {
			skip(fmt.Errorf("descriptor %d: %w", id, err))
			continue
		}
		sv := binary.LittleEndian.Uint64(desc[l.stateVar+l.counter:])
		if sv&prbDescIDMask != id {
			continue // not (or no longer) this ID's descriptor
		}
		if st := sv >> prbDescStateShift; st != prbDescCommitted && st != prbDescFinalized {
			continue
		}
		info, err := infos.slice(slot*l.infoSize, l.infoSize)
		if err != nil {
			skip(fmt.Errorf("record info %d: %w", id, err))
			continue
		}
		r := LogRecord{
			Seq:      binary.LittleEndian.Uint64(info[l.seq:]),
			TimeNS:   binary.LittleEndian.Uint64(info[l.tsNsec:]),
			Level:    l.level.get(info),
			Facility: l.facility.get(info),
		}
		if l.hasCallerID && l.callerID+4 <= uint64(len(info)) {
			r.CallerID = binary.LittleEndian.Uint32(info[l.callerID:])
		}
		if l.hasDevInfo {
			r.Subsystem = printkCString(info, l.devInfo+l.subsystem, l.subsystemLen)
			r.Device = printkCString(info, l.devInfo+l.device, l.deviceLen)
		}
		textLen := uint64(binary.LittleEndian.Uint16(info[l.textLen:]))
		begin := binary.LittleEndian.Uint64(desc[l.textBlkLpos+l.lposBegin:]) % textSize
		next := binary.LittleEndian.Uint64(desc[l.textBlkLpos+l.lposNext:]) % textSize
		if begin == next {
			r.dataless = true
			out = append(out, r)
			continue
		}
		if begin > next { // the block wrapped: its data is at the start
			begin = 0
		}
		begin += prbLongSize // the block's leading descriptor ID
		if begin > next {
			skip(fmt.Errorf("record %d: text block [%d, %d) shorter than its ID", r.Seq, begin-prbLongSize, next))
			continue
		}
		if next-begin < textLen { // truncated message
			textLen = next - begin
		}
		b, err := text.slice(begin, textLen)
		if err != nil {
			skip(fmt.Errorf("text of record %d: %w", r.Seq, err))
			continue
		}
		r.Text = string(b)
		out = append(out, r)
	}
	if skipped > 0 {
		return out, &LogError{Format: LogLockless, Skipped: skipped, Total: len(out) + skipped, Err: firstErr}
	}
	return out, nil
}

// printkCString is the NUL-terminated string in b[off:off+max].
func printkCString(b []byte, off, max uint64) string {
	if off >= uint64(len(b)) {
		return ""
	}
	end := off + max
	if end > uint64(len(b)) || end < off {
		end = uint64(len(b))
	}
	s := b[off:end]
	for i, c := range s {
		if c == 0 {
			return string(s[:i])
		}
	}
	return string(s)
}

// printkRegion is a stretch of kernel memory read page by page, so that
// an unreadable page (excluded by the dump's filter, missing) costs only
// the records on it. Pages are kept only when read, so a corrupt size
// costs reads, not memory.
type printkRegion struct {
	addr, size uint64
	pages      map[uint64][]byte // by page index from addr's page
	errs       map[uint64]error  // pages that could not be read
	mem        VirtMemory
}

const printkPage = 4096

func readPrintkRegion(mem VirtMemory, addr, size uint64) *printkRegion {
	return &printkRegion{addr: addr, size: size, mem: mem, pages: map[uint64][]byte{}, errs: map[uint64]error{}}
}

// page returns page i (counted from addr's page), reading it on first use.
func (r *printkRegion) page(i uint64) ([]byte, error) {
	if p, ok := r.pages[i]; ok {
		return p, nil
	}
	if err, ok := r.errs[i]; ok {
		return nil, err
	}
	p := make([]byte, printkPage)
	base := r.addr&^(printkPage-1) + i*printkPage
	if err := r.mem.Read(p, base); err != nil {
		r.errs[i] = err
		return nil, err
	}
	r.pages[i] = p
	return p, nil
}

// slice returns n bytes at off, or an error when they are outside the
// region or on a page that could not be read.
func (r *printkRegion) slice(off, n uint64) ([]byte, error) {
	if off > r.size || n > r.size-off {
		return nil, fmt.Errorf("%d bytes at %#x: outside the %d-byte area at %#x", n, r.addr+off, r.size, r.addr)
	}
	out := make([]byte, 0, n)
	abs := r.addr%printkPage + off // offset from the first page's start
	for n > 0 {
		p, err := r.page(abs / printkPage)
		if err != nil {
			return nil, err
		}
		in := abs % printkPage
		k := printkPage - in
		if k > n {
			k = n
		}
		out = append(out, p[in:in+k]...)
		abs += k
		n -= k
	}
	return out, nil
}
