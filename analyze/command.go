package analyze

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"salvage/dump"
)

// Command is one session command. A command declares its crash-style
// options; the session parses them (see parseOptions) before Run, so Run
// sees only the operands in Context.Args and the options in Context.Opts.
type Command struct {
	Name    string
	Aliases []string
	// Summary is the one line `help` lists.
	Summary string
	// Usage is the synopsis after the name, e.g. "[-8|-16|-32|-64] -p ADDRESS [COUNT]".
	Usage string
	// Help is the description `help NAME` prints after the synopsis:
	// what the command does, then its examples.
	Help    string
	Options []Option
	// RawArgs hands every word after the name to Run as an operand,
	// options included (alias and foreach pass them on to a command).
	RawArgs bool
	// MinArgs and MaxArgs bound the number of operands; MaxArgs < 0 means
	// no limit. Outside them the session reports a usage error.
	MinArgs, MaxArgs int
	Run              func(ctx *Context) error
}

// Option is one crash-style option: a dash and a name that is a letter
// ("p") or a number ("8", "64"). Options without an argument combine
// ("-8p"); an option's argument follows it directly or as the next word.
type Option struct {
	Name string
	Arg  string // the argument's name in help ("ADDRESS"); "" when it takes none
	Help string
}

// Context is what a command runs with.
type Context struct {
	Session *Session
	Dump    *dump.File
	Command *Command
	Args    []string // operands, options removed
	Opts    Options  // options in command-line order
	Out     io.Writer
	// JSON is set when the command was given --json: it writes one JSON
	// document instead of its text output.
	JSON bool
}

// UsageError reports a command invoked wrongly; the session adds the
// command's synopsis to the message.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// usagef returns a *UsageError.
func usagef(format string, args ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, args...)}
}

// Synopsis is the command's one-line usage: its name and Usage.
func (c *Command) Synopsis() string {
	if c.Usage == "" {
		return c.Name
	}
	return c.Name + " " + c.Usage
}

// Table is a set of commands, found by name or alias.
type Table struct {
	byName map[string]*Command
	list   []*Command
}

// NewTable makes a table of cmds; names and aliases must be unique.
func NewTable(cmds ...*Command) (*Table, error) {
	t := &Table{byName: map[string]*Command{}}
	for _, c := range cmds {
		if err := t.Add(c); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Add registers c under its name and aliases.
func (t *Table) Add(c *Command) error {
	if c.Name == "" || c.Run == nil {
		return fmt.Errorf("command %q: needs a name and a Run function", c.Name)
	}
	names := append([]string{c.Name}, c.Aliases...)
	for _, n := range names {
		if n == "" || strings.ContainsAny(n, " \t") {
			return fmt.Errorf("command %s: bad name or alias %q", c.Name, n)
		}
		if other, ok := t.byName[n]; ok {
			return fmt.Errorf("command %s: %q is already taken by %s", c.Name, n, other.Name)
		}
	}
	for _, n := range names {
		t.byName[n] = c
	}
	t.list = append(t.list, c)
	sort.Slice(t.list, func(i, j int) bool { return t.list[i].Name < t.list[j].Name })
	return nil
}

// Lookup finds a command by name or alias; nil when there is none.
func (t *Table) Lookup(name string) *Command { return t.byName[name] }

// Commands lists the commands sorted by name.
func (t *Table) Commands() []*Command { return append([]*Command(nil), t.list...) }
