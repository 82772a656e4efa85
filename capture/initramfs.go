package capture

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/klauspost/compress/zstd"

	"salvage/capture/cpio"
)

// InitramfsOptions say what capture initramfs to build.
type InitramfsOptions struct {
	// Root is the machine's root (--root): /proc, /sys, /etc, /lib/modules
	// and the binaries of extra_bins are read under it.
	Root string
	// Release is the capture kernel's release (default: the running one).
	Release string
	// ModulesDir is its module tree (default ROOT/lib/modules/RELEASE).
	ModulesDir string
	// Salvage is the binary that becomes /init (the running salvage).
	Salvage string
	// Output is the image file (default ROOT/var/lib/salvage/initrd.img-RELEASE).
	Output string
	Check  CollectorCheck
	// Config is the kdump.conf to bake in ("" for ROOT/etc/salvage/kdump.conf).
	Config string
	// Force rebuilds even when the image is up to date.
	Force bool
}

// InitramfsResult says what BuildInitramfs made, or found up to date.
type InitramfsResult struct {
	Output      string         `json:"output"`
	Key         string         `json:"key"`
	UpToDate    bool           `json:"up_to_date"`
	Size        int64          `json:"size"`
	Unpacked    int64          `json:"unpacked_size"`
	Compression string         `json:"compression"`
	Modules     []Module       `json:"modules"`
	Files       []string       `json:"files"`
	Config      *CaptureConfig `json:"config"`
	Warnings    []string       `json:"warnings,omitempty"`
}

// InitrdPath is the default capture initramfs of a release, like
// kdump-tools' /var/lib/kdump/initrd.img-RELEASE.
func InitrdPath(release string) string { return InitrdDir + "/initrd.img-" + release }

// KeySuffix names the file beside an image that holds the key of its
// inputs.
const KeySuffix = ".key"

// imageFile is one file of the image.
type imageFile struct {
	name string // path in the image, no leading slash
	perm uint32
	data []byte
	link string // a symbolic link to this target instead of data
}

// initramfsPlan is everything that goes into the image, before packing.
type initramfsPlan struct {
	conf     *CaptureConfig
	files    []imageFile
	modules  []Module
	codec    string
	warnings []string
}

// ReadRelease is the running kernel's release, under root.
func ReadRelease(root string) (string, error) {
	b, err := os.ReadFile(filepath.Join(root, "proc/sys/kernel/osrelease"))
	if err != nil {
		return "", fmt.Errorf("the running kernel's release: %w (give --kernel-release)", err)
	}
	return strings.TrimSpace(string(b)), nil
}

func (o *InitramfsOptions) defaults() error {
	if o.Root == "" {
		o.Root = "/"
	}
	if o.Release == "" {
		r, err := ReadRelease(o.Root)
		if err != nil {
			return err
		}
		o.Release = r
	}
	if o.ModulesDir == "" {
		o.ModulesDir = filepath.Join(o.Root, "lib/modules", o.Release)
	}
	if o.Output == "" {
		o.Output = filepath.Join(o.Root, InitrdPath(o.Release))
	}
	if o.Salvage == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("finding the salvage binary: %w", err)
		}
		o.Salvage = exe
	}
	return nil
}

// InitramfsKey computes the key of the image o would build, and whether
// the image at o.Output carries it.
func InitramfsKey(o InitramfsOptions) (key string, upToDate bool, err error) {
	if err := o.defaults(); err != nil {
		return "", false, err
	}
	p, err := planInitramfs(o)
	if err != nil {
		return "", false, err
	}
	key = p.conf.Key
	old, _ := os.ReadFile(o.Output + KeySuffix)
	_, serr := os.Stat(o.Output)
	return key, serr == nil && strings.TrimSpace(string(old)) == key, nil
}

// BuildInitramfs builds the capture initramfs: salvage itself as /init
// (static, so no libraries), the configuration (the files as written,
// and CaptureConfig resolved), the kernel modules the target needs with
// their dependencies, extra_bins, kdump_pre and kdump_post with their
// interpreters and libraries. Nothing is executed to build it: modules and
// binaries are read as ELF files. The image is rebuilt only when the key
// of its inputs (those files, the configuration, and the capture kernel's
// image, KDUMP_KERNEL or /boot/vmlinuz-RELEASE) changed (or on Force, or kdump.conf's force_rebuild); it
// is written atomically, mode 0600, with the key beside it in
// OUTPUT.key.
func BuildInitramfs(o InitramfsOptions) (*InitramfsResult, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	p, err := planInitramfs(o)
	if err != nil {
		return nil, err
	}
	r := &InitramfsResult{Output: o.Output, Key: p.conf.Key, Compression: p.codec, Modules: p.modules, Config: p.conf, Warnings: p.warnings}
	for _, f := range p.files {
		r.Files = append(r.Files, "/"+f.name)
		r.Unpacked += int64(len(f.data))
	}
	old, _ := os.ReadFile(o.Output + KeySuffix)
	st, serr := os.Stat(o.Output)
	if serr == nil && !o.Force {
		set, err := LoadSettingsConf(o.Root, o.Config, o.Check)
		if err != nil {
			return nil, err
		}
		fresh := strings.TrimSpace(string(old)) == r.Key && !set.Conf.ForceRebuild
		if fresh || set.Conf.ForceNoRebuild {
			if !fresh {
				r.Warnings = append(r.Warnings, "the image is stale but kdump.conf has force_no_rebuild 1: kept")
			}
			r.UpToDate, r.Size = true, st.Size()
			return r, nil
		}
	}
	a := cpio.New()
	for _, d := range []string{"proc", "sys", "dev", "tmp", "mnt", "sysroot", "run", "etc/salvage"} {
		a.Dir(d, 0o755)
	}
	a.CharDev("dev/console", 0o600, 5, 1)
	a.CharDev("dev/kmsg", 0o644, 1, 11)
	for _, f := range p.files {
		if f.link != "" {
			a.Symlink(f.name, f.link)
			continue
		}
		a.File(f.name, f.perm, f.data)
	}
	var raw bytes.Buffer
	if _, err := a.WriteTo(&raw); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	switch p.codec {
	case "zstd":
		zw, err := zstd.NewWriter(&out, zstd.WithEncoderLevel(zstd.SpeedBetterCompression))
		if err != nil {
			return nil, err
		}
		zw.Write(raw.Bytes())
		if err := zw.Close(); err != nil {
			return nil, err
		}
	default:
		gw, _ := gzip.NewWriterLevel(&out, gzip.BestCompression)
		gw.Write(raw.Bytes())
		if err := gw.Close(); err != nil {
			return nil, err
		}
	}
	if err := WriteFileAtomic(o.Output, out.Bytes(), 0o600); err != nil {
		return nil, fmt.Errorf("writing %s: %w", o.Output, err)
	}
	if err := WriteFileAtomic(o.Output+KeySuffix, []byte(r.Key+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("writing %s: %w", o.Output+KeySuffix, err)
	}
	r.Size = int64(out.Len())
	return r, nil
}

// planInitramfs resolves the configuration and gathers the image's files.
func planInitramfs(o InitramfsOptions) (*initramfsPlan, error) {
	set, err := LoadSettingsConf(o.Root, o.Config, o.Check)
	if err != nil {
		return nil, err
	}
	if len(set.Errors) > 0 {
		return nil, fmt.Errorf("the configuration has mistakes: %s", strings.Join(set.Errors, "; "))
	}
	conf := set.Conf
	c := &CaptureConfig{Release: o.Release, Target: conf.Target, Path: set.CoreDir, Collector: set.Collector,
		NumDumps: set.Tools.NumDumps, DumpDmesg: set.Tools.DumpDmesg, FailureAction: conf.FailureAction,
		FinalAction: conf.FinalAction, KdumpPre: conf.KdumpPre, KdumpPost: conf.KdumpPost, DeviceTimeout: DefaultDeviceTimeout}
	p := &initramfsPlan{conf: c, codec: initrdCodec(o.Root, o.Release), warnings: set.Warnings}
	c.Target.Line = 0

	tree, err := OpenModuleTree(o.ModulesDir)
	if err != nil {
		return nil, err
	}
	var names []string
	addDevice := func(spec, what string) error {
		dev, err := FindDevice(o.Root, spec)
		if err != nil {
			return fmt.Errorf("%s: %w (the device must be present to find its drivers)", what, err)
		}
		mods, builtin, err := DeviceDrivers(o.Root, strings.TrimPrefix(dev, "/dev/"))
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		names = append(names, mods...)
		for _, b := range builtin {
			// Built into the running kernel, a module of the capture
			// kernel's release: include it.
			if tree.Has(b) {
				names = append(names, b)
			}
		}
		return nil
	}
	addFS := func(fstype string) error {
		switch {
		case tree.Has(fstype):
			names = append(names, fstype)
		case tree.Alias("fs-"+fstype) != "" && tree.Has(tree.Alias("fs-"+fstype)):
			names = append(names, tree.Alias("fs-"+fstype))
		case tree.Builtin(fstype) || kernelHasFS(o.Root, fstype):
		default:
			return fmt.Errorf("filesystem %s: no module %s in %s, and the running kernel does not have it built in", fstype, fstype, tree.Dir)
		}
		return nil
	}
	local, lerr := FindLocalFS(o.Root, c.Path)
	c.Local = local
	var remote map[string][]byte
	switch c.Target.Kind {
	case "fs":
		if err := addDevice(c.Target.Device, "target "+c.Target.String()); err != nil {
			return nil, err
		}
		if err := addFS(c.Target.FSType); err != nil {
			return nil, err
		}
	case "raw":
		if err := addDevice(c.Target.Device, "target "+c.Target.String()); err != nil {
			return nil, err
		}
	case "local":
		if lerr != nil {
			return nil, fmt.Errorf("local target %s: %w; give `<fstype> <device>` or raw in %s", c.Path, lerr, ConfPath)
		}
		if err := addDevice(local.Device, "local target "+c.Path); err != nil {
			return nil, err
		}
		if err := addFS(local.FSType); err != nil {
			return nil, err
		}
	case "ssh", "nfs":
		files, mods, err := RemoteInitramfsFiles(o.Root, conf)
		if err != nil {
			return nil, fmt.Errorf("%s target: %w", c.Target.Kind, err)
		}
		remote = files
		names = append(names, mods...)
	}
	if c.FailureAction == "dump_to_rootfs" && c.Target.Kind != "local" {
		if lerr != nil {
			return nil, fmt.Errorf("failure_action dump_to_rootfs: %s: %w", c.Path, lerr)
		}
		if err := addDevice(local.Device, "dump_to_rootfs "+c.Path); err != nil {
			return nil, err
		}
		if err := addFS(local.FSType); err != nil {
			return nil, err
		}
	}
	names = append(names, conf.ExtraModules...)
	mods, err := tree.Resolve(names)
	if err != nil {
		return nil, err
	}
	p.modules = mods

	h := sha256.New()
	exe, err := os.ReadFile(o.Salvage)
	if err != nil {
		return nil, fmt.Errorf("the salvage binary: %w", err)
	}
	add := func(name string, perm uint32, data []byte) {
		f := imageFile{name: strings.TrimPrefix(path.Clean("/"+name), "/"), perm: perm, data: data}
		if f.name != "init" && bytes.Equal(data, exe) {
			// salvage itself named by extra_bins or kdump_pre (salvage
			// run as a program): a link to /init, not a second copy.
			f.data, f.link = nil, "/init"
		}
		p.files = append(p.files, f)
	}
	if f, err := elf.NewFile(bytes.NewReader(exe)); err == nil {
		for _, ph := range f.Progs {
			if ph.Type == elf.PT_INTERP {
				return nil, fmt.Errorf("%s is dynamically linked: the capture initramfs needs a static salvage (CGO_ENABLED=0)", o.Salvage)
			}
		}
	}
	add("init", 0o755, exe)
	for _, cf := range []string{ConfPath, KdumpToolsPath} {
		from := filepath.Join(o.Root, cf)
		if cf == ConfPath && o.Config != "" {
			from = o.Config
		}
		if b, err := os.ReadFile(from); err == nil {
			add(cf, 0o644, b)
		}
	}
	for _, m := range mods {
		b, err := os.ReadFile(filepath.Join(tree.Dir, m.Path))
		if err != nil {
			return nil, err
		}
		add(path.Join("lib/modules", o.Release, m.Path), 0o644, b)
		c.Modules = append(c.Modules, m.Path)
	}
	bins := append([]string(nil), conf.ExtraBins...)
	for _, argv := range [][]string{conf.KdumpPre, conf.KdumpPost} {
		if len(argv) > 0 {
			bins = append(bins, argv[0])
		}
	}
	got := map[string]bool{}
	for _, b := range bins {
		if err := addProgram(o.Root, b, got, add); err != nil {
			return nil, err
		}
	}
	rnames := make([]string, 0, len(remote))
	for n := range remote {
		rnames = append(rnames, n)
	}
	sort.Strings(rnames)
	for _, n := range rnames {
		add(n, 0o600, remote[n])
	}
	sort.Slice(p.files, func(i, j int) bool { return p.files[i].name < p.files[j].name })
	fmt.Fprintf(h, "salvage capture initramfs 1\ncodec %s\n", p.codec)
	for _, f := range p.files {
		fmt.Fprintf(h, "%s %o %d %s\n", f.name, f.perm, len(f.data), f.link)
		h.Write(f.data)
	}
	// The capture kernel itself is not in the image, but an image is
	// made for one kernel build: a new kernel of the same release (a
	// package update) means a rebuild.
	kernel := set.Tools.Kernel
	if kernel == "" {
		kernel = "/boot/vmlinuz-" + o.Release
	}
	if kb, err := os.ReadFile(filepath.Join(o.Root, kernel)); err == nil {
		fmt.Fprintf(h, "kernel %s %x\n", kernel, sha256.Sum256(kb))
	}
	cj, _ := json.Marshal(c)
	h.Write(cj)
	c.Key = hex.EncodeToString(h.Sum(nil))[:32]
	cj, err = json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, err
	}
	add(CaptureConfigPath, 0o644, append(cj, '\n'))
	return p, nil
}

// initrdCodec is zstd when the kernel accepts it (CONFIG_RD_ZSTD in
// /boot/config-RELEASE, as Debian's initramfs-tools checks), else gzip,
// which every kernel with initramfs support reads.
func initrdCodec(root, release string) string {
	b, err := os.ReadFile(filepath.Join(root, "boot", "config-"+release))
	if err == nil && bytes.Contains(b, []byte("\nCONFIG_RD_ZSTD=y\n")) {
		return "zstd"
	}
	return "gzip"
}

// kernelHasFS says whether the running kernel (under root) lists fstype
// in /proc/filesystems.
func kernelHasFS(root, fstype string) bool {
	b, err := os.ReadFile(filepath.Join(root, "proc/filesystems"))
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 0 && f[len(f)-1] == fstype {
			return true
		}
	}
	return false
}

// FindLocalFS finds the filesystem that holds dir on the machine under
// root, from /proc/self/mountinfo: its device (as UUID= when the
// superblock has one, so that a renamed disk is still found), type and
// mount point.
func FindLocalFS(root, dir string) (*LocalFS, error) {
	f, err := os.Open(filepath.Join(root, "proc/self/mountinfo"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var best *LocalFS
	var bestSrc string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// proc(5): ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL…] - FSTYPE SOURCE SUPEROPTIONS
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, x := range fields {
			if x == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || sep+2 >= len(fields) {
			continue
		}
		mp := unescapeMount(fields[4])
		if !(dir == mp || mp == "/" || strings.HasPrefix(dir, mp+"/")) {
			continue
		}
		if best != nil && len(mp) < len(best.MountPoint) {
			continue
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(dir, mp), "/")
		best = &LocalFS{FSType: fields[sep+1], MountPoint: mp, Path: "/" + rel}
		bestSrc = unescapeMount(fields[sep+2])
	}
	if best == nil {
		return nil, errors.New("no mounted filesystem holds it")
	}
	if !fsTypes[best.FSType] || best.FSType == "virtiofs" || !strings.HasPrefix(bestSrc, "/dev/") {
		return nil, fmt.Errorf("it is on %s (%s), which the capture kernel cannot mount again", best.MountPoint, best.FSType)
	}
	best.Device = bestSrc
	if id, err := ReadFSIDFile(filepath.Join(root, bestSrc)); err == nil && id.UUID != "" && id.UUID != "00000000-0000-0000-0000-000000000000" {
		best.Device = "UUID=" + id.UUID
	}
	return best, nil
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a blank).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var c int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%o", &c); err == nil {
				b.WriteByte(byte(c))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// libDirs are where the dynamic loader looks for libraries on Debian
// (/etc/ld.so.conf.d/x86_64-linux-gnu.conf and the defaults).
var libDirs = []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib", "/usr/local/lib"}

// addProgram adds the program at name (a path on the machine) to the
// image, with what it needs to run: its ELF interpreter and the shared
// libraries of DT_NEEDED, found in the RUNPATH/RPATH and the loader's
// directories, recursively; a #! script's interpreter. Symbolic links are
// added as files of their target's contents at both names.
func addProgram(root, name string, got map[string]bool, add func(string, uint32, []byte)) error {
	if got[name] {
		return nil
	}
	got[name] = true
	full := filepath.Join(root, name)
	b, err := os.ReadFile(full)
	if err != nil {
		return fmt.Errorf("extra_bins/kdump_pre/kdump_post %s: %w", name, err)
	}
	st, err := os.Stat(full)
	if err != nil {
		return err
	}
	perm := uint32(st.Mode().Perm())
	if perm&0o111 == 0 && !strings.Contains(name, ".so") {
		return fmt.Errorf("%s is not executable", name)
	}
	add(name, perm, b)
	if bytes.HasPrefix(b, []byte("#!")) {
		line, _, _ := bytes.Cut(b[2:], []byte("\n"))
		f := strings.Fields(string(line))
		if len(f) == 0 {
			return fmt.Errorf("%s: an empty #! line", name)
		}
		return addProgram(root, f[0], got, add)
	}
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return nil // data (a key, a table): added as it is
	}
	defer f.Close()
	for _, ph := range f.Progs {
		if ph.Type == elf.PT_INTERP {
			ib := make([]byte, ph.Filesz)
			if _, err := ph.ReadAt(ib, 0); err != nil && err != io.EOF {
				return fmt.Errorf("%s: PT_INTERP: %w", name, err)
			}
			if err := addProgram(root, cString(ib), got, add); err != nil {
				return err
			}
		}
	}
	needed, _ := f.ImportedLibraries()
	dirs := append([]string(nil), libDirs...)
	for _, tag := range []elf.DynTag{elf.DT_RUNPATH, elf.DT_RPATH} {
		if rp, err := f.DynString(tag); err == nil {
			for _, s := range rp {
				for _, d := range strings.Split(s, ":") {
					if d != "" && !strings.Contains(d, "$") {
						dirs = append([]string{d}, dirs...)
					}
				}
			}
		}
	}
	for _, lib := range needed {
		found := ""
		for _, d := range dirs {
			if _, err := os.Stat(filepath.Join(root, d, lib)); err == nil {
				found = path.Join(d, lib)
				break
			}
		}
		if found == "" {
			return fmt.Errorf("%s needs %s, found in none of %s", name, lib, strings.Join(dirs, " "))
		}
		if err := addProgram(root, found, got, add); err != nil {
			return err
		}
	}
	return nil
}
