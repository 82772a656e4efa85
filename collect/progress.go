package collect

import (
	"fmt"
	"io"
)

// progress prints makedumpfile's progress line, "Copying data : [ 45.0 %]":
// redrawn in place on a terminal, one line per 10% otherwise (a log file
// or a serial console then gets eleven lines, not thousands).
type progress struct {
	w        io.Writer
	terminal bool
	label    string
	total    uint64
	done     uint64
	shown    int // last per-mille (terminal) or decile (log) printed
}

func newProgress(w io.Writer, terminal bool, label string, total uint64) *progress {
	return &progress{w: w, terminal: terminal, label: label, total: total, shown: -1}
}

func (p *progress) add(n uint64) {
	if p.w == nil {
		return
	}
	p.done += n
	permille := 1000
	if p.total > 0 {
		permille = int(p.done * 1000 / p.total)
	}
	if p.terminal {
		if permille != p.shown {
			p.shown = permille
			fmt.Fprintf(p.w, "\r%-50s: [%5.1f %%]", p.label, float64(permille)/10)
		}
		return
	}
	if d := permille / 100; d != p.shown {
		p.shown = d
		fmt.Fprintf(p.w, "%-50s: [%5.1f %%]\n", p.label, float64(d*10))
	}
}

func (p *progress) finish() {
	if p.w == nil {
		return
	}
	p.add(p.total - p.done)
	if p.terminal {
		fmt.Fprintln(p.w)
	}
}

func (p *progress) stop() {
	if p.w != nil && p.terminal {
		fmt.Fprintln(p.w)
	}
}
