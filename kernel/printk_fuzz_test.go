package kernel

import (
	"encoding/binary"
	"errors"
	"testing"

	"salvage/dump"
)

// checkLogContract is what every read of a message buffer promises: on
// error, a *LogError; records have levels 0 to 7 and texts no longer
// than text_len can say.
func checkLogContract(t *testing.T, recs []LogRecord, err error) {
	var le *LogError
	if err != nil && !errors.As(err, &le) {
		t.Fatalf("error %v (%T) is not a *LogError", err, err)
	}
	for _, r := range recs {
		if r.Level < 0 || r.Level > 7 {
			t.Fatalf("record %d: level %d", r.Seq, r.Level)
		}
		if len(r.Text) > 0xffff {
			t.Fatalf("record %d: %d bytes of text", r.Seq, len(r.Text))
		}
	}
}

// FuzzReadLogLockless overwrites the synthetic ring's header, descriptors,
// infos and text with the input.
func FuzzReadLogLockless(f *testing.F) {
	s := standardRing()
	seed := make([]byte, 0, 88+synthCount*24+synthCount*88+synthSize)
	for _, r := range []struct{ addr, n uint64 }{{synthRing, 88}, {synthDescs, synthCount * 24}, {synthInfos, synthCount * 88}, {synthData, synthSize}} {
		b := make([]byte, r.n)
		s.vm.ReadVirt(b, r.addr)
		seed = append(seed, b...)
	}
	f.Add(seed)
	f.Add(seed[:88])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		s := standardRing()
		at := 0
		for _, r := range []struct{ addr, n uint64 }{{synthRing, 88}, {synthDescs, synthCount * 24}, {synthInfos, synthCount * 88}, {synthData, synthSize}} {
			if at >= len(data) {
				break
			}
			end := at + int(r.n)
			if end > len(data) {
				end = len(data)
			}
			s.vm.write(r.addr, data[at:end])
			at = end
		}
		recs, err := s.read(t)
		checkLogContract(t, recs, err)
	})
}

// FuzzReadLogVMCoreInfo reads the synthetic ring with a fuzzed VMCOREINFO
// (offsets and sizes of any value).
func FuzzReadLogVMCoreInfo(f *testing.F) {
	f.Add(synthRingVMCoreInfo)
	f.Add(synthRecordsVMCoreInfo)
	f.Add("SYMBOL(prb)=ffffffff81001000\nSIZE(printk_ringbuffer)=18446744073709551615\n")
	f.Fuzz(func(t *testing.T, text string) {
		vi, _ := dump.ParseVMCoreInfo([]byte(text))
		vm := standardRing().vm
		recsVM := recordsBuffer()
		for k, v := range recsVM {
			if _, ok := vm[k]; !ok {
				vm[k] = v
			}
		}
		recs, err := ReadLog(vi, printkTranslatorMemory{vm.ReadVirt})
		checkLogContract(t, recs, err)
	})
}

// FuzzReadLogRecords fills the printk_log buffer (and its indexes) with
// the input.
func FuzzReadLogRecords(f *testing.F) {
	vm := recordsBuffer()
	seed := make([]byte, 8+256)
	vm.ReadVirt(seed[:4], 0xffffffff81001010)
	vm.ReadVirt(seed[4:8], 0xffffffff81001018)
	vm.ReadVirt(seed[8:], synthLogBuf)
	f.Add(seed)
	f.Add([]byte{0, 0, 0, 0, 16, 0, 0, 0})
	vi, err := dump.ParseVMCoreInfo([]byte(synthRecordsVMCoreInfo))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		vm := recordsBuffer()
		if len(data) >= 8 {
			vm.write(0xffffffff81001010, data[:4])
			vm.write(0xffffffff81001018, data[4:8])
			// The length too, when the input is long enough to say it.
			if len(data) > 8+256 {
				var n [4]byte
				binary.LittleEndian.PutUint32(n[:], uint32(len(data)-8))
				vm.write(0xffffffff81001008, n[:])
			}
			vm.write(synthLogBuf, data[8:])
		}
		recs, err := ReadLog(vi, printkTranslatorMemory{vm.ReadVirt})
		checkLogContract(t, recs, err)
	})
}
