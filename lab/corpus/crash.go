package corpus

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// CrashName is the reference crash the lab fetches (trixie's), as its
// outputs' directories name it.
const CrashName = "crash-8.0.6"

// Crash returns a command that runs the lab's reference crash (trixie's
// 8.0.6, through its own loader and libraries) on dump d with its
// release's debug vmlinux, reading commands from cmdFile. It fails, never
// skips, when the lab lacks that crash: `make lab` fetches it.
func (m *Manifest) Crash(ctx context.Context, d Dump, cmdFile string) (*exec.Cmd, error) {
	root := filepath.Join(m.Root, "tools", "crash-trixie", "root")
	lib := filepath.Join(root, "usr", "lib", "x86_64-linux-gnu")
	loader := filepath.Join(lib, "ld-linux-x86-64.so.2")
	if _, err := os.Stat(loader); err != nil {
		return nil, fmt.Errorf("lab corpus: the reference crash is missing (%v): run `make lab`", err)
	}
	k := m.Kernel(d.Release)
	if k == nil {
		return nil, fmt.Errorf("lab corpus: no kernel %s for dump %s", d.Release, d.ID)
	}
	args := []string{"--library-path", lib, filepath.Join(root, "usr", "bin", "crash"), "-s", m.Path(k.DebugVmlinux)}
	args = append(args, m.Paths(d)...)
	args = append(args, "-i", cmdFile)
	return exec.CommandContext(ctx, loader, args...), nil
}
