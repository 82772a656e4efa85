package analyze

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/peterh/liner"

	"salvage/debuginfo"
)

// maxCompletions bounds what one TAB offers.
const maxCompletions = 200

// editReader is the interactive LineReader: line editing, a history kept
// across sessions, and TAB completion of commands, symbols, members and
// PIDs.
type editReader struct {
	st      *liner.State
	history string
}

// NewEditReader returns the terminal's line editor for s. Its history is
// kept in HistoryFile(); Close saves it.
func NewEditReader(s *Session) *editReader {
	st := liner.NewLiner()
	st.SetCtrlCAborts(false)
	st.SetTabCompletionStyle(liner.TabPrints)
	st.SetWordCompleter(func(line string, pos int) (string, []string, string) {
		return completeWord(s, line, pos)
	})
	r := &editReader{st: st, history: HistoryFile()}
	if f, err := os.Open(r.history); err == nil {
		st.ReadHistory(f)
		f.Close()
	}
	return r
}

func (r *editReader) ReadLine(prompt string) (string, error) {
	line, err := r.st.Prompt(prompt)
	switch {
	case errors.Is(err, liner.ErrPromptAborted):
		return "", nil
	case err != nil:
		return "", err
	}
	if strings.TrimSpace(line) != "" {
		r.st.AppendHistory(line)
	}
	return line, nil
}

// Close restores the terminal and saves the history (0600: commands name
// addresses and values of the dump).
func (r *editReader) Close() error {
	if r.history != "" {
		if err := os.MkdirAll(filepath.Dir(r.history), 0o700); err == nil {
			if f, err := os.OpenFile(r.history, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600); err == nil {
				r.st.WriteHistory(f)
				f.Close()
			}
		}
	}
	return r.st.Close()
}

// HistoryFile is where the analyzer keeps its command history:
// $SALVAGE_HISTORY, else $XDG_STATE_HOME/salvage/history, else
// ~/.local/state/salvage/history.
func HistoryFile() string {
	if p := os.Getenv("SALVAGE_HISTORY"); p != "" {
		return p
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "salvage", "history")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".local", "state", "salvage", "history")
}

// completeWord completes the word before pos: a command name as the
// first word; after it a member of a struct ("task_struct.se.vr"), a
// PID (digits), or a kernel symbol.
func completeWord(s *Session, line string, pos int) (head string, completions []string, tail string) {
	head, tail = line[:pos], line[pos:]
	start := strings.LastIndexAny(head, " \t") + 1
	word := head[start:]
	head = head[:start]
	if strings.TrimSpace(head) == "" {
		for _, c := range s.commands.Commands() {
			for _, n := range append([]string{c.Name}, c.Aliases...) {
				if strings.HasPrefix(n, word) {
					completions = append(completions, n+" ")
				}
			}
		}
		sort.Strings(completions)
		return head, completions, tail
	}
	if word == "" || strings.HasPrefix(word, "-") {
		return head, nil, tail
	}
	k, err := s.Kernel()
	if err != nil {
		return head, nil, tail
	}
	switch {
	case strings.Contains(word, "."):
		completions = completeMember(s, word)
	case isDecimal(word):
		for task, err := range k.Tasks() {
			if err != nil {
				break
			}
			if v, err := task.Member("pid"); err == nil {
				if pid, err := v.Int(); err == nil && strings.HasPrefix(strconv.FormatInt(pid, 10), word) {
					completions = append(completions, strconv.FormatInt(pid, 10)+" ")
				}
			}
		}
	default:
		if k.Symbols != nil {
			seen := map[string]bool{}
			for _, sym := range k.Symbols.Match(word) {
				if strings.HasPrefix(sym.Name, word) && !seen[sym.Name] {
					seen[sym.Name] = true
					completions = append(completions, sym.Name+" ")
				}
			}
		}
	}
	sort.Strings(completions)
	if len(completions) > maxCompletions {
		completions = completions[:maxCompletions]
	}
	return head, completions, tail
}

// completeMember completes "TYPE.member.sub" through struct and union
// members.
func completeMember(s *Session, word string) []string {
	k, err := s.Kernel()
	if err != nil || k.Types == nil {
		return nil
	}
	parts := strings.Split(word, ".")
	t, err := k.Types.Struct(parts[0])
	if err != nil {
		if t, err = k.Types.Union(parts[0]); err != nil {
			return nil
		}
	}
	prefix := parts[0]
	for _, p := range parts[1 : len(parts)-1] {
		found := false
		for _, m := range t.Resolve().Members {
			if m.Name == p {
				t, found = m.Type, true
				break
			}
		}
		if !found {
			return nil
		}
		prefix += "." + p
	}
	last := parts[len(parts)-1]
	var out []string
	var add func(t *debuginfo.Type)
	add = func(t *debuginfo.Type) {
		for _, m := range t.Resolve().Members {
			switch {
			case m.Name == "":
				// An anonymous struct or union: its members are the outer's.
				add(m.Type)
			case strings.HasPrefix(m.Name, last):
				out = append(out, prefix+"."+m.Name)
			}
		}
	}
	add(t)
	return out
}

var _ io.Closer = (*editReader)(nil)
