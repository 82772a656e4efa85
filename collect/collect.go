package collect

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"syscall"
	"time"

	"salvage/arch/amd64"
	"salvage/dump"
)

// Format names an output container.
type Format string

// Output formats.
const (
	FormatKdump Format = "kdump" // kdump-compressed (makedumpfile's default)
	FormatELF   Format = "elf"   // ELF64 core (-E)
)

// Options say what to collect and how.
type Options struct {
	Level       int              // dump level, 0–31 (-d)
	Format      Format           // FormatKdump or FormatELF
	Compression dump.Compression // kdump-compressed page codec: none, zlib, lzo, snappy, zstd
	Threads     int              // compression workers; 0: one per CPU
	Force       bool             // overwrite an existing destination
	// Limit, when above zero, caps the destination's size (-L): the dump
	// stops there, incomplete, as on a full disk.
	Limit int64
	// Progress receives the progress line(s); nil for none. Terminal
	// selects a redrawn line ("\r") over one line per 10%.
	Progress io.Writer
	Terminal bool
	// ProgressJSON makes the progress one JSON event per percent
	// ({"event":"progress","done_pages":…,"eta_seconds":…}, then
	// {"event":"done",…}), for programs.
	ProgressJSON bool
	// RetryLevels are the dump levels to start again at, in turn, when
	// the destination runs out of space (a full disk, or Limit): each
	// attempt replaces the incomplete file of the one before
	// (--retry-levels 11,31). Levels not above the one that failed are
	// skipped.
	RetryLevels []int
	// Exact keeps exactly the pages the level's classes keep, as
	// makedumpfile does, not also those the analyzer needs (needs.go):
	// for a dump byte-identical to makedumpfile's.
	Exact bool
}

// Result is what a collection did.
type Result struct {
	Selection *Selection
	Counts    Counts
	Written   int64  // bytes written
	Pages     uint64 // pages stored (zero pages included)
	Dest      string // the file written (DEST, or DEST.incomplete on failure)
	// Incomplete is set when the collection stopped early: the file at
	// Dest is readable and marked incomplete.
	Incomplete bool
	// Missing are the pages to dump that the source lacks (a truncated
	// or incomplete source), left missing in the dump; FirstMissing is
	// the physical address of the first.
	Missing      uint64
	FirstMissing uint64
	// LevelsTried are the dump levels attempted, the last the one
	// written (more than one after a retry: Options.RetryLevels).
	LevelsTried []int
	// Times says where the time went, for the capture kernel's downtime.
	Times Times
}

// Times are the phases of one collection (the last level tried).
type Times struct {
	// Needs is finding the pages the analyzer needs: kallsyms, the
	// BTF, the task list (collect/needs.go).
	Needs time.Duration
	// Classify is classifying the struct pages (the dump level).
	Classify time.Duration
	// Copy is reading, compressing and writing the pages, and syncing.
	Copy time.Duration
}

// Prepare classifies the pages of src at level and keeps the bitmaps of
// the whole machine, for callers that want them (tests, reports); Collect
// uses a survey instead and classifies window by window.
func Prepare(src *dump.File, level int) (*Selection, error) {
	return prepare(src, level, false, false)
}

// prepare classifies the pages of src: with survey, counting only
// (Survey), otherwise keeping both bitmaps (Select). Frames the source
// does not hold (a filtered dump) are never kept.
func prepare(src *dump.File, level int, survey, exact bool) (*Selection, error) {
	var rd virtReader
	var why string
	switch {
	case level&^LevelZero == 0:
	case src.VMCoreInfo == nil:
		why = "the source has no VMCOREINFO"
	case src.Arch != dump.ArchX86_64:
		why = fmt.Sprintf("salvage reads the page tables of x86_64 kernels only, not %s", src.Arch)
	default:
		tr, err := amd64.NewFromFile(src, nil)
		if err != nil {
			why = fmt.Sprintf("the kernel page tables cannot be read: %v", err)
		} else {
			rd = tr
		}
	}
	// What the analyzer needs is kept whatever the level excludes.
	var need *needs
	var needErr error
	t0 := time.Now()
	if rd != nil && !exact {
		need, needErr = analyzerNeeds(src)
	}
	t1 := time.Now()
	var sel *Selection
	var err error
	defer func() {
		if sel != nil {
			sel.times = Times{Needs: t1.Sub(t0), Classify: time.Since(t1)}
		}
	}()
	if survey {
		sel, err = survey1(src.Memory, src.VMCoreInfo, rd, level, true, need)
	} else {
		sel, err = selectAll(src.Memory, src.VMCoreInfo, rd, level, true, need)
	}
	if err != nil {
		return nil, err
	}
	sel.sourceName = src.Path
	sel.sourceEnd = elfSourceEnd(src)
	switch {
	case needErr != nil:
		sel.Warnings = append(sel.Warnings, fmt.Sprintf("what the analyzer needs (kernel image, page tables, tasks and their stacks) could not be listed, so it is only as safe as the level: %v", needErr))
	case need != nil && sel.Counts.KeptForAnalyzer > 0:
		sel.Plan.Notes = append(sel.Plan.Notes, fmt.Sprintf("kept %d pages the analyzer needs that dump level %d would have excluded", sel.Counts.KeptForAnalyzer, sel.Plan.Level))
	}
	if why != "" && sel.Plan.Level&^LevelZero != 0 {
		// There was no reader: what struct pages are needed for is dropped.
		sel.Plan.Notes = append(sel.Plan.Notes, fmt.Sprintf("dump level %d dropped: %s", sel.Plan.Level&^LevelZero, why))
		sel.Plan.Level &= LevelZero
	}
	return sel, nil
}

// header gathers what the kdump header records: utsname from the dumped
// kernel's init_uts_ns, the crash time, CPUs and phys_base.
func header(src *dump.File, level int) (dump.KdumpHeader, error) {
	h := dump.KdumpHeader{
		Sysname: "Linux", Machine: "x86_64", Domainname: "(none)",
		Timestamp: time.Now(),
		NrCPUs:    len(src.PRStatus),
		DumpLevel: level,
		PageSize:  src.Memory.PageSize(),
		Notes:     src.Notes,
	}
	if src.Arch == dump.ArchARM64 {
		h.Machine = "aarch64"
	}
	vi := src.VMCoreInfo
	if t, ok := vi.CrashTime(); ok {
		h.Timestamp = t
	}
	h.Release = vi.OSRelease()
	if pb, _, ok := src.PhysBase(); ok {
		h.PhysBase = pb
	}
	// struct new_utsname is six 65-byte strings (include/uapi/linux/utsname.h).
	if uts, ok := vi.Symbol("init_uts_ns"); ok && src.Arch == dump.ArchX86_64 {
		off, _ := vi.Offset("uts_namespace", "name")
		if tr, err := amd64.NewFromFile(src, nil); err == nil {
			b := make([]byte, 6*65)
			if _, err := tr.ReadVirt(b, uts+off); err == nil {
				f := func(i int) string {
					s := b[65*i : 65*(i+1)]
					for j, c := range s {
						if c == 0 {
							return string(s[:j])
						}
					}
					return string(s)
				}
				h.Sysname, h.Nodename, h.Release, h.Version, h.Machine, h.Domainname = f(0), f(1), f(2), f(3), f(4), f(5)
			}
		}
	}
	return h, nil
}

// CollectStream writes the dump as makedumpfile's flattened stream to w
// (-F), for a pipe: nothing is renamed or synced, and a stream cut short
// lacks its end marker, which readers report.
func CollectStream(ctx context.Context, src *dump.File, w io.Writer, opt Options) (*Result, error) {
	if opt.Compression == "" {
		opt.Compression = "none"
	}
	if opt.Format == "" {
		opt.Format = FormatKdump
	}
	if opt.Format == FormatELF && opt.Compression != "none" {
		return nil, errors.New("an ELF dump (-E) cannot be compressed: drop -c, -l, -p or -z")
	}
	sel, err := prepare(src, opt.Level, true, opt.Exact)
	if err != nil {
		return nil, err
	}
	fw, err := dump.NewFlattenedWriter(w)
	if err != nil {
		return nil, err
	}
	res := &Result{Selection: sel, Dest: "(standard output)"}
	werr := write(ctx, src, sel, fw, opt, res)
	res.Counts = sel.Counts
	if werr != nil {
		res.Incomplete = true
		return res, werr
	}
	if err := fw.Close(); err != nil {
		res.Incomplete = true
		return res, err
	}
	res.Written = fw.Size()
	return res, nil
}

// Collect writes the pages of src that level keeps to dest. The dump is
// written to dest.incomplete (mode 0600), synced and renamed to dest; an
// existing dest is an error unless opt.Force. On a read or write error the
// partial file is left at dest.incomplete, marked incomplete and readable,
// and the error is returned with the Result. When the destination runs
// out of space and opt.RetryLevels names a higher level, the dump starts
// again at that level, and the Result's notes say so.
func Collect(ctx context.Context, src *dump.File, dest string, opt Options) (*Result, error) {
	levels := []int{opt.Level}
	for _, l := range opt.RetryLevels {
		if l > levels[len(levels)-1] && l <= LevelMax {
			levels = append(levels, l)
		}
	}
	var notes []string
	for i, level := range levels {
		o := opt
		o.Level = level
		res, err := collectOnce(ctx, src, dest, o)
		if res != nil {
			res.LevelsTried = levels[:i+1]
		}
		if err == nil || res == nil || i == len(levels)-1 || !OutOfSpace(err) {
			if res != nil && res.Selection != nil && len(notes) > 0 {
				res.Selection.Plan.Notes = append(notes, res.Selection.Plan.Notes...)
			}
			return res, err
		}
		size := res.Written
		if st, err := os.Stat(res.Dest); err == nil {
			size = st.Size()
		}
		notes = append(notes, fmt.Sprintf("dump level %d ran out of space after %d bytes (%v): started again at dump level %d", level, size, spaceCause(err), levels[i+1]))
		os.Remove(res.Dest)
	}
	panic("unreachable")
}

// OutOfSpace reports whether err is the destination running out of room:
// a full disk or quota, a file size limit, or Options.Limit.
func OutOfSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EFBIG) || errors.Is(err, ErrLimit)
}

func spaceCause(err error) string {
	for _, e := range []error{syscall.ENOSPC, syscall.EDQUOT, syscall.EFBIG, ErrLimit} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return err.Error()
}

// collectOnce is Collect at one level.
func collectOnce(ctx context.Context, src *dump.File, dest string, opt Options) (*Result, error) {
	if opt.Format == "" {
		opt.Format = FormatKdump
	}
	if opt.Compression == "" {
		opt.Compression = "none"
	}
	if opt.Format == FormatELF && opt.Compression != "none" {
		return nil, errors.New("an ELF dump (-E) cannot be compressed: drop -c, -l, -p or -z")
	}
	if !opt.Force {
		if _, err := os.Lstat(dest); err == nil {
			return nil, fmt.Errorf("%s exists: remove it or give --force", dest)
		}
	}
	sel, err := prepare(src, opt.Level, true, opt.Exact)
	if err != nil {
		return nil, err
	}
	tmp := dest + ".incomplete"
	out, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	res := &Result{Selection: sel, Dest: tmp, Times: sel.times}
	copyStart := time.Now()
	defer func() { res.Times.Copy = time.Since(copyStart) }()
	var dst destination = out
	if opt.Limit > 0 {
		dst = limitedFile{out, opt.Limit}
	}
	werr := write(ctx, src, sel, dst, opt, res)
	if werr == nil {
		if err := out.Sync(); err != nil {
			werr = fmt.Errorf("%s: sync: %w", tmp, err)
		}
	}
	if err := out.Close(); err != nil && werr == nil {
		werr = fmt.Errorf("%s: %w", tmp, err)
	}
	res.Counts = sel.Counts
	if werr != nil {
		res.Incomplete = true
		return res, fmt.Errorf("%w; what was written is in %s, marked incomplete", werr, tmp)
	}
	if err := os.Rename(tmp, dest); err != nil {
		return res, err
	}
	res.Dest = dest
	syncDir(dest)
	return res, nil
}

// write runs the pipeline into out.
func write(ctx context.Context, src *dump.File, sel *Selection, out destination, opt Options, res *Result) error {
	var w pageSink
	var items itemSource
	var total uint64
	var codec dump.Compression
	switch opt.Format {
	case FormatKdump:
		h, err := header(src, sel.Plan.Level)
		if err != nil {
			return err
		}
		_, h.Streamed = out.(*dump.FlattenedWriter)
		kw, err := kdumpWriter(out, h, opt.Compression, sel)
		if err != nil {
			return fmt.Errorf("%s: %w", out.Name(), err)
		}
		// A file takes the pages the analyzer needs first; a stream, which
		// crash indexes record by record, and a dump meant to equal
		// makedumpfile's (Exact: no needs) are written in PFN order.
		needsFirst := !h.Streamed
		// Pages go by descriptor index in either order, so that a page
		// the source lacks (skipped) leaves its descriptor unwritten
		// rather than shifting those after it.
		w = kdumpSink{kw}
		items, total, codec = sel.keptPages(needsFirst), sel.Counts.Kept, opt.Compression
	case FormatELF:
		ew, src2, n, err := newELFSink(src, sel, out)
		if err != nil {
			return fmt.Errorf("%s: %w", out.Name(), err)
		}
		w, items, total, codec = ew, src2, n, "none"
	default:
		return fmt.Errorf("output format %q is not implemented", opt.Format)
	}
	err := runPipeline(ctx, src.Memory, sel, items, total, codec, w, opt, res)
	if err != nil {
		w.Abort()
	} else {
		err = w.Close()
	}
	res.Written = w.Size()
	var se *SourceError
	if errors.As(err, &se) {
		return err // names the source, not the destination
	}
	if err != nil {
		return fmt.Errorf("%s: %w", out.Name(), err)
	}
	return nil
}

// kdumpWriter starts a kdump-compressed file: with the bitmaps of a
// Select, or, for a Survey, with its windows classified again one by one
// and their bitmaps written as they come.
func kdumpWriter(out destination, h dump.KdumpHeader, codec dump.Compression, sel *Selection) (*dump.KdumpWriter, error) {
	if sel.Kept != nil {
		return dump.NewKdumpWriter(out, h, codec, sel.RAM, sel.Kept)
	}
	kw, err := dump.NewKdumpWriterWindowed(out, h, codec, sel.MaxPFN)
	if err != nil {
		return nil, err
	}
	var scratch Counts
	var warnings []string
	var n uint64
	for base, win := range sel.Windows(&scratch, &warnings) {
		ram, kept := win()
		n += kept.Count()
		if err := kw.WriteBitmaps(base, ram, kept); err != nil {
			kw.Abort()
			return nil, err
		}
	}
	if n != sel.Counts.Kept {
		return nil, fmt.Errorf("the second classification keeps %d frames, the survey %d: is the source changing?", n, sel.Counts.Kept)
	}
	if err := kw.StartPages(n); err != nil {
		kw.Abort()
		return nil, err
	}
	return kw, nil
}

// kdumpSink feeds a kdump writer by descriptor index.
type kdumpSink struct {
	*dump.KdumpWriter
}

func (s kdumpSink) WritePage(it item, p dump.EncodedPage) error {
	return s.WritePageIndex(it.idx, it.pfn, p)
}

// destination is where a dump goes: a file, or a flattened stream.
type destination = Destination

// Destination is a file a dump is written into at offsets: an *os.File,
// or a file on a remote target (an SFTP file).
type Destination interface {
	io.WriterAt
	Name() string
}

// CollectTo writes the pages of src that level keeps into out, a file the
// caller created and will make durable, rename or mark incomplete: the
// capture kernel's way of writing to a target that is not a local path.
// On an error the Result says what was written.
func CollectTo(ctx context.Context, src *dump.File, out Destination, opt Options) (*Result, error) {
	if opt.Format == "" {
		opt.Format = FormatKdump
	}
	if opt.Compression == "" {
		opt.Compression = "none"
	}
	if opt.Format == FormatELF && opt.Compression != "none" {
		return nil, errors.New("an ELF dump (-E) cannot be compressed: drop -c, -l, -p or -z")
	}
	sel, err := prepare(src, opt.Level, true, opt.Exact)
	if err != nil {
		return nil, err
	}
	res := &Result{Selection: sel, Dest: out.Name()}
	werr := write(ctx, src, sel, out, opt, res)
	res.Counts = sel.Counts
	if werr != nil {
		res.Incomplete = true
	}
	return res, werr
}

// ErrLimit is the error of a write past Options.Limit.
var ErrLimit = errors.New("the size limit (-L) is reached")

// limitedFile fails writes past limit, writing what fits, as a full disk does.
type limitedFile struct {
	*os.File
	limit int64
}

func (f limitedFile) WriteAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) <= f.limit {
		return f.File.WriteAt(p, off)
	}
	n := 0
	if off < f.limit {
		n, _ = f.File.WriteAt(p[:f.limit-off], off)
	}
	return n, ErrLimit
}

// pageSink is a dump writer the pipeline feeds in PFN order.
type pageSink interface {
	WritePage(it item, p dump.EncodedPage) error
	Close() error
	Abort() error
	Size() int64
}

func syncDir(path string) {
	dir := "."
	for i := len(path) - 1; i >= 0; i-- {
		if path[i] == '/' {
			dir = path[:max(i, 1)]
			break
		}
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

func isZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func workers(n int) int {
	if n > 0 {
		return n
	}
	return runtime.NumCPU()
}
