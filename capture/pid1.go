package capture

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"salvage/collect"
	"salvage/dump"
)

// CaptureConfigPath is where the capture initramfs holds the settings
// resolved when it was built (CaptureConfig as JSON). salvage started as
// PID 1 runs the capture only when it finds this file.
const CaptureConfigPath = "/etc/salvage/capture.json"

// CaptureConfig is the configuration of the capture kernel: kdump.conf
// and kdump-tools' settings as resolved on the production machine when
// the initramfs was built, with what only that machine knows (the device
// behind a local path, the modules its drivers need).
type CaptureConfig struct {
	Release   string   `json:"release"`
	Target    Target   `json:"target"`
	Path      string   `json:"path"` // the dump path on the target
	Collector []string `json:"core_collector"`
	NumDumps  int      `json:"kdump_num_dumps"`
	DumpDmesg bool     `json:"kdump_dump_dmesg"`
	// FailureAction and FinalAction: kdump.conf's.
	FailureAction string   `json:"failure_action"`
	FinalAction   string   `json:"final_action"`
	KdumpPre      []string `json:"kdump_pre,omitempty"`
	KdumpPost     []string `json:"kdump_post,omitempty"`
	// Modules are the module files to load, in order, relative to
	// /lib/modules/RELEASE of the image.
	Modules []string `json:"modules,omitempty"`
	// Local is where Path lives on the production machine's own
	// filesystems: the device to mount for a local target and for
	// failure_action dump_to_rootfs (nil when it is on no block device).
	Local *LocalFS `json:"local,omitempty"`
	// DeviceTimeout is how long to wait for the target device to appear.
	DeviceTimeout Duration `json:"device_timeout"`
	// Key identifies the inputs the image was built from.
	Key string `json:"key"`
}

// LocalFS is the filesystem that holds a path on the production machine.
type LocalFS struct {
	Device     string `json:"device"` // UUID=… when the superblock has one, else /dev/NAME
	FSType     string `json:"fstype"`
	MountPoint string `json:"mount_point"` // where it is mounted in production
	Path       string `json:"path"`        // the dump path relative to MountPoint
}

// Duration is a time.Duration written as "30s" in JSON.
type Duration time.Duration

// MarshalJSON writes d as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	*d = Duration(v)
	return err
}

// DefaultDeviceTimeout is how long the capture kernel waits for the
// target device: drivers probe after their modules load, and a slow
// controller can take tens of seconds.
const DefaultDeviceTimeout = Duration(90 * time.Second)

// DmesgFunc writes the kernel log of a dump, as makedumpfile --dump-dmesg
// does. The command supplies it (the formatter lives with `salvage dmesg`).
type DmesgFunc func(w io.Writer, src *dump.File) error

// CaptureSystem is what the capture does to the machine: mounting,
// loading modules, running kdump_pre/kdump_post and rebooting. The
// capture kernel's is the real one (NewCaptureSystem); tests use a fake.
type CaptureSystem interface {
	Mount(source, target, fstype string, readOnly bool) error
	Unmount(target string) error
	LoadModule(path string) error
	// Run runs argv (no shell) and returns its exit status.
	Run(argv []string) (int, error)
	// Reboot applies an action: reboot, halt or poweroff.
	Reboot(action string) error
}

// CaptureEnv is what RunCapture needs: the machine, and the pieces that
// live with the commands (the collector's flags, the dmesg formatter).
type CaptureEnv struct {
	// Root is "/" in the capture kernel; a directory in tests.
	Root string
	Sys  CaptureSystem
	// Collector turns a core_collector argv into collector options.
	Collector func(argv []string) (collect.Options, error)
	Dmesg     DmesgFunc
	Now       func() time.Time
	// Console gets a line per step; Kmsg, if set, too (/dev/kmsg).
	Console io.Writer
	Kmsg    io.Writer
	// Vmcore is the dump to save (default /proc/vmcore under Root).
	Vmcore string
}

// CaptureReport is what RunCapture did.
type CaptureReport struct {
	Status int    `json:"status"` // 0 saved, 1 failed
	Err    string `json:"error,omitempty"`
	Saved  *Saved `json:"saved,omitempty"`
	Action string `json:"action"`
}

// Saved is a dump saved to a Store.
type Saved struct {
	Store      string   `json:"store"`
	Dir        string   `json:"dir"`
	Dump       string   `json:"dump"`
	Dmesg      string   `json:"dmesg,omitempty"`
	Bytes      int64    `json:"bytes"`
	Incomplete bool     `json:"incomplete,omitempty"`
	Pruned     []string `json:"pruned,omitempty"`
}

func (e *CaptureEnv) logf(format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	if e.Console != nil {
		fmt.Fprintf(e.Console, "salvage: %s\n", msg)
	}
	if e.Kmsg != nil {
		// Level 7 (debug): kept in the log, not printed again on a
		// console that already shows the line.
		for _, l := range strings.Split(msg, "\n") {
			fmt.Fprintf(e.Kmsg, "<7>salvage: %s\n", l)
		}
	}
}

func (e *CaptureEnv) path(p string) string { return filepath.Join(e.Root, p) }

// ReadCaptureConfig reads CaptureConfigPath under root.
func ReadCaptureConfig(root string) (*CaptureConfig, error) {
	b, err := os.ReadFile(filepath.Join(root, CaptureConfigPath))
	if err != nil {
		return nil, err
	}
	var c CaptureConfig
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", CaptureConfigPath, err)
	}
	return &c, nil
}

// RunCapture is the capture kernel's work, salvage as PID 1 after the
// pseudo-filesystems are mounted: load the modules, reach the target,
// run kdump_pre, save the dump and its kernel log, prune old dumps, run
// kdump_post with the status, then apply final_action, or failure_action
// when saving failed.
func RunCapture(ctx context.Context, env *CaptureEnv, c *CaptureConfig) *CaptureReport {
	if env.Now == nil {
		env.Now = time.Now
	}
	rep := &CaptureReport{}
	vmcore := env.Vmcore
	if vmcore == "" {
		vmcore = env.path("/proc/vmcore")
	}
	if _, err := os.Stat(vmcore); err != nil {
		// Booted as an ordinary initramfs, or the crashed kernel left no
		// ELF core header: there is nothing to save, and rebooting (the
		// usual failure_action) would only boot this image again.
		env.logf("FAILED: no /proc/vmcore: this is not a kdump capture kernel; halting")
		return &CaptureReport{Status: 1, Err: "no /proc/vmcore: this is not a kdump capture kernel", Action: "halt"}
	}
	err := env.capture(ctx, c, rep)
	rep.Action = c.FinalAction
	if err != nil {
		rep.Status, rep.Err = 1, err.Error()
		env.logf("FAILED: %v", err)
		rep.Action = c.FailureAction
		if rep.Action == "dump_to_rootfs" {
			rep.Action = env.dumpToRootfs(ctx, c, rep)
		}
	}
	if len(c.KdumpPost) > 0 {
		argv := append(append([]string(nil), c.KdumpPost...), fmt.Sprint(rep.Status))
		env.logf("running kdump_post: %s", strings.Join(argv, " "))
		if st, err := env.Sys.Run(argv); err != nil || st != 0 {
			env.logf("kdump_post failed: %s", exitText(st, err))
		}
	}
	if rep.Action == "shell" {
		env.logf("failure_action shell: salvage's capture initramfs has no shell; rebooting")
		rep.Action = "reboot"
	}
	if rep.Action == "" {
		rep.Action = "reboot"
	}
	env.logf("%s", map[bool]string{true: "dump saved", false: "dump not saved"}[rep.Status == 0]+"; "+rep.Action)
	return rep
}

func exitText(st int, err error) string {
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("exit status %d", st)
}

func (env *CaptureEnv) capture(ctx context.Context, c *CaptureConfig, rep *CaptureReport) error {
	env.logf("capture kernel: saving the dump of the crashed kernel (%s) to %s", c.Release, describeTarget(c))
	for _, m := range c.Modules {
		p := path.Join("/lib/modules", c.Release, m)
		if err := env.Sys.LoadModule(env.path(p)); err != nil {
			env.logf("loading module %s: %v", moduleName(m), err)
		} else {
			env.logf("loaded module %s", moduleName(m))
		}
	}
	vmcore := env.Vmcore
	if vmcore == "" {
		vmcore = env.path("/proc/vmcore")
	}
	opt, err := env.Collector(c.Collector)
	if err != nil {
		return fmt.Errorf("core_collector %q: %w", strings.Join(c.Collector, " "), err)
	}
	opt.Progress = env.Console
	if c.Target.Kind == "raw" {
		dev, err := env.waitDevice(c.Target.Device, c)
		if err != nil {
			return err
		}
		if err := env.pre(c); err != nil {
			return err
		}
		src, err := dump.Open(vmcore)
		if err != nil {
			return err
		}
		defer src.Close()
		f, err := os.OpenFile(env.path(dev), os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("raw target: %w", err)
		}
		defer f.Close()
		h, _, err := WriteRawDump(ctx, f, src, opt, env.dmesgIf(c), env.Now())
		if err != nil {
			return err
		}
		env.logf("wrote the dump to %s: %s; `salvage kdump savecore` saves it after the reboot", dev, h)
		rep.Saved = &Saved{Store: "raw " + dev, Dump: dev, Bytes: int64(h.StreamLen)}
		return nil
	}
	s, err := env.openStore(ctx, c)
	if err != nil {
		return err
	}
	defer func() {
		if err := s.Close(); err != nil {
			env.logf("closing %s: %v", s, err)
		}
	}()
	if err := env.pre(c); err != nil {
		return err
	}
	src, err := dump.Open(vmcore)
	if err != nil {
		return err
	}
	defer src.Close()
	saved, err := SaveDump(ctx, s, src, opt, env.dmesgIf(c), env.Now(), c.NumDumps, env.logf)
	rep.Saved = saved
	return err
}

func (env *CaptureEnv) dmesgIf(c *CaptureConfig) DmesgFunc {
	if !c.DumpDmesg {
		return nil
	}
	return env.Dmesg
}

// pre runs kdump_pre. kdump.conf(5): a failing kdump_pre is reported and
// the dump still goes on.
func (env *CaptureEnv) pre(c *CaptureConfig) error {
	if len(c.KdumpPre) == 0 {
		return nil
	}
	env.logf("running kdump_pre: %s", strings.Join(c.KdumpPre, " "))
	if st, err := env.Sys.Run(c.KdumpPre); err != nil || st != 0 {
		env.logf("kdump_pre failed (%s); saving the dump anyway", exitText(st, err))
	}
	return nil
}

func describeTarget(c *CaptureConfig) string {
	switch c.Target.Kind {
	case "local":
		if c.Local != nil {
			return fmt.Sprintf("%s (%s %s)", c.Path, c.Local.FSType, c.Local.Device)
		}
		return c.Path
	case "raw":
		return c.Target.String()
	}
	return c.Target.String() + ":" + c.Path
}

func (env *CaptureEnv) waitDevice(spec string, c *CaptureConfig) (string, error) {
	t := time.Duration(c.DeviceTimeout)
	if t <= 0 {
		t = time.Duration(DefaultDeviceTimeout)
	}
	env.logf("waiting for %s (up to %s)", spec, t)
	dev, err := WaitDevice(env.Root, spec, t)
	if err != nil {
		list := "none"
		if names := BlockDevices(env.Root); len(names) > 0 {
			list = strings.Join(names, " ")
		}
		return "", fmt.Errorf("%w; block devices: %s", err, list)
	}
	if dev != spec {
		env.logf("%s is %s", spec, dev)
	}
	return dev, nil
}

// mountStore mounts the filesystem of device spec (fstype) at mnt and
// returns the Store of dir inside it.
func (env *CaptureEnv) mountStore(spec, fstype, mnt, dir string, c *CaptureConfig) (Store, error) {
	dev, err := env.waitDevice(spec, c)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(env.path(mnt), 0o755); err != nil {
		return nil, err
	}
	if err := env.Sys.Mount(env.path(dev), env.path(mnt), fstype, false); err != nil {
		return nil, fmt.Errorf("mounting %s (%s) on %s: %w", dev, fstype, mnt, err)
	}
	env.logf("mounted %s (%s) on %s", dev, fstype, mnt)
	unmount := func() error { return env.Sys.Unmount(env.path(mnt)) }
	s, err := NewDirStore(env.path(path.Join(mnt, dir)), fmt.Sprintf("%s %s:%s", fstype, spec, path.Clean("/"+dir)), unmount)
	if err != nil {
		unmount()
		return nil, err
	}
	return s, nil
}

func (env *CaptureEnv) openStore(ctx context.Context, c *CaptureConfig) (Store, error) {
	switch c.Target.Kind {
	case "fs":
		return env.mountStore(c.Target.Device, c.Target.FSType, "/mnt/target", c.Path, c)
	case "local":
		if c.Local == nil {
			return nil, fmt.Errorf("local target %s: it was on no block device when the initramfs was built", c.Path)
		}
		return env.mountStore(c.Local.Device, c.Local.FSType, "/sysroot", path.Join(c.Local.Path), c)
	case "ssh", "nfs":
		return OpenRemoteStore(ctx, env.Root, &KdumpConf{Target: c.Target, Path: c.Path}, env.logf)
	}
	return nil, fmt.Errorf("unknown target kind %q", c.Target.Kind)
}

// dumpToRootfs is failure_action dump_to_rootfs: save to the path on the
// production root filesystem instead; then final_action.
func (env *CaptureEnv) dumpToRootfs(ctx context.Context, c *CaptureConfig, rep *CaptureReport) string {
	if c.Local == nil || c.Target.Kind == "local" {
		env.logf("dump_to_rootfs: no root filesystem to fall back to; rebooting")
		return "reboot"
	}
	env.logf("failure_action dump_to_rootfs: saving to %s on %s", c.Path, c.Local.Device)
	alt := *c
	alt.Target = Target{Kind: "local"}
	if err := env.capture(ctx, &alt, rep); err != nil {
		env.logf("dump_to_rootfs failed: %v", err)
		return "reboot"
	}
	rep.Status, rep.Err = 0, ""
	return c.FinalAction
}

// SaveDump saves src into s in the local layout: a new dump directory
// STAMP with dmesg.STAMP (when dmesg is not nil) and dump.STAMP, written
// as dump.STAMP.incomplete and renamed once complete and durable; then
// old dump directories are pruned to keep (never the new one). On an
// error the incomplete dump is left in place, readable.
func SaveDump(ctx context.Context, s Store, src *dump.File, opt collect.Options, dmesg DmesgFunc, now time.Time, keep int,
	logf func(string, ...any)) (*Saved, error) {
	dir, err := NewDumpDir(s, now)
	if err != nil {
		return nil, err
	}
	sv := &Saved{Store: s.String(), Dir: dir}
	// The kernel log first, as kdump-tools does: it is small, and it is
	// what remains when the dump cannot be written whole.
	if dmesg != nil {
		name := DmesgFile(dir)
		if err := writeStoreFile(s, name, func(w io.Writer) error { return dmesg(w, src) }); err != nil {
			logf("saving the kernel log: %v", err)
		} else {
			sv.Dmesg = name
			logf("saved the kernel log to %s/%s", s, name)
		}
	}
	name := DumpFile(dir)
	tmp := name + IncompleteSuffix
	f, err := s.Create(tmp)
	if err != nil {
		return sv, err
	}
	logf("collecting %s into %s/%s", src.Path, s, tmp)
	res, err := collect.CollectTo(ctx, src, f, opt)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("%s: %w", tmp, cerr)
	}
	if res != nil {
		sv.Bytes = res.Written
	}
	if err != nil {
		sv.Dump, sv.Incomplete = tmp, true
		return sv, fmt.Errorf("%w; what was written is in %s/%s, marked incomplete", err, s, tmp)
	}
	if err := s.Rename(tmp, name); err != nil {
		sv.Dump, sv.Incomplete = tmp, true
		return sv, err
	}
	sv.Dump = name
	logf("saved the dump to %s/%s (%d bytes)", s, name, sv.Bytes)
	if sv.Pruned, err = PruneDumps(s, keep, dir); err != nil {
		logf("pruning old dumps: %v", err)
	} else if len(sv.Pruned) > 0 {
		logf("removed old dumps %s (KDUMP_NUM_DUMPS=%d)", strings.Join(sv.Pruned, " "), keep)
	}
	return sv, nil
}

// writeStoreFile creates name in s and writes it with fill.
func writeStoreFile(s Store, name string, fill func(io.Writer) error) error {
	f, err := s.Create(name)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<16)
	err = fill(bw)
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// errNoCaptureConfig says the initramfs is not salvage's capture image.
var errNoCaptureConfig = errors.New("no " + CaptureConfigPath)
