// Command sshprod is /init of the production guest of TestE2ESSH: it
// boots as a machine whose dumps go to an ssh target does — loads its disk
// and network drivers, configures eth0 statically on QEMU's user network
// (10.0.2.15/24; the host's loopback is 10.0.2.2), runs `salvage kdump
// load` (which records the network, the key and the known host key into
// the capture initramfs), checks `salvage kdump status`, and crashes with
// `salvage kdump test --yes-i-want-to-crash`. Each step prints an "E2E:"
// line.
package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"salvage/capture"
)

func say(format string, a ...any) { fmt.Printf("E2E: "+format+"\n", a...) }

func main() {
	for _, m := range []struct{ src, dir, fs string }{
		{"proc", "/proc", "proc"}, {"sysfs", "/sys", "sysfs"}, {"devtmpfs", "/dev", "devtmpfs"}, {"tmpfs", "/tmp", "tmpfs"},
	} {
		os.MkdirAll(m.dir, 0o755)
		syscall.Mount(m.src, m.dir, m.fs, 0, "")
	}
	run()
	drain()
	syscall.Sync()
	syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF)
}

// drain lets the console reach the serial port before a panic.
func drain() {
	unix.IoctlSetInt(int(os.Stdout.Fd()), unix.TCSBRK, 1)
	time.Sleep(200 * time.Millisecond)
}

func run() {
	rel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	release := strings.TrimSpace(string(rel))
	order, err := os.ReadFile("/etc/e2e/load-order")
	if err != nil {
		say("no load order: %v", err)
		return
	}
	for _, m := range strings.Fields(string(order)) {
		f, err := os.Open(filepath.Join("/lib/modules", release, m))
		if err != nil {
			say("insmod %s: %v", m, err)
			continue
		}
		if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil && err != unix.EEXIST {
			say("insmod %s: %v", m, err)
		}
		f.Close()
	}
	nc := &capture.NetConfig{TargetIP: "10.0.2.2", Interface: "eth0", Address: "10.0.2.15/24", Gateway: "10.0.2.2"}
	if err := capture.BringUp(context.Background(), nc, func(f string, a ...any) { say(f, a...) }); err != nil {
		say("network: %v", err)
		return
	}
	if !salvage("load", "kdump", "load") || !salvage("status", "kdump", "status") {
		return
	}
	drain()
	salvage("test", "kdump", "test", "--yes-i-want-to-crash")
	say("still alive after the crash")
}

// salvage runs /bin/salvage with args, printing its output as E2E lines.
func salvage(what string, args ...string) bool {
	cmd := exec.Command("/bin/salvage", args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		say("%s: %v", what, err)
		return false
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		say("%s: %v", what, err)
		return false
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		say("%s: %s", what, sc.Text())
	}
	if err := cmd.Wait(); err != nil {
		say("%s failed: %v", what, err)
		return false
	}
	return true
}
