package cpio

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestExtractWithGNUCpio checks the archive with a reader we did not
// write: GNU cpio, which make test installs.
func TestExtractWithGNUCpio(t *testing.T) {
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Fatalf("GNU cpio is needed for this test (make test installs it): %v", err)
	}
	a := New()
	a.File("bin/hello", 0o755, []byte("#!/bin/sh\necho hi\n"))
	a.File("etc/odd", 0o600, []byte("abc")) // length not a multiple of 4
	a.Symlink("bin/sh", "busybox")
	a.Dir("proc", 0o555)
	var buf bytes.Buffer
	if _, err := a.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	if buf.Len()%4 != 0 {
		t.Errorf("archive length %d is not 4-byte aligned", buf.Len())
	}
	dir := t.TempDir()
	cmd := exec.Command("cpio", "-idm", "--quiet", "--no-absolute-filenames")
	cmd.Dir = dir
	cmd.Stdin = &buf
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio: %v: %s", err, out)
	}
	tests := []struct {
		name string
		want string
		mode os.FileMode
	}{
		{"bin/hello", "#!/bin/sh\necho hi\n", 0o755},
		{"etc/odd", "abc", 0o600},
	}
	for _, tc := range tests {
		b, err := os.ReadFile(filepath.Join(dir, tc.name))
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tc.want {
			t.Errorf("%s = %q, want %q", tc.name, b, tc.want)
		}
		st, _ := os.Stat(filepath.Join(dir, tc.name))
		if st.Mode().Perm() != tc.mode {
			t.Errorf("%s mode %v, want %v", tc.name, st.Mode().Perm(), tc.mode)
		}
	}
	if l, err := os.Readlink(filepath.Join(dir, "bin/sh")); err != nil || l != "busybox" {
		t.Errorf("bin/sh -> %q, %v; want busybox", l, err)
	}
	if st, err := os.Stat(filepath.Join(dir, "proc")); err != nil || !st.IsDir() {
		t.Errorf("proc is not a directory: %v", err)
	}
}
