package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"salvage/collect"
	"salvage/dump"
)

// makedumpfile's --message-level bits (makedumpfile.h ML_PRINT_*).
const (
	msgProgress = 1
	msgCommon   = 2
	msgError    = 4
	msgReport   = 16
	msgDefault  = msgProgress | msgCommon | msgError | msgReport
)

// collectFlags are makedumpfile's options, with the same letters and
// meanings, plus long names.
type collectFlags struct {
	zlib, lzo, snappy, zstd bool
	compression             string
	level                   int
	elf, flat               bool
	exact                   bool
	progress                string
	messageLevel            int
	dumpDmesg               bool
	threads                 int
	vmlinux, vmcoreinfo     string
	limit                   int64
	force                   bool
	jsonOut                 bool
	retryLevels             string
	split                   string
}

func newCollectCmd() *cobra.Command {
	var f collectFlags
	cmd := &cobra.Command{
		Use:   "collect [flags] SOURCE DEST…",
		Short: "Filter and compress a crash dump (what makedumpfile does)",
		Long: `Collect reads SOURCE — /proc/vmcore in the capture kernel, or any dump
salvage reads — and writes the pages the dump level keeps to DEST, as
makedumpfile does, with its flags: the same command line works with
salvage installed as makedumpfile.

Dump level (-d) bits exclude: 1 zero pages, 2 page cache without private
data, 4 all page cache, 8 user process data, 16 free pages. Hardware-
poisoned and offline pages are always left out. Pages are classified from
VMCOREINFO alone (no vmlinux, no BTF); when an entry a bit needs is
missing the bit is dropped and the report says why.

DEST is written to DEST.incomplete (mode 0600), synced and renamed; an
existing DEST is kept unless --force. On a read or write error the partial
dump stays at DEST.incomplete, marked incomplete, and the exit status is 1.
With --retry-levels, running out of space (a full disk, or -L) starts the
dump again at the next higher level instead, and the report says so.
The pages the analyzer needs (kernel image, page tables, tasks, stacks)
are written first, so a dump cut short still opens in salvage and crash.

Examples:
  salvage collect -l -d 31 /proc/vmcore /var/crash/vmcore
  salvage collect --compression zstd -d 31 vmcore.elf vmcore.kdump
  salvage collect -l -d 1 --retry-levels 11,31 /proc/vmcore /var/crash/vmcore
  salvage collect --dump-dmesg /proc/vmcore /var/crash/dmesg.txt
  salvage collect -l -d 31 --split 3 /proc/vmcore /var/crash/vmcore   # vmcore.1 vmcore.2 vmcore.3
  salvage collect -l -d 31 --split /proc/vmcore /mnt/a/vmcore /mnt/b/vmcore
  makedumpfile -l --message-level 1 -d 31 /proc/vmcore /var/crash/dump`,
		Args: func(cmd *cobra.Command, args []string) error {
			if f.flat && len(args) == 1 {
				return nil
			}
			if f.split != "" && len(args) >= 2 {
				return nil
			}
			if len(args) != 2 {
				return fmt.Errorf("collect needs SOURCE and DEST, got %d argument(s)", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCollect(cmd, f, args)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&f.zlib, "zlib", "c", false, "compress pages with zlib")
	fl.BoolVarP(&f.lzo, "lzo", "l", false, "compress pages with lzo")
	fl.BoolVarP(&f.snappy, "snappy", "p", false, "compress pages with snappy")
	fl.BoolVarP(&f.zstd, "zstd", "z", false, "compress pages with zstd")
	fl.StringVar(&f.compression, "compression", "", "page codec: none, zlib, lzo, snappy or zstd")
	fl.IntVarP(&f.level, "dump-level", "d", 0, "dump level: the sum of the page classes to exclude (1 zero, 2 cache, 4 private cache, 8 user, 16 free)")
	fl.BoolVarP(&f.elf, "elf", "E", false, "write an ELF core instead of kdump-compressed")
	fl.StringVar(&f.progress, "progress", "auto", "progress on standard error: auto (a bar with rate and time left on a terminal, a line per 10% otherwise), json (an event per percent), none")
	fl.BoolVar(&f.exact, "exact", false, "keep only the pages the dump level keeps, as makedumpfile does, not also those the analyzer needs (kernel image, page tables, tasks and their stacks)")
	fl.BoolVarP(&f.flat, "flatten", "F", false, "write makedumpfile's flattened stream to standard output")
	fl.IntVar(&f.messageLevel, "message-level", msgDefault, "what to print: 1 progress, 2 messages, 4 errors, 16 the report")
	fl.BoolVar(&f.dumpDmesg, "dump-dmesg", false, "write the kernel log (makedumpfile --dump-dmesg's text) to DEST instead of a dump")
	fl.IntVar(&f.threads, "num-threads", 0, "compression threads (default: one per CPU)")
	fl.StringVarP(&f.vmlinux, "vmlinux", "x", "", "vmlinux with debug information (accepted; VMCOREINFO suffices)")
	fl.StringVarP(&f.vmcoreinfo, "vmcoreinfo", "i", "", "VMCOREINFO file (KEY=VALUE lines) to use instead of the dump's")
	fl.Int64VarP(&f.limit, "limit", "L", 0, "stop when DEST reaches SIZE bytes, leaving an incomplete dump (exit status 1)")
	fl.BoolVarP(&f.force, "force", "f", false, "overwrite DEST if it exists")
	fl.StringVar(&f.split, "split", "", "write a split dump: --split SOURCE DEST1 DEST2… (makedumpfile's), or --split=N SOURCE DEST for DEST.1…DEST.N")
	fl.Lookup("split").NoOptDefVal = splitFiles
	fl.StringVar(&f.retryLevels, "retry-levels", "", "when DEST runs out of space (a full disk, or -L), start again at the next of these higher dump levels, e.g. 11,31")
	fl.BoolVar(&f.jsonOut, "json", false, "print the summary as JSON")
	return cmd
}

// makedumpfileMain runs collect as makedumpfile: main calls it when the
// binary is invoked under that name (argv[0]).
func makedumpfileMain(args []string) error {
	cmd := newCollectCmd()
	cmd.Use = "makedumpfile [flags] SOURCE DEST"
	cmd.SilenceUsage = true
	cmd.SilenceErrors = true
	// makedumpfile prints no report unless asked (DEFAULT_MSG_LEVEL 7,
	// print_info.h); salvage collect does by default.
	cmd.Flags().Set("message-level", fmt.Sprint(msgProgress|msgCommon|msgError))
	cmd.SetArgs(args)
	return cmd.Execute()
}

func (f collectFlags) codec() (dump.Compression, error) {
	var picked []string
	for _, c := range []struct {
		on   bool
		name string
	}{{f.zlib, "zlib"}, {f.lzo, "lzo"}, {f.snappy, "snappy"}, {f.zstd, "zstd"}} {
		if c.on {
			picked = append(picked, c.name)
		}
	}
	if f.compression != "" {
		picked = append(picked, f.compression)
	}
	switch len(picked) {
	case 0:
		return "none", nil
	case 1:
		switch picked[0] {
		case "none", "zlib", "lzo", "snappy", "zstd":
			return picked[0], nil
		}
		return "", fmt.Errorf("--compression %q: want none, zlib, lzo, snappy or zstd", picked[0])
	}
	return "", fmt.Errorf("choose one compression, not %v", picked)
}

func runCollect(cmd *cobra.Command, f collectFlags, args []string) error {
	stderr := cmd.ErrOrStderr()
	switch {
	case f.dumpDmesg:
		if len(args) != 2 || f.flat {
			return errors.New("--dump-dmesg writes the kernel log to a file: give SOURCE and DEST")
		}
		return collectDmesg(stderr, f, args[0], args[1])
	case f.level < 0 || f.level > collect.LevelMax:
		return fmt.Errorf("-d %d: the dump level is 0–31", f.level)
	case f.flat && len(args) != 1:
		return errors.New("-F writes the dump to standard output: give SOURCE only")
	case !f.flat && f.split == "" && len(args) != 2:
		return errors.New("give SOURCE and DEST (or -F and SOURCE only)")
	case f.limit < 0:
		return fmt.Errorf("-L %d: the size limit must be positive", f.limit)
	}
	codec, err := f.codec()
	if err != nil {
		return err
	}
	retry, err := parseRetryLevels(f.retryLevels, f.level)
	if err != nil {
		return err
	}
	var splitDests []string
	if f.split != "" {
		if args, splitDests, err = splitArgs(f.split, args); err != nil {
			return err
		}
		if f.flat || f.elf {
			return errors.New("--split writes kdump-compressed files: drop -F and -E")
		}
	}
	if len(retry) > 0 && f.flat {
		return errors.New("--retry-levels cannot restart a flattened stream (-F): what was sent is gone")
	}
	opt := collect.Options{Level: f.level, Format: collect.FormatKdump, Compression: codec,
		Threads: f.threads, Force: f.force, Limit: f.limit, Exact: f.exact, RetryLevels: retry}
	if f.elf {
		opt.Format = collect.FormatELF
	}
	switch f.progress {
	case "auto", "json", "none":
	default:
		return fmt.Errorf("--progress %q: use auto, json or none", f.progress)
	}
	if f.progress == "json" {
		opt.Progress, opt.ProgressJSON = stderr, true
	} else if f.messageLevel&msgProgress != 0 && !f.jsonOut && f.progress != "none" {
		opt.Progress = stderr
		if fi, ok := stderr.(*os.File); ok {
			if st, err := fi.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				opt.Terminal = true
			}
		}
	}
	src, err := dump.Open(args[0])
	if err != nil {
		return err
	}
	defer src.Close()
	if f.vmcoreinfo != "" {
		// makedumpfile -i: VMCOREINFO from a file (makedumpfile -g
		// writes one), for a dump whose own is missing or wrong.
		b, err := os.ReadFile(f.vmcoreinfo)
		if err != nil {
			return err
		}
		vi, err := dump.ParseVMCoreInfo(b)
		if vi == nil {
			return fmt.Errorf("%s: not VMCOREINFO: %v", f.vmcoreinfo, err)
		}
		src.VMCoreInfo = vi
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var res *collect.Result
	out := cmd.OutOrStdout()
	if splitDests != nil {
		res, err = collect.CollectSplit(ctx, src, splitDests, opt)
	} else if f.flat {
		bw := bufio.NewWriterSize(out, 1<<20)
		res, err = collect.CollectStream(ctx, src, bw, opt)
		if ferr := bw.Flush(); ferr != nil && err == nil {
			err = fmt.Errorf("standard output: %w", ferr)
		}
		out = stderr // the report must not mix with the stream
	} else {
		res, err = collect.Collect(ctx, src, args[1], opt)
	}
	if res != nil && !f.jsonOut {
		if f.messageLevel&msgReport != 0 {
			collect.WriteReport(out, res)
		} else if f.messageLevel&msgCommon != 0 {
			for _, n := range res.Selection.Plan.Notes {
				fmt.Fprintf(out, "Note: %s\n", n)
			}
		}
		if err == nil && f.messageLevel&msgCommon != 0 {
			fmt.Fprintf(out, "The dumpfile is saved to %s.\n\nsalvage collect completed.\n", res.Dest)
		}
	}
	if res != nil && f.jsonOut {
		writeCollectJSON(out, res, err) // standard error under -F
	}
	return err
}

// splitFiles is --split's value when given without one (makedumpfile's
// --split SOURCE DEST1 DEST2…).
const splitFiles = "files"

// splitArgs reads --split: makedumpfile's form, SOURCE DEST1 DEST2…, or
// ours, --split=N SOURCE DEST for DEST.1…DEST.N. "--split N SOURCE DEST"
// (the value apart) reaches here as --split with N among the arguments:
// a first argument that is a number and not a file is taken for N.
func splitArgs(split string, args []string) (rest, dests []string, err error) {
	if split == splitFiles && len(args) == 3 {
		if n, err := strconv.Atoi(args[0]); err == nil {
			if _, serr := os.Stat(args[0]); serr != nil {
				split, args = fmt.Sprint(n), args[1:]
			}
		}
	}
	if split == splitFiles {
		if len(args) < 3 {
			return nil, nil, errors.New("--split needs SOURCE and at least two DEST files (or --split=N SOURCE DEST)")
		}
		return args[:1], args[1:], nil
	}
	n, err := strconv.Atoi(split)
	switch {
	case err != nil:
		return nil, nil, fmt.Errorf("--split=%q: want a number of files", split)
	case n < 2 || n > 256:
		return nil, nil, fmt.Errorf("--split=%d: a split dump has 2 to 256 files", n)
	case len(args) != 2:
		return nil, nil, fmt.Errorf("--split=%d takes SOURCE and one DEST (the files are DEST.1…DEST.%d)", n, n)
	}
	for i := 1; i <= n; i++ {
		dests = append(dests, fmt.Sprintf("%s.%d", args[1], i))
	}
	return args[:1], dests, nil
}

// parseRetryLevels reads --retry-levels: dump levels, comma-separated,
// each above the one before and above -d.
func parseRetryLevels(s string, level int) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var out []int
	prev := level
	for _, part := range strings.Split(s, ",") {
		l, err := strconv.Atoi(strings.TrimSpace(part))
		switch {
		case err != nil:
			return nil, fmt.Errorf("--retry-levels %q: %q is not a dump level", s, part)
		case l < 0 || l > collect.LevelMax:
			return nil, fmt.Errorf("--retry-levels %q: dump level %d is not in 0–31", s, l)
		case l <= prev:
			return nil, fmt.Errorf("--retry-levels %q: each level must be above the one before (and above -d %d)", s, level)
		}
		out = append(out, l)
		prev = l
	}
	return out, nil
}

// collectDmesg is makedumpfile's --dump-dmesg SOURCE DEST: the kernel
// log as text (salvage dmesg's, which is makedumpfile's format), read
// from VMCOREINFO alone unless -x names a vmlinux. It goes through
// DEST.incomplete and a rename, as dumps do; a log read only in part is
// written, then reported as an error (exit status 1).
func collectDmesg(stderr io.Writer, f collectFlags, src, dest string) error {
	if !f.force {
		if _, err := os.Lstat(dest); err == nil {
			return fmt.Errorf("%s exists: remove it or give --force", dest)
		}
	}
	args := []string{src}
	if f.vmlinux != "" {
		args = []string{f.vmlinux, src}
	}
	recs, logErr, err := dmesgRecords(args)
	if err != nil {
		return fmt.Errorf("%s: the kernel log cannot be read: %w", src, err)
	}
	tmp := dest + ".incomplete"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(out, 64<<10)
	writeDmesg(w, recs, false)
	err = w.Flush()
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", tmp, err)
	}
	if logErr != nil {
		return fmt.Errorf("the kernel log was read only in part (%d records written to %s): %s", len(recs), tmp, oneLine(logErr, src))
	}
	if err := os.Rename(tmp, dest); err != nil {
		return err
	}
	if f.messageLevel&msgCommon != 0 {
		fmt.Fprintf(stderr, "The dmesg log is saved to %s.\n", dest)
	}
	return nil
}

// collectSummary is the --json form of the report.
// collectSeconds is where a collection's time went, in seconds.
type collectSeconds struct {
	Needs    float64 `json:"analyzer_needs"`
	Classify float64 `json:"classify"`
	Copy     float64 `json:"copy"`
	Total    float64 `json:"total"`
}

type collectSummary struct {
	Dest       string   `json:"dest"`
	Incomplete bool     `json:"incomplete"`
	Error      string   `json:"error,omitempty"`
	Level      int      `json:"dump_level"`
	Requested  int      `json:"requested_level"`
	Notes      []string `json:"notes,omitempty"`
	Warnings   []string `json:"warnings,omitempty"`
	MaxPFN     uint64   `json:"max_mapnr"`
	RAM        uint64   `json:"ram_pages"`
	Kept       uint64   `json:"kept_pages"`
	// KeptForAnalyzer of Kept are pages the level would have excluded
	// that the analyzer needs (collect/needs.go).
	KeptForAnalyzer uint64 `json:"kept_for_analyzer_pages"`
	Zero            uint64 `json:"zero_pages"`
	Cache           uint64 `json:"cache_pages"`
	CachePrivate    uint64 `json:"cache_private_pages"`
	User            uint64 `json:"user_pages"`
	Free            uint64 `json:"free_pages"`
	HWPoison        uint64 `json:"hwpoison_pages"`
	Offline         uint64 `json:"offline_pages"`
	Written         int64  `json:"bytes_written"`
	// Seconds are the collection's phases (collect.Times).
	Seconds *collectSeconds `json:"seconds,omitempty"`
	// LevelsTried are the dump levels attempted (--retry-levels), the
	// last the one written.
	LevelsTried []int `json:"levels_tried,omitempty"`
	// Missing are pages the source lacks, left missing in the dump.
	Missing uint64 `json:"missing_pages,omitempty"`
}

func writeCollectJSON(w io.Writer, r *collect.Result, err error) {
	c := r.Counts
	s := collectSummary{Dest: r.Dest, Incomplete: r.Incomplete, Level: r.Selection.Plan.Level,
		Requested: r.Selection.Plan.Requested, Notes: r.Selection.Plan.Notes, Warnings: r.Selection.Warnings,
		MaxPFN: r.Selection.MaxPFN, RAM: c.RAM, Kept: c.Kept, KeptForAnalyzer: c.KeptForAnalyzer, Zero: c.Zero, Cache: c.Cache,
		CachePrivate: c.CachePrivate, User: c.User, Free: c.Free, HWPoison: c.HWPoison,
		Offline: c.Offline, Written: r.Written, LevelsTried: r.LevelsTried, Missing: r.Missing}
	if t := r.Times; t != (collect.Times{}) {
		s.Seconds = &collectSeconds{Needs: t.Needs.Seconds(), Classify: t.Classify.Seconds(), Copy: t.Copy.Seconds(),
			Total: (t.Needs + t.Classify + t.Copy).Seconds()}
	}
	if err != nil {
		s.Error = err.Error()
	}
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	e.Encode(s)
}
