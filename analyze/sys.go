package analyze

import "errors"

// sysCommand is a placeholder until the command lands.
func sysCommand() *Command {
	return &Command{
		Name:    "sys",
		Summary: "show system data",
		MaxArgs: -1,
		Run:     func(*Context) error { return errors.New("sys: not implemented yet") },
	}
}
