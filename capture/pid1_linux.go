//go:build linux

package capture

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"

	"golang.org/x/sys/unix"

	"salvage/collect"
)

// linuxSystem is the capture kernel's CaptureSystem: system calls.
type linuxSystem struct{ console io.Writer }

// NewCaptureSystem returns the real CaptureSystem; programs run by Run
// write to console.
func NewCaptureSystem(console io.Writer) CaptureSystem { return linuxSystem{console} }

func (linuxSystem) Mount(source, target, fstype string, readOnly bool) error {
	var flags uintptr
	if readOnly {
		flags |= unix.MS_RDONLY
	}
	return unix.Mount(source, target, fstype, flags, "")
}

func (linuxSystem) Unmount(target string) error { return unix.Unmount(target, 0) }

func (linuxSystem) LoadModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	// finit_module(2): the kernel reads the file itself; a module that
	// is there already (built in, or loaded as a dependency) is fine.
	if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil && !errors.Is(err, unix.EEXIST) {
		return err
	}
	return nil
}

func (s linuxSystem) Run(argv []string) (int, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = s.console, s.console
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/"}
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return -1, err
	}
	return 0, nil
}

func (linuxSystem) Reboot(action string) error {
	unix.Sync()
	cmd := unix.LINUX_REBOOT_CMD_RESTART
	switch action {
	case "halt":
		cmd = unix.LINUX_REBOOT_CMD_HALT
	case "poweroff":
		cmd = unix.LINUX_REBOOT_CMD_POWER_OFF
	}
	return unix.Reboot(cmd)
}

// InitMain is salvage as PID 1 of the capture initramfs: it mounts proc,
// sysfs, devtmpfs and a tmpfs /tmp, reads CaptureConfigPath, saves the
// dump (RunCapture) and applies the action. It never returns while it is
// PID 1 (init must not exit): when rebooting fails it waits forever. It
// returns an error at once when the image has no capture configuration,
// so that salvage can run as an ordinary command.
func InitMain(collector func(argv []string) (collect.Options, error), dmesg DmesgFunc) error {
	if _, err := os.Stat(CaptureConfigPath); err != nil {
		return errNoCaptureConfig
	}
	for _, m := range []struct{ src, dir, fs string }{
		{"proc", "/proc", "proc"}, {"sysfs", "/sys", "sysfs"}, {"devtmpfs", "/dev", "devtmpfs"}, {"tmpfs", "/tmp", "tmpfs"},
	} {
		os.MkdirAll(m.dir, 0o755)
		if err := unix.Mount(m.src, m.dir, m.fs, 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
			fmt.Fprintf(os.Stdout, "salvage: mounting %s on %s: %v\n", m.fs, m.dir, err)
		}
	}
	var console io.Writer = os.Stdout
	if c, err := os.OpenFile("/dev/console", os.O_WRONLY, 0); err == nil {
		console = c
	}
	env := &CaptureEnv{Root: "/", Sys: NewCaptureSystem(console), Collector: collector, Dmesg: dmesg, Console: console}
	if k, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0); err == nil {
		env.Kmsg = k
	}
	c, err := ReadCaptureConfig("/")
	var rep *CaptureReport
	if err != nil {
		env.logf("FAILED: %v; rebooting", err)
		rep = &CaptureReport{Status: 1, Action: "reboot"}
	} else {
		rep = RunCapture(context.Background(), env, c)
	}
	// Let the console drain before the machine goes.
	time.Sleep(200 * time.Millisecond)
	if err := env.Sys.Reboot(rep.Action); err != nil {
		env.logf("%s: %v", rep.Action, err)
	}
	for {
		time.Sleep(time.Hour)
	}
}

// ErrNotCaptureInit is returned by InitMain when the image is not a
// capture initramfs.
var ErrNotCaptureInit = errNoCaptureConfig
