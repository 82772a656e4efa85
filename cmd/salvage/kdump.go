package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"salvage/capture"
)

// newKdumpCmd is `salvage kdump`: arming a machine for crash dumps.
func newKdumpCmd() *cobra.Command {
	var root string
	cmd := &cobra.Command{
		Use:   "kdump",
		Short: "Arm this machine for crash dumps (what kdump-tools and kexec do)",
		Long: `kdump sets up the capture of crash dumps: how much memory to reserve
(estimate), what is configured and whether the machine is ready (show,
status), loading the capture kernel (load, unload).

It reads /etc/salvage/kdump.conf (kdump.conf(5) syntax) and, for what that
leaves unset, Debian's /etc/default/kdump-tools, without running a shell.`,
	}
	cmd.PersistentFlags().StringVar(&root, "root", "/", "read /proc, /sys, /etc and /boot under this directory (for tests and chroots)")
	cmd.PersistentFlags().MarkHidden("root")
	cmd.AddCommand(newKdumpEstimateCmd(&root), newKdumpShowCmd(&root, false), newKdumpShowCmd(&root, true),
		newKdumpLoadCmd(&root), newKdumpUnloadCmd())
	addKdumpCaptureCommands(cmd, &root)
	addKdumpRemoteCommands(cmd, &root)
	return cmd
}

// kdumpCollectorCheck validates a core_collector's flags with `salvage
// collect`'s own flag set, so kdump.conf accepts exactly what the
// collector will.
func kdumpCollectorCheck(args []string) error {
	c := newCollectCmd()
	fl := c.Flags()
	fl.SetOutput(io.Discard)
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		return fmt.Errorf("%q: the capture gives SOURCE and DEST itself", fl.Args())
	}
	if d, _ := fl.GetInt("dump-level"); d < 0 || d > 31 {
		return fmt.Errorf("-d %d: the dump level is 0–31", d)
	}
	n := 0
	for _, f := range []string{"zlib", "lzo", "snappy", "zstd", "compression"} {
		if fl.Changed(f) {
			n++
		}
	}
	if n > 1 {
		return errors.New("choose one compression")
	}
	if v, _ := fl.GetString("compression"); fl.Changed("compression") && !strings.Contains(" none zlib lzo snappy zstd ", " "+v+" ") {
		return fmt.Errorf("--compression %q: want none, zlib, lzo, snappy or zstd", v)
	}
	if fl.Changed("dump-dmesg") {
		return errors.New("--dump-dmesg: the capture saves the kernel log beside the dump itself")
	}
	return nil
}

func writeKdumpJSON(w io.Writer, v any) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(v)
}

func newKdumpEstimateCmd(root *string) *cobra.Command {
	var in capture.EstimateInput
	var write, jsonOut bool
	var out string
	cmd := &cobra.Command{
		Use:   "estimate",
		Short: "Recommend a crashkernel= size from this machine's measured needs",
		Long: `estimate measures what a capture needs on this machine and recommends
the crashkernel= reservation:

  need = the capture kernel's init_size (from its bzImage header: the
         memory it needs to decompress itself and run)
       + the initramfs file (held until unpacked)
       + the initramfs unpacked (each file rounded up to pages)
       + the modules the capture loads (.ko sizes, with dependencies)
       + the collector: 5 bitmaps of one bit per page frame of a window
         of this machine's RAM (at most 8G: the collector works window by
         window) and 1024 pages in flight, doubled for the Go heap, plus
         12M of Go runtime
       + the ELF core header (one entry per CPU and RAM range)
       + 64M of kernel run-time allocations
  recommended = need × 64/63 (struct pages) + 10%, rounded up to 16M

The kernel is KDUMP_KERNEL, else /boot/vmlinuz-RELEASE; the initramfs
KDUMP_INITRD, else /var/lib/salvage/initrd.img-RELEASE, else
/boot/initrd.img-RELEASE; --kernel and --initrd override them. The
modules are kdump.conf's extra_modules and each --module. It
prints the boot-loader line and the GRUB drop-in that applies it; --write
writes the drop-in (atomically, mode 0644); then run update-grub and
reboot. It warns when the current reservation is smaller.

Examples:
  salvage kdump estimate
  salvage kdump estimate --kernel /boot/vmlinuz-6.1.0-56-cloud-amd64 --initrd /var/lib/salvage/initrd.img
  salvage kdump estimate --module virtio_blk --module ext4 --write`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			in.Root = *root
			// What the configuration names: KDUMP_KERNEL, KDUMP_INITRD and
			// extra_modules.
			set, err := capture.LoadSettings(*root, kdumpCollectorCheck)
			if err != nil {
				return err
			}
			if in.Kernel == "" && set.Tools.Kernel != "" {
				in.Kernel = filepath.Join(*root, set.Tools.Kernel)
			}
			if in.Initrd == "" && set.Tools.Initrd != "" {
				in.Initrd = filepath.Join(*root, set.Tools.Initrd)
			}
			in.Modules = append(in.Modules, set.Conf.ExtraModules...)
			e, err := capture.EstimateReservation(in)
			if err != nil {
				return err
			}
			dest := out
			if *root != "/" && !cmd.Flags().Changed("output") {
				dest = filepath.Join(*root, capture.GrubDropInPath)
			}
			if write {
				if err := capture.WriteFileAtomic(dest, []byte(capture.GrubDropIn(e.Param)), 0o644); err != nil {
					return fmt.Errorf("writing the GRUB drop-in: %w", err)
				}
			}
			w := cmd.OutOrStdout()
			if jsonOut {
				return writeKdumpJSON(w, struct {
					*capture.Estimate
					DropIn  string `json:"grub_drop_in"`
					Path    string `json:"grub_drop_in_path"`
					Written bool   `json:"written"`
				}{e, capture.GrubDropIn(e.Param), dest, write})
			}
			writeEstimate(w, e, dest, write)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&in.Kernel, "kernel", "", "the capture kernel (bzImage; default /boot/vmlinuz-RELEASE)")
	fl.StringVar(&in.Initrd, "initrd", "", "its initramfs (default /boot/initrd.img-RELEASE when present)")
	fl.StringVar(&in.Release, "release", "", "kernel release for the defaults (default: the running kernel's)")
	fl.StringSliceVar(&in.Modules, "module", nil, "a module the capture loads (repeatable; dependencies from modules.dep)")
	fl.BoolVar(&write, "write", false, "write the GRUB drop-in")
	fl.StringVar(&out, "output", capture.GrubDropInPath, "where --write writes the drop-in")
	fl.BoolVar(&jsonOut, "json", false, "print the estimate as JSON")
	return cmd
}

// mib prints a size for people: MiB with one decimal, or KiB below 1M.
func mib(n uint64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%dK", (n+1023)>>10)
	}
	return fmt.Sprintf("%.1fM", float64(n)/(1<<20))
}

func plural(n int, one string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %ss", n, one)
}

func writeEstimate(w io.Writer, e *capture.Estimate, dest string, written bool) {
	fmt.Fprintf(w, "This machine: %s of RAM (%d page frames), %s\n\n", mib(e.RAM), e.MaxPFN, plural(e.CPUs, "CPU"))
	for _, it := range e.Items {
		fmt.Fprintf(w, "  %-20s %9s  %s\n", it.What, mib(it.Bytes), it.From)
	}
	fmt.Fprintf(w, "  %-20s %9s\n", "need", mib(e.Need))
	fmt.Fprintf(w, "\nRecommended: %s  (need × 64/63 for struct pages, +10%%, rounded up to 16M)\n", e.Param)
	cur := e.Current
	switch {
	case cur.Reserved() > 0:
		fmt.Fprintf(w, "Reserved now: %s\n", capture.FormatSize(cur.Reserved()))
	case cur.ParamError != "":
		fmt.Fprintf(w, "Reserved now: nothing (%s)\n", cur.ParamError)
	default:
		fmt.Fprintf(w, "Reserved now: nothing\n")
	}
	fmt.Fprintf(w, "\nTo apply it, a GRUB drop-in, %s:\n\n", dest)
	for _, l := range strings.Split(strings.TrimRight(capture.GrubDropIn(e.Param), "\n"), "\n") {
		fmt.Fprintf(w, "  %s\n", l)
	}
	if written {
		fmt.Fprintf(w, "\nWritten. Now run update-grub and reboot.\n")
	} else {
		fmt.Fprintf(w, "\n`salvage kdump estimate --write` writes it; then run update-grub and reboot.\n")
	}
	for _, x := range e.Warnings {
		fmt.Fprintf(w, "warning: %s\n", x)
	}
}

func newKdumpShowCmd(root *string, status bool) *cobra.Command {
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Show the kdump configuration and state (what kdump-config show shows)",
		Long: `show prints the dump mode, USE_KDUMP, the panic sysctls, where dumps go
and how they are collected, the crashkernel reservation's address and size,
the capture kernel and initramfs, the capture command line (the running
one without crashkernel= and the like, with reset_devices nr_cpus=1
irqpoll and friends), and the current state: "ready to kdump", or why not.

Examples:
  salvage kdump show
  salvage kdump show --json`,
		Args: cobra.NoArgs,
	}
	if status {
		cmd.Use = "status"
		cmd.Short = "Say whether a crash now would be captured (exit status 1 when not)"
		cmd.Long = `status prints "ready to kdump" when a capture kernel is loaded into the
crashkernel reservation, else "not ready to kdump" and why, with what to do.
Its exit status is 0 when ready, 1 when not.

Examples:
  salvage kdump status
  salvage kdump status --json`
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		s, err := capture.ReadShow(*root, kdumpCollectorCheck)
		if err != nil {
			return err
		}
		w := cmd.OutOrStdout()
		switch {
		case jsonOut && status:
			err = writeKdumpJSON(w, struct {
				Ready   bool     `json:"ready"`
				State   string   `json:"state"`
				Reasons []string `json:"reasons,omitempty"`
			}{s.Ready, s.State, s.Reasons})
		case jsonOut:
			err = writeKdumpJSON(w, s)
		case status:
			capture.WriteStatus(w, s)
		default:
			capture.WriteShow(w, s)
		}
		if err == nil && status && !s.Ready {
			return exitError{1}
		}
		return err
	}
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print as JSON")
	return cmd
}

func newKdumpLoadCmd(root *string) *cobra.Command {
	var kernel, initrd string
	var dryRun, jsonOut bool
	cmd := &cobra.Command{
		Use:   "load",
		Short: "Load the capture kernel into the crashkernel reservation (kexec -p)",
		Long: `load checks the configuration and the reservation, then loads the
capture kernel, its initramfs and the capture command line with
kexec_file_load(2) and KEXEC_FILE_ON_CRASH, as kexec -s -p does, after
applying KDUMP_SYSCTL. A crash then boots the capture kernel. --dry-run prints what it would load and
loads nothing. Unless --initrd or KDUMP_INITRD names an existing image,
it first builds the capture initramfs (salvage kdump initramfs) at
` + capture.InitrdDir + `/initrd.img-RELEASE, or finds it up to date.

It fails with what to do when the kernel has no kexec, no memory is
reserved, the files do not fit, or lockdown refuses an unsigned kernel.

Examples:
  salvage kdump load --dry-run
  salvage kdump load --kernel /boot/vmlinuz-6.1.0-56-cloud-amd64 --initrd /var/lib/salvage/initrd.img`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := capture.ReadShow(*root, kdumpCollectorCheck)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if initrd == "" && !dryRun && s.Initrd != "" {
				// The capture initramfs is salvage's own, built (or found
				// up to date) here, unless KDUMP_INITRD names one that
				// exists.
				out := filepath.Join(*root, s.Initrd)
				if _, err := os.Stat(out); s.Settings.Tools.Initrd == "" || err != nil {
					r, err := capture.BuildInitramfs(capture.InitramfsOptions{Root: *root, Release: s.Release, Output: out, Check: kdumpCollectorCheck})
					if err != nil {
						return fmt.Errorf("building the capture initramfs: %w", err)
					}
					if !jsonOut {
						state := "built"
						if r.UpToDate {
							state = "up to date"
						}
						fmt.Fprintf(w, "capture initramfs: %s %s (%s)\n", s.Initrd, state, mib(uint64(r.Size)))
					}
				}
			}
			p, err := capture.PlanLoad(*root, s, kernel, initrd)
			if err != nil {
				return err
			}
			if !dryRun {
				if err := capture.ApplySysctls(*root, p.Sysctl); err != nil {
					return err
				}
				if err := capture.Load(*root, p); err != nil {
					return err
				}
			}
			if jsonOut {
				return writeKdumpJSON(w, struct {
					*capture.LoadPlan
					DryRun bool `json:"dry_run"`
				}{p, dryRun})
			}
			if dryRun {
				fmt.Fprintln(w, "would load (dry run):")
			}
			capture.WritePlan(w, p)
			if !dryRun {
				fmt.Fprintln(w, "loaded: ready to kdump")
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&kernel, "kernel", "", "the capture kernel (default KDUMP_KERNEL, else /boot/vmlinuz-RELEASE)")
	fl.StringVar(&initrd, "initrd", "", "its initramfs (default KDUMP_INITRD, else "+capture.InitrdDir+"/initrd.img-RELEASE)")
	fl.BoolVar(&dryRun, "dry-run", false, "print what would be loaded, load nothing")
	fl.BoolVar(&jsonOut, "json", false, "print the plan as JSON")
	return cmd
}

func newKdumpUnloadCmd() *cobra.Command {
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "unload",
		Short: "Unload the capture kernel (kexec -p -u)",
		Long: `unload removes the loaded capture kernel: a crash is then not captured.

Examples:
  salvage kdump unload`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			root, _ := cmd.Flags().GetString("root")
			if err := capture.Unload(root); err != nil {
				return err
			}
			if jsonOut {
				return writeKdumpJSON(cmd.OutOrStdout(), map[string]bool{"unloaded": true})
			}
			fmt.Fprintln(cmd.OutOrStdout(), "unloaded: a crash now is not captured")
			return nil
		},
	}
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print the result as JSON")
	return cmd
}
