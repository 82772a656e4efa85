package analyze

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"salvage/debuginfo"
	"salvage/dump"
	"salvage/kernel"
)

// Session is one analysis of one dump: the commands and the state they
// share. Command output goes to Out; each failure is reported as one line
// on Err, "NAME: message", and the session goes on.
type Session struct {
	Dump *dump.File
	// Vmlinux is the kernel image given with the dump, "" when none was:
	// symbols and types then come from the dump's kallsyms and BTF.
	Vmlinux string
	// SystemMap is a System.map given with the dump (without a vmlinux,
	// its symbols replace the dump's kallsyms).
	SystemMap string
	// Types, when set before the first command that needs the kernel,
	// are used instead of loading the vmlinux's DWARF or the dump's BTF
	// (several sessions on dumps of one kernel share them).
	Types debuginfo.Types
	Out   io.Writer
	Err   io.Writer
	// NoShell refuses pipes and redirections: a session whose commands
	// come from somewhere untrusted (a fuzzer) must not run shell
	// pipelines or write files.
	NoShell bool

	commands *Table
	done     bool

	kern     *kernel.Kernel // see Kernel
	kernErr  error
	kernDone bool
	history  int // values p has printed: gdb's $N
	// pageHeaderDone: a vtop has printed the page table's header, which
	// crash prints once a session.
	pageHeaderDone bool
	context        taskContext       // the current task (set)
	aliases        map[string]string // alias NAME → command line
	modObjects     map[string]string // module → debug object loaded by mod -s/-S
}

// NewSession starts a session on d with the built-in commands.
func NewSession(d *dump.File, vmlinux string, out, errw io.Writer) *Session {
	t, err := NewTable(builtinCommands()...)
	if err != nil {
		// The built-in table is fixed at compile time; a clash is a bug
		// that every test run catches.
		panic(err)
	}
	return &Session{Dump: d, Vmlinux: vmlinux, Out: out, Err: errw, commands: t}
}

// Commands is the session's command table.
func (s *Session) Commands() *Table { return s.commands }

// Done reports whether a quit command ended the session.
func (s *Session) Done() bool { return s.done }

// Exec runs one command line. Blank lines and #-comments do nothing. A
// failure is reported on s.Err and also returned, so scripts can count
// them.
func (s *Session) Exec(line string) error {
	line, target, err := splitOutput(line)
	if err != nil {
		return s.report("salvage", err)
	}
	if s.NoShell && (target.pipe != "" || target.file != "") {
		return s.report("salvage", errors.New("pipes and redirections are off in this session"))
	}
	words, err := splitWords(line)
	if err != nil {
		return s.report("salvage", err)
	}
	if len(words) == 0 || strings.HasPrefix(words[0], "#") {
		return nil
	}
	if s.commands.Lookup(words[0]) == nil {
		// An alias stands for its command line, the rest appended; one
		// level only, so an alias cannot loop.
		if a := s.aliasFor(words[0]); a != "" {
			aw, err := splitWords(a)
			if err != nil {
				return s.report(words[0], err)
			}
			words = append(aw, words[1:]...)
		}
	}
	return s.execWords(words, target)
}

// execWords runs one command, given as words, sending its output to
// target (the terminal when target is empty).
func (s *Session) execWords(words []string, target outputTarget) error {
	cmd := s.commands.Lookup(words[0])
	if name, format, ok := strings.Cut(words[0], "/"); cmd == nil && ok && format != "" {
		// gdb's print format: "p/x jiffies" is "p -x jiffies".
		if cmd = s.commands.Lookup(name); cmd != nil {
			words = append([]string{name, "-" + format}, words[1:]...)
		}
	}
	if cmd == nil {
		return s.report("salvage", fmt.Errorf("command not found: %s (\"help\" lists the commands)", words[0]))
	}
	args, jsonOut, help := sessionFlags(words[1:])
	if help {
		return s.Exec("help " + cmd.Name)
	}
	var opts Options
	operands := args
	var err error
	if !cmd.RawArgs {
		opts, operands, err = parseOptions(cmd.Options, args)
	}
	if err == nil {
		switch {
		case len(operands) < cmd.MinArgs:
			err = usagef("missing operand")
		case cmd.MaxArgs >= 0 && len(operands) > cmd.MaxArgs:
			err = usagef("too many operands: %s", strings.Join(operands[cmd.MaxArgs:], " "))
		}
	}
	if err != nil {
		return s.report(cmd.Name, err)
	}
	dest, finish, err := target.open(s.Out, s.Err)
	if err != nil {
		return s.report(cmd.Name, err)
	}
	if target.writer != nil {
		dest = target.writer
	}
	out := bufio.NewWriter(dest)
	ctx := &Context{Session: s, Dump: s.Dump, Command: cmd, Args: operands, Opts: opts, Out: out, JSON: jsonOut}
	err = run(cmd, ctx)
	if ferr := out.Flush(); err == nil && ferr != nil {
		err = ferr
	}
	if ferr := finish(); err == nil && ferr != nil {
		err = ferr
	}
	if err != nil {
		return s.report(cmd.Name, err)
	}
	return nil
}

// sessionFlags removes the flags every command takes, --json and --help,
// from args (up to a "--").
func sessionFlags(args []string) (rest []string, jsonOut, help bool) {
	for i, a := range args {
		switch a {
		case "--":
			return append(rest, args[i:]...), jsonOut, help
		case "--json":
			jsonOut = true
		case "--help":
			help = true
		default:
			rest = append(rest, a)
		}
	}
	return rest, jsonOut, help
}

// run calls the command, turning a panic into an error: one broken
// command must not end the session.
func run(cmd *Command, ctx *Context) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("internal error (this is a bug in salvage): %v", r)
		}
	}()
	return cmd.Run(ctx)
}

func (s *Session) report(name string, err error) error {
	msg := err.Error()
	var ue *UsageError
	if errors.As(err, &ue) {
		if c := s.commands.Lookup(name); c != nil {
			msg += " (usage: " + c.Synopsis() + ")"
		}
	}
	fmt.Fprintf(s.Err, "%s: %s\n", name, msg)
	return err
}

// RunScript runs commands in order, as -c and -i give them, until they
// end or one quits the session. It returns how many failed.
func (s *Session) RunScript(lines []string) (failed int) {
	for _, l := range lines {
		if s.done {
			break
		}
		if s.Exec(l) != nil {
			failed++
		}
	}
	return failed
}

// LineReader is where an interactive session reads its commands, behind an
// interface so that line editing and history can replace the plain reader.
type LineReader interface {
	// ReadLine shows prompt and returns the next line without its line
	// end; io.EOF when input ends.
	ReadLine(prompt string) (string, error)
}

// Interact reads and runs commands from r until a quit command or the end
// of input.
func (s *Session) Interact(r LineReader, prompt string) error {
	for !s.done {
		line, err := r.ReadLine(prompt)
		if err == io.EOF {
			fmt.Fprintln(s.Out)
			return nil
		}
		if err != nil {
			return err
		}
		s.Exec(line)
	}
	return nil
}

// plainReader is a LineReader without editing: it writes the prompt and
// reads a line.
type plainReader struct {
	in  *bufio.Reader
	out io.Writer
}

// NewPlainReader returns a LineReader that prompts on out and reads lines
// from in.
func NewPlainReader(in io.Reader, out io.Writer) LineReader {
	return &plainReader{in: bufio.NewReader(in), out: out}
}

func (p *plainReader) ReadLine(prompt string) (string, error) {
	if prompt != "" {
		io.WriteString(p.out, prompt)
	}
	line, err := p.in.ReadString('\n')
	line = strings.TrimRight(line, "\r\n")
	if err == io.EOF && line != "" {
		// A last line without a newline is still a line.
		return line, nil
	}
	return line, err
}

// ReadScript reads an -i file: one command per line; blank lines and
// lines starting with # are skipped.
func ReadScript(r io.Reader) ([]string, error) {
	var lines []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		lines = append(lines, l)
	}
	return lines, sc.Err()
}
