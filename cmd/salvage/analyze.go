package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"salvage/analyze"
)

// scriptStep is one -c command or one -i file, in command-line order.
type scriptStep struct {
	command string // a -c command, or
	file    string // an -i file
}

// scriptFlag is a pflag.Value that appends to a shared list of steps, so
// that -c and -i run in the order they were given.
type scriptFlag struct {
	steps *[]scriptStep
	file  bool
}

func (f scriptFlag) String() string { return "" }
func (f scriptFlag) Type() string {
	if f.file {
		return "file"
	}
	return "command"
}

func (f scriptFlag) Set(v string) error {
	if f.file {
		*f.steps = append(*f.steps, scriptStep{file: v})
	} else {
		*f.steps = append(*f.steps, scriptStep{command: v})
	}
	return nil
}

func newAnalyzeCmd() *cobra.Command {
	var steps []scriptStep
	cmd := &cobra.Command{
		Use:   "analyze [flags] [VMLINUX] DUMP",
		Short: "Open a dump in a crash-compatible session (rd, help, …)",
		Long: `Opens a crash dump (any format salvage reads; for a split dump, all its
parts) in an analysis session whose commands behave like crash's. VMLINUX,
the kernel image, is optional and may come before or after the dump.

With -c or -i the commands run without a banner or prompt, printing only
their output (errors go to standard error), and the exit status is 1 if
any of them failed. Without them, commands are read from standard input:
with a "salvage> " prompt on a terminal, like a script otherwise.`,
		Example: `  salvage analyze vmcore
  salvage analyze -c 'rd -p 1000 8' vmcore
  salvage analyze -c 'rd -8 -p 1000 32' -c 'rd -a -p 3d91ffe0' vmlinux vmcore
  salvage analyze -i commands.txt vmlinux vmcore`,
		Args: cobra.RangeArgs(1, 16),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAnalyze(cmd, args, steps)
		},
	}
	cmd.Flags().VarP(scriptFlag{steps: &steps}, "command", "c", "run `CMD` (repeatable; in order with -i)")
	cmd.Flags().VarP(scriptFlag{steps: &steps, file: true}, "input", "i", "run the commands in `FILE`, one a line (# starts a comment)")
	return cmd
}

func runAnalyze(cmd *cobra.Command, args []string, steps []scriptStep) error {
	// Read the scripts first: a missing -i file should fail before a
	// large dump is opened.
	var lines []string
	for _, s := range steps {
		if s.file == "" {
			lines = append(lines, s.command)
			continue
		}
		l, err := readScriptFile(s.file)
		if err != nil {
			return err
		}
		lines = append(lines, l...)
	}
	out, errw := cmd.OutOrStdout(), cmd.ErrOrStderr()
	s, err := analyze.Open(args, out, errw)
	if err != nil {
		return err
	}
	defer s.Close()

	in := cmd.InOrStdin()
	if len(steps) == 0 && isTerminal(in) {
		fmt.Fprint(out, banner(s))
		return s.Interact(analyze.NewPlainReader(in, out), "salvage> ")
	}
	if len(steps) == 0 {
		l, err := analyze.ReadScript(in)
		if err != nil {
			return fmt.Errorf("standard input: %w", err)
		}
		lines = l
	}
	if failed := s.RunScript(lines); failed > 0 {
		return exitError{code: 1}
	}
	return nil
}

func readScriptFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	lines, err := analyze.ReadScript(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return lines, nil
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

func banner(s *analyze.Session) string {
	var b strings.Builder
	d := s.Dump
	fmt.Fprintf(&b, "salvage %s: %s (%s", version, d.Path, d.Format)
	if d.Inner != "" && d.Inner != d.Format {
		fmt.Fprintf(&b, " of %s", d.Inner)
	}
	if d.Arch != "" {
		fmt.Fprintf(&b, ", %s", d.Arch)
	}
	if d.CPUs > 0 {
		fmt.Fprintf(&b, ", %d CPUs", d.CPUs)
	}
	b.WriteString(")\n")
	if d.Incomplete {
		b.WriteString("warning: the dump is marked incomplete: some pages are missing\n")
	}
	if s.Vmlinux == "" {
		b.WriteString("no vmlinux given: physical memory only (rd -p)\n")
	} else {
		fmt.Fprintf(&b, "vmlinux: %s (symbols are not read yet: physical memory only)\n", s.Vmlinux)
	}
	b.WriteString("\"help\" lists the commands, \"q\" quits.\n\n")
	return b.String()
}
