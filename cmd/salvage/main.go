// Command salvage is the Linux kernel crash-dump system: it arms a machine
// for kdump, collects and filters dumps, and analyzes them the way crash
// does. See README.md.
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"

	"github.com/spf13/cobra"
)

// exitError carries a process exit status out of a command without
// printing anything more (the command already reported).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "salvage",
		Short:         "Linux kernel crash dumps: capture, collect and analyze",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newVersionCmd(),
		newLabCmd(),
	)
	addFormatCommands(root)
	return root
}

func main() {
	// SALVAGE_CPUPROFILE=FILE writes a CPU profile of the run (go tool pprof).
	if p := os.Getenv("SALVAGE_CPUPROFILE"); p != "" {
		if f, err := os.Create(p); err == nil {
			pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	// Installed (or linked) as makedumpfile, salvage is the collector with
	// makedumpfile's command line, so core_collector lines work unchanged.
	var err error
	if os.Getpid() == 1 {
		// /init of the capture initramfs: save the dump, then reboot.
		err = captureInitMain()
	} else if filepath.Base(os.Args[0]) == "makedumpfile" {
		err = makedumpfileMain(os.Args[1:])
	} else {
		err = newRootCmd().Execute()
	}
	if err == nil {
		return
	}
	var ee exitError
	pprof.StopCPUProfile()
	if errors.As(err, &ee) {
		os.Exit(ee.code)
	}
	fmt.Fprintf(os.Stderr, "salvage: %v\n", err)
	os.Exit(1)
}
