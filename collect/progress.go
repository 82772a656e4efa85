package collect

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// progress prints makedumpfile's progress line, "Copying data : [ 45.0 %]":
// redrawn in place on a terminal, with the rate and the time left; one
// line per 10% otherwise (a log file or a serial console then gets eleven
// lines, not thousands); or, with JSON, one event per percent for a
// program to follow.
type progress struct {
	w        io.Writer
	terminal bool
	json     bool
	label    string
	total    uint64
	done     uint64
	shown    int // last per-mille (terminal), percent (JSON) or decile (log) printed
	start    time.Time
	pageSize uint64
}

func newProgress(w io.Writer, terminal bool, label string, total uint64) *progress {
	return &progress{w: w, terminal: terminal, label: label, total: total, shown: -1, start: time.Now(), pageSize: 4096}
}

// progressEvent is one --progress=json line.
type progressEvent struct {
	Event      string  `json:"event"` // "progress", then "done"
	Done       uint64  `json:"done_pages"`
	Total      uint64  `json:"total_pages"`
	Percent    float64 `json:"percent"`
	PagesPerS  float64 `json:"pages_per_second"`
	ETASeconds float64 `json:"eta_seconds"`
}

func (p *progress) event(kind string) progressEvent {
	e := progressEvent{Event: kind, Done: p.done, Total: p.total, Percent: 100}
	if p.total > 0 {
		e.Percent = float64(p.done*1000/p.total) / 10
	}
	if s := time.Since(p.start).Seconds(); s > 0 {
		e.PagesPerS = float64(p.done) / s
		if e.PagesPerS > 0 && p.total > p.done {
			e.ETASeconds = float64(p.total-p.done) / e.PagesPerS
		}
	}
	return e
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
	switch {
	case p.json:
		if pc := permille / 10; pc != p.shown {
			p.shown = pc
			b, _ := json.Marshal(p.event("progress"))
			fmt.Fprintf(p.w, "%s\n", b)
		}
	case p.terminal:
		if permille != p.shown {
			p.shown = permille
			e := p.event("progress")
			fmt.Fprintf(p.w, "\r%-50s: [%5.1f %%] %6.1f MiB/s, %s left ", p.label, float64(permille)/10,
				e.PagesPerS*float64(p.pageSize)/(1<<20), (time.Duration(e.ETASeconds) * time.Second).String())
		}
	default:
		if d := permille / 100; d != p.shown {
			p.shown = d
			fmt.Fprintf(p.w, "%-50s: [%5.1f %%]\n", p.label, float64(d*10))
		}
	}
}

func (p *progress) finish() {
	if p.w == nil {
		return
	}
	p.add(p.total - p.done)
	switch {
	case p.json:
		b, _ := json.Marshal(p.event("done"))
		fmt.Fprintf(p.w, "%s\n", b)
	case p.terminal:
		fmt.Fprintln(p.w)
	}
}

func (p *progress) stop() {
	if p.w != nil && p.terminal && !p.json {
		fmt.Fprintln(p.w)
	}
}
