package lab

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"salvage/lab/corpus"
)

// DemoResult is where `salvage lab demo` left the dump it captured.
type DemoResult struct {
	Dump, Dmesg string        // the saved files, copied off the guest's disk
	OnDisk      string        // their directory on the guest's disk
	Took        time.Duration // boot, arm, crash, capture
}

// demoLines are the console lines the demo shows: the production
// machine's steps, the panic and salvage's steps in the capture kernel.
var demoLines = []string{"E2E: ", "salvage: ", "Kernel panic - not syncing", "sysrq: Trigger a crash", "Starting crashdump kernel", "Linux version"}

// KdumpDemo is `make demo`'s story: the lab's kernel boots under QEMU as
// a production machine armed by `salvage kdump load` alone (which builds
// the capture initramfs in the guest and loads it with kexec_file_load),
// crashes with `salvage kdump test`, and the capture kernel — salvage as
// PID 1 — saves the dump and its dmesg to the machine's ext4 disk under
// /var/crash/STAMP/. The files are then copied off the disk image into
// the cache's demo/ directory (0600). Progress goes to w.
func (l *Lab) KdumpDemo(ctx context.Context, m *corpus.Manifest, salvage string, w io.Writer) (*DemoResult, error) {
	dir := filepath.Join(l.Cache, "demo")
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	g, err := l.NewKdumpGuest(m, dir, salvage)
	if err != nil {
		return nil, err
	}
	disk := filepath.Join(dir, "disk.img")
	if err := MkfsExt4(disk, "crashdump", "5a1a6e00-de30-4c0d-9a11-0b5e2ed00001"); err != nil {
		return nil, err
	}
	conf := strings.Join([]string{
		"# /etc/salvage/kdump.conf of the demo machine",
		"ext4 LABEL=crashdump",
		"path /var/crash",
		"core_collector makedumpfile -l --message-level 7 -d 31",
		"final_action poweroff",
		"failure_action poweroff",
	}, "\n") + "\n"
	img, err := g.ProdImage("production.img", conf, "KDUMP_NUM_DUMPS=3\n", "")
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "demo: booting %s under QEMU (1 GiB, 2 CPUs, crashkernel=256M) with salvage as its only kdump tool; kdump.conf:\n", g.Assets.Release)
	for _, l := range strings.Split(strings.TrimSpace(conf), "\n") {
		fmt.Fprintf(w, "    %s\n", l)
	}
	start := time.Now()
	console, err := g.Boot(ctx, img, disk, "sysrq", lineFilter{w: w, keep: demoLines})
	res := &DemoResult{Took: time.Since(start)}
	if err != nil {
		return nil, err
	}
	all := strings.Join(console, "\n")
	if !strings.Contains(all, "salvage: dump saved") {
		return nil, fmt.Errorf("the capture kernel did not save the dump; console tail:\n%s", strings.Join(console[max(0, len(console)-25):], "\n"))
	}
	ents, err := ListDisk(disk, "/var/crash")
	if err != nil {
		return nil, err
	}
	stamp := ""
	for _, e := range ents {
		if e.Name != "lost+found" && e.Mode&0o040000 != 0 {
			stamp = e.Name
		}
	}
	if stamp == "" {
		return nil, fmt.Errorf("%s: no dump directory under /var/crash", disk)
	}
	res.OnDisk = path.Join("/var/crash", stamp)
	out := filepath.Join(dir, stamp)
	if err := os.MkdirAll(out, 0o700); err != nil {
		return nil, err
	}
	res.Dump, res.Dmesg = filepath.Join(out, "dump."+stamp), filepath.Join(out, "dmesg."+stamp)
	if err := ReadDisk(disk, path.Join(res.OnDisk, "dump."+stamp), res.Dump); err != nil {
		return nil, err
	}
	if err := ReadDisk(disk, path.Join(res.OnDisk, "dmesg."+stamp), res.Dmesg); err != nil {
		return nil, err
	}
	return res, nil
}

// lineFilter writes the lines holding one of keep, indented.
type lineFilter struct {
	w    io.Writer
	keep []string
}

func (f lineFilter) Write(p []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		for _, k := range f.keep {
			i := strings.Index(l, k)
			if i < 0 {
				continue
			}
			// From the kernel's time stamp before it, if any: the first
			// line follows the firmware's screen codes.
			if j := strings.LastIndex(l[:i], "["); j >= 0 && i-j < 20 {
				i = j
			}
			fmt.Fprintf(f.w, "  guest | %s\n", strings.TrimSpace(l[i:]))
			break
		}
	}
	return len(p), nil
}
