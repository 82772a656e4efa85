package collect

import (
	"strings"
	"testing"
)

// On a terminal the progress line is redrawn with the rate and the time
// left; elsewhere it is makedumpfile's line per 10%.
func TestProgressFormats(t *testing.T) {
	var term strings.Builder
	p := newProgress(&term, true, "Copying data", 1000)
	for i := 0; i < 10; i++ {
		p.add(100)
	}
	p.finish()
	if !strings.Contains(term.String(), "\rCopying data") || !strings.Contains(term.String(), "MiB/s") || !strings.Contains(term.String(), "left") {
		t.Errorf("terminal progress %q", term.String())
	}
	var log strings.Builder
	p = newProgress(&log, false, "Copying data", 1000)
	p.add(0) // as the pipeline does before the first batch
	for i := 0; i < 10; i++ {
		p.add(100)
	}
	p.finish()
	if got := strings.Count(log.String(), "\n"); got != 11 || !strings.Contains(log.String(), "[100.0 %]\n") || strings.Contains(log.String(), "MiB/s") {
		t.Errorf("log progress (%d lines) %q", got, log.String())
	}
}
