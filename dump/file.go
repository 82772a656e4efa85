package dump

// Format names a dump container format, as `salvage info --json` reports it.
type Format string

const (
	FormatELF       Format = "elf"
	FormatKdump     Format = "kdump"     // kdump-compressed ("KDUMP   " signature)
	FormatFlattened Format = "flattened" // makedumpfile -F stream
	FormatSplit     Format = "split"     // makedumpfile --split parts, opened together
)

// Arch names the dumped machine's architecture.
type Arch string

const (
	ArchX86_64 Arch = "x86_64"
	ArchARM64  Arch = "arm64"
)

// Compression names a page codec: "none", "zlib", "lzo", "snappy", "zstd".
type Compression = string

// File is an opened crash dump.
type File struct {
	Path   string // as given to Open; for split dumps, the first part
	Format Format
	// Inner is the format under a flattened or split container
	// (FormatKdump or FormatELF); equal to Format otherwise.
	Inner  Format
	Arch   Arch
	Memory Memory

	// Compression lists the codecs that pages in the dump actually use
	// (or, when not yet scanned, those the header allows), sorted.
	Compression []Compression
	// HeaderVersion is the kdump-compressed header version (0 for ELF).
	HeaderVersion int
	// DumpLevel is makedumpfile's -d level, or -1 when the dump does not
	// record one (ELF cores from QEMU or /proc/vmcore).
	DumpLevel int
	// Incomplete is set when the producer marked the dump incomplete
	// (kdump DUMP_DH_COMPRESSED_INCOMPLETE, ELF e_flags bit).
	Incomplete bool

	CPUs  int    // number of CPUs (kdump header nr_cpus, or NT_PRSTATUS count)
	Notes []Note // every ELF note, in file order
	// NoteAlign is an ELF core's PT_NOTE p_align (0 on 6.1's /proc/vmcore,
	// 4 on 6.12's); makedumpfile -E copies it, and so does the ELF writer.
	NoteAlign  uint64
	PRStatus   []PRStatus  // one per CPU that had an NT_PRSTATUS note
	QEMUCPUs   []QEMUCPU   // QEMU "QEMU" notes, when present
	VMCoreInfo *VMCoreInfo // nil when the dump carries none
	Parts      []Part      // flattened records or split parts; nil otherwise

	closers []func() error
}

// Part describes one component of a flattened or split dump.
type Part struct {
	Path     string
	Size     int64
	StartPFN uint64 // split parts: first PFN held
	EndPFN   uint64 // split parts: one past the last PFN held
	Records  int    // flattened: number of data records
}

// Close releases the files behind the dump.
func (f *File) Close() error {
	var first error
	for _, c := range f.closers {
		if err := c(); err != nil && first == nil {
			first = err
		}
	}
	f.closers = nil
	return first
}
