package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"salvage/analyze"
	"salvage/dump"
	"salvage/kernel"
)

func newDmesgCmd() *cobra.Command {
	var asJSON, caller bool
	cmd := &cobra.Command{
		Use:   "dmesg [--json] [VMLINUX] DUMP…",
		Short: "Print the kernel's message buffer from a dump, as makedumpfile --dump-dmesg does",
		Long: `Prints the dumped kernel's message buffer without opening a session: the
same text as makedumpfile --dump-dmesg, "[SECONDS.MICROS] TEXT" a record,
continuation lines indented and unprintable bytes as \xNN.

The buffer (the lockless printk_ringbuffer of Linux 5.10+, or the
printk_log records of 3.5 to 5.9) is found from the dump's VMCOREINFO
alone, as a capture kernel finds it: no vmlinux, kallsyms or BTF needed.
With a VMLINUX, or when VMCOREINFO does not describe the buffer fully,
the kernel's symbols and types fill in.

--caller adds each record's caller ("[     T123] "), as makedumpfile 1.7.3
and later print it. --json prints the records as an array of objects
(seq, time_ns, time, level, facility, caller, text, subsystem, device).

A dump whose buffer is partly unreadable prints what could be read, then
says what is missing, and exits with status 1.`,
		Example: `  salvage dmesg /var/crash/vmcore
  salvage dmesg vmlinux vmcore
  salvage dmesg --json vmcore | jq -r '.[] | select(.level <= 3) | .text'`,
		Args: cobra.RangeArgs(1, 64),
		RunE: func(cmd *cobra.Command, args []string) error {
			recs, logErr, err := dmesgRecords(args)
			if err != nil {
				return err
			}
			w := bufio.NewWriterSize(cmd.OutOrStdout(), 64<<10)
			if asJSON {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				if err := enc.Encode(dmesgJSON(recs)); err != nil {
					return err
				}
			} else {
				writeDmesg(w, recs, caller)
			}
			if err := w.Flush(); err != nil {
				return err
			}
			if logErr != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "salvage: %s\n", oneLine(logErr, args[len(args)-1]))
				return exitError{1}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&caller, "caller", false, "show each record's caller (thread or CPU)")
	return cmd
}

// dmesgRecords opens the dump and reads its log: from VMCOREINFO alone
// when no vmlinux is given, falling back to the dump's kallsyms and BTF
// when VMCOREINFO lacks part of the layout. logErr is a partial read's
// error; err means nothing could be read.
func dmesgRecords(args []string) (recs []kernel.LogRecord, logErr, err error) {
	vmlinux, paths, err := analyze.SplitTarget(args)
	if err != nil {
		return nil, nil, err
	}
	f, err := dump.Open(paths...)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	if vmlinux == "" {
		recs, logErr = kernel.DumpLog(f)
		var le *kernel.LogError
		if logErr == nil || !errors.As(logErr, &le) || len(le.Missing) == 0 {
			if len(recs) == 0 && logErr != nil {
				return nil, nil, logErr
			}
			return recs, logErr, nil
		}
		// VMCOREINFO does not describe the buffer: try the dump's own
		// symbols and types.
	}
	k, err := kernel.Open(f, kernel.Options{Vmlinux: vmlinux})
	if err != nil {
		if logErr != nil {
			return nil, nil, fmt.Errorf("%w (and the kernel's own symbols and types cannot be read: %v)", logErr, err)
		}
		return nil, nil, err
	}
	recs, logErr = k.Log()
	if len(recs) == 0 && logErr != nil {
		return nil, nil, logErr
	}
	return recs, logErr, nil
}

// writeDmesg prints records as makedumpfile's --dump-dmesg does
// (printk.c dump_record; makedumpfile.c dump_log_entry): records without
// text are skipped; a newline in a message starts a line indented by the
// prefix's width; bytes that are neither printable nor space print as
// \x and printf's %02x of a (signed) char, so bytes from 0x80 come out as
// \xffffffNN.
func writeDmesg(w io.Writer, recs []kernel.LogRecord, caller bool) {
	var line []byte
	for _, r := range recs {
		if r.Dataless() {
			continue
		}
		line = fmt.Appendf(line[:0], "[%5d.%06d] ", r.TimeNS/1e9, r.TimeNS%1e9/1000)
		if caller {
			// makedumpfile 1.7.3+: "[%*s] " with PID_CHARS_DEFAULT (8).
			line = fmt.Appendf(line, "[%8s] ", r.CallerString())
		}
		indent := len(line)
		for i := 0; i < len(r.Text); i++ {
			c := r.Text[i]
			switch {
			case c == '\n':
				line = append(line, '\n')
				for j := 0; j < indent; j++ {
					line = append(line, ' ')
				}
			case c >= 0x20 && c < 0x7f || c >= '\t' && c <= '\r':
				line = append(line, c)
			case c >= 0x80:
				line = fmt.Appendf(line, "\\x%08x", uint32(int32(int8(c))))
			default:
				line = fmt.Appendf(line, "\\x%02x", c)
			}
		}
		line = append(line, '\n')
		w.Write(line)
	}
}

// dmesgRecordJSON is one record of dmesg --json (the fields of
// analyze's log --json).
type dmesgRecordJSON struct {
	Seq       uint64 `json:"seq"`
	TimeNS    uint64 `json:"time_ns"`
	Time      string `json:"time"`
	Level     int    `json:"level"`
	Facility  int    `json:"facility"`
	Caller    string `json:"caller"`
	Text      string `json:"text"`
	Subsystem string `json:"subsystem,omitempty"`
	Device    string `json:"device,omitempty"`
	Dataless  bool   `json:"dataless,omitempty"`
}

func dmesgJSON(recs []kernel.LogRecord) []dmesgRecordJSON {
	out := make([]dmesgRecordJSON, 0, len(recs))
	for _, r := range recs {
		out = append(out, dmesgRecordJSON{
			Seq: r.Seq, TimeNS: r.TimeNS, Time: fmt.Sprintf("%d.%06d", r.TimeNS/1e9, r.TimeNS%1e9/1000),
			Level: r.Level, Facility: r.Facility, Caller: r.CallerString(), Text: r.Text,
			Subsystem: r.Subsystem, Device: r.Device, Dataless: r.Dataless(),
		})
	}
	return out
}
