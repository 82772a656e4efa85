package analyze

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"salvage/lab/corpus"
)

// crashGoldens are sessions of commands the corpus references lack.
// Each testdata/crash/*/session.in is a template: its {{…}} placeholders
// become this corpus's addresses (see goldenValues), and the reference
// crash runs the session on the dump once, its outputs cached in the lab
// (see crashGoldenDir). A rebuilt lab, with other addresses, gets its own.
var crashGoldens = []struct{ dir, dump string }{
	{"testdata/crash/sysrq-vmcore-elf", "6.1.0-56-cloud-amd64/sysrq/vmcore-elf"},
	{"testdata/crash/sysrq-vmcore-elf2", "6.1.0-56-cloud-amd64/sysrq/vmcore-elf"},
	{"testdata/crash/sysrq-vmcore-elf3", "6.1.0-56-cloud-amd64/sysrq/vmcore-elf"},
	{"testdata/crash/sysrq-vmcore-elf4", "6.1.0-56-cloud-amd64/sysrq/vmcore-elf"},
	{"testdata/crash/sysrq-vmcore-elf5", "6.1.0-56-cloud-amd64/sysrq/vmcore-elf"},
	{"testdata/crash/sysrq-vmcore-elf6", "6.1.0-56-cloud-amd64/sysrq/vmcore-elf"},
	{"testdata/crash/sysrq-vmcore-elf7", "6.1.0-56-cloud-amd64/sysrq/vmcore-elf"},
	{"testdata/crash/sysrq-dis", "6.1.0-56-cloud-amd64/sysrq/vmcore-elf"},
	{"testdata/crash/sysrq-context", "6.1.0-56-cloud-amd64/sysrq/vmcore-elf"},
	{"testdata/crash/sysrq-lines", "6.1.0-56-cloud-amd64/sysrq/vmcore-elf"},
	{"testdata/crash/oops-context", "6.1.0-56-cloud-amd64/oops/vmcore-elf"},
	// p's expressions: casts, & and *, -> on a cast address, sizeof.
	{"testdata/crash/sysrq-p", "6.1.0-56-cloud-amd64/sysrq/vmcore-elf"},
}

// knownDifferences are golden files salvage does not match, and why.
// Keys are "FILE" (both modes) or "btf:FILE" (without the vmlinux).
var knownDifferences = map[string]string{
	// kallsyms lacks the __ksymtab_/__crc_/__kstrtab_ symbols of the
	// vmlinux symbol table.
	"btf:sym-q-init_uts.txt": "kallsyms has fewer symbols than vmlinux",
	// kallsyms types per-CPU variables 'A'; the vmlinux symbol table, 'D'.
	"btf:sym-runqueues.txt": "kallsyms's type letter for per-CPU symbols",
	// BTF describes few variables; debuginfo's well-known declaration of
	// __per_cpu_offset is not its array type.
	"btf:p-__per_cpu_offset.txt": "no BTF type for __per_cpu_offset",
	// gdb names a jump to common_interrupt_return's address by the
	// label __irqentry_text_end there; why that alias is not known.
	"dis-entry_SYSCALL_64.txt": "gdb's choice among the labels at a branch target",
	// gdb names a target past a symbol's ELF size by that symbol; salvage
	// names none.
	"dis-copy_user_generic_unrolled.txt": "no symbol for a target past its symbol's size",
	// crash disassembles a module function up to the next symbol, salvage
	// up to its ELF size, leaving out the alignment padding after it.
	"dis-virtblk_done.txt": "module functions end at their size, not at the next symbol",
	// Without the vmlinux's sizes (kallsyms has none) the sized alias
	// gdb prefers at a branch target cannot be told from a label.
	"btf:dis-default_idle.txt":             "no symbol sizes in kallsyms",
	"btf:dis-__schedule.txt":               "no symbol sizes in kallsyms",
	"btf:dis-panic.txt":                    "no symbol sizes in kallsyms",
	"btf:dis-vfs_write.txt":                "no symbol sizes in kallsyms",
	"btf:dis-kmem_cache_alloc.txt":         "no symbol sizes in kallsyms",
	"btf:dis-__x86_indirect_thunk_rax.txt": "no symbol sizes in kallsyms",
	// System.map has no sizes: linux_banner runs to the next symbol, 208
	// bytes on (kallsyms' next is 204 on, the string's own length), and
	// Debian's System.map lacks the modversions __crc_ symbols.
	"sysmap:whatis-linux_banner.txt": "no symbol sizes in System.map",
	"sysmap:p-linux_banner.txt":      "no symbol sizes in System.map",
	"sysmap:p-addr-banner.txt":       "no symbol sizes in System.map",
	"sysmap:sym-q-init_uts.txt":      "Debian's System.map has no __crc_ symbols",
	// An assembly function's size covers the local labels after its
	// start (entry_SYSCALL_64_safe_stack…); kallsyms ends it at the first.
	"btf:dis-entry_SYSCALL_64.txt": "kallsyms ends a function at the next label",
}

// crashErrorOutput reports a golden file that holds crash's error message
// rather than a command's output.
func crashErrorOutput(s string) bool {
	for _, p := range []string{"gdb: ", "rd: ", "union: ", "struct: ", "whatis: ", "symbol not found: ", "set: "} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// TestCrashGoldens replays each golden session.in in one salvage session,
// with the vmlinux and with none, and compares every command's output
// with crash's byte for byte. Where crash failed, salvage must fail too
// (and the command is not run, so p's $N numbering stays crash's).
func TestCrashGoldens(t *testing.T) {
	m := corpus.Require(t)
	for _, g := range crashGoldens {
		var d *corpus.Dump
		for i := range m.Dumps {
			if m.Dumps[i].ID == g.dump {
				d = &m.Dumps[i]
			}
		}
		if d == nil {
			t.Fatalf("corpus has no dump %s", g.dump)
		}
		tmpl, err := os.ReadFile(filepath.Join(g.dir, "session.in"))
		if err != nil {
			t.Fatal(err)
		}
		session, err := expandGolden(string(tmpl), goldenValues(t, m, *d, string(tmpl)))
		if err != nil {
			t.Fatalf("%s: %v", g.dir, err)
		}
		outDir := crashGoldenDir(t, m, *d, session)
		steps := readGoldenSession(session)
		for _, mode := range []string{"vmlinux", "btf", "sysmap"} {
			t.Run(mode+"/"+g.dump, func(t *testing.T) {
				s := corpusSessionMode(t, m, *d, mode)
				same := 0
				for _, st := range steps {
					b, err := os.ReadFile(filepath.Join(outDir, st.file))
					if err != nil {
						t.Fatal(err)
					}
					want := string(b)
					if crashErrorOutput(want) {
						if strings.HasPrefix(want, "gdb: ") {
							continue // crash's gdb failed on the redirection itself
						}
						if got, errs := execCapture(s, st.cmd); errs == "" && !strings.HasPrefix(got, "symbol not found") {
							t.Errorf("%s: crash fails (%q), salvage printed %q", st.cmd, strings.TrimSpace(want), got)
						}
						continue
					}
					want = terminateString(st.cmd, want)
					if mode != "vmlinux" && strings.HasPrefix(st.cmd, "dis -l") {
						// -l needs DWARF: without it salvage must refuse.
						if got, errs := execCapture(s, st.cmd); errs == "" {
							t.Errorf("%s: without DWARF salvage printed %q, not an error", st.cmd, got)
						}
						continue
					}
					if mode != "vmlinux" && strings.HasPrefix(st.cmd, "sym ") {
						// Source lines come from DWARF, which BTF and
						// System.map lack: crash's are left out.
						want = sourceSuffix.ReplaceAllString(want, "")
					}
					got, errs := execCapture(s, st.cmd)
					why, known := knownDifferences[st.file]
					if !known {
						why, known = knownDifferences[mode+":"+st.file]
					}
					if !known && mode == "sysmap" {
						// Types from BTF and sizes from the distance to
						// the next symbol, as without a vmlinux.
						why, known = knownDifferences["btf:"+st.file]
					}
					if !known && mode != "vmlinux" && samePaddedFunction(st.cmd, got, want) {
						known, why = true, "kallsyms has no sizes: the function's end differs in its int3/nop padding"
					}
					if known && got != want {
						t.Logf("%s: differs from crash, as known: %s", st.cmd, why)
						continue
					}
					if errs != "" {
						t.Errorf("%s: %s", st.cmd, errs)
						continue
					}
					if got != want {
						t.Errorf("%s (%s) differs from crash:\n%s", st.cmd, st.file, lineDiff(got, want))
						continue
					}
					same++
				}
				t.Logf("%s: %d of %d commands identical to crash", mode, same, len(steps))
			})
		}
	}
}

type goldenStep struct{ cmd, file string }

// readGoldenSession reads "COMMAND > GOLDEN/FILE" lines.
func readGoldenSession(session string) []goldenStep {
	var steps []goldenStep
	for _, line := range strings.Split(session, "\n") {
		i := strings.LastIndex(line, " > ")
		if i < 0 {
			continue
		}
		cmd, target := line[:i], line[i+3:]
		steps = append(steps, goldenStep{cmd: strings.TrimSpace(cmd), file: filepath.Base(strings.TrimSpace(target))})
	}
	return steps
}

// goldenValues are the placeholders' values on dump d: every symbol of
// the templates, the guest workload's task (from crash's own ps) and its
// stack, and linux_banner's physical address (from crash's own vtop).
func goldenValues(t *testing.T, m *corpus.Manifest, d corpus.Dump, tmpl string) map[string]uint64 {
	t.Helper()
	vals := map[string]uint64{}
	s := corpusSession(t, m, d, true)
	k, err := s.Kernel()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"linux_banner", "init_task", "init_struct_pid", "virtblk_done", "virtio_blk"} {
		a, err := k.SymbolAddr(name)
		if err != nil {
			t.Fatalf("%s: %v", d.ID, err)
		}
		vals[name] = a
	}
	task, err := strconv.ParseUint(d.RefCommands["struct-task"][len("struct task_struct "):], 16, 64)
	if err != nil {
		t.Fatalf("%s: no workload task in the references (%q): %v", d.ID, d.RefCommands["struct-task"], err)
	}
	vals["task"] = task
	v, err := k.ObjectOf(task, "struct task_struct")
	if err == nil {
		v, err = v.Member("stack")
	}
	if err == nil {
		vals["stack"], err = v.Uint()
	}
	if err != nil {
		t.Fatalf("%s: the workload's stack: %v", d.ID, err)
	}
	vtop, ok, err := m.Ref(d, "vtop")
	if !ok || err != nil {
		t.Fatalf("%s: no vtop reference: %v", d.ID, err)
	}
	mm := regexp.MustCompile(`(?m)^([0-9a-f]{16})\s+([0-9a-f]+)\s*$`).FindStringSubmatch(vtop)
	if mm == nil || mm[1] != fmt.Sprintf("%016x", vals["linux_banner"]) {
		t.Fatalf("%s: crash's vtop reference is not of linux_banner (%#x):\n%s", d.ID, vals["linux_banner"], vtop)
	}
	vals["phys:linux_banner"], _ = strconv.ParseUint(mm[2], 16, 64)
	// Any other placeholder is a symbol's address.
	for _, p := range placeholderRe.FindAllStringSubmatch(tmpl, -1) {
		if _, ok := vals[p[1]]; !ok {
			if a, err := k.SymbolAddr(p[1]); err == nil {
				vals[p[1]] = a
			}
		}
	}
	return vals
}

// sourceSuffix is the " FILE: LINE" crash's sym adds for text.
var sourceSuffix = regexp.MustCompile(`(?m) \S+: \d+$`)

var placeholderRe = regexp.MustCompile(`{{([a-zA-Z0-9_:]+)(\+[0-9a-f]+)?}}`)

// expandGolden replaces each {{NAME}} or {{NAME+HEX}} by the value's hex
// digits (without 0x, as crash's commands take addresses).
func expandGolden(tmpl string, vals map[string]uint64) (string, error) {
	var bad error
	out := placeholderRe.ReplaceAllStringFunc(tmpl, func(p string) string {
		sm := placeholderRe.FindStringSubmatch(p)
		v, ok := vals[sm[1]]
		if !ok {
			bad = fmt.Errorf("no value for the placeholder %s", p)
			return p
		}
		if sm[2] != "" {
			off, _ := strconv.ParseUint(sm[2][1:], 16, 64)
			v += off
		}
		return strconv.FormatUint(v, 16)
	})
	if bad == nil && strings.Contains(out, "{{") {
		bad = fmt.Errorf("a malformed placeholder is left in %q", out)
	}
	return out, bad
}

// crashGoldenDir returns the directory of the reference crash's outputs
// of session (GOLDEN/ standing for it) on dump d, running crash when the
// lab's cache lacks them. They are keyed by the dump, the expanded session
// and the crash build, and written to a temporary directory renamed in
// place, so an interrupted run leaves nothing half made.
func crashGoldenDir(t *testing.T, m *corpus.Manifest, d corpus.Dump, session string) string {
	t.Helper()
	h := sha256.Sum256([]byte(d.SHA256 + "\n" + corpus.CrashName + "\n" + session))
	dir := filepath.Join(m.Root, "refs", "golden-sessions", hex.EncodeToString(h[:8]))
	if _, err := os.Stat(filepath.Join(dir, "session.in")); err == nil {
		return dir
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".tmp-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	script := strings.ReplaceAll(session, "GOLDEN/", tmp+"/")
	in := filepath.Join(tmp, "crash.in")
	if err := os.WriteFile(in, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd, err := m.Crash(ctx, d, in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.CombinedOutput()
	steps := readGoldenSession(session)
	for _, st := range steps {
		if _, serr := os.Stat(filepath.Join(tmp, st.file)); serr != nil {
			t.Fatalf("the reference crash made no %s (%v): %v\n%s", st.file, serr, err, out)
		}
	}
	readme := fmt.Sprintf("Outputs of %s on the corpus dump %s (sha256 %s)\nwith its debug vmlinux, made by analyze's TestCrashGoldens from session.in.\n", corpus.CrashName, d.ID, d.SHA256)
	os.WriteFile(filepath.Join(tmp, "README"), []byte(readme), 0o644)
	if err := os.WriteFile(filepath.Join(tmp, "session.in"), []byte(session), 0o644); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// samePaddedFunction reports a whole-function dis whose instructions
// equal crash's but for int3 and nop padding at the end: without the
// vmlinux, kallsyms gives no function sizes, and how much of the padding
// after a ret belongs to the function is not in the code.
func samePaddedFunction(cmd, got, want string) bool {
	f := strings.Fields(cmd)
	if len(f) != 2 || f[0] != "dis" {
		return false
	}
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	short, long := g, w
	if len(short) > len(long) {
		short, long = long, short
	}
	for i := range short[:len(short)-1] {
		if short[i] != long[i] {
			return false
		}
	}
	for _, l := range long[len(short)-1:] {
		_, text, _ := strings.Cut(l, ":\t")
		if l != "" && !strings.HasPrefix(text, "int3") && !strings.HasPrefix(text, "nop") && !strings.Contains(text, " nop") && text != "xchg   %ax,%ax" {
			return false
		}
	}
	return true
}
