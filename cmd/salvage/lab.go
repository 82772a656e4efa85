package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"salvage/lab"
	"salvage/lab/corpus"
)

func newLabCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "Developer lab: real Debian kernels crashed under QEMU, with crash's reference outputs",
	}
	var scenarios, kernels []string
	var noRefs, bench bool
	build := &cobra.Command{
		Use:   "build",
		Short: "Build (or find in the cache) the corpus of real crash dumps and write manifest.json",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			l := &lab.Lab{Cache: corpus.Dir(), Log: os.Stderr}
			if bench {
				_, err := l.BuildBench()
				return err
			}
			_, err := l.Build(lab.Options{Scenarios: scenarios, Kernels: kernels, References: !noRefs})
			return err
		},
	}
	build.Flags().StringSliceVar(&scenarios, "scenario", nil, "scenarios to build (live, sysrq, oops, hung); default all")
	build.Flags().StringSliceVar(&kernels, "kernels", nil, "kernels to crash (6.1, 6.12); default $SALVAGE_LAB_KERNELS, else 6.1")
	build.Flags().BoolVar(&noRefs, "no-refs", false, "skip the reference tools")
	build.Flags().BoolVar(&bench, "bench", false, "build only the bench crash (a 6 GiB guest, for make bench), apart from the manifest")
	show := &cobra.Command{
		Use:   "show KEY",
		Short: "Print one reference output (e.g. sys, bt, crash-8.0.2:sys, drgn:ps) of every dump in the corpus",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := corpus.Load(corpus.Dir())
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			for _, d := range m.Dumps {
				fmt.Fprintf(w, "==> %s (%s, %s, %s) <==\n", d.ID, d.Producer, d.Format, d.Compression)
				text, ok, err := m.Ref(d, args[0])
				switch {
				case err != nil:
					return err
				case ok:
					fmt.Fprintf(w, "crash> %s\n%s\n", d.RefCommands[args[0]], strings.TrimRight(text, "\n"))
				case d.RefErrors[args[0]] != "":
					fmt.Fprintf(w, "(%s)\n", shortError(d.RefErrors[args[0]]))
					for _, alt := range []string{"drgn:", "crash-8.0.2:"} {
						if text, ok, _ := m.Ref(d, alt+args[0]); ok {
							fmt.Fprintf(w, "%s answer instead:\n%s\n", strings.TrimSuffix(alt, ":"), strings.TrimRight(text, "\n"))
							break
						}
					}
				default:
					fmt.Fprintf(w, "(no reference output %q)\n", args[0])
				}
				fmt.Fprintln(w)
			}
			return nil
		},
	}
	cmd.AddCommand(build, show, newLabDemoCmd())
	return cmd
}

// shortError keeps the tool and crash's own words of a recorded error.
func shortError(e string) string {
	tool, rest, _ := strings.Cut(e, ": ")
	for _, part := range strings.Split(rest, " | ") {
		if msg, ok := strings.CutPrefix(strings.TrimSpace(part), "crash: "); ok {
			return tool + " failed: " + msg
		}
	}
	if len(e) > 160 {
		e = e[:160] + "…"
	}
	return e
}
