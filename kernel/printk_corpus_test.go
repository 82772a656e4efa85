package kernel

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"salvage/dump"
	"salvage/lab/corpus"
)

// refLogRecord is one message of a reference log: makedumpfile's
// --dump-dmesg or crash's log, which print "[SECONDS.MICROS] TEXT" with
// continuation lines indented by the prefix's width.
type refLogRecord struct {
	stamp string // "[    0.000000]"
	level int    // from crash's log -m, else -1
	text  string
}

var refStampRe = regexp.MustCompile(`^(\[ *[0-9]+\.[0-9]{6}\]) (<([0-9a-f])>)?`)

// parseRefLog parses a reference log; a line neither stamped nor indented
// is an error (an empty line is crash's data-less record).
func parseRefLog(t *testing.T, text string) []refLogRecord {
	t.Helper()
	var out []refLogRecord
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if m := refStampRe.FindStringSubmatch(line); m != nil {
			r := refLogRecord{stamp: m[1], level: -1, text: line[len(m[0]):]}
			if m[3] != "" {
				n, _ := strconv.ParseUint(m[3], 16, 8)
				r.level = int(n)
			}
			out = append(out, r)
			continue
		}
		indent := len("[    0.000000] ")
		if len(out) > 0 && strings.HasPrefix(line, strings.Repeat(" ", indent)) {
			out[len(out)-1].text += "\n" + line[indent:]
			continue
		}
		if line == "" {
			out = append(out, refLogRecord{level: -1})
			continue
		}
		t.Fatalf("reference log line %d is not a message: %q", i+1, line)
	}
	return out
}

// refText is a record's text as the reference prints it: crash shows
// bytes that are neither printable nor space as '.', makedumpfile as \xNN.
func refText(s string, makedumpfile bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\n' || c >= 0x20 && c < 0x7f || c >= '\t' && c <= '\r':
			b.WriteByte(c)
		case makedumpfile:
			fmt.Fprintf(&b, "\\x%02x", c)
		default:
			b.WriteByte('.')
		}
	}
	return b.String()
}

// logReference is the reference log of d: makedumpfile's dmesg when the
// lab made one (it did for every kdump crash), else crash 8.0.2's log
// (the live dumps, which crash 8.0.6 cannot open).
func logReference(t *testing.T, m *corpus.Manifest, d corpus.Dump) (recs []refLogRecord, makedumpfile bool, name string) {
	t.Helper()
	if d.Dmesg != "" {
		b, err := os.ReadFile(m.Path(d.Dmesg))
		if err != nil {
			t.Fatal(err)
		}
		return parseRefLog(t, string(b)), true, "makedumpfile --dump-dmesg"
	}
	for _, key := range []string{"log", "crash-8.0.2:log"} {
		text, ok, err := m.Ref(d, key)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			return parseRefLog(t, text), false, "crash " + key
		}
	}
	t.Fatalf("%s: the corpus has no reference log (no dmesg, no crash log)", d.ID)
	return nil, false, ""
}

// readLogMode reads d's log one of three ways: from VMCOREINFO alone
// (salvage dmesg's way, "vmcoreinfo"), with the debug vmlinux's symbols
// and DWARF ("dwarf"), or with the dump's kallsyms and BTF ("btf").
func readLogMode(t *testing.T, m *corpus.Manifest, d corpus.Dump, mode string) ([]LogRecord, error) {
	t.Helper()
	if mode == "dwarf" {
		return openTypedKernel(t, m, d).Log()
	}
	f, err := dump.Open(m.Paths(d)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if mode == "vmcoreinfo" {
		return DumpLog(f)
	}
	k, err := Open(f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return k.Log()
}

// TestLogMatchesReferences reads the log of every corpus dump in every
// mode and compares each record's timestamp and text with makedumpfile's
// dmesg of the crash (or crash's log), each level with crash 8.0.6's log
// -m where it has one, and the first message with the guest's uname.
func TestLogMatchesReferences(t *testing.T) {
	m := corpus.Require(t)
	for _, d := range m.Dumps {
		want, mdf, refName := logReference(t, m, d)
		var levels []refLogRecord
		if text, ok, err := m.Ref(d, "log-m"); err != nil {
			t.Fatal(err)
		} else if ok {
			levels = parseRefLog(t, text)
		}
		release := truthFile(t, m, d, "release")
		for _, mode := range []string{"vmcoreinfo", "dwarf", "btf"} {
			t.Run(mode+"/"+d.ID, func(t *testing.T) {
				recs, err := readLogMode(t, m, d, mode)
				if err != nil {
					t.Fatal(err)
				}
				same := 0
				for i := 0; i < len(recs) || i < len(want); i++ {
					if i >= len(recs) || i >= len(want) {
						t.Errorf("%d records, %s has %d", len(recs), refName, len(want))
						break
					}
					r := recs[i]
					if r.Dataless() {
						t.Errorf("record %d (seq %d) has no text; the lab's dumps have none such", i, r.Seq)
						continue
					}
					got := refLogRecord{stamp: fmt.Sprintf("[%5d.%06d]", r.TimeNS/1e9, r.TimeNS%1e9/1000), level: -1, text: refText(r.Text, mdf)}
					if got != want[i] {
						t.Errorf("record %d: got %q %q, %s has %q %q", i, got.stamp, got.text, refName, want[i].stamp, want[i].text)
						continue
					}
					if r.Seq != recs[0].Seq+uint64(i) {
						t.Errorf("record %d has seq %d after %d", i, r.Seq, recs[0].Seq)
					}
					same++
				}
				lv := 0
				if levels != nil {
					if len(levels) != len(recs) {
						t.Errorf("%d records, crash's log -m has %d", len(recs), len(levels))
					}
					for i := 0; i < len(levels) && i < len(recs); i++ {
						if recs[i].Level != levels[i].level {
							t.Errorf("record %d (%q): level %d, crash's log -m says %d", i, recs[i].Text, recs[i].Level, levels[i].level)
							continue
						}
						lv++
					}
				}
				if len(recs) == 0 || !strings.HasPrefix(recs[0].Text, "Linux version "+release+" ") {
					t.Errorf("the first message is not the banner of the guest's kernel %s", release)
				}
				t.Logf("%d of %d records match %s; %d levels match crash's log -m", same, len(want), refName, lv)
			})
		}
	}
}

// stripPrintkInfo removes every entry of the printk layout from VMCOREINFO
// text, leaving only what the kernel describes of other things.
func stripPrintkInfo(t *testing.T, raw string) *dump.VMCoreInfo {
	t.Helper()
	var keep []string
	for _, l := range strings.Split(raw, "\n") {
		if regexp.MustCompile(`^(SYMBOL\(prb\)|SYMBOL\(printk_rb_static\)|(SIZE|OFFSET)\((printk_ringbuffer|prb_|printk_info|dev_printk_info|atomic_long_t|latched_seq)|LENGTH\(printk_info)`).MatchString(l) {
			continue
		}
		keep = append(keep, l)
	}
	vi, err := dump.ParseVMCoreInfo([]byte(strings.Join(keep, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := vi.Offset("printk_info", "seq"); ok {
		t.Fatal("the printk entries were not stripped")
	}
	return vi
}

// TestLogFromTypes: with VMCOREINFO's printk entries gone, the layout
// comes from the types (DWARF or BTF) and the symbol table, and the
// records still match the reference.
func TestLogFromTypes(t *testing.T) {
	m := corpus.Require(t)
	d := m.Select(func(d corpus.Dump) bool { return d.ID == "6.1.0-56-cloud-amd64/sysrq/vmcore-elf" })
	if len(d) != 1 {
		t.Fatal("the corpus has no sysrq/vmcore-elf dump")
	}
	want, _, refName := logReference(t, m, d[0])
	levelText, ok, err := m.Ref(d[0], "log-m")
	if err != nil || !ok {
		t.Fatalf("no log -m reference: %v", err)
	}
	levels := parseRefLog(t, levelText)
	for _, mode := range []string{"dwarf", "btf"} {
		t.Run(mode, func(t *testing.T) {
			var k *Kernel
			if mode == "dwarf" {
				k = openTypedKernel(t, m, d[0])
			} else {
				f, err := dump.Open(m.Paths(d[0])...)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { f.Close() })
				if k, err = Open(f, Options{}); err != nil {
					t.Fatal(err)
				}
			}
			src := &printkLayoutSource{vi: stripPrintkInfo(t, k.VMCoreInfo().Raw), types: k.Types,
				symbol: func(n string) (uint64, bool) { s, ok := k.Symbols.Lookup(n); return s.Addr, ok }}
			recs, err := readPrintk(src, k)
			if err != nil {
				t.Fatal(err)
			}
			if len(src.missing) != 0 {
				t.Errorf("missing %v", src.missing)
			}
			if len(recs) != len(want) {
				t.Fatalf("%d records, %s has %d", len(recs), refName, len(want))
			}
			for i, r := range recs {
				if got := fmt.Sprintf("[%5d.%06d]", r.TimeNS/1e9, r.TimeNS%1e9/1000); got != want[i].stamp || refText(r.Text, true) != want[i].text {
					t.Errorf("record %d: %s %q, %s has %s %q", i, got, r.Text, refName, want[i].stamp, want[i].text)
				}
				// The level is a bitfield (u8 flags:5, level:3) found
				// through the types' bit offsets here.
				if i < len(levels) && r.Level != levels[i].level {
					t.Errorf("record %d: level %d, crash's log -m says %d", i, r.Level, levels[i].level)
				}
			}
			// Without VMCOREINFO's entries or types, nothing locates the ring.
			_, err = ReadLog(stripPrintkInfo(t, k.VMCoreInfo().Raw), k)
			var le *LogError
			if !errors.As(err, &le) || len(le.Missing) == 0 {
				t.Errorf("no layout at all: error %v, want a *LogError naming what is missing", err)
			}
		})
	}
}

// holeyMemory is a kernel's memory with one page unreadable, as a dump
// filter or an incomplete dump would leave it.
type holeyMemory struct {
	k    *Kernel
	hole uint64 // page-aligned virtual address
}

func (h holeyMemory) Read(p []byte, addr uint64) error {
	if addr < h.hole+printkPage && addr+uint64(len(p)) > h.hole {
		return &ReadError{Addr: addr, Size: len(p), Err: &dump.PageError{Addr: h.hole, State: dump.PageExcluded}}
	}
	return h.k.Read(p, addr)
}

// TestLogMissingTextPage: a page of the real text ring lost costs only the
// records whose text is on it; the error counts them.
func TestLogMissingTextPage(t *testing.T) {
	m := corpus.Require(t)
	d := m.Select(func(d corpus.Dump) bool { return d.ID == "6.1.0-56-cloud-amd64/oops/lzo-d31" })
	if len(d) != 1 {
		t.Fatal("the corpus has no oops/lzo-d31 dump")
	}
	k := openKernel(t, m, d[0])
	all, err := k.Log()
	if err != nil {
		t.Fatal(err)
	}
	// The text ring is __log_buf unless log_buf_len= moved it.
	prb, _ := k.VMCoreInfo().Symbol("prb")
	ring, _ := k.ReadPointer(prb)
	data, _ := k.ReadPointer(ring + 48 + 8)
	hole := (data + 3*printkPage) &^ (printkPage - 1)
	got, err := ReadLog(k.VMCoreInfo(), holeyMemory{k: k, hole: hole})
	var le *LogError
	if !errors.As(err, &le) || le.Skipped == 0 {
		t.Fatalf("error %v, want a *LogError counting unreadable records", err)
	}
	if len(got)+le.Skipped != len(all) || le.Total != len(all) {
		t.Errorf("%d read + %d skipped of %d, the whole log has %d", len(got), le.Skipped, le.Total, len(all))
	}
	if !strings.Contains(err.Error(), "excluded") {
		t.Errorf("error %q does not say the page is excluded", err)
	}
	// The records read are the whole log's, in order, less those lost.
	j := 0
	for _, r := range got {
		for j < len(all) && all[j].Seq != r.Seq {
			j++
		}
		if j == len(all) || all[j].Text != r.Text {
			t.Fatalf("record seq %d is not the whole log's", r.Seq)
		}
	}
	t.Logf("a lost page of the text ring cost %d of %d records", le.Skipped, le.Total)
}

// BenchmarkLog reads the whole log of the sysrq dump.
func BenchmarkLog(b *testing.B) {
	m := corpus.Require(b)
	d := m.Select(func(d corpus.Dump) bool { return d.ID == "6.1.0-56-cloud-amd64/sysrq/vmcore-elf" })
	if len(d) != 1 {
		b.Fatal("the corpus has no sysrq/vmcore-elf dump")
	}
	k := openKernel(b, m, d[0])
	for b.Loop() {
		recs, err := k.Log()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(len(recs)), "records")
	}
}
