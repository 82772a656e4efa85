package corpus

import "testing"

// Require loads the corpus for a test and fails the test — never skips it —
// when the corpus is missing: tests on real dumps are the point of the lab.
// `make test` builds the corpus before running the tests.
func Require(t testing.TB) *Manifest {
	t.Helper()
	m, err := Load(Dir())
	if err != nil {
		t.Fatalf("%v", err)
	}
	if len(m.Dumps) == 0 {
		t.Fatalf("lab corpus at %s lists no dumps (run `make lab`)", m.Root)
	}
	return m
}
