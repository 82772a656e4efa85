package main

import (
	"io"
	"os"

	"github.com/spf13/cobra"

	"salvage/analyze"
)

// stepFlag is a pflag.Value appending to a list shared by -c and -i, so
// that their commands run in the order they were given.
type stepFlag struct {
	steps *[]analyze.Step
	file  bool
}

func (f stepFlag) String() string { return "" }

func (f stepFlag) Type() string {
	if f.file {
		return "file"
	}
	return "command"
}

func (f stepFlag) Set(v string) error {
	if f.file {
		*f.steps = append(*f.steps, analyze.Step{File: v})
	} else {
		*f.steps = append(*f.steps, analyze.Step{Command: v})
	}
	return nil
}

func newAnalyzeCmd() *cobra.Command {
	var steps []analyze.Step
	var summary, summaryJSON bool
	cmd := &cobra.Command{
		Use:   "analyze [flags] [VMLINUX | System.map] DUMP",
		Short: "Open a dump in a crash-compatible session (rd, sym, struct, p, vtop, …)",
		Long: `Opens a crash dump (any format salvage reads; for a split dump, all its
parts) in an analysis session whose commands behave like crash's. VMLINUX,
the kernel image, is optional and may come before or after the dump: with
a debug vmlinux (checked against the dump), symbols and types come from
it; without one, from the kallsyms tables and BTF in the dump's memory. A
System.map among the files (checked against the dump) replaces kallsyms
when there is no vmlinux.
Neither is read until a command needs them (rd -p never does).

With -c or -i the commands run without a banner or prompt, printing only
their output (errors go to standard error), and the exit status is 1 if
any of them failed. Without them, commands are read from standard input:
with a "salvage> " prompt on a terminal, as a script otherwise.`,
		Example: `  salvage analyze vmcore
  salvage analyze -c 'rd -p 1000 8' vmcore
  salvage analyze -c 'rd -8 -p 1000 32' -c 'rd -a -p 3d91ffe0' vmlinux vmcore
  salvage analyze -c 'sym linux_banner' -c 'struct task_struct.comm,pid ffff8884bf59b000' vmcore
  salvage analyze -c 'p jiffies' -c 'vtop ffffffff89f1ffe0' vmlinux vmcore
  salvage analyze -i commands.txt vmlinux vmcore
  salvage analyze --summary vmcore`,
		Args: cobra.RangeArgs(1, 64),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := cmd.InOrStdin()
			if summary || summaryJSON {
				line := "summary"
				if summaryJSON {
					line += " --json"
				}
				steps = append([]analyze.Step{{Command: line}}, steps...)
			}
			failed, err := analyze.Run(analyze.Invocation{
				Files:    args,
				Steps:    steps,
				In:       in,
				Out:      cmd.OutOrStdout(),
				Err:      cmd.ErrOrStderr(),
				Terminal: isTerminal(in),
				Version:  version,
			})
			if err != nil {
				return err
			}
			if failed > 0 {
				return exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().VarP(stepFlag{steps: &steps}, "command", "c", "run `CMD` (repeatable; in order with -i)")
	cmd.Flags().VarP(stepFlag{steps: &steps, file: true}, "input", "i", "run the commands in `FILE`, one a line (# starts a comment)")
	cmd.Flags().BoolVar(&summary, "summary", false, "print what crashed, where and what the kernel said (the summary command), then the -c/-i commands")
	cmd.Flags().BoolVar(&summaryJSON, "summary-json", false, "the summary as JSON")
	return cmd
}

// isTerminal reports whether r is a character device (a terminal),
// without cgo or x/term.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
