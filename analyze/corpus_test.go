package analyze

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"salvage/dump"
	"salvage/lab/corpus"
)

// TestRdCorpus runs, on every corpus dump, the rd commands crash 8.0.6 ran
// for its references (refs "rd", "rd-8", …) and compares salvage's output
// with crash's byte for byte.
func TestRdCorpus(t *testing.T) {
	m := corpus.Require(t)
	withRefs := 0
	for _, d := range m.Dumps {
		var kinds []string
		for k := range d.Refs {
			if k == "rd" || strings.HasPrefix(k, "rd-") {
				kinds = append(kinds, k)
			}
		}
		if len(kinds) == 0 {
			continue
		}
		sort.Strings(kinds)
		withRefs++
		t.Run(d.ID, func(t *testing.T) {
			f, err := dump.Open(m.Paths(d)...)
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			defer f.Close()
			for _, k := range kinds {
				ref, ok, err := m.Ref(d, k)
				if err != nil || !ok {
					t.Errorf("%s: reference: %v", k, err)
					continue
				}
				cmd, want, err := refCommand(m.Path(d.Refs[k]), ref)
				if err != nil {
					t.Errorf("%s: %v", k, err)
					continue
				}
				want = terminateString(cmd, want)
				var out, errw bytes.Buffer
				s := NewSession(f, "", &out, &errw)
				if err := s.Exec(cmd); err != nil {
					t.Errorf("%s: %s", cmd, errw.String())
					continue
				}
				if got := out.String(); got != want {
					t.Errorf("%s (%s) differs from crash:\n%s", cmd, d.Refs[k], lineDiff(got, want))
				}
			}
		})
	}
	if withRefs == 0 {
		t.Errorf("no corpus dump has an rd reference")
	}
}

// refCommand finds the command that produced a reference file: either the
// file's first line ("crash> CMD" or "# CMD"), or the line of session.in
// beside it that redirected its output there ("CMD > …/rd-8.txt").
func refCommand(path, ref string) (cmd, output string, err error) {
	if first, rest, ok := strings.Cut(ref, "\n"); ok {
		for _, p := range []string{"crash> ", "# "} {
			if strings.HasPrefix(first, p) {
				return strings.TrimPrefix(first, p), rest, nil
			}
		}
	}
	in := filepath.Join(filepath.Dir(path), "session.in")
	f, err := os.Open(in)
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		c, target, ok := strings.Cut(sc.Text(), ">")
		if ok && filepath.Base(strings.TrimSpace(target)) == filepath.Base(path) {
			return strings.TrimSpace(c), ref, nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", "", err
	}
	return "", "", &os.PathError{Op: "find the command of " + filepath.Base(path), Path: in, Err: os.ErrNotExist}
}

// terminateString adds the one byte salvage knowingly prints beyond crash:
// rd -a without a count reads to the end of the string, where crash leaves
// the line unterminated (its next prompt follows on the same line).
func terminateString(cmd, want string) string {
	w := strings.Fields(cmd)
	if len(w) == 0 || w[0] != "rd" || want == "" || strings.HasSuffix(want, "\n") {
		return want
	}
	opts, operands, err := parseOptions(rdCommand().Options, w[1:])
	if err == nil && opts.Last("8", "16", "32", "64", "a") == "a" && len(operands) == 1 && !opts.Has("e") {
		return want + "\n"
	}
	return want
}
