package analyze

import "errors"

// psCommand is a placeholder until the command lands.
func psCommand() *Command {
	return &Command{
		Name:    "ps",
		Summary: "list the tasks",
		MaxArgs: -1,
		Run:     func(*Context) error { return errors.New("ps: not implemented yet") },
	}
}
