package capture

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// The estimate's constants, each with where it comes from.
const (
	// KernelRuntime is what the capture kernel allocates at run time
	// besides its image and the struct pages: page tables, slab, the one
	// CPU's per-CPU area, block and network drivers, /proc/vmcore's
	// lists. A 6.1 kernel booted with nr_cpus=1 into a small initramfs
	// stays well inside it.
	KernelRuntime = 64 << 20
	// goRuntime is the Go runtime's own memory (stacks, GC metadata, the
	// binary's data) and the dump reader's buffers in salvage as PID 1;
	// TestCollectorMemoryMeasured sees about 14M in all on the lab's
	// 1 GiB guest.
	goRuntime = 12 << 20
	// collector pipeline: at most 2×workers batches of batchPages pages
	// in flight, each holding the raw pages and their encoding
	// (collect/pipeline.go); the capture kernel has one CPU, so one
	// worker.
	collectBatchPages = 256
	collectWorkers    = 1
	// collectBitmaps: the RAM and kept-page sets, the ELF writer's copy,
	// and the two bitmap images the kdump writer builds
	// (collect/walk.go, collect/elf.go, dump/kdump_writer.go), each of
	// one window: the collector classifies collectWindow frames at a
	// time (collect/walk.go windowFrames, makedumpfile's cyclic mode), so
	// its bitmaps stop growing at 8 GiB of RAM.
	collectBitmaps = 5
	collectWindow  = 1 << 21
	// The analyzer model: before it filters, the collector models the
	// kernel from the dump (kallsyms, the BTF it walks the task list
	// with) to list the pages the analyzer needs (collect/needs.go). Its
	// memory grows with the kernel's symbol count: decoding kallsyms,
	// sorting and indexing the table (debuginfo.decodeKallsyms,
	// sortSymbols, buildIndex) allocate about 370 bytes per symbol
	// (heap profiles of TestCollectorMemoryMeasured on both lab kernels). Measured peaks:
	// 25M for 6.1's 88k symbols, 35M for 6.12's 155k, with 21–23M live
	// after a collection; the 6.12 collector as a whole peaked at 58–65M.
	// So: analyzerModelBase (the BTF types, the translator, the task
	// walk) plus analyzerSymbolBytes per symbol, doubled like the other
	// heap terms for the Go heap's growth between collections (GOGC=100).
	analyzerModelBase   = 10 << 20
	analyzerSymbolBytes = 128
	// defaultKernelSymbols is the symbol count assumed when neither
	// /proc/kallsyms nor the System.map can be read: above 6.12 cloud's
	// 154,691 (its System.map), the larger of the lab's kernels.
	defaultKernelSymbols = 160000
	// struct page is 64 bytes per 4 KiB page on x86_64: the capture
	// kernel spends 1/64 of its memory describing it.
	structPageShare = 64
	// crashAlign: x86 reserves the crash kernel in 16 MiB steps
	// (CRASH_ALIGN, arch/x86/include/asm/crash_reserve.h).
	crashAlign = 16 << 20
	// Margin is the share added on top of the measured need.
	marginPercent = 10
)

// EstimateInput is what Estimate measures; empty fields are found under
// Root.
type EstimateInput struct {
	Root    string   // "/" on the machine itself
	Release string   // kernel release ("" → ROOT/proc/sys/kernel/osrelease)
	Kernel  string   // the capture kernel's bzImage ("" → ROOT/boot/vmlinuz-RELEASE)
	Initrd  string   // its initramfs ("" → ROOT/var/lib/salvage/initrd.img-RELEASE, else ROOT/boot/initrd.img-RELEASE, when present)
	Modules []string // modules the capture loads (with their dependencies from modules.dep)
	// SystemMap is the kernel's symbol list, counted for the collector's
	// kernel model ("" → ROOT/proc/kallsyms, else ROOT/boot/System.map-RELEASE).
	SystemMap string
}

// EstimateItem is one term of the estimate.
type EstimateItem struct {
	What  string `json:"what"`
	Bytes uint64 `json:"bytes"`
	From  string `json:"from"`
}

// Estimate is a recommended crashkernel= size and how it was reached.
type Estimate struct {
	RAM    uint64 `json:"ram"`
	MaxPFN uint64 `json:"max_pfn"`
	CPUs   int    `json:"cpus"`
	Kernel string `json:"kernel,omitempty"`
	Initrd string `json:"initrd,omitempty"`
	// Items are the terms; Need their sum; Recommended is Need with
	// struct pages and the margin, rounded up to 16 MiB.
	Items       []EstimateItem `json:"items"`
	Need        uint64         `json:"need"`
	Recommended uint64         `json:"recommended"`
	Param       string         `json:"param"`
	// Current is the machine's reservation.
	Current  *Reservation `json:"current,omitempty"`
	Warnings []string     `json:"warnings,omitempty"`
}

// EstimateReservation measures what a capture needs on the machine under in.Root:
//
//	need = capture kernel's init_size (bzImage header: the memory it
//	       needs to decompress and run)
//	     + initramfs file + initramfs unpacked (page-rounded files)
//	     + modules (.ko sizes, with dependencies)
//	     + collector: 5 bitmaps of min(max_pfn, 2^21) bits + 2×1×256×2
//	       pages in flight, doubled for the Go heap's growth, + 12 MiB Go
//	       runtime + the kernel model, 2×(10 MiB + 128 bytes per kernel
//	       symbol) (CollectorMemory)
//	     + elfcorehdr (one program header per CPU and per RAM range)
//	     + 64 MiB kernel run-time allocations
//	recommended = roundup16M(need × 64/63 (struct pages) × 1.10)
func EstimateReservation(in EstimateInput) (*Estimate, error) {
	root := in.Root
	if root == "" {
		root = "/"
	}
	e := &Estimate{}
	res, err := ReadReservation(root)
	if err != nil {
		return nil, err
	}
	e.Current = res
	e.RAM = res.SystemRAM
	e.MaxPFN, err = maxPFN(root, res.SystemRAM)
	if err != nil {
		return nil, err
	}
	e.CPUs = countCPUs(root)
	release := in.Release
	if release == "" {
		b, err := os.ReadFile(filepath.Join(root, "proc/sys/kernel/osrelease"))
		if err == nil {
			release = strings.TrimSpace(string(b))
		}
	}
	add := func(what string, n uint64, from string) {
		e.Items = append(e.Items, EstimateItem{what, n, from})
		e.Need += n
	}

	// The capture kernel.
	e.Kernel = in.Kernel
	if e.Kernel == "" && release != "" {
		e.Kernel = filepath.Join(root, "boot", "vmlinuz-"+release)
	}
	if size, err := BzImageInitSize(e.Kernel); err == nil {
		add("capture kernel", size, fmt.Sprintf("init_size of %s", e.Kernel))
	} else if in.Kernel != "" {
		return nil, err
	} else {
		e.Warnings = append(e.Warnings, fmt.Sprintf("no capture kernel (%v): assuming 64M; give --kernel", err))
		add("capture kernel", 64<<20, "assumed: no kernel found")
		e.Kernel = ""
	}

	// Its initramfs.
	e.Initrd = in.Initrd
	if e.Initrd == "" && release != "" {
		// salvage's own capture initramfs first, then the distribution's.
		for _, p := range []string{filepath.Join(root, InitrdDir, "initrd.img-"+release), filepath.Join(root, "boot", "initrd.img-"+release)} {
			if exists(p) {
				e.Initrd = p
				break
			}
		}
	}
	if e.Initrd != "" {
		s, err := MeasureInitramfs(e.Initrd)
		if err != nil {
			return nil, err
		}
		add("initramfs file", s.File, e.Initrd)
		from := fmt.Sprintf("%d files, each rounded up to pages", s.Files)
		if s.Guessed != "" {
			from += fmt.Sprintf("; its %s part counted as %d× its size", s.Guessed, guessRatio)
		}
		add("initramfs unpacked", s.Unpacked, from)
	} else {
		e.Warnings = append(e.Warnings, "no initramfs given or found ("+InitrdDir+"/initrd.img-RELEASE, /boot/initrd.img-RELEASE): counted as nothing; give --initrd")
	}

	// Modules.
	if len(in.Modules) > 0 {
		n, files, err := ModulesSize(filepath.Join(root, "lib/modules", release), in.Modules)
		if err != nil {
			return nil, err
		}
		add("modules", n, fmt.Sprintf("%d .ko files with their dependencies", files))
	}

	// The collector, bounded by the machine's RAM and, for its kernel
	// model, by the kernel's symbol count.
	syms, symsFrom, err := kernelSymbols(root, release, in.SystemMap)
	if err != nil {
		return nil, err
	}
	add("collector", CollectorMemory(e.MaxPFN, syms),
		fmt.Sprintf("2×(%d bitmaps of %d frames + %d pages in flight) + Go runtime + kernel model of %d symbols (%s)",
			collectBitmaps, min(e.MaxPFN, collectWindow), 2*collectWorkers*collectBatchPages*2, syms, symsFrom))
	// elfcorehdr: ELF header + a program header per CPU note, VMCOREINFO,
	// the kernel text and each RAM range (crash_prepare_elf64_headers),
	// in whole pages.
	ranges := countRAMRanges(root)
	add("elfcorehdr", roundUp(64+uint64(e.CPUs+ranges+2)*56, 4096), fmt.Sprintf("%d CPU(s), %d RAM range(s)", e.CPUs, ranges))
	add("kernel run time", KernelRuntime, "page tables, slab, drivers (fixed)")

	withPages := e.Need * structPageShare / (structPageShare - 1)
	e.Recommended = roundUp(withPages*(100+marginPercent)/100, crashAlign)
	e.Param = "crashkernel=" + FormatSize(e.Recommended)
	if cur := res.Reserved(); cur > 0 && cur < e.Recommended {
		e.Warnings = append(e.Warnings, fmt.Sprintf("the current reservation (%s) is smaller than the %s recommended: the capture kernel may run out of memory",
			FormatSize(cur), FormatSize(e.Recommended)))
	}
	if e.Recommended >= e.RAM/2 {
		e.Warnings = append(e.Warnings, fmt.Sprintf("%s is half this machine's RAM or more", FormatSize(e.Recommended)))
	}
	return e, nil
}

// CollectorMemory bounds what the collector uses in the capture kernel for
// a machine of maxPFN page frames whose kernel has symbols symbols: 5
// bitmaps of one bit per frame of a window and the pages in flight,
// doubled for the Go heap's growth between collections (GOGC=100), plus
// the Go runtime and the kernel model that lists what the analyzer needs
// (AnalyzerModelMemory).
func CollectorMemory(maxPFN, symbols uint64) uint64 {
	bitmaps := collectBitmaps * ((min(maxPFN, collectWindow) + 7) / 8)
	pipeline := uint64(2 * collectWorkers * collectBatchPages * 2 * 4096)
	return 2*(bitmaps+pipeline) + goRuntime + AnalyzerModelMemory(symbols)
}

// AnalyzerModelMemory bounds the collector's kernel model (kallsyms and BTF
// read from the dump, the task walk) for a kernel of symbols symbols; see
// analyzerModelBase.
func AnalyzerModelMemory(symbols uint64) uint64 {
	return 2 * (analyzerModelBase + symbols*analyzerSymbolBytes)
}

// kernelSymbols counts the kernel's symbols, one a line: of systemMap when
// given (an error if unreadable), else of ROOT/proc/kallsyms (the running
// kernel's, modules included), else of ROOT/boot/System.map-RELEASE; when
// none can be read, defaultKernelSymbols is assumed. from says which.
func kernelSymbols(root, release, systemMap string) (n uint64, from string, err error) {
	count := func(name string) (uint64, error) {
		f, err := os.Open(name)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		var lines uint64
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			lines++
		}
		return lines, sc.Err()
	}
	if systemMap != "" {
		n, err := count(systemMap)
		if err != nil {
			return 0, "", fmt.Errorf("counting the kernel's symbols: %w", err)
		}
		return n, systemMap, nil
	}
	cands := []string{filepath.Join(root, "proc/kallsyms")}
	if release != "" {
		cands = append(cands, filepath.Join(root, "boot", "System.map-"+release))
	}
	for _, p := range cands {
		if n, err := count(p); err == nil && n > 0 {
			return n, p, nil
		}
	}
	return defaultKernelSymbols, "assumed: no kallsyms or System.map", nil
}

// BzImageInitSize reads init_size from a bzImage's setup header (x86 boot
// protocol 2.10+, Documentation/arch/x86/boot.rst: "HdrS" at 0x202, the
// version at 0x206, init_size at 0x260): the linear memory the kernel
// needs to decompress itself and run.
func BzImageInitSize(name string) (uint64, error) {
	f, err := os.Open(name)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var h [0x264]byte
	if _, err := io.ReadFull(f, h[:]); err != nil {
		return 0, fmt.Errorf("%s: not a bzImage (too short)", name)
	}
	if string(h[0x202:0x206]) != "HdrS" {
		return 0, fmt.Errorf("%s: not a bzImage (no HdrS setup header)", name)
	}
	if v := binary.LittleEndian.Uint16(h[0x206:]); v < 0x20a {
		return 0, fmt.Errorf("%s: boot protocol %d.%02d predates init_size (2.10)", name, v>>8, v&0xff)
	}
	return uint64(binary.LittleEndian.Uint32(h[0x260:])), nil
}

// ModulesSize sums the .ko files of the named modules and of what they
// depend on, from dir/modules.dep ("path.ko: dep.ko dep2.ko" lines; a
// module's name is its file name without .ko, '-' read as '_').
func ModulesSize(dir string, names []string) (total uint64, files int, err error) {
	f, err := os.Open(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return 0, 0, fmt.Errorf("modules %v: %w", names, err)
	}
	defer f.Close()
	deps := map[string][]string{}
	path := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		mod, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		n := moduleName(mod)
		path[n] = mod
		for _, d := range strings.Fields(rest) {
			deps[n] = append(deps[n], moduleName(d))
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	seen := map[string]bool{}
	var visit func(string) error
	visit = func(n string) error {
		if seen[n] {
			return nil
		}
		seen[n] = true
		p, ok := path[n]
		if !ok {
			return fmt.Errorf("module %s is not in %s (built in, or misspelt?)", n, filepath.Join(dir, "modules.dep"))
		}
		st, err := os.Stat(filepath.Join(dir, p))
		if err != nil {
			return err
		}
		total += uint64(st.Size())
		files++
		for _, d := range deps[n] {
			if err := visit(d); err != nil {
				return err
			}
		}
		return nil
	}
	for _, n := range names {
		if err := visit(strings.ReplaceAll(n, "-", "_")); err != nil {
			return 0, 0, err
		}
	}
	return total, files, nil
}

func moduleName(p string) string {
	b := filepath.Base(strings.TrimSpace(p))
	if i := strings.Index(b, ".ko"); i >= 0 {
		b = b[:i]
	}
	return strings.ReplaceAll(b, "-", "_")
}

// maxPFN is one past the highest RAM frame: the end of the last System
// RAM in iomem, or the RAM size when iomem hides addresses.
func maxPFN(root string, ram uint64) (uint64, error) {
	f, err := os.Open(filepath.Join(root, "proc/iomem"))
	if err != nil {
		return (ram + 4095) / 4096, nil
	}
	defer f.Close()
	res, err := ParseIOMem(f)
	if err != nil {
		return 0, err
	}
	var end uint64
	for _, r := range res {
		if r.Name == "System RAM" && r.End+1 > end {
			end = r.End + 1
		}
	}
	if end == 0 || end == 1 {
		return (ram + 4095) / 4096, nil
	}
	return (end + 4095) / 4096, nil
}

func countRAMRanges(root string) int {
	f, err := os.Open(filepath.Join(root, "proc/iomem"))
	if err != nil {
		return 1
	}
	defer f.Close()
	res, err := ParseIOMem(f)
	if err != nil {
		return 1
	}
	n := 0
	for _, r := range res {
		if r.Name == "System RAM" && r.Depth == 0 {
			n++
		}
	}
	return max(n, 1)
}

// countCPUs counts the "processor" lines of ROOT/proc/cpuinfo (the
// machine's online CPUs, whose crash notes the dump carries).
func countCPUs(root string) int {
	b, err := os.ReadFile(filepath.Join(root, "proc/cpuinfo"))
	if err != nil {
		return 1
	}
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if k, _, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "processor" {
			n++
		}
	}
	return max(n, 1)
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// GrubDropIn is the /etc/default/grub.d file that adds param to the
// kernel command line (update-grub sources every *.cfg there after
// /etc/default/grub).
func GrubDropIn(param string) string {
	return "# Written by `salvage kdump estimate --write`: memory reserved for the\n" +
		"# capture kernel. Run update-grub and reboot to apply it.\n" +
		"GRUB_CMDLINE_LINUX_DEFAULT=\"$GRUB_CMDLINE_LINUX_DEFAULT " + param + "\"\n"
}

// GrubDropInPath is where salvage writes its drop-in.
const GrubDropInPath = "/etc/default/grub.d/salvage-kdump.cfg"

// WriteFileAtomic writes data to name so that a reader sees the old file
// or the new one, never a part: a temporary file in the same directory,
// synced, given perm, renamed over name, and the directory synced.
func WriteFileAtomic(name string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(name)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, name); err != nil {
		return err
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
