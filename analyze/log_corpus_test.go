package analyze

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"salvage/kernel"
	"salvage/lab/corpus"
)

// logRefKeys are the corpus's reference outputs of log: crash 8.0.6's,
// and crash 8.0.2's on the live dumps, which 8.0.6 cannot open.
var logRefKeys = []string{"log", "log-T", "log-m", "log-t", "crash-8.0.2:log"}

// useUTC makes salvage's -T print in UTC, the zone of the lab machine
// where crash made the references (crash's ctime_tz prints local time).
func useUTC(t *testing.T) {
	old := time.Local
	time.Local = time.UTC
	t.Cleanup(func() { time.Local = old })
}

// countSameLines counts the lines equal in both, position by position.
func countSameLines(got, want string) (same, total int) {
	g := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	w := strings.Split(strings.TrimSuffix(want, "\n"), "\n")
	for i := range w {
		if i < len(g) && g[i] == w[i] {
			same++
		}
	}
	return same, len(w)
}

// TestLogMatchesCrash runs each reference log command on every corpus
// dump, with the vmlinux and without, and compares the output with
// crash's byte for byte.
func TestLogMatchesCrash(t *testing.T) {
	m := corpus.Require(t)
	useUTC(t)
	for _, d := range m.Dumps {
		for _, mode := range []string{"vmlinux", "btf"} {
			t.Run(mode+"/"+d.ID, func(t *testing.T) {
				s := corpusSession(t, m, d, mode == "vmlinux")
				k, err := s.Kernel()
				if err != nil {
					t.Fatal(err)
				}
				hz, hzWrong := crashHZOf(t, k)
				n := 0
				for _, key := range logRefKeys {
					want, ok, err := m.Ref(d, key)
					if err != nil {
						t.Fatal(err)
					}
					if !ok {
						continue
					}
					cmd := d.RefCommands[key]
					if !strings.HasPrefix(cmd, "log") {
						t.Fatalf("reference %s is of %q, not log", key, cmd)
					}
					n++
					got, errs := execCapture(s, cmd)
					if errs != "" {
						t.Errorf("%s: %s", cmd, errs)
					}
					if got != want && hzWrong && strings.Contains(cmd, "T") && hz.logT(t, want) == got {
						t.Logf("%s: crash's dates are off by its HZ on this kernel (see crashHZ), exactly", cmd)
						continue
					}
					same, total := countSameLines(got, want)
					if got != want {
						t.Errorf("%s differs from crash (%s): %d of %d lines the same\n%s", cmd, key, same, total, lineDiff(got, want))
						continue
					}
					t.Logf("%s: %d of %d lines identical to %s", cmd, same, total, key)
				}
				if n == 0 {
					t.Fatalf("%s: the corpus has no reference log", d.ID)
				}
			})
		}
	}
}

// logGoldenSession is run by the reference crash (once, cached in the
// lab) for the options the corpus references lack.
const logGoldenSession = `log -c > GOLDEN/log-c.txt
log -d > GOLDEN/log-d.txt
log -td > GOLDEN/log-td.txt
log -Tmc > GOLDEN/log-Tmc.txt
log -tmcd > GOLDEN/log-tmcd.txt
q
`

// TestLogOptionsMatchCrash compares log -c, -d and combinations with
// crash 8.0.6 on two dumps of different crashes and formats.
func TestLogOptionsMatchCrash(t *testing.T) {
	m := corpus.Require(t)
	useUTC(t)
	for _, id := range []string{"6.1.0-56-cloud-amd64/sysrq/vmcore-elf", "6.1.0-56-cloud-amd64/oops/lzo-d31"} {
		ds := m.Select(func(d corpus.Dump) bool { return d.ID == id })
		if len(ds) != 1 {
			t.Fatalf("the corpus has no dump %s", id)
		}
		d := ds[0]
		dir := crashGoldenDir(t, m, d, logGoldenSession)
		for _, mode := range []string{"vmlinux", "btf"} {
			t.Run(mode+"/"+id, func(t *testing.T) {
				s := corpusSession(t, m, d, mode == "vmlinux")
				for _, st := range readGoldenSession(logGoldenSession) {
					b, err := os.ReadFile(filepath.Join(dir, st.file))
					if err != nil {
						t.Fatal(err)
					}
					want := string(b)
					got, errs := execCapture(s, st.cmd)
					if errs != "" {
						t.Errorf("%s: %s", st.cmd, errs)
					}
					same, total := countSameLines(got, want)
					if got != want {
						t.Errorf("%s differs from crash: %d of %d lines the same\n%s", st.cmd, same, total, lineDiff(got, want))
						continue
					}
					t.Logf("%s: %d of %d lines identical to crash", st.cmd, same, total)
				}
			})
		}
	}
}

// TestLogJSON checks log --json against crash's log -m: one object per
// message, with its level, its time as log prints it and its text.
func TestLogJSON(t *testing.T) {
	m := corpus.Require(t)
	ds := m.Select(func(d corpus.Dump) bool { return d.ID == "6.1.0-56-cloud-amd64/hung/vmcore-elf" })
	if len(ds) != 1 {
		t.Fatal("the corpus has no hung/vmcore-elf dump")
	}
	want, ok, err := m.Ref(ds[0], "log-m")
	if err != nil || !ok {
		t.Fatalf("no log -m reference: %v", err)
	}
	for _, mode := range []string{"vmlinux", "btf"} {
		t.Run(mode, func(t *testing.T) {
			s := corpusSession(t, m, ds[0], mode == "vmlinux")
			out, errs := execCapture(s, "log --json")
			if errs != "" {
				t.Fatal(errs)
			}
			var recs []logRecordJSON
			if err := json.Unmarshal([]byte(out), &recs); err != nil {
				t.Fatalf("log --json: %v\n%.200s", err, out)
			}
			// Rebuild crash's log -m text from the JSON fields alone.
			var b strings.Builder
			for _, r := range recs {
				secs, micros, _ := strings.Cut(r.Time, ".")
				b.WriteString("[" + strings.Repeat(" ", max(0, 5-len(secs))) + secs + "." + micros + "] <" + string("01234567"[r.Level]) + ">")
				for i := 0; i < len(r.Text); i++ {
					switch c := r.Text[i]; {
					case c == '\n':
						b.WriteString("\n" + strings.Repeat(" ", len("[    0.000000] <0>")))
					case logPrintable(c):
						b.WriteByte(c)
					default:
						b.WriteByte('.')
					}
				}
				b.WriteByte('\n')
			}
			if got := b.String(); got != want {
				t.Errorf("log --json's records differ from crash's log -m:\n%s", lineDiff(got, want))
			}
			if len(recs) == 0 || recs[0].Caller != "T0" || recs[0].Seq != 0 || recs[0].Facility != 0 {
				t.Errorf("first record %+v: want seq 0, facility 0, caller T0 (the boot CPU's idle task)", recs[0])
			}
		})
	}
}

// TestLogErrors: bad invocations are one-line errors.
func TestLogErrors(t *testing.T) {
	m := corpus.Require(t)
	s := corpusSession(t, m, m.Dumps[0], false)
	for cmd, want := range map[string]string{
		"log extra": "log",
		"log -x":    "log",
		"log -a":    "audit",
		"log -s":    "printk_safe",
	} {
		out, errs := execCapture(s, cmd)
		if errs == "" || !strings.Contains(errs, want) || strings.Contains(errs, "panic") {
			t.Errorf("%s: output %.80q, error %q; want an error mentioning %q", cmd, out, errs, want)
		}
	}
}

// TestWriteCrashLogRecord covers what the lab's logs lack: unprintable
// bytes (crash's '.'), and the indentation of continuation and
// dictionary lines under every prefix. (Data-less records, which crash
// shows as a bare newline, are made by the kernel package's synthetic
// ring tests.)
func TestWriteCrashLogRecord(t *testing.T) {
	var b strings.Builder
	f := logFlags{caller: true, level: true, dict: true, callerWidth: 6}
	writeCrashLogRecord(&b, kernel.LogRecord{TimeNS: 12_345_678_901, Level: 3, CallerID: 0x80000001, Text: "a\x01b\xe2\tc\nnext", Subsystem: "pci", Device: "+pci:0000:00:01.0"}, &f)
	writeCrashLogRecord(&b, kernel.LogRecord{TimeNS: 100_000_000_000_000, CallerID: 4321, Text: "x"}, &logFlags{caller: true, callerWidth: 8})
	want := "[   12.345678] [    C1] <3>a.b.\tc\n" +
		"                           next\n" +
		"                           SUBSYSTEM=pci\n" +
		"                           DEVICE=+pci:0000:00:01.0\n" +
		"[100000.000000] [   T4321] x\n"
	if b.String() != want {
		t.Errorf("got\n%q\nwant\n%q", b.String(), want)
	}
}
