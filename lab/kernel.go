package lab

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"salvage/debuginfo"
	"salvage/lab/corpus"
)

// KernelSpec names a Debian kernel by the metapackage that selects it, and
// says how the lab crashes it.
type KernelSpec struct {
	Name string // short name, for Options.Kernels: "6.1", "6.12"
	Meta string // e.g. linux-image-cloud-amd64
	// Scenarios are the names of the scenarios crashed on this kernel;
	// empty means all of them.
	Scenarios []string
	// HostFilter says bookworm's makedumpfile cannot filter this kernel's
	// dumps: its -d 31 dumps made in the guest are kept only as documented
	// failures, and the filtered variants are made on the host by sid's
	// makedumpfile from the raw /proc/vmcore copy.
	HostFilter bool
	// Variants are the names of the dumps kept in the corpus (and given
	// references) of each crash; empty means all the scenario makes.
	Variants []string
}

// DefaultKernel is bookworm's cloud kernel for amd64.
var DefaultKernel = KernelSpec{Name: "6.1", Meta: "linux-image-cloud-amd64"}

// Kernel612 is the 6.12 cloud kernel of bookworm-security, crashed a few
// ways (the corpus build's time is bounded): a second kernel generation,
// so that what changed between 6.1 and 6.12 is tested on real dumps.
// bookworm's makedumpfile 1.7.2 drops in-use slab pages of kernels >= 6.2
// at -d 8 and -d 16 (so its -d 31 dumps lack the task list): its filtered
// dumps are made on the host by sid's 1.7.8.
//
// To keep a corpus build from an empty cache within make test's budget,
// each 6.12 crash keeps the raw ELF, the lzo -d 31 dump and the flattened
// one; the reference sessions are most of a crash's cost.
var Kernel612 = KernelSpec{Name: "6.12", Meta: "linux-image-6.12-cloud-amd64",
	Scenarios: []string{"sysrq", "oops", "hung"}, HostFilter: true,
	Variants: []string{"vmcore-elf", "lzo-d31", "flat-lzo-d31"}}

// Kernels are the kernels the lab knows how to crash, in build order.
var Kernels = []KernelSpec{DefaultKernel, Kernel612}

// keeps reports whether the corpus keeps dumps of variant name of this
// kernel's crashes.
func (s KernelSpec) keeps(name string) bool {
	if len(s.Variants) == 0 {
		return true
	}
	for _, n := range s.Variants {
		if n == name {
			return true
		}
	}
	return false
}

// crashes reports whether scenario name is crashed on this kernel.
func (s KernelSpec) crashes(name string) bool {
	if len(s.Scenarios) == 0 {
		return true
	}
	for _, n := range s.Scenarios {
		if n == name {
			return true
		}
	}
	return false
}

// Kernel is a fetched kernel in the cache.
type Kernel struct {
	corpus.Kernel
	Spec    KernelSpec
	Dir     string // absolute: cache/kernels/<release>
	Modules string // absolute: directory of (non-debug) .ko files, flat
}

// guestModules are the modules the guest needs; their dependencies are
// added and ordered from each module's depends= (what depmod puts in
// modules.dep, which the .deb does not ship).
var guestModules = []string{
	"qemu_fw_cfg", // publishes VMCOREINFO to QEMU's vmcoreinfo device
	"virtio_pci", "virtio_blk",
}

var pkgRe = regexp.MustCompile(`Depends: (linux-image-[^\s]+)`)

// resolve finds the exact image package of a metapackage and its version.
func resolve(spec KernelSpec) (pkg, version string, err error) {
	ctx, cancel := timeoutCtx(time.Minute)
	defer cancel()
	out, err := command(ctx, "", "apt-cache", "depends", spec.Meta)
	if err != nil {
		return "", "", err
	}
	m := pkgRe.FindSubmatch(out)
	if m == nil {
		return "", "", fmt.Errorf("apt-cache depends %s names no linux-image package (run apt-get update?)", spec.Meta)
	}
	pkg = string(m[1])
	out, err = command(ctx, "", "apt-cache", "show", "--no-all-versions", pkg)
	if err != nil {
		return "", "", err
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "Version: "); ok {
			return pkg, strings.TrimSpace(v), nil
		}
	}
	return "", "", fmt.Errorf("apt-cache show %s gives no version", pkg)
}

// download fetches a package's .deb into cache/debs (once).
func (l *Lab) download(pkg, version string) (string, error) {
	dir := filepath.Join(l.Cache, "debs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	want := fmt.Sprintf("%s_%s_", pkg, strings.ReplaceAll(version, ":", "%3a"))
	find := func() string {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), want) && strings.HasSuffix(e.Name(), ".deb") {
				return filepath.Join(dir, e.Name())
			}
		}
		return ""
	}
	if p := find(); p != "" {
		return p, nil
	}
	l.logf("downloading %s %s", pkg, version)
	ctx, cancel := timeoutCtx(20 * time.Minute)
	defer cancel()
	if _, err := command(ctx, dir, "apt-get", "download", "-q", pkg+"="+version); err != nil {
		return "", err
	}
	if p := find(); p != "" {
		return p, nil
	}
	return "", fmt.Errorf("apt-get download %s=%s left no .deb in %s", pkg, version, dir)
}

// extract unpacks the members of a .deb that match the patterns (tar
// wildcards) into dir, without unpacking the rest.
func extract(deb, dir string, patterns ...string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	ctx, cancel := timeoutCtx(20 * time.Minute)
	defer cancel()
	script := []string{"-c", `dpkg-deb --fsys-tarfile "$1" | tar -x -C "$2" --wildcards "${@:3}"`, "extract", deb, dir}
	_, err := command(ctx, "", "bash", append(script, patterns...)...)
	return err
}

// FetchKernel resolves, downloads and unpacks a kernel and the parts of its
// -dbg package the lab needs: the debug vmlinux and the guest modules'
// debug objects.
func (l *Lab) FetchKernel(spec KernelSpec) (*Kernel, error) {
	pkg, version, err := resolve(spec)
	if err != nil {
		return nil, err
	}
	release := strings.TrimPrefix(pkg, "linux-image-")
	release = strings.TrimSuffix(release, "-unsigned")
	k := &Kernel{Dir: filepath.Join(l.Cache, "kernels", release), Spec: spec}
	k.Name, k.Release, k.Package, k.PackageVersion = spec.Name, release, pkg, version
	k.Modules = filepath.Join(k.Dir, "modules")
	rel := func(p string) string { r, _ := filepath.Rel(l.Cache, p); return r }
	k.Vmlinuz = rel(filepath.Join(k.Dir, "vmlinuz"))
	k.SystemMap = rel(filepath.Join(k.Dir, "System.map"))
	k.DebugVmlinux = rel(filepath.Join(k.Dir, "vmlinux"))
	k.DebugModules = rel(filepath.Join(k.Dir, "debug-modules"))
	done := filepath.Join(k.Dir, ".complete")
	// FetchDebugVmlinux (the kernel as another's wrong vmlinux) completes
	// the same directory with the vmlinux alone: the image's files must be
	// there too.
	if exists(done) && exists(filepath.Join(k.Dir, "vmlinuz")) && exists(filepath.Join(k.Modules, "load-order")) {
		b, err := os.ReadFile(done)
		if err == nil {
			k.BuildID = strings.TrimSpace(string(b))
			return k, l.realSystemMap(k)
		}
	}
	l.logf("fetching kernel %s (%s %s)", release, pkg, version)
	deb, err := l.download(pkg, version)
	if err != nil {
		return nil, err
	}
	dbg, err := l.download(pkg+"-dbg", version)
	if err != nil {
		return nil, err
	}
	tmp := filepath.Join(k.Dir, "unpack")
	os.RemoveAll(tmp)
	if err := extract(deb, tmp, "./boot/*", "./lib/modules/*"); err != nil {
		return nil, err
	}
	modRoot := filepath.Join(tmp, "lib/modules", release)
	paths, err := moduleIndex(modRoot)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(k.Modules, 0o755); err != nil {
		return nil, err
	}
	order, err := loadOrder(modRoot, paths, guestModules)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(k.Modules, "load-order"), []byte(strings.Join(order, "\n")+"\n"), 0o644); err != nil {
		return nil, err
	}
	var dbgPatterns []string
	for _, m := range order {
		p, ok := paths[m]
		if !ok {
			return nil, fmt.Errorf("kernel %s has no module %s", release, m)
		}
		b, err := readModule(filepath.Join(modRoot, p))
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(k.Modules, m+".ko"), b, 0o644); err != nil {
			return nil, err
		}
		// The -dbg package's objects are never compressed.
		p = trimCompression(p)
		paths[m] = p
		dbgPatterns = append(dbgPatterns, "./usr/lib/debug/lib/modules/"+release+"/"+p)
	}
	for _, f := range []string{"vmlinuz", "System.map", "config"} {
		if err := os.Rename(filepath.Join(tmp, "boot", f+"-"+release), filepath.Join(k.Dir, f)); err != nil {
			return nil, err
		}
	}
	l.logf("unpacking the debug vmlinux and %d debug modules from %s", len(order), filepath.Base(dbg))
	dtmp := filepath.Join(k.Dir, "unpack-dbg")
	os.RemoveAll(dtmp)
	pats := append([]string{"./usr/lib/debug/boot/vmlinux-" + release}, dbgPatterns...)
	if err := extract(dbg, dtmp, pats...); err != nil {
		// Some packages keep the vmlinux under lib/modules instead.
		pats[0] = "./usr/lib/debug/lib/modules/" + release + "/vmlinux"
		if err2 := extract(dbg, dtmp, pats...); err2 != nil {
			return nil, fmt.Errorf("%v; %v", err, err2)
		}
	}
	vml := filepath.Join(dtmp, "usr/lib/debug/boot/vmlinux-"+release)
	if !exists(vml) {
		vml = filepath.Join(dtmp, "usr/lib/debug/lib/modules", release, "vmlinux")
	}
	if err := os.Rename(vml, filepath.Join(k.Dir, "vmlinux")); err != nil {
		return nil, err
	}
	dm := filepath.Join(k.Dir, "debug-modules")
	os.RemoveAll(dm)
	if err := os.MkdirAll(dm, 0o755); err != nil {
		return nil, err
	}
	for _, m := range order {
		src := filepath.Join(dtmp, "usr/lib/debug/lib/modules", release, paths[m])
		if err := os.Rename(src, filepath.Join(dm, m+".ko")); err != nil {
			return nil, err
		}
	}
	os.RemoveAll(tmp)
	os.RemoveAll(dtmp)
	id, err := buildID(filepath.Join(k.Dir, "vmlinux"))
	if err != nil {
		return nil, err
	}
	k.BuildID = id
	if err := l.realSystemMap(k); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(done, []byte(id+"\n"), 0o644); err != nil {
		return nil, err
	}
	return k, nil
}

// realSystemMap replaces the image package's System.map, a one-line
// placeholder ("The real System.map is in the linux-image-<version>-dbg
// package"), with the -dbg package's.
func (l *Lab) realSystemMap(k *Kernel) error {
	p := filepath.Join(k.Dir, "System.map")
	if st, err := os.Stat(p); err == nil && st.Size() > 4096 {
		return nil
	}
	dbg, err := l.download(k.Package+"-dbg", k.PackageVersion)
	if err != nil {
		return err
	}
	tmp := filepath.Join(k.Dir, "unpack-map")
	defer os.RemoveAll(tmp)
	if err := extract(dbg, tmp, "./usr/lib/debug/boot/System.map-"+k.Release); err != nil {
		return err
	}
	return os.Rename(filepath.Join(tmp, "usr/lib/debug/boot/System.map-"+k.Release), p)
}

// moduleCompression maps a compressed module's suffix to the command that
// decompresses it to stdout (CONFIG_MODULE_COMPRESS_*: 6.1's cloud kernel
// ships plain .ko files, 6.12's .ko.xz).
var moduleCompression = map[string][]string{
	".ko.xz":  {"xz", "-dc"},
	".ko.zst": {"zstd", "-dcq"},
	".ko.gz":  {"gzip", "-dc"},
}

func trimCompression(p string) string {
	for suf := range moduleCompression {
		if strings.HasSuffix(p, suf) {
			return strings.TrimSuffix(p, suf) + ".ko"
		}
	}
	return p
}

// readModule reads a module's ELF object, decompressed: busybox's insmod
// loads plain objects only.
func readModule(path string) ([]byte, error) {
	for suf, argv := range moduleCompression {
		if strings.HasSuffix(path, suf) {
			ctx, cancel := timeoutCtx(time.Minute)
			defer cancel()
			return command(ctx, "", argv[0], append(argv[1:], path)...)
		}
	}
	return os.ReadFile(path)
}

// moduleIndex maps module names to their paths under a modules directory;
// modules built into the kernel (modules.builtin) map to "".
func moduleIndex(root string) (map[string]string, error) {
	idx := map[string]string{}
	if b, err := os.ReadFile(filepath.Join(root, "modules.builtin")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if line = strings.TrimSpace(line); line != "" {
				name := strings.TrimSuffix(filepath.Base(line), ".ko")
				idx[strings.ReplaceAll(name, "-", "_")] = ""
			}
		}
	}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if trimCompression(p) != p || strings.HasSuffix(p, ".ko") {
			name := strings.TrimSuffix(filepath.Base(trimCompression(p)), ".ko")
			r, _ := filepath.Rel(root, p)
			idx[strings.ReplaceAll(name, "-", "_")] = r
		}
		return nil
	})
	return idx, err
}

// modinfo returns a module's .modinfo key=value pairs.
func modinfo(path string) (map[string]string, error) {
	b, err := readModule(path)
	if err != nil {
		return nil, err
	}
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer f.Close()
	s := f.Section(".modinfo")
	if s == nil {
		return nil, fmt.Errorf("%s: no .modinfo section", path)
	}
	b, err = s.Data()
	if err != nil {
		return nil, err
	}
	info := map[string]string{}
	for _, kv := range bytes.Split(b, []byte{0}) {
		if k, v, ok := strings.Cut(string(kv), "="); ok {
			info[k] = v
		}
	}
	return info, nil
}

// loadOrder returns the wanted modules and everything they depend on
// (each module's depends= in .modinfo), dependencies first.
func loadOrder(root string, paths map[string]string, want []string) ([]string, error) {
	var order []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(m, from string) error
	visit = func(m, from string) error {
		switch state[m] {
		case 1:
			return fmt.Errorf("module dependency cycle at %s", m)
		case 2:
			return nil
		}
		p, ok := paths[m]
		if !ok {
			return fmt.Errorf("module %s (needed by %s) is not in the kernel package", m, from)
		}
		if p == "" {
			state[m] = 2 // built into the kernel
			return nil
		}
		state[m] = 1
		info, err := modinfo(filepath.Join(root, p))
		if err != nil {
			return err
		}
		for _, d := range strings.Split(info["depends"], ",") {
			if d != "" {
				if err := visit(d, m); err != nil {
					return err
				}
			}
		}
		state[m] = 2
		order = append(order, m)
		return nil
	}
	for _, m := range want {
		if err := visit(m, "the lab guest"); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// buildID reads the GNU build ID note of an ELF file.
func buildID(path string) (string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if id := debuginfo.BuildID(f); id != "" {
		return id, nil
	}
	return "", fmt.Errorf("%s: no GNU build ID note", path)
}

// readLines reads a file's non-empty lines.
func readLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if s := strings.TrimSpace(sc.Text()); s != "" {
			out = append(out, s)
		}
	}
	return out, sc.Err()
}

// FetchDebugVmlinux resolves a kernel and unpacks only the debug vmlinux of
// its -dbg package: the wrong vmlinux of the mismatch tests. A kernel the
// lab also crashes shares the directory (and the vmlinux) with FetchKernel.
func (l *Lab) FetchDebugVmlinux(spec KernelSpec) (*Kernel, error) {
	pkg, version, err := resolve(spec)
	if err != nil {
		return nil, err
	}
	pkg = strings.TrimSuffix(pkg, "-unsigned")
	if !strings.HasSuffix(pkg, "-dbg") {
		pkg += "-dbg"
	}
	release := strings.TrimSuffix(strings.TrimPrefix(pkg, "linux-image-"), "-dbg")
	k := &Kernel{Dir: filepath.Join(l.Cache, "kernels", release), Spec: spec}
	k.Name, k.Release, k.Package, k.PackageVersion, k.Role = spec.Name, release, pkg, version, "mismatch"
	vml := filepath.Join(k.Dir, "vmlinux")
	k.DebugVmlinux, _ = filepath.Rel(l.Cache, vml)
	done := filepath.Join(k.Dir, ".complete")
	if b, err := os.ReadFile(done); err == nil {
		k.BuildID = strings.TrimSpace(string(b))
		return k, nil
	}
	deb, err := l.download(pkg, version)
	if err != nil {
		return nil, err
	}
	tmp := filepath.Join(k.Dir, "unpack-dbg")
	os.RemoveAll(tmp)
	defer os.RemoveAll(tmp)
	if err := extract(deb, tmp, "./usr/lib/debug/boot/vmlinux-"+release); err != nil {
		return nil, err
	}
	if err := os.Rename(filepath.Join(tmp, "usr/lib/debug/boot/vmlinux-"+release), vml); err != nil {
		return nil, err
	}
	if k.BuildID, err = buildID(vml); err != nil {
		return nil, err
	}
	return k, writeFileAtomic(done, []byte(k.BuildID+"\n"), 0o644)
}
