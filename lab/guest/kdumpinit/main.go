// Command kdumpinit is /init of the lab's kdump guest: the production
// machine of capture's kdump cycles (TestE2E*) and of `salvage lab demo`. It does what a machine's boot does with salvage and
// nothing else: loads the drivers of its disk, runs `salvage kdump load`
// (which builds the capture initramfs from this guest's /lib/modules and
// live sysfs, then loads it with kexec_file_load), checks `salvage kdump
// status`, and crashes the way e2e.scenario= on the command line says:
// sysrq (`salvage kdump test --yes-i-want-to-crash`), oops or hung (the
// lab's salvage_lab module). Each step prints an "E2E:" line.
package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

// It is built from the lab's embedded source with the standard library
// alone, so raw system calls stand in for golang.org/x/sys/unix.
const (
	tcsbrk         = 0x5409 // TCSBRK on x86
	sysFinitModule = 313    // finit_module on x86_64
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

func drain() {
	// TCSBRK with a non-zero argument is tcdrain: let the report reach
	// the serial port before a panic cuts it off.
	syscall.Syscall(syscall.SYS_IOCTL, os.Stdout.Fd(), tcsbrk, 1)
	time.Sleep(200 * time.Millisecond)
}

func run() {
	cmdline, _ := os.ReadFile("/proc/cmdline")
	scenario := ""
	for _, f := range strings.Fields(string(cmdline)) {
		if v, ok := strings.CutPrefix(f, "e2e.scenario="); ok {
			scenario = v
		}
	}
	rel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	release := strings.TrimSpace(string(rel))
	order, err := os.ReadFile("/etc/e2e/load-order")
	if err != nil {
		say("no load order: %v", err)
		return
	}
	for _, m := range strings.Fields(string(order)) {
		if err := loadModule(filepath.Join("/lib/modules", release, m)); err != nil {
			say("insmod %s: %v", m, err)
		}
	}
	for i := 0; i < 100; i++ {
		if _, err := os.Stat("/dev/vda"); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	// /etc/e2e/mount: "DEVICE DIR FSTYPE", a filesystem of the machine
	// (a local dump path on its own disk).
	if b, err := os.ReadFile("/etc/e2e/mount"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 3 {
			os.MkdirAll(f[1], 0o755)
			if err := syscall.Mount(f[0], f[1], f[2], 0, ""); err != nil {
				say("mount %s on %s: %v", f[0], f[1], err)
				return
			}
			say("mounted %s on %s", f[0], f[1])
		}
	}
	start := time.Now()
	if !salvage("load", "kdump", "load") {
		return
	}
	say("load took %.1fs", time.Since(start).Seconds())
	if !salvage("show", "kdump", "show") {
		return
	}
	switch scenario {
	case "sysrq":
		drain()
		salvage("test", "kdump", "test", "--yes-i-want-to-crash")
	case "oops":
		write("/proc/sys/kernel/panic_on_oops", "1")
		drain()
		write("/proc/salvage_lab", "oops")
	case "hung":
		write("/proc/sys/kernel/hung_task_panic", "1")
		write("/proc/sys/kernel/hung_task_timeout_secs", "5")
		write("/proc/sys/kernel/hung_task_check_interval_secs", "2")
		drain()
		go write("/proc/salvage_lab", "hang")
		time.Sleep(5 * time.Minute)
	default:
		say("unknown scenario %q", scenario)
		return
	}
	say("still alive after %s", scenario)
}

func loadModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	params := []byte{0}
	_, _, e := syscall.Syscall(sysFinitModule, f.Fd(), uintptr(unsafe.Pointer(&params[0])), 0)
	if e != 0 && e != syscall.EEXIST {
		return e
	}
	return nil
}

func write(name, val string) {
	if err := os.WriteFile(name, []byte(val), 0); err != nil {
		say("write %s: %v", name, err)
	}
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
