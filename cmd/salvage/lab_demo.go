package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/spf13/cobra"

	"salvage/lab"
	"salvage/lab/corpus"
)

// newLabDemoCmd is `salvage lab demo`, what `make demo` runs: a machine
// armed by salvage crashes, its capture kernel saves the dump with
// salvage, and salvage says what happened.
func newLabDemoCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "Crash a lab machine armed by salvage alone, capture its dump in the capture kernel, and analyze it",
		Long: `demo boots the lab's Debian kernel under QEMU as a production machine
whose only kdump tool is salvage: its boot runs 'salvage kdump load', which
builds the capture initramfs (salvage as /init) and loads it with
kexec_file_load. The machine then crashes ('salvage kdump test'); the
capture kernel saves the dump and its dmesg to the machine's disk under
/var/crash/STAMP/; the host copies them off the disk image and runs
'salvage analyze --summary' on the dump, without a vmlinux.

Needs the lab (make lab) and a static salvage (make build).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := corpus.Load(corpus.Dir())
			if err != nil {
				return err
			}
			self, err := os.Executable()
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			l := &lab.Lab{Cache: corpus.Dir(), Log: os.Stderr}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
			defer cancel()
			res, err := l.KdumpDemo(ctx, m, self, w)
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "\ndemo: crash to saved dump in %.0f s; on the machine's disk: %s/\n", res.Took.Seconds(), res.OnDisk)
			fmt.Fprintf(w, "\n$ salvage analyze --summary %s\n", res.Dump)
			an := exec.Command(self, "analyze", "--summary", res.Dump)
			an.Stdout, an.Stderr = w, cmd.ErrOrStderr()
			if err := an.Run(); err != nil {
				return fmt.Errorf("salvage analyze --summary %s: %w", res.Dump, err)
			}
			fmt.Fprintf(w, "\ndemo: the dump is %s\ndemo: its kernel log is %s\n", res.Dump, res.Dmesg)
			fmt.Fprintf(w, "demo: go on with: salvage analyze %s   (sys, bt, ps, log, …; or with the debug vmlinux first)\n", res.Dump)
			return nil
		},
	}
}
