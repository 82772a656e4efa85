package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"salvage/dump"
)

func newInfoCmd() *cobra.Command {
	var asJSON, split bool
	cmd := &cobra.Command{
		Use:   "info [--json] [--split] DUMP…",
		Short: "Describe crash dumps: format, codecs, machine, memory and kernel",
		Long: `Describe each crash dump given: its container format and codecs, the
dumped machine (architecture, page size, RAM ranges, CPUs), how many page
frames the dump holds, leaves out or lost, and what VMCOREINFO says of the
kernel (release, build ID, crash time, KASLR offset, phys_base).

With --split, the arguments are the parts of one split dump, opened together.
With --json, one dump prints one JSON object; several print an array.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sets := make([][]string, 0, len(args))
			if split {
				sets = append(sets, args)
			} else {
				for _, a := range args {
					sets = append(sets, []string{a})
				}
			}
			var infos []*dumpInfo
			failed := false
			for _, paths := range sets {
				in, err := describeDump(paths)
				if err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "salvage: %s\n", oneLine(err, paths[0]))
					failed = true
					continue
				}
				infos = append(infos, in)
			}
			w := cmd.OutOrStdout()
			if asJSON {
				var v any = infos
				if len(sets) == 1 {
					if len(infos) == 0 {
						return exitError{1}
					}
					v = infos[0]
				}
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				if err := enc.Encode(v); err != nil {
					return err
				}
			} else {
				for i, in := range infos {
					if i > 0 {
						fmt.Fprintln(w)
					}
					in.writeText(w)
				}
			}
			if failed {
				return exitError{1}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&split, "split", false, "the arguments are the parts of one split dump")
	return cmd
}

// oneLine makes err a single line that names the dump.
func oneLine(err error, path string) string {
	s := strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", " ")), " ")
	if !strings.Contains(s, path) {
		s = path + ": " + s
	}
	return s
}

// dumpInfo is what `salvage info` reports of one dump; its JSON form is
// the --json output.
type dumpInfo struct {
	Path          string     `json:"path"`
	Format        string     `json:"format"`
	InnerFormat   string     `json:"inner_format"`
	Compression   string     `json:"compression"` // the main codec
	Codecs        []string   `json:"codecs"`      // every codec in use
	HeaderVersion int        `json:"header_version"`
	Arch          string     `json:"arch"`
	PageSize      int        `json:"page_size"`
	RAM           []ramRange `json:"ram_ranges"`
	RAMBytes      uint64     `json:"ram_bytes"`
	Pages         pageCounts `json:"pages"`
	DumpLevel     int        `json:"dump_level"` // -1: not recorded
	Incomplete    bool       `json:"incomplete"`

	OSRelease       string  `json:"osrelease"` // "" when unknown
	BuildID         string  `json:"build_id"`
	CrashTime       *string `json:"crash_time"` // RFC 3339, UTC
	CrashTimeUnix   *int64  `json:"crash_time_unix"`
	KernelOffset    *uint64 `json:"kernel_offset"`
	PhysBase        *uint64 `json:"phys_base"`
	PhysBaseSource  string  `json:"phys_base_source,omitempty"`
	VMCoreInfo      bool    `json:"vmcoreinfo"`
	VMCoreInfoError string  `json:"vmcoreinfo_error,omitempty"`

	CPUs     int         `json:"cpus"`
	PRStatus int         `json:"prstatus_notes"`
	QEMUCPUs int         `json:"qemu_cpu_notes"`
	Notes    int         `json:"notes"`
	Parts    []dump.Part `json:"parts,omitempty"`
}

type ramRange struct {
	Start uint64 `json:"start"`
	End   uint64 `json:"end"` // exclusive
}

// pageCounts counts page frames by state. InDump = Present + Zero.
type pageCounts struct {
	RAM      uint64 `json:"ram"`
	InDump   uint64 `json:"in_dump"`
	Present  uint64 `json:"present"`
	Zero     uint64 `json:"zero"`
	Excluded uint64 `json:"excluded"`
	Missing  uint64 `json:"missing"`
}

// describeDump opens one dump (or the parts of one split dump) and
// gathers its description. A panic anywhere below becomes an error that
// names the file: a damaged dump must never crash the command.
func describeDump(paths []string) (in *dumpInfo, err error) {
	defer func() {
		if p := recover(); p != nil {
			in, err = nil, fmt.Errorf("%s: internal error while reading the dump: %v", paths[0], p)
		}
	}()
	f, err := dump.Open(paths...)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return describe(f), nil
}

func describe(f *dump.File) *dumpInfo {
	in := &dumpInfo{
		Path:          f.Path,
		Format:        string(f.Format),
		InnerFormat:   string(f.Inner),
		Codecs:        append([]string{}, f.Compression...),
		Compression:   mainCodec(f.Compression),
		HeaderVersion: f.HeaderVersion,
		Arch:          string(f.Arch),
		DumpLevel:     f.DumpLevel,
		Incomplete:    f.Incomplete,
		CPUs:          f.CPUs,
		PRStatus:      len(f.PRStatus),
		QEMUCPUs:      len(f.QEMUCPUs),
		Notes:         len(f.Notes),
		Parts:         f.Parts,
		RAM:           []ramRange{},
	}
	if in.InnerFormat == "" {
		in.InnerFormat = in.Format
	}
	if f.Memory != nil {
		in.PageSize = f.Memory.PageSize()
		for _, r := range f.Memory.Ranges() {
			in.RAM = append(in.RAM, ramRange{r.Start, r.End})
			in.RAMBytes += r.End - r.Start
		}
		in.Pages = countPages(f.Memory)
	}
	if vi := f.VMCoreInfo; vi != nil {
		in.VMCoreInfo = true
		if vi.Err != nil {
			in.VMCoreInfoError = vi.Err.Error()
		}
		in.OSRelease = vi.OSRelease()
		in.BuildID = vi.BuildID()
		if t, ok := vi.CrashTime(); ok {
			s, u := t.Format(time.RFC3339), t.Unix()
			in.CrashTime, in.CrashTimeUnix = &s, &u
		}
		if k, ok := vi.KernelOffset(); ok {
			in.KernelOffset = &k
		}
	}
	if pb, src, ok := f.PhysBase(); ok {
		in.PhysBase, in.PhysBaseSource = &pb, src
	}
	return in
}

// mainCodec picks the codec to name first: the one compressed pages use
// (a kdump file stores a page raw when compressing it would not help).
func mainCodec(codecs []string) string {
	for _, c := range codecs {
		if c != "none" && c != "" {
			return c
		}
	}
	return "none"
}

// countPages walks the state of every page frame in the RAM ranges; the
// frames between ranges are not RAM and are not visited.
func countPages(m dump.Memory) pageCounts {
	var c pageCounts
	ps := uint64(m.PageSize())
	if ps == 0 {
		return c
	}
	next := uint64(0) // first frame not yet counted (ranges may share one)
	for _, r := range m.Ranges() {
		if r.End <= r.Start {
			continue
		}
		first, last := r.Start/ps, (r.End-1)/ps
		if first < next {
			first = next
		}
		for pfn := first; pfn <= last; pfn++ {
			switch m.State(pfn) {
			case dump.PagePresent:
				c.Present++
			case dump.PageZero:
				c.Zero++
			case dump.PageExcluded:
				c.Excluded++
			case dump.PageMissing:
				c.Missing++
			default:
				continue
			}
			c.RAM++
		}
		next = last + 1
	}
	c.InDump = c.Present + c.Zero
	return c
}

func (in *dumpInfo) writeText(w io.Writer) {
	p := func(label, format string, args ...any) {
		fmt.Fprintf(w, "  %-14s %s\n", label, fmt.Sprintf(format, args...))
	}
	fmt.Fprintln(w, in.Path)
	format := in.Format
	if in.InnerFormat != in.Format {
		format += " of " + in.InnerFormat
	}
	if in.Incomplete {
		format += " (INCOMPLETE: the producer did not finish writing it)"
	} else {
		format += " (complete)"
	}
	p("format", "%s", format)
	if in.HeaderVersion > 0 {
		p("header", "version %d", in.HeaderVersion)
	}
	codecs := in.Compression
	if len(in.Codecs) > 1 {
		codecs += " (pages use: " + strings.Join(in.Codecs, ", ") + ")"
	}
	p("compression", "%s", codecs)
	p("arch", "%s", in.Arch)
	p("page size", "%d", in.PageSize)
	p("RAM", "%s in %d range(s)", sizeString(in.RAMBytes), len(in.RAM))
	const maxRanges = 16
	for i, r := range in.RAM {
		if i == maxRanges {
			p("", "… %d more", len(in.RAM)-maxRanges)
			break
		}
		p("", "%#016x-%#016x  %s", r.Start, r.End-1, sizeString(r.End-r.Start))
	}
	c := in.Pages
	p("pages", "%d in RAM: %d in the dump (%d of them zero), %d excluded, %d missing",
		c.RAM, c.InDump, c.Zero, c.Excluded, c.Missing)
	if in.DumpLevel >= 0 {
		p("dump level", "%d", in.DumpLevel)
	} else {
		p("dump level", "not recorded")
	}
	unknown := "unknown (no VMCOREINFO)"
	if in.VMCoreInfo {
		unknown = "not in VMCOREINFO"
	}
	p("osrelease", "%s", orString(in.OSRelease, unknown))
	p("build ID", "%s", orString(in.BuildID, unknown))
	if in.CrashTime != nil {
		p("crash time", "%s (%d)", *in.CrashTime, *in.CrashTimeUnix)
	} else {
		p("crash time", "%s", unknown)
	}
	if in.KernelOffset != nil {
		p("kernel offset", "%#x", *in.KernelOffset)
	} else {
		p("kernel offset", "%s", unknown)
	}
	if in.PhysBase != nil {
		pb := fmt.Sprintf("%#x", *in.PhysBase)
		if int64(*in.PhysBase) < 0 {
			// The kernel image sits lower in physical memory than
			// its link-time offset (KASLR): phys_base is negative.
			pb += fmt.Sprintf(" (-%#x)", -*in.PhysBase)
		}
		p("phys_base", "%s, from %s", pb, in.PhysBaseSource)
	} else {
		p("phys_base", "unknown")
	}
	cpus := fmt.Sprintf("%d", in.CPUs)
	var from []string
	if in.PRStatus > 0 {
		from = append(from, fmt.Sprintf("%d NT_PRSTATUS", in.PRStatus))
	}
	if in.QEMUCPUs > 0 {
		from = append(from, fmt.Sprintf("%d QEMU CPU states", in.QEMUCPUs))
	}
	if len(from) > 0 {
		cpus += " (" + strings.Join(from, ", ") + ")"
	}
	p("CPUs", "%s", cpus)
	switch {
	case !in.VMCoreInfo:
		p("VMCOREINFO", "none")
	case in.VMCoreInfoError != "":
		p("VMCOREINFO", "damaged: %s", in.VMCoreInfoError)
	default:
		p("VMCOREINFO", "present")
	}
	for i, part := range in.Parts {
		switch {
		case part.Records > 0:
			p(fmt.Sprintf("part %d", i), "%s  %s, %d records", part.Path, sizeString(uint64(part.Size)), part.Records)
		case part.EndPFN > 0:
			p(fmt.Sprintf("part %d", i), "%s  %s, PFN %#x-%#x", part.Path, sizeString(uint64(part.Size)), part.StartPFN, part.EndPFN)
		default:
			p(fmt.Sprintf("part %d", i), "%s  %s", part.Path, sizeString(uint64(part.Size)))
		}
	}
}

func orString(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

// sizeString prints a byte count in binary units.
func sizeString(n uint64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	v, u := float64(n), 0
	for v >= 1024 && u < len(units)-1 {
		v /= 1024
		u++
	}
	if u == 0 {
		return fmt.Sprintf("%d B", n)
	}
	if v == float64(int64(v)) {
		return fmt.Sprintf("%d %s", int64(v), units[u])
	}
	return fmt.Sprintf("%.1f %s", v, units[u])
}
