package analyze

import "errors"

// btCommand is a placeholder until the command lands.
func btCommand() *Command {
	return &Command{
		Name:    "bt",
		Summary: "show a task's stack backtrace",
		MaxArgs: -1,
		Run:     func(*Context) error { return errors.New("bt: not implemented yet") },
	}
}
