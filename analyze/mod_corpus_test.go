package analyze

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"salvage/lab/corpus"
)

// TestModCorpus: mod equals crash's on every corpus dump (crash 8.0.2's
// on the live dumps 8.0.6 cannot open), with the vmlinux and without;
// mod -t names the modules the guest's /proc/modules marks tainted.
func TestModCorpus(t *testing.T) {
	m := corpus.Require(t)
	for _, d := range m.Dumps {
		want, ok, err := m.Ref(d, "mod")
		if !ok || err != nil {
			if want, ok, err = m.Ref(d, "crash-8.0.2:mod"); !ok || err != nil {
				t.Fatalf("%s: no mod reference (%v)", d.ID, err)
			}
		}
		procModules, err := os.ReadFile(filepath.Join(m.Path(d.Truth), "modules"))
		if err != nil {
			t.Fatal(err)
		}
		for _, withVmlinux := range []bool{true, false} {
			s := corpusSession(t, m, d, withVmlinux)
			got, errs := execCapture(s, "mod")
			if got != want || errs != "" {
				t.Errorf("%s vmlinux=%v: mod differs from crash (%s):\n%s", d.ID, withVmlinux, errs, lineDiff(got, want))
			}
			tainted, _ := execCapture(s, "mod -t")
			for _, l := range strings.Split(string(procModules), "\n") {
				f := strings.Fields(l)
				if len(f) > 6 && strings.HasPrefix(f[6], "(") { // "… Live 0x… (OE)"
					flags := strings.Trim(f[6], "()")
					if !strings.Contains(tainted, f[0]) || !strings.Contains(tainted, flags) {
						t.Errorf("%s: mod -t lacks %s %s:\n%s", d.ID, f[0], flags, tainted)
					}
				}
			}
		}
	}
}
