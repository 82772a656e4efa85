package lab

import (
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	"salvage/lab/corpus"
)

// Options selects what Build makes.
type Options struct {
	Scenarios  []string // names; empty means all
	References bool     // run the reference tools over the dumps
}

// Build fetches the kernel, makes every selected scenario's dumps and
// reference outputs (or finds them in the cache) and writes manifest.json.
func (l *Lab) Build(opt Options) (*corpus.Manifest, error) {
	start := time.Now()
	if err := os.MkdirAll(l.Cache, 0o755); err != nil {
		return nil, err
	}
	k, err := l.FetchKernel(DefaultKernel)
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, s := range opt.Scenarios {
		want[s] = true
	}
	wrong, err := l.FetchDebugVmlinux(MismatchKernel)
	if err != nil {
		return nil, err
	}
	// The collector's reference for page counts on new kernels.
	if _, err := l.sidMakedumpfile(); err != nil {
		return nil, err
	}
	m := &corpus.Manifest{Root: l.Cache, Kernels: []corpus.Kernel{k.Kernel, wrong.Kernel}}
	for _, s := range Scenarios {
		if len(want) > 0 && !want[s.Name] {
			continue
		}
		rec, err := l.Crash(k, s)
		if err != nil {
			return nil, err
		}
		m.Dumps = append(m.Dumps, rec.Dumps...)
	}
	if opt.References {
		if err := l.References(k, m); err != nil {
			return nil, err
		}
	}
	m.Created = time.Now().UTC().Format(time.RFC3339)
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(l.Cache, "manifest.json"), append(b, '\n'), 0o644); err != nil {
		return nil, err
	}
	l.logf("corpus ready: %d dumps of %d crashes in %s (%.0f s)", len(m.Dumps), countCrashes(m), l.Cache, time.Since(start).Seconds())
	return m, nil
}

func countCrashes(m *corpus.Manifest) int {
	seen := map[string]bool{}
	for _, d := range m.Dumps {
		seen[d.Crash] = true
	}
	return len(seen)
}
