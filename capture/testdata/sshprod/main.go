// Command sshprod is /init of the production guest of TestE2ESSH: it
// boots as a machine whose dumps go to an ssh target does — loads its disk
// and network drivers, configures eth0 statically on QEMU's user network
// (10.0.2.15/24; the host's loopback is 10.0.2.2), runs `salvage kdump
// load` (which records the network, the key and the known host key into
// the capture initramfs), checks `salvage kdump status`, and crashes with
// `salvage kdump test --yes-i-want-to-crash`. Each step prints an "E2E:"
// line. With e2e.net=dhcp on the command line it leaves a DHCP lease file
// for eth0, as systemd-networkd would, so the capture kernel uses DHCP.
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
	// e2e.net=dhcp: leave the lease file systemd-networkd would, so that
	// salvage records eth0 as DHCP-configured and the capture kernel asks
	// QEMU's DHCP server for its address.
	cmdline, _ := os.ReadFile("/proc/cmdline")
	if strings.Contains(string(cmdline), "e2e.net=dhcp") {
		idx, _ := os.ReadFile("/sys/class/net/eth0/ifindex")
		os.MkdirAll("/run/systemd/netif/leases", 0o755)
		lease := "# This is private data. Do not parse.\nADDRESS=10.0.2.15\nNETMASK=255.255.255.0\nROUTER=10.0.2.2\n"
		if err := os.WriteFile("/run/systemd/netif/leases/"+strings.TrimSpace(string(idx)), []byte(lease), 0o644); err != nil {
			say("lease: %v", err)
			return
		}
		say("net: eth0 marked as DHCP-configured")
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
