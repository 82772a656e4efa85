package collect

import (
	"fmt"
	"io"
)

// WriteReport prints the summary makedumpfile prints at the end of a
// dump (makedumpfile.c print_report), with the same labels and hex page
// counts, so that scripts that read it keep working.
func WriteReport(w io.Writer, r *Result) {
	sel := r.Selection
	c := r.Counts
	original := c.RAM
	excluded := c.Excluded()
	hole := sel.MaxPFN - c.RAM
	fmt.Fprintf(w, "\n")
	fmt.Fprintf(w, "Original pages  : 0x%016x\n", original)
	fmt.Fprintf(w, "  Excluded pages   : 0x%016x\n", excluded)
	fmt.Fprintf(w, "    Pages filled with zero  : 0x%016x\n", c.Zero)
	fmt.Fprintf(w, "    Non-private cache pages : 0x%016x\n", c.Cache)
	fmt.Fprintf(w, "    Private cache pages     : 0x%016x\n", c.CachePrivate)
	fmt.Fprintf(w, "    User process data pages : 0x%016x\n", c.User)
	fmt.Fprintf(w, "    Free pages              : 0x%016x\n", c.Free)
	fmt.Fprintf(w, "    Hwpoison pages          : 0x%016x\n", c.HWPoison)
	fmt.Fprintf(w, "    Offline pages           : 0x%016x\n", c.Offline)
	fmt.Fprintf(w, "  Remaining pages  : 0x%016x\n", original-excluded)
	if original != 0 {
		fmt.Fprintf(w, "  (The number of pages is reduced to %d%%.)\n", (original-excluded)*100/original)
	}
	fmt.Fprintf(w, "Memory Hole     : 0x%016x\n", hole)
	fmt.Fprintf(w, "--------------------------------------------------\n")
	fmt.Fprintf(w, "Total pages     : 0x%016x\n", sel.MaxPFN)
	fmt.Fprintf(w, "Write bytes     : %d\n", r.Written)
	if t := r.Times; t != (Times{}) {
		// Not in makedumpfile's report: where the capture kernel's time
		// went.
		fmt.Fprintf(w, "Elapsed time    : %.3f s (analyzer's pages %.3f s, classifying %.3f s, copying %.3f s)\n",
			(t.Needs + t.Classify + t.Copy).Seconds(), t.Needs.Seconds(), t.Classify.Seconds(), t.Copy.Seconds())
	}
	fmt.Fprintf(w, "\n")
	for _, n := range sel.Plan.Notes {
		fmt.Fprintf(w, "Note: %s\n", n)
	}
	for _, n := range sel.Warnings {
		fmt.Fprintf(w, "Warning: %s\n", n)
	}
}
