package main

import (
	"os"

	"github.com/spf13/cobra"

	"salvage/lab"
	"salvage/lab/corpus"
)

func newLabCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "Developer lab: real Debian kernels crashed under QEMU, with crash's reference outputs",
	}
	var scenarios []string
	var noRefs bool
	build := &cobra.Command{
		Use:   "build",
		Short: "Build (or find in the cache) the corpus of real crash dumps and write manifest.json",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			l := &lab.Lab{Cache: corpus.Dir(), Log: os.Stderr}
			_, err := l.Build(lab.Options{Scenarios: scenarios, References: !noRefs})
			return err
		},
	}
	build.Flags().StringSliceVar(&scenarios, "scenario", nil, "scenarios to build (live, sysrq, oops, hung); default all")
	build.Flags().BoolVar(&noRefs, "no-refs", false, "skip the reference tools")
	cmd.AddCommand(build)
	return cmd
}
