package kernel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"salvage/dump"
)

// The synthetic rings below use the layouts of Debian's 6.1 kernel, as its
// VMCOREINFO gives them (and the lab's dumps carry): struct
// printk_ringbuffer of 88 bytes, prb_desc of 24, printk_info of 88.
const synthRingVMCoreInfo = `OSRELEASE=6.1.0-synthetic
SYMBOL(prb)=ffffffff81001000
SIZE(printk_ringbuffer)=88
OFFSET(printk_ringbuffer.desc_ring)=0
OFFSET(printk_ringbuffer.text_data_ring)=48
OFFSET(printk_ringbuffer.fail)=80
SIZE(prb_desc_ring)=48
OFFSET(prb_desc_ring.count_bits)=0
OFFSET(prb_desc_ring.descs)=8
OFFSET(prb_desc_ring.infos)=16
OFFSET(prb_desc_ring.head_id)=24
OFFSET(prb_desc_ring.tail_id)=32
SIZE(prb_desc)=24
OFFSET(prb_desc.state_var)=0
OFFSET(prb_desc.text_blk_lpos)=8
SIZE(prb_data_blk_lpos)=16
OFFSET(prb_data_blk_lpos.begin)=0
OFFSET(prb_data_blk_lpos.next)=8
SIZE(printk_info)=88
OFFSET(printk_info.seq)=0
OFFSET(printk_info.ts_nsec)=8
OFFSET(printk_info.text_len)=16
OFFSET(printk_info.caller_id)=20
OFFSET(printk_info.dev_info)=24
SIZE(dev_printk_info)=64
OFFSET(dev_printk_info.subsystem)=0
LENGTH(printk_info_subsystem)=16
OFFSET(dev_printk_info.device)=16
LENGTH(printk_info_device)=48
SIZE(prb_data_ring)=32
OFFSET(prb_data_ring.size_bits)=0
OFFSET(prb_data_ring.data)=8
OFFSET(prb_data_ring.head_lpos)=16
OFFSET(prb_data_ring.tail_lpos)=24
SIZE(atomic_long_t)=8
OFFSET(atomic_long_t.counter)=0
`

const (
	synthPrb   = 0xffffffff81001000 // the variable prb
	synthRing  = 0xffffffff81002000 // struct printk_ringbuffer
	synthDescs = 0xffffffff81003000 // 16 prb_desc
	synthInfos = 0xffffffff81004000 // 16 printk_info
	synthData  = 0xffffffff81006000 // 256 text bytes
	synthCount = 16
	synthSize  = 256
)

// synthRing builds a lockless ring in a fakeVM.
type synthRingVM struct {
	vm         fakeVM
	head, tail uint64
}

func newSynthRing() *synthRingVM {
	vm := fakeVM{}
	vm.put64(synthPrb, synthRing)
	var hdr [88]byte
	binary.LittleEndian.PutUint32(hdr[0:], 4) // count_bits: 16 descriptors
	binary.LittleEndian.PutUint64(hdr[8:], synthDescs)
	binary.LittleEndian.PutUint64(hdr[16:], synthInfos)
	binary.LittleEndian.PutUint32(hdr[48:], 8) // size_bits: 256 bytes
	binary.LittleEndian.PutUint64(hdr[56:], synthData)
	vm.write(synthRing, hdr[:])
	vm.write(synthDescs, make([]byte, synthCount*24))
	vm.write(synthInfos, make([]byte, synthCount*88))
	vm.write(synthData, make([]byte, synthSize))
	return &synthRingVM{vm: vm}
}

func (s *synthRingVM) setHeadTail(head, tail uint64) {
	s.vm.put64(synthRing+24, head)
	s.vm.put64(synthRing+32, tail)
}

// synthRec is one record to place: its descriptor (ID, state, logical
// text positions) and its info.
type synthRec struct {
	id, state           uint64
	begin, next         uint64 // logical positions; the text is written at begin (or 0 when wrapped)
	seq, ts             uint64
	textLen             int // info.text_len; -1: len(text)
	facility, level     int
	caller              uint32
	text                string
	subsystem, device   string
	noText              bool // write no text block
	corruptTextID       bool
	wrapped             bool // the block wrapped: data at the ring's start
	writeBeyondNextOnly bool
}

func (s *synthRingVM) put(r synthRec) {
	slot := r.id % synthCount
	var d [24]byte
	binary.LittleEndian.PutUint64(d[0:], r.state<<62|r.id)
	binary.LittleEndian.PutUint64(d[8:], r.begin)
	binary.LittleEndian.PutUint64(d[16:], r.next)
	s.vm.write(synthDescs+slot*24, d[:])
	var in [88]byte
	binary.LittleEndian.PutUint64(in[0:], r.seq)
	binary.LittleEndian.PutUint64(in[8:], r.ts)
	tl := r.textLen
	if tl < 0 {
		tl = len(r.text)
	}
	binary.LittleEndian.PutUint16(in[16:], uint16(tl))
	in[18] = byte(r.facility)
	in[19] = byte(r.level << 5)
	binary.LittleEndian.PutUint32(in[20:], r.caller)
	copy(in[24:40], r.subsystem)
	copy(in[40:88], r.device)
	s.vm.write(synthInfos+slot*88, in[:])
	if r.noText {
		return
	}
	at := r.begin % synthSize
	if r.wrapped {
		at = 0
	}
	var id [8]byte
	binary.LittleEndian.PutUint64(id[:], r.id)
	s.vm.write(synthData+at, id[:])
	s.vm.write(synthData+at+8, []byte(r.text))
}

func (s *synthRingVM) read(t testing.TB) ([]LogRecord, error) {
	t.Helper()
	vi, err := dump.ParseVMCoreInfo([]byte(synthRingVMCoreInfo))
	if err != nil {
		t.Fatal(err)
	}
	return ReadLog(vi, printkTranslatorMemory{s.vm.ReadVirt})
}

// committed, finalized and reserved states of a descriptor
// (printk_ringbuffer.h enum desc_state).
const (
	stReserved  = 0
	stCommitted = 1
	stFinalized = 2
	stReusable  = 3
)

// standardRing is a ring of seven descriptors (IDs 20 to 26) exercising
// each case crash's dump_record handles.
func standardRing() *synthRingVM {
	s := newSynthRing()
	// Descriptor IDs start near the top of the 62-bit ID space in real
	// kernels (DESC0_ID); here they cross no boundary but do wrap the
	// slot index (20 % 16 = 4 … 26 % 16 = 10).
	s.put(synthRec{id: 20, state: stFinalized, begin: 600, next: 624, seq: 100, ts: 1_500_000_000, textLen: -1, level: 6, caller: 1, text: "Linux version 6."})
	s.put(synthRec{id: 21, state: stFinalized, begin: 624, next: 654, seq: 101, ts: 2_000_123_456, textLen: -1, level: 4, caller: 0x80000001, text: "line one\nline two\tend\x01"})
	// Dev info and facility 1 (a /dev/kmsg write).
	s.put(synthRec{id: 22, state: stCommitted, begin: 656, next: 672, seq: 102, ts: 3_000_000_000, textLen: -1, level: 3, facility: 1, caller: 77, text: "pci ok!!", subsystem: "pci", device: "+pci:0000:00:01.0"})
	// Reserved (being written): skipped.
	s.put(synthRec{id: 23, state: stReserved, begin: 672, next: 688, seq: 103, textLen: -1, text: "reserved"})
	// Data-less: begin == next.
	s.put(synthRec{id: 24, state: stFinalized, begin: 688, next: 688, seq: 104, ts: 4_000_000_000, textLen: 5, noText: true})
	// Wrapped block: begins at ring offset 240, its data at offset 0.
	s.put(synthRec{id: 25, state: stFinalized, begin: 752, next: 768 + 8 + 12, seq: 105, ts: 5_000_000_000, textLen: -1, level: 0, caller: 3, text: "wrapped text", wrapped: true})
	// Truncated: text_len says 40, the block (ring offsets 20 to 38)
	// holds 10 bytes.
	s.put(synthRec{id: 26, state: stFinalized, begin: 788, next: 788 + 8 + 10, seq: 106, ts: 6_000_000_000, textLen: 40, level: 7, caller: 4, text: "truncated!and more"})
	s.setHeadTail(26, 20)
	return s
}

func TestReadLogLocklessSynthetic(t *testing.T) {
	recs, err := standardRing().read(t)
	if err != nil {
		t.Fatal(err)
	}
	want := []LogRecord{
		{Seq: 100, TimeNS: 1_500_000_000, Level: 6, CallerID: 1, Text: "Linux version 6."},
		{Seq: 101, TimeNS: 2_000_123_456, Level: 4, CallerID: 0x80000001, Text: "line one\nline two\tend\x01"},
		{Seq: 102, TimeNS: 3_000_000_000, Level: 3, Facility: 1, CallerID: 77, Text: "pci ok!!", Subsystem: "pci", Device: "+pci:0000:00:01.0"},
		{Seq: 104, TimeNS: 4_000_000_000, dataless: true},
		{Seq: 105, TimeNS: 5_000_000_000, Level: 0, CallerID: 3, Text: "wrapped text"},
		{Seq: 106, TimeNS: 6_000_000_000, Level: 7, CallerID: 4, Text: "truncated!"},
	}
	if !reflect.DeepEqual(recs, want) {
		t.Errorf("records:\n got %+v\nwant %+v", recs, want)
	}
	if got := recs[1].CallerString(); got != "C1" {
		t.Errorf("caller of a CPU-context record: %q, want C1", got)
	}
	if got := recs[2].CallerString(); got != "T77" {
		t.Errorf("caller of a task-context record: %q, want T77", got)
	}
	if got, want := recs[2].Dictionary(), []string{"SUBSYSTEM=pci", "DEVICE=+pci:0000:00:01.0"}; !reflect.DeepEqual(got, want) {
		t.Errorf("dictionary %q, want %q", got, want)
	}
}

// TestReadLogLocklessStaleDescriptor: a slot reused by a newer ID (the
// state's ID differs from the one asked for) is not this record.
func TestReadLogLocklessStaleDescriptor(t *testing.T) {
	s := newSynthRing()
	s.put(synthRec{id: 5, state: stFinalized, begin: 0, next: 16, seq: 1, textLen: -1, text: "old text"})
	s.put(synthRec{id: 6, state: stFinalized, begin: 16, next: 32, seq: 2, textLen: -1, text: "new text"})
	// Slot of ID 7 still holds ID 7-16 = -9's… make it hold a foreign ID.
	var d [24]byte
	binary.LittleEndian.PutUint64(d[0:], stFinalized<<62|(7+synthCount))
	s.vm.write(synthDescs+7*24, d[:])
	s.setHeadTail(7, 5)
	recs, err := s.read(t)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].Text != "old text" || recs[1].Text != "new text" {
		t.Errorf("records %+v, want the two whose descriptors carry their IDs", recs)
	}
}

func TestReadLogMissingPage(t *testing.T) {
	s := standardRing()
	// Drop the page of the infos: every record is unreadable.
	delete(s.vm, synthInfos>>12)
	recs, err := s.read(t)
	var le *LogError
	if !errors.As(err, &le) || le.Skipped == 0 {
		t.Fatalf("error %v, want a *LogError counting skipped records", err)
	}
	if len(recs) != 0 {
		t.Errorf("%d records read from a ring without infos", len(recs))
	}
	if !strings.Contains(err.Error(), "unreadable") || !strings.Contains(err.Error(), "excluded") {
		t.Errorf("error %q does not say what is missing", err)
	}

	// Now move the data ring so that its first 32 bytes are on a missing
	// page.
	s = standardRing()
	data := make([]byte, synthSize)
	s.vm.ReadVirt(data, synthData)
	newData := uint64(0xffffffff81008000 - 32)
	s.vm.write(newData+32, data[32:])
	s.vm.put64(synthRing+56, newData)
	recs, err = s.read(t)
	if !errors.As(err, &le) {
		t.Fatalf("error %v, want a *LogError", err)
	}
	// IDs 25 (wrapped, text at 8..20) and 26 (at 28..38, straddling 32)
	// need the lost bytes; 20, 21 and 22 (from 96 on) and 24 (no text)
	// do not.
	if le.Skipped != 2 || le.Total != 6 {
		t.Errorf("skipped %d of %d, want 2 of 6: %v", le.Skipped, le.Total, err)
	}
	var seqs []uint64
	for _, r := range recs {
		seqs = append(seqs, r.Seq)
	}
	if !reflect.DeepEqual(seqs, []uint64{100, 101, 102, 104}) {
		t.Errorf("read records %v, want 100, 101, 102, 104", seqs)
	}
}

func TestReadLogLayoutMissing(t *testing.T) {
	for _, drop := range []string{"OFFSET(prb_desc.state_var)", "SIZE(printk_info)", "OFFSET(prb_data_ring.data)"} {
		var keep []string
		for _, l := range strings.Split(synthRingVMCoreInfo, "\n") {
			if !strings.HasPrefix(l, drop+"=") {
				keep = append(keep, l)
			}
		}
		vi, _ := dump.ParseVMCoreInfo([]byte(strings.Join(keep, "\n")))
		_, err := ReadLog(vi, printkTranslatorMemory{standardRing().vm.ReadVirt})
		var le *LogError
		if !errors.As(err, &le) || !reflect.DeepEqual(le.Missing, []string{drop}) {
			t.Errorf("without %s: error %v, want a *LogError naming it", drop, err)
		}
	}
	vi, _ := dump.ParseVMCoreInfo([]byte("OSRELEASE=x\n"))
	if _, err := ReadLog(vi, printkTranslatorMemory{fakeVM{}.ReadVirt}); err == nil || !strings.Contains(err.Error(), "SYMBOL(prb)") {
		t.Errorf("no buffer described: error %v", err)
	}
	if _, err := ReadLog(nil, printkTranslatorMemory{fakeVM{}.ReadVirt}); err == nil {
		t.Error("nil VMCOREINFO: no error")
	}
}

// TestReadLogLayoutImplausible: offsets outside their structures and
// absurd ring sizes are errors, not panics or huge allocations.
func TestReadLogLayoutImplausible(t *testing.T) {
	bad := strings.Replace(synthRingVMCoreInfo, "OFFSET(printk_info.text_len)=16", "OFFSET(printk_info.text_len)=87", 1)
	vi, _ := dump.ParseVMCoreInfo([]byte(bad))
	if _, err := ReadLog(vi, printkTranslatorMemory{standardRing().vm.ReadVirt}); err == nil || !strings.Contains(err.Error(), "printk_info.text_len") {
		t.Errorf("text_len outside printk_info: error %v", err)
	}
	s := standardRing()
	s.vm.write(synthRing+48, []byte{40, 0, 0, 0}) // size_bits 40
	if _, err := s.read(t); err == nil || !strings.Contains(err.Error(), "implausible") {
		t.Errorf("2^40-byte text ring: error %v", err)
	}
}

// The printk_log records of 4.x kernels: struct printk_log of 16 bytes
// (ts_nsec, len, text_len, dict_len, facility, flags:5 level:3), records
// 8-byte aligned, as VMCOREINFO describes them.
const synthRecordsVMCoreInfo = `OSRELEASE=4.19.0-synthetic
SYMBOL(log_buf)=ffffffff81001000
SYMBOL(log_buf_len)=ffffffff81001008
SYMBOL(log_first_idx)=ffffffff81001010
SYMBOL(clear_idx)=ffffffff81001014
SYMBOL(log_next_idx)=ffffffff81001018
SIZE(printk_log)=16
OFFSET(printk_log.ts_nsec)=0
OFFSET(printk_log.len)=8
OFFSET(printk_log.text_len)=10
OFFSET(printk_log.dict_len)=12
`

const synthLogBuf = 0xffffffff81002000

type synthLogRec struct {
	ts              uint64
	facility, level int
	text, dict      string
}

// putLogRec writes a printk_log record at idx and returns the next index.
func putLogRec(vm fakeVM, idx uint64, r synthLogRec) uint64 {
	n := 16 + len(r.text) + len(r.dict)
	n = (n + 7) &^ 7
	b := make([]byte, n)
	binary.LittleEndian.PutUint64(b[0:], r.ts)
	binary.LittleEndian.PutUint16(b[8:], uint16(n))
	binary.LittleEndian.PutUint16(b[10:], uint16(len(r.text)))
	binary.LittleEndian.PutUint16(b[12:], uint16(len(r.dict)))
	b[14] = byte(r.facility)
	b[15] = byte(r.level<<5 | 0x3) // flags LOG_NEWLINE|LOG_CONT in the low bits
	copy(b[16:], r.text)
	copy(b[16+len(r.text):], r.dict)
	vm.write(synthLogBuf+idx, b)
	return idx + uint64(n)
}

// recordsBuffer is a 256-byte log_buf that has wrapped: records at 184
// and 208, an end marker at 240, then records at 0 and 56.
func recordsBuffer() fakeVM {
	vm := fakeVM{}
	vm.write(synthLogBuf, make([]byte, 256))
	vm.put64(0xffffffff81001000, synthLogBuf)
	vm.write(0xffffffff81001008, []byte{0, 1, 0, 0})
	vm.write(0xffffffff81001010, []byte{184, 0, 0, 0})
	next := putLogRec(vm, 184, synthLogRec{ts: 1_000_000, level: 6, text: "first"})
	next = putLogRec(vm, next, synthLogRec{ts: 2_000_000, level: 4, facility: 0, text: "second\nline"})
	if next != 240 {
		panic(fmt.Sprint("layout changed: ", next))
	}
	// 240..255: an end-of-buffer marker (len 0).
	next = putLogRec(vm, 0, synthLogRec{ts: 3_000_000, level: 3, text: "e1000e: eth0 up", dict: "SUBSYSTEM=net\x00DEVICE=n2"})
	next = putLogRec(vm, next, synthLogRec{ts: 4_000_000, level: 7, facility: 1, text: "user"})
	vm.write(0xffffffff81001018, []byte{byte(next), 0, 0, 0})
	return vm
}

func TestReadLogRecordsSynthetic(t *testing.T) {
	vi, err := dump.ParseVMCoreInfo([]byte(synthRecordsVMCoreInfo))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := ReadLog(vi, printkTranslatorMemory{recordsBuffer().ReadVirt})
	if err != nil {
		t.Fatal(err)
	}
	want := []LogRecord{
		{Seq: 0, TimeNS: 1_000_000, Level: 6, Text: "first"},
		{Seq: 1, TimeNS: 2_000_000, Level: 4, Text: "second\nline"},
		{Seq: 2, TimeNS: 3_000_000, Level: 3, Text: "e1000e: eth0 up", Subsystem: "net", Device: "n2", dict: "SUBSYSTEM=net\x00DEVICE=n2"},
		{Seq: 3, TimeNS: 4_000_000, Level: 7, Facility: 1, Text: "user"},
	}
	if !reflect.DeepEqual(recs, want) {
		t.Errorf("records:\n got %+v\nwant %+v", recs, want)
	}
	if got := recs[2].Dictionary(); !reflect.DeepEqual(got, []string{"SUBSYSTEM=net", "DEVICE=n2"}) {
		t.Errorf("dictionary %q", got)
	}
}

func TestReadLogRecordsCorrupt(t *testing.T) {
	vi, _ := dump.ParseVMCoreInfo([]byte(synthRecordsVMCoreInfo))
	// A record whose text overruns its length is skipped, and counted.
	vm := recordsBuffer()
	vm.write(synthLogBuf+184+10, []byte{200, 0})
	recs, err := ReadLog(vi, printkTranslatorMemory{vm.ReadVirt})
	var le *LogError
	if !errors.As(err, &le) || le.Skipped != 1 || len(recs) != 3 {
		t.Errorf("overrunning text: %d records, error %v; want 3 and one skipped", len(recs), err)
	}
	// A loop that never reaches log_next_idx ends with an error.
	vm = recordsBuffer()
	vm.write(0xffffffff81001018, []byte{4, 0, 0, 0})
	if _, err := ReadLog(vi, printkTranslatorMemory{vm.ReadVirt}); err == nil {
		t.Error("log_next_idx inside a record: no error")
	}
	// An implausible length.
	vm = recordsBuffer()
	vm.write(0xffffffff81001008, []byte{0, 0, 0, 0x80})
	if _, err := ReadLog(vi, printkTranslatorMemory{vm.ReadVirt}); err == nil || !strings.Contains(err.Error(), "implausible") {
		t.Errorf("2 GiB log_buf_len: error %v", err)
	}
}

// TestLogUptime checks crash's get_uptime arithmetic: jiffies_64 starts
// at INITIAL_JIFFIES, five minutes before the 32-bit jiffies wrap.
func TestLogUptime(t *testing.T) {
	ij := func(hz uint64) uint64 { return uint64(uint32(-int64(300 * hz))) } // INITIAL_JIFFIES
	for _, c := range []struct {
		j, hz, want uint64
	}{
		{ij(250), 250, 0},                                 // at boot
		{ij(250) + 5500, 250, 5500},                       // 22 s in
		{0x100000000 + 1000, 250, 1000 + 300*250},         // after the 32-bit wrap
		{ij(1000) + 12_000, 1000, 12_000},                 // HZ=1000
		{0x300000000 + 7, 100, 0x200000000 + 7 + 300*100}, // long uptime
	} {
		if got := logUptimeJiffies(c.j, c.hz); got != c.want {
			t.Errorf("uptime jiffies of %#x at HZ %d: %d, want %d", c.j, c.hz, got, c.want)
		}
	}
	for _, hz := range []uint64{100, 250, 300, 1000} {
		j := ij(hz) + 37*hz
		if got := logGuessHZ(j, 36_900_000_000); got != hz {
			t.Errorf("HZ of 37 s of jiffies at %d: guessed %d", hz, got)
		}
	}
}
