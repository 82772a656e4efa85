package capture

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func TestStampAndDumpDirNames(t *testing.T) {
	at := time.Date(2026, 11, 22, 21, 1, 59, 0, time.UTC)
	if got := Stamp(at); got != "202611222101" {
		t.Errorf("Stamp = %q, want 202611222101 (date +%%Y%%m%%d%%H%%M)", got)
	}
	if got := DumpFile("202611222101"); got != "202611222101/dump.202611222101" {
		t.Errorf("DumpFile = %q", got)
	}
	if got := DmesgFile("202611222101"); got != "202611222101/dmesg.202611222101" {
		t.Errorf("DmesgFile = %q", got)
	}
	for _, c := range []struct {
		name string
		want bool
	}{
		{"202611222101", true}, {"202611222101-2", true}, {"202613222101", false}, // month 13
		{"20261122210", false}, {"2026112221011", false}, {"lost+found", false}, {"202611222101-", false},
		{"202611222101.bak", false}, {"x202611222101", false},
	} {
		if got := IsDumpDir(c.name); got != c.want {
			t.Errorf("IsDumpDir(%q) = %v, want %v", c.name, got, c.want)
		}
	}
}

// A fake dump path: dump directories of several minutes (two in one
// minute) among things that are not dumps, which pruning must leave.
func TestPruneDumps(t *testing.T) {
	for _, c := range []struct {
		keep    int
		current string
		removed []string
		left    []string
	}{
		{keep: 2, current: "202611222105", removed: []string{"202611222101", "202611222103", "202611222103-2"},
			left: []string{"202611222104", "202611222105"}},
		{keep: 0, current: "202611222105", removed: nil,
			left: []string{"202611222101", "202611222103", "202611222103-2", "202611222104", "202611222105"}},
		// The current dump is never removed, even when it is not the newest
		// (a clock set back).
		{keep: 1, current: "202611222101", removed: []string{"202611222103", "202611222103-2", "202611222104", "202611222105"},
			left: []string{"202611222101"}},
		{keep: 9, current: "202611222105", left: []string{"202611222101", "202611222103", "202611222103-2", "202611222104", "202611222105"}},
	} {
		dir := t.TempDir()
		others := []string{"lost+found", "notes", "2026", "202611222101.old", "kexec_cmd"}
		for _, d := range append([]string{"202611222101", "202611222103", "202611222103-2", "202611222104", "202611222105"}, others[:3]...) {
			os.MkdirAll(filepath.Join(dir, d), 0o700)
			os.WriteFile(filepath.Join(dir, d, "dump."+d), []byte("x"), 0o600)
		}
		for _, f := range others[3:] {
			os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600)
		}
		s, err := NewDirStore(dir, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		removed, err := PruneDumps(s, c.keep, c.current)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(removed, c.removed) {
			t.Errorf("keep %d: removed %v, want %v", c.keep, removed, c.removed)
		}
		left, _ := DumpDirs(s)
		if !reflect.DeepEqual(left, c.left) {
			t.Errorf("keep %d: left %v, want %v", c.keep, left, c.left)
		}
		for _, o := range others {
			if _, err := os.Stat(filepath.Join(dir, o)); err != nil {
				t.Errorf("keep %d: %s, not a dump, was touched: %v", c.keep, o, err)
			}
		}
	}
}

func TestNewDumpDirSameMinute(t *testing.T) {
	s, err := NewDirStore(t.TempDir(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 22, 21, 1, 0, 0, time.UTC)
	var got []string
	for i := 0; i < 3; i++ {
		d, err := NewDumpDir(s, at)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, d)
	}
	if want := []string{"202611222101", "202611222101-2", "202611222101-3"}; !reflect.DeepEqual(got, want) {
		t.Errorf("dump directories of one minute: %v, want %v", got, want)
	}
}

func TestDirStore(t *testing.T) {
	dir := t.TempDir()
	s, err := NewDirStore(filepath.Join(dir, "var/crash"), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.MkdirAll("a"); err != nil {
		t.Fatal(err)
	}
	f, err := s.Create("a/x.incomplete")
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("hello"))
	f.WriteAt([]byte("J"), 0)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Rename("a/x.incomplete", "a/x"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "var/crash/a/x"))
	st, _ := os.Stat(filepath.Join(dir, "var/crash/a/x"))
	if string(b) != "Jello" || st.Mode().Perm() != 0o600 {
		t.Errorf("a/x: %q mode %o, want \"Jello\" 0600", b, st.Mode().Perm())
	}
	g, _ := s.Create("a/y")
	g.Close()
	if err := s.Rename("a/y", "a/x"); err == nil {
		t.Error("Rename replaced an existing file")
	}
	for _, bad := range []string{"../escape", "/etc/passwd", "a/../../b"} {
		if _, err := s.Create(bad); err == nil {
			t.Errorf("Create(%q) left the store", bad)
		}
		if err := s.RemoveAll(bad); err == nil {
			t.Errorf("RemoveAll(%q) left the store", bad)
		}
	}
	if err := s.RemoveAll("."); err == nil {
		t.Error("RemoveAll(.) removed the dump path")
	}
	names, _ := s.ReadDir("a")
	if !reflect.DeepEqual(names, []string{"x", "y"}) {
		t.Errorf("ReadDir(a) = %v", names)
	}
}
