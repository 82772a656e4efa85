package lab

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"salvage/capture/cpio"
)

// buildModule compiles the salvage_lab module against the kernel's
// headers (Debian's linux-headers package, installed when missing).
func (l *Lab) buildModule(k *Kernel) (string, error) {
	out := filepath.Join(k.Dir, "salvage_lab-"+guestHash()[:12]+".ko")
	if exists(out) {
		return out, nil
	}
	build := filepath.Join("/lib/modules", k.Release, "build")
	if !exists(filepath.Join(build, "Makefile")) {
		l.logf("installing linux-headers-%s to build the lab's test module", k.Release)
		ctx, cancel := timeoutCtx(15 * time.Minute)
		_, err := command(ctx, "", "apt-get", "install", "-y", "-q", "linux-headers-"+k.Release)
		cancel()
		if err != nil {
			return "", fmt.Errorf("installing the kernel headers for the test module: %w", err)
		}
	}
	src, err := os.MkdirTemp("", "salvage-lab-module")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(src)
	for _, f := range []string{"salvage_lab.c", "Kbuild"} {
		if err := os.WriteFile(filepath.Join(src, f), guestFile("module/"+f), 0o644); err != nil {
			return "", err
		}
	}
	ctx, cancel := timeoutCtx(10 * time.Minute)
	defer cancel()
	if _, err := command(ctx, "", "make", "-C", build, "M="+src, "modules"); err != nil {
		return "", err
	}
	b, err := os.ReadFile(filepath.Join(src, "salvage_lab.ko"))
	if err != nil {
		return "", err
	}
	return out, writeFileAtomic(out, b, 0o644)
}

// buildWorkload compiles the guest workload program, static.
func (l *Lab) buildWorkload() (string, error) {
	out := filepath.Join(l.Cache, "guest", "workload-"+guestHash()[:12])
	if exists(out) {
		return out, nil
	}
	src, err := os.MkdirTemp("", "salvage-lab-workload")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(src)
	os.WriteFile(filepath.Join(src, "go.mod"), []byte("module workload\n\ngo 1.21\n"), 0o644)
	os.WriteFile(filepath.Join(src, "main.go"), guestFile("workload/main.go"), 0o644)
	os.MkdirAll(filepath.Dir(out), 0o755)
	ctx, cancel := timeoutCtx(5 * time.Minute)
	defer cancel()
	cmd := []string{"build", "-trimpath", "-o", out + ".tmp", "."}
	if _, err := commandEnv(ctx, src, []string{"CGO_ENABLED=0"}, "go", cmd...); err != nil {
		return "", err
	}
	return out, os.Rename(out+".tmp", out)
}

var lddRe = regexp.MustCompile(`(?m)(?:=>\s*)?(/\S+)\s+\(0x`)

// addBinary puts a dynamically linked host binary and every shared library
// it needs (as ldd resolves them) into the archive at the same paths.
func addBinary(a *cpio.Archive, path, as string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	a.File(as, 0o755, b)
	ctx, cancel := timeoutCtx(time.Minute)
	defer cancel()
	out, err := command(ctx, "", "ldd", path)
	if err != nil {
		if bytes.Contains(out, []byte("not a dynamic executable")) {
			return nil
		}
		return err
	}
	for _, m := range lddRe.FindAllSubmatch(out, -1) {
		lib := string(m[1])
		if a.Has(lib) {
			continue
		}
		data, err := os.ReadFile(lib) // follows the symlink to the real file
		if err != nil {
			return fmt.Errorf("library of %s: %w", path, err)
		}
		a.File(lib, 0o755, data)
	}
	return nil
}

// addBusybox installs busybox-static with a link for every applet.
func addBusybox(a *cpio.Archive) error {
	const bb = "/bin/busybox"
	b, err := os.ReadFile(bb)
	if err != nil {
		return fmt.Errorf("busybox-static: %w", err)
	}
	a.File("bin/busybox", 0o755, b)
	ctx, cancel := timeoutCtx(time.Minute)
	defer cancel()
	out, err := command(ctx, "", bb, "--list-full")
	if err != nil {
		return err
	}
	for _, p := range strings.Fields(string(out)) {
		if p != "bin/busybox" {
			rel, _ := filepath.Rel(filepath.Dir(p), "bin/busybox")
			a.Symlink(p, rel)
		}
	}
	return nil
}

// guestImages builds the capture initramfs and the production initramfs
// (which holds the kernel and the capture initramfs for kexec -p).
func (l *Lab) guestImages(k *Kernel, key string) (prod, capture string, err error) {
	dir := filepath.Join(l.Cache, "guest", k.Release, key[:16])
	prod, capture = filepath.Join(dir, "guest.img"), filepath.Join(dir, "capture.img")
	if exists(prod) && exists(capture) {
		return prod, capture, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	mod, err := l.buildModule(k)
	if err != nil {
		return "", "", err
	}
	work, err := l.buildWorkload()
	if err != nil {
		return "", "", err
	}
	base := func(extraModules ...string) (*cpio.Archive, error) {
		a := cpio.New()
		if err := addBusybox(a); err != nil {
			return nil, err
		}
		for _, d := range []string{"proc", "sys", "dev", "tmp", "mnt", "run"} {
			a.Dir(d, 0o755)
		}
		a.CharDev("dev/console", 0o600, 5, 1)
		a.File("init", 0o755, guestFile("init.sh"))
		order, err := readLines(filepath.Join(k.Modules, "load-order"))
		if err != nil {
			return nil, err
		}
		for _, m := range order {
			b, err := os.ReadFile(filepath.Join(k.Modules, m+".ko"))
			if err != nil {
				return nil, err
			}
			a.File("lib/modules/"+m+".ko", 0o644, b)
		}
		for _, m := range extraModules {
			b, err := os.ReadFile(m)
			if err != nil {
				return nil, err
			}
			name := "salvage_lab"
			a.File("lib/modules/"+name+".ko", 0o644, b)
			order = append(order, name)
		}
		a.File("lib/modules/load-order", 0o644, []byte(strings.Join(order, "\n")+"\n"))
		if err := addBinary(a, "/usr/bin/makedumpfile", "usr/bin/makedumpfile"); err != nil {
			return nil, err
		}
		return a, nil
	}
	ca, err := base()
	if err != nil {
		return "", "", err
	}
	var cbuf bytes.Buffer
	if _, err := ca.WriteTo(&cbuf); err != nil {
		return "", "", err
	}
	pa, err := base(mod)
	if err != nil {
		return "", "", err
	}
	if err := addBinary(pa, "/usr/sbin/kexec", "usr/sbin/kexec"); err != nil {
		return "", "", err
	}
	wb, err := os.ReadFile(work)
	if err != nil {
		return "", "", err
	}
	pa.File("bin/workload", 0o755, wb)
	vmlinuz, err := os.ReadFile(filepath.Join(k.Dir, "vmlinuz"))
	if err != nil {
		return "", "", err
	}
	pa.File("boot/vmlinuz", 0o644, vmlinuz)
	pa.File("boot/capture.img", 0o644, cbuf.Bytes())
	var pbuf bytes.Buffer
	if _, err := pa.WriteTo(&pbuf); err != nil {
		return "", "", err
	}
	if err := writeFileAtomic(capture, cbuf.Bytes(), 0o644); err != nil {
		return "", "", err
	}
	if err := writeFileAtomic(prod, pbuf.Bytes(), 0o644); err != nil {
		return "", "", err
	}
	l.logf("guest initramfs %s: %d MiB (capture %d MiB)", dir, pbuf.Len()>>20, cbuf.Len()>>20)
	return prod, capture, nil
}
