package analyze

import (
	"fmt"
	"io"

	"salvage/kernel"
)

func init() { register(kmemCommand) }

// kmemOthers are crash's other kmem options (memory.c cmd_kmem), accepted
// so that using one says it is not implemented rather than unknown.
var kmemOthers = []string{"f", "F", "p", "c", "C", "v", "V", "n", "z", "o", "h", "s", "S", "r", "g", "l", "L"}

func kmemCommand() *Command {
	opts := []Option{{Name: "i", Help: "show the memory summary: RAM, free, used, shared, buffers, cache, slab, huge pages, swap, commit"}}
	for _, o := range kmemOthers {
		opts = append(opts, Option{Name: o, Help: "crash's kmem -" + o + ": not implemented (only -i is)"})
	}
	return &Command{
		Name:    "kmem",
		Summary: "kernel memory summary",
		Usage:   "-i",
		Help: `-i shows the memory summary crash's kmem -i shows, computed as crash 8.0.6
does: TOTAL MEM is _totalram_pages; FREE sums every zone's NR_FREE_PAGES;
USED is the rest; SHARED counts the pages that are not reserved and have
more than one reference (a walk of every struct page); BUFFERS is the page
cache of the block devices; CACHED is NR_FILE_PAGES less the swap cache and
the buffers; SLAB is the slab counters of vm_node_stat; then the huge
pages of every hstate, the swap devices, and the overcommit limit against
the committed address space (vm_committed_as). Pages and sizes, with the
percentage of the whole each is.

crash's other kmem options (-s, -f, -p, -v, an address…) are not
implemented yet: they say so.

Examples:
  kmem -i
  kmem -i --json
`,
		Options: opts,
		MaxArgs: -1,
		Run:     runKmem,
	}
}

// kmemJSON is kmem -i --json: every figure in pages, with the page size
// to turn them into bytes.
type kmemJSON struct {
	PageSize    uint64 `json:"page_size"`
	TotalRAM    uint64 `json:"total_ram"`
	Free        uint64 `json:"free"`
	Used        uint64 `json:"used"`
	Shared      uint64 `json:"shared"`
	Buffers     uint64 `json:"buffers"`
	Cached      uint64 `json:"cached"`
	Slab        uint64 `json:"slab"`
	HugeTotal   uint64 `json:"huge_total"`
	HugeFree    uint64 `json:"huge_free"`
	SwapTotal   uint64 `json:"swap_total"`
	SwapUsed    uint64 `json:"swap_used"`
	SwapFree    uint64 `json:"swap_free"`
	CommitLimit uint64 `json:"commit_limit"`
	Committed   int64  `json:"committed"`
	// UnreadMemMap is the bytes of struct pages (and section tables) the
	// dump lacked, which SHARED counted as unreferenced.
	UnreadMemMap uint64 `json:"unread_mem_map_bytes,omitempty"`
}

func runKmem(ctx *Context) error {
	for _, o := range ctx.Opts {
		if o.Name != "i" {
			return usagef("-%s is not implemented: only -i is", o.Name)
		}
	}
	if len(ctx.Args) > 0 {
		return usagef("%s: addresses are not implemented: only -i is", ctx.Args[0])
	}
	if !ctx.Opts.Has("i") {
		return usagef("only -i is implemented")
	}
	k, err := ctx.Session.Kernel()
	if err != nil {
		return err
	}
	mi, err := k.MemInfo()
	if err != nil {
		return err
	}
	if ctx.JSON {
		return writeJSON(ctx, kmemJSON{
			PageSize: mi.PageSize, TotalRAM: mi.TotalRAM, Free: mi.Free, Used: mi.TotalRAM - mi.Free,
			Shared: mi.Shared, Buffers: mi.Buffers, Cached: mi.Cached, Slab: mi.Slab,
			HugeTotal: mi.HugeTotal, HugeFree: mi.HugeFree,
			SwapTotal: mi.SwapTotal, SwapUsed: mi.SwapUsed, SwapFree: mi.SwapTotal - mi.SwapUsed,
			CommitLimit: mi.CommitLimit, Committed: mi.Committed, UnreadMemMap: mi.UnreadMemMap,
		})
	}
	writeKmemInfo(ctx.Out, mi)
	return nil
}

// writeKmemInfo prints mi in crash 8.0.6's layout (memory.c
// dump_kmeminfo): percentages are integer divisions, of TOTAL MEM, TOTAL
// HUGE, TOTAL SWAP or the commit limit.
func writeKmemInfo(w io.Writer, mi *kernel.MemInfo) {
	size := func(pages uint64) string { return kernel.FormatPages(pages, mi.PageSize) }
	total := func(name string, pages uint64) {
		fmt.Fprintf(w, "%13s  %7d  %11s         ----\n", name, pages, size(pages))
	}
	part := func(name string, pages, of uint64, ofName string) {
		pct := uint64(0)
		if of != 0 {
			pct = pages * 100 / of
		}
		fmt.Fprintf(w, "%13s  %7d  %11s  %3d%% of %s\n", name, pages, size(pages), pct, ofName)
	}
	mem := func(name string, pages uint64) { part(name, pages, mi.TotalRAM, "TOTAL MEM") }

	fmt.Fprint(w, "                 PAGES        TOTAL      PERCENTAGE\n")
	total("TOTAL MEM", mi.TotalRAM)
	mem("FREE", mi.Free)
	mem("USED", mi.TotalRAM-mi.Free)
	mem("SHARED", mi.Shared)
	mem("BUFFERS", mi.Buffers)
	if mi.CachedNegative {
		fmt.Fprintf(w, "kmem: page_cache_size went negative (%d), setting to 0\n", mi.FilePages-mi.SwapCache-int64(mi.Buffers))
	}
	mem("CACHED", mi.Cached)
	mem("SLAB", mi.Slab)
	fmt.Fprint(w, "\n")
	total("TOTAL HUGE", mi.HugeTotal)
	part("HUGE FREE", mi.HugeFree, mi.HugeTotal, "TOTAL HUGE")
	fmt.Fprint(w, "\n")
	if mi.HasSwap {
		total("TOTAL SWAP", mi.SwapTotal)
		part("SWAP USED", mi.SwapUsed, mi.SwapTotal, "TOTAL SWAP")
		part("SWAP FREE", mi.SwapTotal-mi.SwapUsed, mi.SwapTotal, "TOTAL SWAP")
	}
	if mi.HasCommit {
		fmt.Fprint(w, "\n")
		total("COMMIT LIMIT", mi.CommitLimit)
		c := uint64(mi.Committed)
		if mi.CommitLimit != 0 {
			part("COMMITTED", c, mi.CommitLimit, "TOTAL LIMIT")
		} else {
			total("COMMITTED", c)
		}
	}
}
