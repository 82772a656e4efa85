package analyze

import (
	"encoding/json"
	"fmt"
	"strings"

	"salvage/debuginfo"
)

// builtinCommands lists every session command: these, and those
// registered by their own files.
func builtinCommands() []*Command {
	cmds := []*Command{
		helpCommand(),
		quitCommand(),
		rdCommand(),
		symCommand(),
		vtopCommand(),
		ptovCommand(),
		structCommand(debuginfo.KindStruct),
		structCommand(debuginfo.KindUnion),
		whatisCommand(),
		pCommand(),
		sysCommand(),
		psCommand(),
		btCommand(),
		logCommand(),
		taskCommand(),
		disCommand(),
		setCommand(),
		aliasCommand(),
		foreachCommand(),
		summaryCommand(),
		modCommand(),
	}
	for _, c := range registered {
		cmds = append(cmds, c())
	}
	return cmds
}

// registered are the commands whose files register them (register, from
// an init function): a command is then its own file and nothing more.
var registered []func() *Command

// register adds a command to every session's table.
func register(c func() *Command) { registered = append(registered, c) }

func helpCommand() *Command {
	return &Command{
		Name:    "help",
		Aliases: []string{"h", "?"},
		Summary: "list the commands, or describe one",
		Usage:   "[COMMAND]",
		Help: `Without an argument, lists the commands with a line about each. With one,
shows that command's synopsis, description, options and examples.
Every command also takes --json (structured output) and --help.

Examples:
  help
  help rd
`,
		MaxArgs: 1,
		Run:     runHelp,
	}
}

// commandJSON is a command as `help --json` describes it.
type commandJSON struct {
	Name    string       `json:"name"`
	Aliases []string     `json:"aliases,omitempty"`
	Summary string       `json:"summary"`
	Usage   string       `json:"usage"`
	Help    string       `json:"help,omitempty"`
	Options []optionJSON `json:"options,omitempty"`
}

type optionJSON struct {
	Name string `json:"name"`
	Arg  string `json:"arg,omitempty"`
	Help string `json:"help"`
}

func describe(c *Command, full bool) commandJSON {
	j := commandJSON{Name: c.Name, Aliases: c.Aliases, Summary: c.Summary, Usage: c.Synopsis()}
	if full {
		j.Help = c.Help
		for _, o := range c.Options {
			j.Options = append(j.Options, optionJSON{Name: "-" + o.Name, Arg: o.Arg, Help: o.Help})
		}
	}
	return j
}

func runHelp(ctx *Context) error {
	t := ctx.Session.Commands()
	if len(ctx.Args) == 0 {
		cmds := t.Commands()
		if ctx.JSON {
			var all []commandJSON
			for _, c := range cmds {
				all = append(all, describe(c, false))
			}
			return writeJSON(ctx, all)
		}
		width := 0
		for _, c := range cmds {
			width = max(width, len(c.Name))
		}
		for _, c := range cmds {
			line := fmt.Sprintf("  %-*s  %s", width, c.Name, c.Summary)
			if len(c.Aliases) > 0 {
				line += " (also: " + strings.Join(c.Aliases, ", ") + ")"
			}
			fmt.Fprintln(ctx.Out, line)
		}
		fmt.Fprintln(ctx.Out, "\n\"help COMMAND\" describes a command.")
		return nil
	}
	c := t.Lookup(ctx.Args[0])
	if c == nil {
		return fmt.Errorf("no such command: %s", ctx.Args[0])
	}
	if ctx.JSON {
		return writeJSON(ctx, describe(c, true))
	}
	fmt.Fprintf(ctx.Out, "%s - %s\n\nusage: %s\n", c.Name, c.Summary, c.Synopsis())
	if len(c.Aliases) > 0 {
		fmt.Fprintf(ctx.Out, "aliases: %s\n", strings.Join(c.Aliases, ", "))
	}
	if c.Help != "" {
		fmt.Fprintf(ctx.Out, "\n%s", strings.TrimRight(c.Help, "\n")+"\n")
	}
	if len(c.Options) > 0 {
		fmt.Fprintf(ctx.Out, "\nOptions:\n%s", optionsUsage(c.Options))
	}
	return nil
}

func quitCommand() *Command {
	return &Command{
		Name:    "quit",
		Aliases: []string{"q", "exit"},
		Summary: "end the session",
		Help: `Ends the session. In a script (-c or -i), the commands after it are not run.
`,
		MaxArgs: 0,
		Run: func(ctx *Context) error {
			ctx.Session.done = true
			return nil
		},
	}
}

// writeJSON writes v as one indented JSON document.
func writeJSON(ctx *Context, v any) error {
	enc := json.NewEncoder(ctx.Out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
