package analyze

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"salvage/kernel"
)

// logCommand is crash's log: the kernel's message buffer.
func logCommand() *Command {
	return &Command{
		Name:    "log",
		Summary: "print the kernel's message buffer",
		Usage:   "[-Ttdmc]",
		Help: `Prints the kernel's message buffer, oldest message first, as crash's log
does: "[SECONDS.MICROS] TEXT", with the lines of a multi-line message
indented under the first. Both buffer layouts are read: the lockless
printk_ringbuffer of Linux 5.10 and later, and the printk_log records of
3.5 to 5.9. The buffer is found from VMCOREINFO, with the kernel's types
filling in what it lacks, so the log reads with or without a vmlinux.

  -T  wall-clock timestamps, computed as crash computes them: the boot
      time (the timekeeper's xtime_sec at the crash less the uptime that
      jiffies_64 gives) plus each message's seconds since boot; shown in
      the local time zone. Like crash's, they drift from the true time by
      however far local_clock() drifted from the wall clock.
  -t  no timestamps.
  -d  the dev_printk dictionary under each message: SUBSYSTEM= and
      DEVICE= (all KEY=VALUE entries on kernels before 5.10).
  -m  each message's level, "<N>", in hexadecimal.
  -c  the caller of printk: "T" and a thread ID, or "C" and a CPU number.

crash's -a (audit buffers) and -s (printk_safe buffers, gone since 5.11)
are not supported.

--json prints the records as an array of objects: seq, time_ns, time
(seconds since boot, as log shows it), wall_time with -T, level,
facility, caller, text, subsystem, device.

Examples:
  log
  log -T
  log -tm
  log -c | tail
`,
		Options: []Option{
			{Name: "T", Help: "human-readable wall-clock timestamps"},
			{Name: "t", Help: "no timestamps"},
			{Name: "d", Help: "show the dev_printk dictionary (SUBSYSTEM, DEVICE)"},
			{Name: "m", Help: "show each message's log level"},
			{Name: "c", Help: "show the caller ID (thread or CPU)"},
			{Name: "a", Help: "audit buffers (not supported)"},
			{Name: "s", Help: "printk_safe buffers (not supported)"},
		},
		MaxArgs: 0,
		Run:     runLog,
	}
}

// logRecordJSON is one record of log --json.
type logRecordJSON struct {
	Seq       uint64 `json:"seq"`
	TimeNS    uint64 `json:"time_ns"`
	Time      string `json:"time"` // seconds since boot, "SECONDS.MICROS"
	WallTime  string `json:"wall_time,omitempty"`
	Level     int    `json:"level"`
	Facility  int    `json:"facility"`
	Caller    string `json:"caller"`
	Text      string `json:"text"`
	Subsystem string `json:"subsystem,omitempty"`
	Device    string `json:"device,omitempty"`
	// Dataless marks a descriptor without text, which crash shows as an
	// empty line.
	Dataless bool `json:"dataless,omitempty"`
}

// logFlags are log's display options.
type logFlags struct {
	wall, noTime, dict, level, caller bool
	bootTime                          int64          // with wall
	loc                               *time.Location // with wall
	callerWidth                       int            // with caller
}

func runLog(ctx *Context) error {
	o := ctx.Opts
	if o.Has("a") {
		return errors.New("log -a: salvage does not read the audit buffers")
	}
	if o.Has("s") {
		return errors.New("log -s: salvage does not read printk_safe buffers (Linux 5.11 and later have none)")
	}
	k, err := ctx.Session.Kernel()
	if err != nil {
		return err
	}
	recs, logErr := k.Log()
	if len(recs) == 0 && logErr != nil {
		return logErr
	}
	f := logFlags{wall: o.Has("T"), noTime: o.Has("t"), dict: o.Has("d"), level: o.Has("m"), caller: o.Has("c"), loc: time.Local}
	if f.wall && !f.noTime {
		if f.bootTime, err = k.LogBootTime(recs); err != nil {
			return fmt.Errorf("log -T: %w", err)
		}
	}
	if f.caller {
		f.callerWidth = logCallerWidth(k)
	}
	if ctx.JSON {
		out := make([]logRecordJSON, 0, len(recs))
		for _, r := range recs {
			j := logRecordJSON{
				Seq: r.Seq, TimeNS: r.TimeNS, Time: logSeconds(r.TimeNS),
				Level: r.Level, Facility: r.Facility, Caller: r.CallerString(),
				Text: r.Text, Subsystem: r.Subsystem, Device: r.Device, Dataless: r.Dataless(),
			}
			if f.wall {
				j.WallTime = logWallTime(f.bootTime, r.TimeNS, f.loc).Format(time.RFC3339)
			}
			out = append(out, j)
		}
		if err := writeJSON(ctx, out); err != nil {
			return err
		}
		return logErr
	}
	w := bufio.NewWriterSize(ctx.Out, 64<<10)
	for _, r := range recs {
		writeCrashLogRecord(w, r, &f)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return logErr
}

// logCallerWidth is the width crash 8.0.6 gives caller IDs (printk.c,
// pid_max_chars): 6 characters when pid_max fits in five digits, 7 in
// six, otherwise PID_CHARS_DEFAULT, 8.
func logCallerWidth(k *kernel.Kernel) int {
	if k.LogFormat() != kernel.LogLockless {
		return 8 // dump_log_entry uses PID_CHARS_DEFAULT
	}
	a, err := k.SymbolAddr("pid_max")
	if err != nil {
		return 8
	}
	v, err := k.ReadUint(a, 4)
	switch {
	case err != nil:
		return 8
	case v <= 99999:
		return 6
	case v <= 999999:
		return 7
	}
	return 8
}

// logSeconds is a timestamp as log shows it, "SECONDS.MICROS".
func logSeconds(ns uint64) string {
	return fmt.Sprintf("%d.%06d", ns/1e9, ns%1e9/1000)
}

// logWallTime is crash's -T time of a message: the boot time plus its
// whole seconds since boot.
func logWallTime(boot int64, ns uint64, loc *time.Location) time.Time {
	return time.Unix(boot+int64(ns/1e9), 0).In(loc)
}

// writeCrashLogRecord prints one record as crash's dump_record
// (printk.c) and dump_log_entry (kernel.c) do.
func writeCrashLogRecord(w io.Writer, r kernel.LogRecord, f *logFlags) {
	if r.Dataless() {
		// crash skips a text-less descriptor after nothing but its
		// newline.
		io.WriteString(w, "\n")
		return
	}
	var prefix strings.Builder
	if !f.noTime {
		if f.wall {
			// ctime_tz: strftime "%a %b %e %T %Z %Y" of localtime.
			fmt.Fprintf(&prefix, "[%s] ", logWallTime(f.bootTime, r.TimeNS, f.loc).Format("Mon Jan _2 15:04:05 MST 2006"))
		} else {
			fmt.Fprintf(&prefix, "[%5d.%06d] ", r.TimeNS/1e9, r.TimeNS%1e9/1000)
		}
	}
	if f.caller {
		fmt.Fprintf(&prefix, "[%*s] ", f.callerWidth, r.CallerString())
	}
	if f.level {
		fmt.Fprintf(&prefix, "<%x>", r.Level)
	}
	indent := strings.Repeat(" ", prefix.Len())
	var b strings.Builder
	b.WriteString(prefix.String())
	for i := 0; i < len(r.Text); i++ {
		c := r.Text[i]
		switch {
		case c == '\n':
			b.WriteByte('\n')
			b.WriteString(indent)
		case logPrintable(c):
			b.WriteByte(c)
		default:
			b.WriteByte('.')
		}
	}
	if f.dict {
		// A known difference on pre-5.10 kernels: crash's
		// dump_log_entry tests "dict_len & (msg_flags & SHOW_LOG_DICT)",
		// a bitwise AND with 2, so it shows the dictionary only of
		// records whose dict_len has bit 1 set; salvage shows every one.
		for _, kv := range r.Dictionary() {
			b.WriteByte('\n')
			b.WriteString(indent)
			b.WriteString(kv)
		}
	}
	b.WriteByte('\n')
	io.WriteString(w, b.String())
}

// logPrintable is C's isprint(c) || isspace(c) in the C locale, for a
// plain (signed) char: bytes from 0x80 are neither.
func logPrintable(c byte) bool {
	return c >= 0x20 && c < 0x7f || c == ' ' || c >= '\t' && c <= '\r'
}
