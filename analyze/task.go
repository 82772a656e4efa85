package analyze

import "errors"

// taskCommand is a placeholder until the command lands.
func taskCommand() *Command {
	return &Command{
		Name:    "task",
		Summary: "show a task's task_struct and thread_info",
		MaxArgs: -1,
		Run:     func(*Context) error { return errors.New("task: not implemented yet") },
	}
}
