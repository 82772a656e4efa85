package analyze

import (
	"strings"
	"testing"
)

// FuzzExec runs arbitrary command lines on the banner memory. The
// contract: no command panics (Exec would report it as an internal
// error), a failure is exactly one line on the error stream besides
// warnings, and success writes nothing there but warnings.
func FuzzExec(f *testing.F) {
	for _, c := range []string{
		"rd -p 3d91ffe0 5", "rd -8 -a -p 3d91ffe0 30", "rd -R -N -16 -p 3d920ff0 9 --json",
		"rd -p -e 3d921000 3d920ff0", "rd -d -o 8 -p 3d91ffe0 ffff", "help rd", "q",
		`rd "-p" '3d91ffe0' 1`, "rd -a -p 3d920fc0", "rd -D -32 -p 1ff8 3",
		"rd 0|0", "help > x", "alias a rd", "set", "foreach bt",
	} {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, line string) {
		if strings.Contains(line, "\n") {
			return
		}
		s, _, errw := testSession(t, testMemory(t))
		s.NoShell = true // a fuzzer's pipelines must not run, nor its redirections write
		err := s.Exec(line)
		if strings.Contains(errw.String(), "internal error") {
			t.Fatalf("%q: %s", line, errw)
		}
		var e string
		for _, l := range strings.SplitAfter(errw.String(), "\n") {
			if !strings.Contains(l, ": warning: ") {
				e += l
			}
		}
		switch {
		case err != nil && (strings.Count(e, "\n") != 1 || !strings.HasSuffix(e, "\n")):
			t.Errorf("%q failed with %q, want one line", line, e)
		case err == nil && e != "":
			t.Errorf("%q succeeded but wrote %q", line, e)
		}
	})
}
