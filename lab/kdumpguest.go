package lab

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"salvage/capture/cpio"
	"salvage/lab/corpus"
)

// kdumpInitSrc is the kdump guest's /init (guest/kdumpinit): it loads the
// disk's drivers, runs `salvage kdump load` and crashes as e2e.scenario=
// says.
//
//go:embed guest/kdumpinit/main.go
var kdumpInitSrc []byte

// KdumpGuest is the lab's kernel booted as a production machine armed by
// salvage alone — no kexec-tools, makedumpfile, busybox or shell: its
// initramfs holds salvage, the kdump guest's /init, the kernel image and
// config, and the modules the lab has, indexed by depmod as Debian's
// package would be. salvage kdump load builds the capture initramfs in the
// guest; the capture kernel runs salvage as PID 1.
type KdumpGuest struct {
	Assets  *E2EAssets
	Dir     string            // where images are written
	Salvage string            // the static salvage binary put in the guest
	Init    []byte            // guest/kdumpinit, built
	Modules map[string][]byte // /lib/modules/RELEASE/… files, modules.dep included
	Order   []string          // module paths to load, relative to the tree
	Config  []byte            // the kernel's config (the initramfs codec comes from it)
}

// NewKdumpGuest prepares a kdump guest of m's crashed kernel in dir with
// the static salvage binary at salvage.
func (l *Lab) NewKdumpGuest(m *corpus.Manifest, dir, salvage string) (*KdumpGuest, error) {
	a, err := FindE2EAssets(m)
	if err != nil {
		return nil, err
	}
	g := &KdumpGuest{Assets: a, Dir: dir, Salvage: salvage, Modules: map[string][]byte{}}
	initBin, err := l.buildKdumpInit()
	if err != nil {
		return nil, err
	}
	if g.Init, err = os.ReadFile(initBin); err != nil {
		return nil, err
	}
	if g.Config, err = os.ReadFile(filepath.Join(filepath.Dir(a.Vmlinuz), "config")); err != nil {
		return nil, fmt.Errorf("lab kernel %s: %w", a.Release, err)
	}
	// The guest's module tree, laid out as Debian's package lays it out,
	// indexed by the host's depmod (kmod) as the package's postinst does.
	where := map[string]string{"virtio_blk": "kernel/drivers/block", "qemu_fw_cfg": "kernel/drivers/firmware"}
	// The staging tree stays in dir/stage: tests add modules to it and
	// index it again.
	stage := filepath.Join(dir, "stage")
	tree := filepath.Join(stage, "lib/modules", a.Release)
	put := func(src, rel string) error {
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		os.MkdirAll(filepath.Join(tree, filepath.Dir(rel)), 0o755)
		return os.WriteFile(filepath.Join(tree, rel), b, 0o644)
	}
	for _, ko := range a.Modules {
		name := strings.TrimSuffix(filepath.Base(ko), ".ko")
		d := where[name]
		if d == "" {
			d = "kernel/drivers/virtio"
		}
		rel := d + "/" + name + ".ko"
		if err := put(ko, rel); err != nil {
			return nil, err
		}
		g.Order = append(g.Order, rel)
	}
	if err := put(a.SalvageLab, "extra/salvage_lab.ko"); err != nil {
		return nil, err
	}
	g.Order = append(g.Order, "extra/salvage_lab.ko")
	if out, err := exec.Command("depmod", "-b", stage, a.Release).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("depmod -b %s %s: %v: %s", stage, a.Release, err, bytes.TrimSpace(out))
	}
	err = filepath.Walk(tree, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(tree, p)
		if strings.HasSuffix(rel, ".bin") {
			return nil // depmod's binary indexes: salvage reads the text ones
		}
		b, err := os.ReadFile(p)
		g.Modules[rel] = b
		return err
	})
	return g, err
}

// buildKdumpInit compiles guest/kdumpinit, static, into the cache.
func (l *Lab) buildKdumpInit() (string, error) {
	sum := sha256.Sum256(kdumpInitSrc)
	out := filepath.Join(l.Cache, "guest", "kdumpinit-"+hex.EncodeToString(sum[:6]))
	if exists(out) {
		return out, nil
	}
	src, err := os.MkdirTemp("", "salvage-lab-kdumpinit")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(src)
	os.WriteFile(filepath.Join(src, "go.mod"), []byte("module kdumpinit\n\ngo 1.21\n"), 0o644)
	os.WriteFile(filepath.Join(src, "main.go"), kdumpInitSrc, 0o644)
	os.MkdirAll(filepath.Dir(out), 0o755)
	ctx, cancel := timeoutCtx(5 * time.Minute)
	defer cancel()
	if _, err := commandEnv(ctx, src, []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64"}, "go", "build", "-trimpath", "-o", out+".tmp", "."); err != nil {
		return "", err
	}
	return out, os.Rename(out+".tmp", out)
}

// ProdImage writes the production initramfs name (in Dir) with kdump.conf,
// /etc/default/kdump-tools (USE_KDUMP=1 and kdumpTools) and, when mount is
// "DEVICE DIR FSTYPE", a filesystem the machine mounts at boot.
func (g *KdumpGuest) ProdImage(name, kdumpConf, kdumpTools, mount string) (string, error) {
	a := cpio.New()
	for _, d := range []string{"proc", "sys", "dev", "tmp", "var/lib/salvage", "etc/e2e"} {
		a.Dir(d, 0o755)
	}
	if mount != "" {
		a.File("etc/e2e/mount", 0o644, []byte(mount+"\n"))
	}
	a.CharDev("dev/console", 0o600, 5, 1)
	a.File("init", 0o755, g.Init)
	sb, err := os.ReadFile(g.Salvage)
	if err != nil {
		return "", err
	}
	a.File("bin/salvage", 0o755, sb)
	kb, err := os.ReadFile(g.Assets.Vmlinuz)
	if err != nil {
		return "", err
	}
	a.File("boot/vmlinuz-"+g.Assets.Release, 0o644, kb)
	a.File("boot/config-"+g.Assets.Release, 0o644, g.Config)
	rels := make([]string, 0, len(g.Modules))
	for rel := range g.Modules {
		rels = append(rels, rel)
	}
	sort.Strings(rels)
	for _, rel := range rels {
		a.File("lib/modules/"+g.Assets.Release+"/"+rel, 0o644, g.Modules[rel])
	}
	a.File("etc/e2e/load-order", 0o644, []byte(strings.Join(g.Order, "\n")+"\n"))
	a.File("etc/salvage/kdump.conf", 0o644, []byte(kdumpConf))
	a.File("etc/default/kdump-tools", 0o644, []byte("USE_KDUMP=1\n"+kdumpTools))
	var buf bytes.Buffer
	if _, err := a.WriteTo(&buf); err != nil {
		return "", err
	}
	p := filepath.Join(g.Dir, name)
	return p, os.WriteFile(p, buf.Bytes(), 0o600)
}

// Boot runs the guest with initrd and disk (a raw image on virtio) to its
// end — the capture kernel powers it off — and returns its console. Each
// line also goes to echo when it is not nil. extra are more QEMU
// arguments.
func (g *KdumpGuest) Boot(ctx context.Context, initrd, disk, scenario string, echo io.Writer, extra ...string) ([]string, error) {
	args := []string{"-accel", "tcg", "-m", "1024", "-smp", "2", "-nographic", "-no-reboot",
		"-kernel", g.Assets.Vmlinuz, "-initrd", initrd, "-drive", "file=" + disk + ",format=raw,if=virtio",
		"-append", "console=ttyS0 panic=-1 crashkernel=256M e2e.scenario=" + scenario}
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", append(args, extra...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	var console []string
	sc := bufio.NewScanner(out)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		l := strings.TrimRight(sc.Text(), "\r")
		console = append(console, l)
		if echo != nil {
			fmt.Fprintln(echo, l)
		}
	}
	if err := cmd.Wait(); err != nil && ctx.Err() != nil {
		return console, fmt.Errorf("the kdump guest did not finish: %w", ctx.Err())
	}
	return console, nil
}

// MkfsExt4 makes disk a 256 MiB ext4 image with label and uuid.
func MkfsExt4(disk, label, uuid string) error {
	if err := os.WriteFile(disk, nil, 0o600); err != nil {
		return err
	}
	if err := os.Truncate(disk, 256<<20); err != nil {
		return err
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-L", label, "-U", uuid, disk).CombinedOutput(); err != nil {
		return fmt.Errorf("mkfs.ext4 %s: %v: %s", disk, err, bytes.TrimSpace(out))
	}
	return nil
}

// DiskEntry is one entry of a directory on an ext4 image.
type DiskEntry struct {
	Name string
	Mode uint32
	Size int64
}

var debugfsLs = regexp.MustCompile(`^\s*\d+\s+([0-7]+)\s+\(\d+\)\s+\d+\s+\d+\s+(\d+)\s+\S+\s+\S+\s+(\S+)\s*$`)

// ListDisk lists dir on the ext4 image disk without mounting it
// (debugfs), sorted by name; a missing dir is empty.
func ListDisk(disk, dir string) ([]DiskEntry, error) {
	out, err := exec.Command("debugfs", "-R", "ls -l "+dir, disk).CombinedOutput()
	if strings.Contains(string(out), "File not found by ext2_lookup") {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("debugfs ls %s on %s: %v: %s", dir, disk, err, bytes.TrimSpace(out))
	}
	var ents []DiskEntry
	for _, l := range strings.Split(string(out), "\n") {
		if m := debugfsLs.FindStringSubmatch(l); m != nil && m[3] != "." && m[3] != ".." {
			var e DiskEntry
			fmt.Sscanf(m[1], "%o", &e.Mode)
			fmt.Sscan(m[2], &e.Size)
			e.Name = m[3]
			ents = append(ents, e)
		}
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name < ents[j].Name })
	return ents, nil
}

// ReadDisk copies file from the ext4 image disk to out (debugfs).
func ReadDisk(disk, file, out string) error {
	if b, err := exec.Command("debugfs", "-R", "dump "+file+" "+out, disk).CombinedOutput(); err != nil {
		return fmt.Errorf("debugfs dump %s from %s: %v: %s", file, disk, err, bytes.TrimSpace(b))
	}
	if _, err := os.Stat(out); err != nil {
		return fmt.Errorf("debugfs dump %s from %s: nothing written", file, disk)
	}
	return os.Chmod(out, 0o600)
}
