package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"salvage/capture"
	"salvage/collect"
	"salvage/dump"
	"salvage/kernel"
)

// addKdumpCaptureCommands adds the capture side of `salvage kdump`:
// initramfs, savecore, test.
func addKdumpCaptureCommands(kdump *cobra.Command, root *string) {
	kdump.AddCommand(newKdumpInitramfsCmd(root), newKdumpSavecoreCmd(root), newKdumpTestCmd(root))
}

// captureInitMain runs salvage as PID 1 of the capture initramfs. An
// image that is not salvage's capture initramfs (no capture
// configuration) runs salvage as an ordinary command.
func captureInitMain() error {
	err := capture.InitMain(collectorOptions, captureDmesg)
	if errors.Is(err, capture.ErrNotCaptureInit) {
		return newRootCmd().Execute()
	}
	return err
}

// collectorOptions turns a core_collector line ("makedumpfile FLAGS" or
// "salvage collect FLAGS") into the collector's options, through `salvage
// collect`'s own flag set, so the line means in the capture kernel what
// it means on a command line.
func collectorOptions(argv []string) (collect.Options, error) {
	var flags []string
	switch {
	case len(argv) == 0:
		return collect.Options{}, errors.New("empty core_collector")
	case path.Base(argv[0]) == "makedumpfile":
		flags = argv[1:]
	case path.Base(argv[0]) == "salvage" && len(argv) > 1 && argv[1] == "collect":
		flags = argv[2:]
	default:
		return collect.Options{}, fmt.Errorf("%q: salvage collects with its own makedumpfile", argv[0])
	}
	if err := kdumpCollectorCheck(flags); err != nil {
		return collect.Options{}, err
	}
	c := newCollectCmd()
	fl := c.Flags()
	fl.SetOutput(io.Discard)
	fl.Parse(flags)
	get := func(name string) bool { b, _ := fl.GetBool(name); return b }
	f := collectFlags{zlib: get("zlib"), lzo: get("lzo"), snappy: get("snappy"), zstd: get("zstd"), elf: get("elf"), exact: get("exact")}
	f.compression, _ = fl.GetString("compression")
	f.level, _ = fl.GetInt("dump-level")
	f.threads, _ = fl.GetInt("num-threads")
	codec, err := f.codec()
	if err != nil {
		return collect.Options{}, err
	}
	opt := collect.Options{Level: f.level, Format: collect.FormatKdump, Compression: codec, Threads: f.threads, Exact: f.exact}
	if f.elf {
		opt.Format = collect.FormatELF
	}
	return opt, nil
}

// captureDmesg writes the kernel log of src as makedumpfile --dump-dmesg
// does, from VMCOREINFO alone; a log read in part is written, then its
// error returned.
func captureDmesg(w io.Writer, src *dump.File) error {
	recs, err := kernel.DumpLog(src)
	if len(recs) == 0 && err != nil {
		return err
	}
	writeDmesg(w, recs, false)
	return err
}

func newKdumpInitramfsCmd(root *string) *cobra.Command {
	var o capture.InitramfsOptions
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "initramfs",
		Short: "Build the capture initramfs: salvage as /init, the configuration, the target's modules",
		Long: `initramfs builds the initramfs the capture kernel boots (what kdump-tools
makes with initramfs-tools, or dracut with kexec-tools), in Go, without
running a shell or any other program:

  /init             this salvage binary (static)
  /etc/salvage/     kdump.conf, and capture.json: the settings resolved now
                    (target, dump path, core_collector, KDUMP_NUM_DUMPS,
                    actions, the device behind a local path)
  /etc/default/kdump-tools
  /lib/modules/R/   exactly the modules the target needs: the drivers of
                    the target's block device and of the devices above it
                    (from sysfs), its filesystem, extra_modules, with their
                    dependencies (modules.dep, else each module's
                    .modinfo depends=), in load order
  extra_bins, kdump_pre, kdump_post, with their ELF interpreter and
  libraries (PT_INTERP, DT_NEEDED)

It is compressed with zstd when the kernel accepts it (CONFIG_RD_ZSTD in
/boot/config-R), else gzip, and written atomically, mode 0600, with the
key of its inputs beside it (FILE.key): when neither the configuration,
the kernel's modules nor salvage changed, it says "up to date" and writes
nothing (--force, or force_rebuild 1 in kdump.conf, rebuilds).

Examples:
  salvage kdump initramfs
  salvage kdump initramfs -o /tmp/capture.img --kernel-release 6.1.0-56-cloud-amd64
  salvage kdump initramfs --config ./kdump.conf -o /tmp/capture.img
  salvage kdump initramfs --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Root, o.Check = *root, kdumpCollectorCheck
			r, err := capture.BuildInitramfs(o)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if jsonOut {
				return writeKdumpJSON(w, r)
			}
			writeInitramfs(w, r)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&o.Output, "output", "o", "", "the image to write (default "+capture.InitrdDir+"/initrd.img-RELEASE)")
	fl.StringVar(&o.Release, "kernel-release", "", "the capture kernel's release (default: the running kernel's)")
	fl.StringVar(&o.ModulesDir, "modules-dir", "", "its modules (default /lib/modules/RELEASE)")
	fl.StringVar(&o.Salvage, "salvage", "", "the salvage binary to use as /init (default: this one)")
	fl.StringVar(&o.Config, "config", "", "the kdump.conf to bake in (default "+capture.ConfPath+")")
	fl.BoolVar(&o.Force, "force", false, "rebuild even when up to date")
	fl.BoolVar(&jsonOut, "json", false, "print the result as JSON")
	return cmd
}

func writeInitramfs(w io.Writer, r *capture.InitramfsResult) {
	if r.UpToDate {
		fmt.Fprintf(w, "%s: up to date (%s, key %s)\n", r.Output, mib(uint64(r.Size)), r.Key)
	} else {
		fmt.Fprintf(w, "%s: built, %s (%s; %s unpacked), key %s\n", r.Output, mib(uint64(r.Size)), r.Compression, mib(uint64(r.Unpacked)), r.Key)
	}
	c := r.Config
	fmt.Fprintf(w, "  target:          %s, path %s\n", c.Target, c.Path)
	if c.Local != nil {
		fmt.Fprintf(w, "  local fs:        %s (%s) mounted on %s\n", c.Local.Device, c.Local.FSType, c.Local.MountPoint)
	}
	fmt.Fprintf(w, "  core_collector:  %s\n", strings.Join(c.Collector, " "))
	var mods []string
	for _, m := range r.Modules {
		mods = append(mods, m.Name)
	}
	if len(mods) == 0 {
		mods = []string{"none"}
	}
	fmt.Fprintf(w, "  modules:         %s\n", strings.Join(mods, " "))
	fmt.Fprintf(w, "  files:           %d\n", len(r.Files))
	for _, x := range r.Warnings {
		fmt.Fprintf(w, "warning: %s\n", x)
	}
}

func newKdumpSavecoreCmd(root *string) *cobra.Command {
	var raw, dir, vmcore string
	var keep, jsonOut, ifRaw bool
	cmd := &cobra.Command{
		Use:   "savecore",
		Short: "Save a dump after the reboot: from a raw device, or from /proc/vmcore",
		Long: `savecore saves a dump into the local layout (DIR/STAMP/dump.STAMP and
dmesg.STAMP, mode 0600; the dump path of the configuration by default):

  --raw DEVICE   the dump a raw target's capture wrote to DEVICE (or an
                 image of it): the flattened stream is reassembled into
                 an ordinary kdump file and the kernel log saved beside
                 it; then the device's header is cleared so the dump is
                 not saved twice (--keep-header leaves it)
  --if-raw       the same from the configured raw target's device
                 (LABEL= and UUID= resolved); nothing to do, and exit
                 status 0, when the target is not raw or its device holds
                 no dump: salvage-kdump.service runs it before loading
  (no --raw)     in a kdump kernel, /proc/vmcore collected with the
                 configured core_collector, as the capture would

Old dumps are pruned to KDUMP_NUM_DUMPS.

Examples:
  salvage kdump savecore --raw /dev/vdb
  salvage kdump savecore --raw disk.img --dir /var/crash
  salvage kdump savecore --if-raw
  salvage kdump savecore`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			set, err := capture.LoadSettings(*root, kdumpCollectorCheck)
			if err != nil {
				return err
			}
			if len(set.Errors) > 0 {
				return fmt.Errorf("the configuration has mistakes:\n  %s", strings.Join(set.Errors, "\n  "))
			}
			if ifRaw {
				if raw != "" {
					return fmt.Errorf("give --raw DEVICE or --if-raw, not both")
				}
				t := set.Conf.Target
				if t.Kind != "raw" {
					fmt.Fprintf(cmd.OutOrStdout(), "savecore: the dump target is %s, not a raw device: nothing to save\n", t)
					return nil
				}
				dev, err := capture.FindDevice(*root, t.Device)
				if err != nil {
					return fmt.Errorf("the raw target (kdump.conf line %d): %w", t.Line, err)
				}
				raw = filepath.Join(*root, dev)
			}
			if dir == "" {
				dir = filepath.Join(*root, set.CoreDir)
			}
			s, err := capture.NewDirStore(dir, "", nil)
			if err != nil {
				return err
			}
			defer s.Close()
			opt, err := collectorOptions(set.Collector)
			if err != nil {
				return err
			}
			stderr := cmd.ErrOrStderr()
			o := capture.SavecoreOptions{Raw: raw, Vmcore: vmcore, Store: s, Options: opt, Dmesg: captureDmesg,
				NumDumps: set.Tools.NumDumps, KeepHeader: keep,
				Logf: func(f string, a ...any) { fmt.Fprintf(stderr, "savecore: "+f+"\n", a...) }}
			if !set.Tools.DumpDmesg {
				o.Dmesg = nil
			}
			sv, err := capture.Savecore(context.Background(), o)
			if ifRaw && errors.Is(err, capture.ErrNoRawDump) {
				fmt.Fprintf(cmd.OutOrStdout(), "savecore: %s holds no dump: nothing to save\n", raw)
				return nil
			}
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if jsonOut {
				return writeKdumpJSON(w, sv)
			}
			fmt.Fprintf(w, "saved %s/%s (%s)\n", dir, sv.Dump, mib(uint64(sv.Bytes)))
			if sv.Dmesg != "" {
				fmt.Fprintf(w, "saved %s/%s\n", dir, sv.Dmesg)
			}
			for _, p := range sv.Pruned {
				fmt.Fprintf(w, "removed %s/%s (KDUMP_NUM_DUMPS=%d)\n", dir, p, set.Tools.NumDumps)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&raw, "raw", "", "the raw target's device, or an image of it")
	fl.StringVar(&dir, "dir", "", "where to save (default: the configured dump path)")
	fl.StringVar(&vmcore, "vmcore", "", "the dump to save without --raw (default /proc/vmcore)")
	fl.BoolVar(&ifRaw, "if-raw", false, "save from the configured raw target, if it is one and holds a dump")
	fl.BoolVar(&keep, "keep-header", false, "leave the raw device's header (the dump will be found again)")
	fl.BoolVar(&jsonOut, "json", false, "print what was saved as JSON")
	return cmd
}

func newKdumpTestCmd(root *string) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "test",
		Short: "Crash this machine now to test kdump (needs --yes-i-want-to-crash)",
		Long: `test checks that a crash would be captured ("ready to kdump"), then
crashes the kernel through sysrq (echo c > /proc/sysrq-trigger), as
kdump-config test does. The machine goes down at once: the capture kernel
saves the dump and reboots.

Examples:
  salvage kdump test --yes-i-want-to-crash`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !yes {
				return errors.New("this crashes the machine: give --yes-i-want-to-crash")
			}
			s, err := capture.ReadShow(*root, kdumpCollectorCheck)
			if err != nil {
				return err
			}
			if !s.Ready {
				capture.WriteStatus(cmd.ErrOrStderr(), s)
				return errors.New("not ready to kdump: not crashing")
			}
			fmt.Fprintln(cmd.OutOrStdout(), "ready to kdump; crashing now (sysrq c)")
			if f, ok := cmd.OutOrStdout().(*os.File); ok {
				f.Sync()
			}
			time.Sleep(100 * time.Millisecond)
			return os.WriteFile(filepath.Join(*root, "proc/sysrq-trigger"), []byte("c"), 0)
		},
	}
	cmd.Flags().BoolVar(&yes, "yes-i-want-to-crash", false, "really crash the machine")
	return cmd
}
