package lab

import (
	"os"
	"path/filepath"
	"strings"
	"time"

	"salvage/lab/corpus"
)

// drgnScript prints, for a dump crash cannot read, what drgn can: the
// release, the task list and the kernel log. Sections start with "== KEY".
const drgnScript = `
import sys
import drgn
from drgn.helpers.linux.pid import for_each_task
from drgn.helpers.linux.printk import get_printk_records
prog = drgn.Program()
prog.set_core_dump(sys.argv[2])
prog.load_debug_info([sys.argv[1]])
print("== sys")
uts = prog["init_uts_ns"].name
print("RELEASE:", uts.release.string_().decode())
print("NODENAME:", uts.nodename.string_().decode())
print("== ps")
print("PID PPID STATE COMM")
for t in sorted(for_each_task(prog), key=lambda t: int(t.pid)):
    print(int(t.pid), int(t.real_parent.pid), int(t.__state), t.comm.string_().decode())
print("== log")
for r in get_printk_records(prog):
    print("[%5d.%06d] %s" % (r.timestamp // 1000000000, r.timestamp % 1000000000 // 1000, r.text.decode(errors="replace")))
`

// runDrgn asks drgn (Debian's python3-drgn) for the sys, ps and log of a
// dump, stored under the "drgn:" prefix.
func (l *Lab) runDrgn(vmlinux string, d corpus.Dump, m *corpus.Manifest, dir string, rec *refsRecord) error {
	if len(d.Files) != 1 {
		return nil
	}
	script := filepath.Join(dir, "drgn-refs.py")
	if err := os.WriteFile(script, []byte(drgnScript), 0o644); err != nil {
		return err
	}
	ctx, cancel := timeoutCtx(10 * time.Minute)
	defer cancel()
	out, err := command(ctx, dir, "/usr/bin/python3", script, vmlinux, m.Path(d.Files[0]))
	if err != nil {
		return err
	}
	var key string
	sections := map[string]*strings.Builder{}
	for _, line := range strings.SplitAfter(string(out), "\n") {
		if k, ok := strings.CutPrefix(strings.TrimSpace(line), "== "); ok {
			key = k
			sections[key] = &strings.Builder{}
			continue
		}
		if sb := sections[key]; sb != nil {
			sb.WriteString(line)
		}
	}
	for k, sb := range sections {
		p := filepath.Join(dir, "drgn-"+k+".txt")
		if err := os.WriteFile(p, []byte(sb.String()), 0o644); err != nil {
			return err
		}
		rec.Refs["drgn:"+k], _ = filepath.Rel(l.Cache, p)
		rec.RefCommands["drgn:"+k] = "drgn 0.0.22 script (lab/drgn.go): " + k
	}
	return nil
}
