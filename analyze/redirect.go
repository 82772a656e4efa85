package analyze

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// outputTarget is where a command line sends its output, as crash
// allows: "CMD | SHELL PIPELINE", "CMD > FILE" or "CMD >> FILE".
type outputTarget struct {
	pipe   string // a shell pipeline that reads the output
	file   string
	append bool
	// writer, when set, takes the output (a command run by another, such
	// as foreach, writes into the caller's output).
	writer io.Writer
}

// splitOutput separates a command line from its pipe or redirection: the
// first "|" outside quotes, or a ">" or ">>" outside quotes that starts a
// word (so a member path such as "thread_pid->numbers" is not one).
func splitOutput(line string) (cmd string, t outputTarget, err error) {
	var quote byte
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\\':
			i++
		case c == '\'' || c == '"':
			quote = c
		case c == '|':
			t.pipe = strings.TrimSpace(line[i+1:])
			if t.pipe == "" {
				return "", t, errors.New("missing command after |")
			}
			return line[:i], t, nil
		case c == '>' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t'):
			rest := line[i+1:]
			if strings.HasPrefix(rest, ">") {
				t.append, rest = true, rest[1:]
			}
			words, err := splitWords(rest)
			if err != nil {
				return "", t, err
			}
			if len(words) != 1 {
				return "", t, errors.New("a redirection needs exactly one file name")
			}
			t.file = words[0]
			return line[:i], t, nil
		}
	}
	return line, t, nil
}

// open starts the target: the writer the command's output goes to, and a
// function that ends it (closes the file, waits for the pipeline).
func (t outputTarget) open(out, errw io.Writer) (io.Writer, func() error, error) {
	switch {
	case t.file != "":
		flag := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
		if t.append {
			flag = os.O_WRONLY | os.O_CREATE | os.O_APPEND
		}
		// Output of a dump can hold secrets: 0600, as every file salvage makes.
		f, err := os.OpenFile(t.file, flag, 0o600)
		if err != nil {
			return nil, nil, err
		}
		return f, f.Close, nil
	case t.pipe != "":
		// The user's own pipeline, typed at the prompt, as crash runs it.
		cmd := exec.Command("/bin/sh", "-c", t.pipe)
		cmd.Stdout, cmd.Stderr = out, errw
		w, err := cmd.StdinPipe()
		if err != nil {
			return nil, nil, err
		}
		if err := cmd.Start(); err != nil {
			return nil, nil, fmt.Errorf("cannot run %q: %w", t.pipe, err)
		}
		return w, func() error {
			w.Close()
			err := cmd.Wait()
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return nil // grep finding nothing is not the command's failure
			}
			return err
		}, nil
	}
	return out, func() error { return nil }, nil
}
