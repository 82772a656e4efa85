package kernel

import (
	"encoding/binary"
	"fmt"
)

// The printk_log records of Linux 3.5 to 5.9 (kernel/printk/printk.c
// before the lockless ring): log_buf (a pointer to a buffer of
// log_buf_len bytes) holds variable-length records,
//
//	struct printk_log {        // struct log before 3.11
//		u64 ts_nsec;
//		u16 len;           // whole record, header to padding
//		u16 text_len;
//		u16 dict_len;
//		u8 facility;
//		u8 flags:5;
//		u8 level:3;
//		u32 caller_id;     // CONFIG_PRINTK_CALLER, 5.1+
//	};
//
// each followed by its text and dictionary; a record of len 0 marks the
// end of the buffer's used part and sends the reader back to its start.
// The records run from log_first_idx to log_next_idx. VMCOREINFO names
// log_buf, log_buf_len, log_first_idx, log_next_idx and the size and
// ts_nsec, len, text_len and dict_len offsets (kernel/printk/printk.c,
// log_buf_vmcoreinfo_setup); facility and level are not described, so
// without types they are taken from the layout above.

// printkRecordLayout is where the buffer and the record fields are.
type printkRecordLayout struct {
	logBuf, logBufLen, firstIdx, nextIdx uint64 // symbol addresses
	firstSeq                             uint64 // address of log_first_seq, 0 when unknown

	size, tsNsec, len, textLen, dictLen uint64
	facility, level                     printkBits
	callerID                            uint64
	hasCallerID                         bool
}

// printkMaxLogBuf bounds log_buf_len (the kernel's own limit is 2 GiB;
// salvage reads at most this much).
const printkMaxLogBuf = 1 << 28

func (s *printkLayoutSource) recordLayout() (*printkRecordLayout, error) {
	l := &printkRecordLayout{
		logBuf:    s.needSym("log_buf"),
		logBufLen: s.needSym("log_buf_len"),
		firstIdx:  s.needSym("log_first_idx"),
		nextIdx:   s.needSym("log_next_idx"),
	}
	l.firstSeq, _ = s.sym("log_first_seq")
	// The structure was struct log until 3.11 (commit 62e32ac3505a).
	name := "printk_log"
	if _, ok := s.vi.Size("printk_log"); !ok {
		if _, ok := s.vi.Size("log"); ok {
			name = "log"
		} else if s.structType("printk_log") == nil && s.structType("log") != nil {
			name = "log"
		}
	}
	l.size = s.size(name)
	l.tsNsec = s.offset(name, "ts_nsec")
	l.len = s.offset(name, "len")
	l.textLen = s.offset(name, "text_len")
	l.dictLen = s.offset(name, "dict_len")
	if err := s.err(LogRecords); err != nil {
		return nil, err
	}
	l.facility = s.bitfield(name, "facility", printkBits{byteOff: l.dictLen + 2, mask: 0xff})
	l.level = s.bitfield(name, "level", printkBits{byteOff: l.dictLen + 3, shift: 5, mask: 7})
	if mp, ok := s.member(name, "caller_id"); ok {
		l.callerID, l.hasCallerID = uint64(mp.Offset), true
	}
	for _, f := range []struct {
		off, n uint64
	}{{l.tsNsec, 8}, {l.len, 2}, {l.textLen, 2}, {l.dictLen, 2}} {
		if f.off+f.n > l.size {
			return nil, &LogError{Format: LogRecords, Err: fmt.Errorf("layout: a field at offset %d does not fit in the %d-byte record header", f.off, l.size)}
		}
	}
	if l.size == 0 || l.size > 256 {
		return nil, &LogError{Format: LogRecords, Err: fmt.Errorf("layout: implausible record header size %d", l.size)}
	}
	return l, nil
}

// read walks the records from log_first_idx to log_next_idx as the
// kernel's log_from_idx and log_next do.
func (l *printkRecordLayout) read(mem VirtMemory) ([]LogRecord, error) {
	fail := func(format string, args ...any) error {
		return &LogError{Format: LogRecords, Err: fmt.Errorf(format, args...)}
	}
	var b [8]byte
	readU := func(what string, addr uint64, n int) (uint64, error) {
		b = [8]byte{}
		if err := mem.Read(b[:n], addr); err != nil {
			return 0, fail("reading %s at %#x: %w", what, addr, err)
		}
		return binary.LittleEndian.Uint64(b[:]), nil
	}
	bufAddr, err := readU("log_buf", l.logBuf, 8)
	if err != nil {
		return nil, err
	}
	bufLen, err := readU("log_buf_len", l.logBufLen, 4)
	if err != nil {
		return nil, err
	}
	first, err := readU("log_first_idx", l.firstIdx, 4)
	if err != nil {
		return nil, err
	}
	next, err := readU("log_next_idx", l.nextIdx, 4)
	if err != nil {
		return nil, err
	}
	var seq uint64
	if l.firstSeq != 0 {
		seq, _ = readU("log_first_seq", l.firstSeq, 8)
	}
	if bufLen == 0 || bufLen > printkMaxLogBuf || first >= bufLen || next > bufLen {
		return nil, fail("log_buf at %#x: implausible length %d or indexes (first %d, next %d)", bufAddr, bufLen, first, next)
	}
	buf := readPrintkRegion(mem, bufAddr, bufLen)
	var (
		out      []LogRecord
		skipped  int
		firstErr error
	)
	idx := first
	// Each record takes at least a header, so the walk is bounded.
	for steps := uint64(0); idx != next; steps++ {
		if steps > bufLen/l.size+1 {
			return out, fail("log_buf at %#x: the records from %d never reach log_next_idx %d", bufAddr, first, next)
		}
		// The kernel leaves room for a header at the end (log_store); a
		// buffer without room even for len is taken as ended there too.
		lenField, err := buf.slice(idx+l.len, 2)
		if idx+l.len+2 > bufLen || err == nil && binary.LittleEndian.Uint16(lenField) == 0 {
			// The end of the used part (the kernel's log_from_idx): wrap.
			if idx == 0 {
				return out, fail("log_buf at %#x: empty record at index 0", bufAddr)
			}
			idx = 0
			continue
		}
		hdr, err := buf.slice(idx, l.size)
		if err != nil {
			// Without this header the walk cannot go on.
			return out, &LogError{Format: LogRecords, Skipped: 1, Total: len(out) + skipped + 1, Err: fmt.Errorf("record at log_buf+%d: %w", idx, err)}
		}
		recLen := uint64(binary.LittleEndian.Uint16(hdr[l.len:]))
		textLen := uint64(binary.LittleEndian.Uint16(hdr[l.textLen:]))
		dictLen := uint64(binary.LittleEndian.Uint16(hdr[l.dictLen:]))
		r := LogRecord{
			Seq:      seq,
			TimeNS:   binary.LittleEndian.Uint64(hdr[l.tsNsec:]),
			Level:    l.level.get(hdr),
			Facility: l.facility.get(hdr),
		}
		if l.hasCallerID && l.callerID+4 <= uint64(len(hdr)) {
			r.CallerID = binary.LittleEndian.Uint32(hdr[l.callerID:])
		}
		seq++
		if l.size+textLen+dictLen > recLen {
			skip := fmt.Errorf("record at log_buf+%d: text and dictionary (%d+%d bytes) overrun its length %d", idx, textLen, dictLen, recLen)
			skipped++
			if firstErr == nil {
				firstErr = skip
			}
		} else if body, err := buf.slice(idx+l.size, textLen+dictLen); err != nil {
			skipped++
			if firstErr == nil {
				firstErr = fmt.Errorf("text of record at log_buf+%d: %w", idx, err)
			}
		} else {
			r.Text = string(body[:textLen])
			if dictLen > 0 {
				r.dict = string(body[textLen:])
				r.Subsystem, r.Device = printkDictFields(r.dict)
			}
			out = append(out, r)
		}
		idx += recLen
		if idx >= bufLen {
			if first > next {
				idx = 0
			} else {
				return out, fail("log_buf at %#x: record runs past the buffer's end", bufAddr)
			}
		}
	}
	if skipped > 0 {
		return out, &LogError{Format: LogRecords, Skipped: skipped, Total: len(out) + skipped, Err: firstErr}
	}
	return out, nil
}

// printkDictFields picks SUBSYSTEM= and DEVICE= out of a dictionary.
func printkDictFields(dict string) (subsystem, device string) {
	r := LogRecord{dict: dict}
	for _, kv := range r.Dictionary() {
		switch {
		case len(kv) > len("SUBSYSTEM=") && kv[:len("SUBSYSTEM=")] == "SUBSYSTEM=":
			subsystem = kv[len("SUBSYSTEM="):]
		case len(kv) > len("DEVICE=") && kv[:len("DEVICE=")] == "DEVICE=":
			device = kv[len("DEVICE="):]
		}
	}
	return subsystem, device
}
