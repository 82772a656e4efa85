package lab

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"salvage/lab/corpus"
)

// Options selects what Build makes.
type Options struct {
	Scenarios  []string // names; empty means all
	References bool     // run the reference tools over the dumps
	// Kernels are the names of the kernels to crash ("6.1", "6.12"); empty
	// means $SALVAGE_LAB_KERNELS (comma-separated), else DefaultKernels.
	// Every other kernel of Kernels is fetched for its debug vmlinux only,
	// the wrong vmlinux of the mismatch tests.
	Kernels []string
}

// DefaultKernels are the kernels a build crashes when not told otherwise.
// 6.12 is not among them only for time: its crashes and references add
// about 10 minutes to a corpus built from nothing, which would take `make
// test` past its 30 minutes; `make test-6.12` (SALVAGE_LAB_KERNELS=6.1,6.12,
// in a cache of its own) runs every test on both.
var DefaultKernels = []string{"6.1"}

// selectKernels resolves Options.Kernels to specs.
func (opt Options) selectKernels() ([]KernelSpec, error) {
	names := opt.Kernels
	if len(names) == 0 {
		if env := os.Getenv("SALVAGE_LAB_KERNELS"); env != "" {
			names = strings.Split(env, ",")
		} else {
			names = DefaultKernels
		}
	}
	var out []KernelSpec
	for _, n := range names {
		n = strings.TrimSpace(n)
		found := false
		for _, s := range Kernels {
			if s.Name == n {
				out, found = append(out, s), true
			}
		}
		if !found {
			var known []string
			for _, s := range Kernels {
				known = append(known, s.Name)
			}
			return nil, fmt.Errorf("lab: no kernel %q (known: %s)", n, strings.Join(known, ", "))
		}
	}
	return out, nil
}

// Build fetches the kernels, makes every selected scenario's dumps and
// reference outputs (or finds them in the cache) and writes manifest.json.
func (l *Lab) Build(opt Options) (*corpus.Manifest, error) {
	start := time.Now()
	if err := os.MkdirAll(l.Cache, 0o755); err != nil {
		return nil, err
	}
	specs, err := opt.selectKernels()
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, s := range opt.Scenarios {
		want[s] = true
	}
	// The collector's reference for page counts on new kernels, and the
	// filter of the kernels bookworm's makedumpfile mishandles.
	if _, err := l.sidMakedumpfile(); err != nil {
		return nil, err
	}
	m := &corpus.Manifest{Root: l.Cache}
	var crashed []*Kernel
	for _, spec := range specs {
		k, err := l.FetchKernel(spec)
		if err != nil {
			return nil, err
		}
		crashed = append(crashed, k)
		m.Kernels = append(m.Kernels, k.Kernel)
	}
	// Each kernel not crashed is the wrong vmlinux of the mismatch tests.
	for _, spec := range Kernels {
		if spec.chosen(specs) {
			continue
		}
		wrong, err := l.FetchDebugVmlinux(spec)
		if err != nil {
			return nil, err
		}
		m.Kernels = append(m.Kernels, wrong.Kernel)
	}
	for _, k := range crashed {
		for _, s := range Scenarios {
			if (len(want) > 0 && !want[s.Name]) || !k.Spec.crashes(s.Name) {
				continue
			}
			rec, err := l.Crash(k, s)
			if err != nil {
				return nil, err
			}
			for _, d := range rec.Dumps {
				if k.Spec.keeps(d.Variant) {
					m.Dumps = append(m.Dumps, d)
				}
			}
			m.Rejected = append(m.Rejected, rec.Rejected...)
		}
	}
	if opt.References {
		if err := l.References(crashed, m); err != nil {
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

// chosen reports whether s is among specs.
func (s KernelSpec) chosen(specs []KernelSpec) bool {
	for _, c := range specs {
		if c.Name == s.Name {
			return true
		}
	}
	return false
}

func countCrashes(m *corpus.Manifest) int {
	seen := map[string]bool{}
	for _, d := range m.Dumps {
		seen[d.Crash] = true
	}
	return len(seen)
}
