package lab

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"salvage/lab/corpus"
)

// E2EAssets are the lab's files an end-to-end kdump test boots a guest
// with: the kernel the lab crashes, its virtio modules (in load order) and
// the salvage_lab test module (`echo oops|hang > /proc/salvage_lab`).
type E2EAssets struct {
	Release string
	Vmlinuz string
	// Modules are the .ko files of the guest's drivers, in load order
	// (the lab's load-order file).
	Modules []string
	// SalvageLab is the newest salvage_lab-*.ko built for Release.
	SalvageLab string
}

// FindE2EAssets finds the assets of the lab's crashed kernel in m's cache
// (kernels/RELEASE/ beside its vmlinuz).
func FindE2EAssets(m *corpus.Manifest) (*E2EAssets, error) {
	for _, k := range m.Kernels {
		if k.Vmlinuz == "" || k.Role != "" {
			continue
		}
		a := &E2EAssets{Release: k.Release, Vmlinuz: m.Path(k.Vmlinuz)}
		dir := filepath.Dir(a.Vmlinuz)
		order, err := readLines(filepath.Join(dir, "modules", "load-order"))
		if err != nil {
			return nil, fmt.Errorf("lab kernel %s: %w", k.Release, err)
		}
		for _, name := range order {
			a.Modules = append(a.Modules, filepath.Join(dir, "modules", strings.TrimSpace(name)+".ko"))
		}
		kos, _ := filepath.Glob(filepath.Join(dir, "salvage_lab-*.ko"))
		if len(kos) == 0 {
			return nil, fmt.Errorf("lab kernel %s: no salvage_lab-*.ko in %s (run make lab)", k.Release, dir)
		}
		sort.Slice(kos, func(i, j int) bool { return modTime(kos[i]) > modTime(kos[j]) })
		a.SalvageLab = kos[0]
		return a, nil
	}
	return nil, errors.New("the lab has no kernel image")
}

func modTime(p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return st.ModTime().UnixNano()
}
