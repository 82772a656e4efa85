package analyze

import "errors"

// logCommand is a placeholder until the command lands.
func logCommand() *Command {
	return &Command{
		Name:    "log",
		Summary: "print the kernel's message buffer",
		MaxArgs: -1,
		Run:     func(*Context) error { return errors.New("log: not implemented yet") },
	}
}
