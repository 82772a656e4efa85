// Package corpus describes the lab's corpus of real kernel crash dumps —
// which dumps exist, how they were made, and the reference tools' outputs
// beside them — and gives tests access to it.
//
// The corpus lives outside the repository, under $SALVAGE_LAB_CACHE
// (default ~/.cache/salvage/lab); `make lab` builds it, and manifest.json
// at its top lists everything in it.
package corpus

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// Manifest is manifest.json: the whole corpus.
type Manifest struct {
	Root    string   `json:"-"` // the cache directory it was loaded from
	Created string   `json:"created"`
	Kernels []Kernel `json:"kernels"`
	Dumps   []Dump   `json:"dumps"`
	// Rejected are dumps a reference producer made wrongly (bookworm's
	// makedumpfile on kernels it does not know): kept to document the
	// failure, never iterated by the tests.
	Rejected []Rejected `json:"rejected,omitempty"`
}

// Rejected is a dump kept only as evidence of a producer's failure.
type Rejected struct {
	Dump
	Reason string `json:"reason"` // what is wrong with it, measured when it was made
}

// Kernel is one Debian kernel the lab fetched.
type Kernel struct {
	Name           string `json:"name,omitempty"`  // the lab's name of it: "6.1", "6.12"
	Release        string `json:"release"`         // uname -r, e.g. 6.1.0-56-cloud-amd64
	PackageVersion string `json:"package_version"` // e.g. 6.1.192-2
	Package        string `json:"package"`         // linux-image-… package name
	Vmlinuz        string `json:"vmlinuz"`         // path, relative to Root
	DebugVmlinux   string `json:"debug_vmlinux"`   // path, relative to Root
	SystemMap      string `json:"system_map,omitempty"`
	DebugModules   string `json:"debug_modules,omitempty"` // directory of debug .ko files
	BuildID        string `json:"build_id"`
	// Role is "" for the kernel the lab crashes, "mismatch" for a kernel
	// fetched only for its debug vmlinux: the wrong vmlinux of tests.
	Role string `json:"role,omitempty"`
}

// Dump is one dump file (or one split set) of one crash.
type Dump struct {
	ID       string `json:"id"`       // release/scenario/variant, unique
	Release  string `json:"release"`  // kernel release of the crashed guest
	Scenario string `json:"scenario"` // live, sysrq, oops, hung
	// Crash names the crash event: every dump with the same Crash holds
	// the same machine state (so the same page must read the same in each).
	Crash       string   `json:"crash"`
	Variant     string   `json:"variant"`     // e.g. elf, kdump-zlib, lzo-d31, flat-lzo-d31
	Producer    string   `json:"producer"`    // e.g. "qemu dump-guest-memory", "makedumpfile 1.7.2", "/proc/vmcore"
	Format      string   `json:"format"`      // elf, kdump, flattened, split
	Compression string   `json:"compression"` // none, zlib, lzo, snappy, zstd
	DumpLevel   int      `json:"dump_level"`  // -1 when the producer does not filter
	Files       []string `json:"files"`       // relative to Root; split dumps have several
	Size        int64    `json:"size"`
	SHA256      string   `json:"sha256"` // of the first file
	// Refs maps a reference command ("sys", "bt", "ps", …) to a file of
	// its output, relative to Root. Keys of crash 8.0.6 are plain command
	// names; crash 8.0.2's carry the prefix "crash-8.0.2:", drgn's "drgn:".
	Refs map[string]string `json:"refs,omitempty"`
	// RefCommands maps a reference key to the exact command line that
	// made it (e.g. "rd" → "rd -p 0x2e1200 32").
	RefCommands map[string]string `json:"ref_commands,omitempty"`
	// RefErrors maps a reference command to the error crash gave for it.
	RefErrors map[string]string `json:"ref_errors,omitempty"`
	// Truth is the directory of in-guest ground truth captured just before
	// the crash (uname, kallsyms, ps, modules, mounts, meminfo), relative to Root.
	Truth string `json:"truth,omitempty"`
	// Dmesg is makedumpfile --dump-dmesg's output for this crash, when made.
	Dmesg string `json:"dmesg,omitempty"`
}

// Dir returns the corpus directory: $SALVAGE_LAB_CACHE or ~/.cache/salvage/lab.
func Dir() string {
	if d := os.Getenv("SALVAGE_LAB_CACHE"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = "/root"
	}
	return filepath.Join(home, ".cache", "salvage", "lab")
}

// Load reads manifest.json from dir.
func Load(dir string) (*Manifest, error) {
	p := filepath.Join(dir, "manifest.json")
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("lab corpus: %w (run `make lab` to build it)", err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("lab corpus: %s: %w", p, err)
	}
	m.Root = dir
	sort.Slice(m.Dumps, func(i, j int) bool { return m.Dumps[i].ID < m.Dumps[j].ID })
	return &m, nil
}

// Path makes a manifest-relative path absolute.
func (m *Manifest) Path(rel string) string {
	if rel == "" || filepath.IsAbs(rel) {
		return rel
	}
	return filepath.Join(m.Root, rel)
}

// Paths returns the absolute paths of a dump's files.
func (m *Manifest) Paths(d Dump) []string {
	out := make([]string, len(d.Files))
	for i, f := range d.Files {
		out[i] = m.Path(f)
	}
	return out
}

// Select returns the dumps for which keep returns true.
func (m *Manifest) Select(keep func(Dump) bool) []Dump {
	var out []Dump
	for _, d := range m.Dumps {
		if keep(d) {
			out = append(out, d)
		}
	}
	return out
}

// WrongVmlinux returns the debug vmlinux of a kernel no dump was made
// with, for mismatch tests; when every kernel was crashed, the vmlinux of
// a kernel other than the first dump's. "" when the corpus has one kernel.
func (m *Manifest) WrongVmlinux() string {
	for _, k := range m.Kernels {
		if k.Role == "mismatch" {
			return m.Path(k.DebugVmlinux)
		}
	}
	if len(m.Dumps) > 0 {
		return m.WrongVmlinuxFor(m.Dumps[0])
	}
	return ""
}

// WrongVmlinuxFor returns the debug vmlinux of a kernel whose release
// differs from d's (the mismatch kernel first), for mismatch tests; "" when
// the corpus has none.
func (m *Manifest) WrongVmlinuxFor(d Dump) string {
	var other string
	for _, k := range m.Kernels {
		if k.Release == d.Release || k.DebugVmlinux == "" {
			continue
		}
		if k.Role == "mismatch" {
			return m.Path(k.DebugVmlinux)
		}
		if other == "" {
			other = m.Path(k.DebugVmlinux)
		}
	}
	return other
}

// Kernel returns the kernel of the given release, or nil.
func (m *Manifest) Kernel(release string) *Kernel {
	for i := range m.Kernels {
		if m.Kernels[i].Release == release {
			return &m.Kernels[i]
		}
	}
	return nil
}

// Ref reads the reference output kind for d; ok is false when the corpus
// has none (the command failed in crash, or was not run).
func (m *Manifest) Ref(d Dump, kind string) (text string, ok bool, err error) {
	rel, ok := d.Refs[kind]
	if !ok {
		return "", false, nil
	}
	b, err := os.ReadFile(m.Path(rel))
	if err != nil {
		return "", false, err
	}
	return string(b), true, nil
}
