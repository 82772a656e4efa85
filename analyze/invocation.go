package analyze

import (
	"debug/elf"
	"fmt"
	"io"
	"os"
	"salvage/debuginfo"
	"salvage/kernel"
	"strings"
)

// Step is one -c command or one -i file of `salvage analyze`, kept in
// command-line order.
type Step struct {
	Command string // a -c command, or
	File    string // an -i file
}

// Invocation is a `salvage analyze` command line, decoded.
type Invocation struct {
	Files []string // [VMLINUX] DUMP…, in any order
	Steps []Step
	In    io.Reader
	Out   io.Writer
	Err   io.Writer
	// Terminal says In is a terminal: without steps, the session is then
	// interactive (banner and prompt); otherwise In is read as a script.
	Terminal bool
	Version  string // for the banner
}

// Run opens the dump and runs the session. err is a failure to start (a
// missing or malformed dump, an unreadable script): one line naming the
// file. failed counts the commands of a script that failed.
func Run(inv Invocation) (failed int, err error) {
	// Scripts are read first: a missing -i file should fail before a
	// large dump is opened.
	var lines []string
	for _, s := range inv.Steps {
		if s.File == "" {
			lines = append(lines, s.Command)
			continue
		}
		l, err := readScriptFile(s.File)
		if err != nil {
			return 0, err
		}
		lines = append(lines, l...)
	}
	s, err := Open(inv.Files, inv.Out, inv.Err)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	if err := s.checkVmlinux(); err != nil {
		return 0, err
	}

	if len(inv.Steps) == 0 {
		if inv.Terminal {
			io.WriteString(inv.Out, Banner(s, inv.Version))
			s.startupSys()
			if f, ok := inv.In.(*os.File); ok && f == os.Stdin {
				// The line editor works on the process's own terminal.
				r := NewEditReader(s)
				defer r.Close()
				return 0, s.Interact(r, "salvage> ")
			}
			return 0, s.Interact(NewPlainReader(inv.In, inv.Out), "salvage> ")
		}
		if lines, err = ReadScript(inv.In); err != nil {
			return 0, fmt.Errorf("standard input: %w", err)
		}
	}
	return s.RunScript(lines), nil
}

func readScriptFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	lines, err := ReadScript(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return lines, nil
}

// Banner is what an interactive session prints first: the dump, and where
// its symbols and types come from.
func Banner(s *Session, version string) string {
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
		b.WriteString("no vmlinux given: symbols and types come from the dump's kallsyms and BTF\n")
	} else {
		fmt.Fprintf(&b, "vmlinux: %s (symbols and types are read on first use)\n", s.Vmlinux)
	}
	b.WriteString("\"help\" lists the commands, \"q\" quits.\n\n")
	return b.String()
}

// startupSys prints what crash prints when a session starts: the sys
// block and the current (panic) task, aligned with it. A kernel that
// cannot be modelled gets its error, and the session goes on.
func (s *Session) startupSys() {
	if s.Exec("sys") != nil {
		fmt.Fprintln(s.Out)
		return
	}
	if t, err := s.CurrentTask(); err == nil {
		k, _ := s.Kernel()
		state := longStateName(kernel.StateCode(t.State))
		switch {
		case k.PanickedTask() == t.Task:
			state += " (PANIC)"
		case t.Active:
			state += " (ACTIVE)"
		}
		fmt.Fprintf(s.Out, "         PID: %d\n     COMMAND: %q\n        TASK: %x  [THREAD_INFO: %x]\n         CPU: %d\n       STATE: %s\n",
			t.PID, t.Comm, t.Task, t.Task, t.CPU, state)
	}
	fmt.Fprintln(s.Out)
}

// checkVmlinux refuses, before any command runs, a vmlinux whose build ID
// differs from the dump's: the kernel model then says exactly what differs
// and which package holds the right one. Symbols and types still load on
// first use when they match.
func (s *Session) checkVmlinux() error {
	if s.Vmlinux == "" {
		return nil
	}
	want := strings.ToLower(s.Dump.VMCoreInfo.BuildID())
	if want == "" {
		return nil // nothing to compare with here; the kernel model checks the banner
	}
	got, err := elfBuildID(s.Vmlinux)
	if err != nil {
		return fmt.Errorf("%s: %w", s.Vmlinux, err)
	}
	if strings.EqualFold(got, want) {
		return nil
	}
	if _, err := s.Kernel(); err != nil {
		return err
	}
	return fmt.Errorf("%s: build ID %s does not match the dump's %s", s.Vmlinux, got, want)
}

// elfBuildID reads only the GNU build-ID note of an ELF file: the check
// above must not cost what loading the symbols costs.
func elfBuildID(path string) (string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if id := debuginfo.BuildID(f); id != "" {
		return id, nil
	}
	return "", fmt.Errorf("no GNU build-ID note")
}
