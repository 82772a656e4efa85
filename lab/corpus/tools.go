package corpus

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// MakedumpfileSid returns a command that runs sid's makedumpfile (1.7.8,
// which `make lab` fetches with its own loader and libraries) with args.
// It fails, never skips, when the lab lacks it.
func (m *Manifest) MakedumpfileSid(ctx context.Context, args ...string) (*exec.Cmd, error) {
	dir := filepath.Join(m.Root, "tools", "makedumpfile-sid")
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err != nil {
		return nil, fmt.Errorf("lab corpus: sid's makedumpfile is missing (%v): run `make lab`", err)
	}
	lib := filepath.Join(dir, "root", "usr", "lib", "x86_64-linux-gnu")
	argv := append([]string{"--library-path", lib, filepath.Join(dir, "root", "usr", "bin", "makedumpfile")}, args...)
	return exec.CommandContext(ctx, filepath.Join(lib, "ld-linux-x86-64.so.2"), argv...), nil
}

// MakedumpfileSidVersion is the version of sid's makedumpfile in the lab
// ("1.7.8"), or "" when it is missing.
func (m *Manifest) MakedumpfileSidVersion() string {
	b, err := os.ReadFile(filepath.Join(m.Root, "tools", "makedumpfile-sid", ".complete"))
	if err != nil {
		return ""
	}
	v, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return v
}
