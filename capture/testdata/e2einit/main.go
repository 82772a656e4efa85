// Command e2einit is /init of the guests of capture's end-to-end test
// (TestLoadAndCaptureLab). In the production kernel it arms kdump with
// the capture package (show, plan, kexec_file_load, status) and panics
// the machine through sysrq; in the capture kernel (where /proc/vmcore
// exists) it opens /proc/vmcore and runs the collector over it at -d 31,
// discarding the stream, then powers off. With e2e.force on the command
// line it calls kexec_file_load even when the plan is refused, to show the
// kernel's own error. Every step prints an "E2E:"
// line on the console for the test to read.
package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"salvage/capture"
	"salvage/collect"
	"salvage/dump"
)

func say(format string, a ...any) { fmt.Printf("E2E: "+format+"\n", a...) }

func main() {
	os.MkdirAll("/proc", 0o755)
	os.MkdirAll("/sys", 0o755)
	syscall.Mount("proc", "/proc", "proc", 0, "")
	syscall.Mount("sysfs", "/sys", "sysfs", 0, "")
	if _, err := os.Stat("/proc/vmcore"); err == nil {
		captureKernel()
	} else {
		production()
	}
	syscall.Sync()
	syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF)
}

func production() {
	s, err := capture.ReadShow("/", nil)
	if err != nil {
		say("show failed: %v", err)
		return
	}
	var b bytes.Buffer
	capture.WriteStatus(&b, s)
	say("before load: %s", strings.TrimSpace(strings.Split(b.String(), "\n")[0]))
	p, err := capture.PlanLoad("/", s, "/vmlinuz", "/capture.img")
	if err != nil {
		say("plan failed: %v", err)
		if !strings.Contains(s.Reservation.Cmdline, "e2e.force") {
			return
		}
		// e2e.force: call kexec_file_load anyway, to see the kernel's
		// own refusal and how Load explains it.
		p = &capture.LoadPlan{Kernel: "/vmlinuz", Initrd: "/capture.img", Cmdline: s.Cmdline, Reserved: s.Reservation.Reserved()}
	}
	if err := capture.Load("/", p); err != nil {
		say("load failed: %v", err)
		return
	}
	say("loaded %s (%d bytes) and %s (%d bytes) into %s; command line: %s", p.Kernel, p.KernelSize, p.Initrd, p.InitrdSize,
		capture.FormatSize(p.Reserved), p.Cmdline)
	s, err = capture.ReadShow("/", nil)
	if err != nil {
		say("show failed: %v", err)
		return
	}
	say("after load: %s", s.State)
	// Unload and load again: both must show in the kernel's state.
	if err := capture.Unload("/"); err != nil {
		say("unload failed: %v", err)
		return
	}
	if s, err = capture.ReadShow("/", nil); err == nil {
		say("after unload: %s", s.State)
	}
	if err := capture.Load("/", p); err != nil {
		say("reload failed: %v", err)
		return
	}
	if s, err = capture.ReadShow("/", nil); err == nil {
		say("after reload: %s", s.State)
	}
	say("crashing")
	// The report travels through the console's tty buffer: let it reach
	// the serial port before the panic and kexec cut it off
	// (TCSBRK with a non-zero argument is tcdrain).
	unix.IoctlSetInt(int(os.Stdout.Fd()), unix.TCSBRK, 1)
	time.Sleep(200 * time.Millisecond)
	os.WriteFile("/proc/sysrq-trigger", []byte("c"), 0)
	say("still alive after sysrq c")
}

type counter struct{ n int64 }

func (c *counter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

func captureKernel() {
	cmd, _ := os.ReadFile("/proc/cmdline")
	say("capture kernel up; command line: %s", strings.TrimSpace(string(cmd)))
	f, err := dump.Open("/proc/vmcore")
	if err != nil {
		say("open /proc/vmcore failed: %v", err)
		return
	}
	defer f.Close()
	if f.VMCoreInfo != nil {
		say("vmcore of %s", f.VMCoreInfo.OSRelease())
	}
	var c counter
	res, err := collect.CollectStream(context.Background(), f, io.Writer(&c),
		collect.Options{Level: 31, Format: collect.FormatKdump, Compression: "lzo", Threads: 1})
	if err != nil {
		say("collect failed: %v", err)
		return
	}
	mi, _ := capture.ReadMeminfo("/")
	say("collected %d of %d pages into %d bytes; MemTotal %d MemAvailable %d", res.Counts.Kept, res.Counts.RAM, c.n, mi.MemTotal, mi.MemAvailable)
}
