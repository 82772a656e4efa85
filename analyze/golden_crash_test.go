package analyze

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"salvage/lab/corpus"
)

// crashGoldens are crash 8.0.6's outputs for commands the corpus
// references lack, made on one corpus dump (see testdata/crash/*/README).
// sha256 is the dump's (the manifest's SHA256) when crash ran: a rebuilt
// lab has other addresses, and the goldens must then be made again.
var crashGoldens = []struct{ dir, dump, sha256 string }{
	{"testdata/crash/sysrq-vmcore-elf", "6.1.0-56-cloud-amd64/sysrq/vmcore-elf", goldenDumpSHA},
	{"testdata/crash/sysrq-vmcore-elf2", "6.1.0-56-cloud-amd64/sysrq/vmcore-elf", goldenDumpSHA},
	{"testdata/crash/sysrq-vmcore-elf3", "6.1.0-56-cloud-amd64/sysrq/vmcore-elf", goldenDumpSHA},
	{"testdata/crash/sysrq-vmcore-elf4", "6.1.0-56-cloud-amd64/sysrq/vmcore-elf", goldenDumpSHA},
	{"testdata/crash/sysrq-vmcore-elf5", "6.1.0-56-cloud-amd64/sysrq/vmcore-elf", goldenDumpSHA},
	{"testdata/crash/sysrq-vmcore-elf6", "6.1.0-56-cloud-amd64/sysrq/vmcore-elf", goldenDumpSHA},
	{"testdata/crash/sysrq-vmcore-elf7", "6.1.0-56-cloud-amd64/sysrq/vmcore-elf", goldenDumpSHA},
}

// knownDifferences are golden files salvage does not match, and why.
// Keys are "FILE" (both modes) or "btf:FILE" (without the vmlinux).
var knownDifferences = map[string]string{
	// crash adds the source line of a text symbol from the DWARF line
	// table; salvage reads no line tables yet.
	"sym-schedule.txt": "no source line numbers",
	// kallsyms lacks the __ksymtab_/__crc_/__kstrtab_ symbols of the
	// vmlinux symbol table.
	"btf:sym-q-init_uts.txt": "kallsyms has fewer symbols than vmlinux",
	// kallsyms types per-CPU variables 'A'; the vmlinux symbol table, 'D'.
	"btf:sym-runqueues.txt": "kallsyms's type letter for per-CPU symbols",
	// BTF describes few variables; debuginfo's well-known declaration of
	// __per_cpu_offset is not its array type.
	"btf:p-__per_cpu_offset.txt": "no BTF type for __per_cpu_offset",
}

const goldenDumpSHA = "d3e01308707724d2cd85caf8f1619e5f08872e9ba164bcfe4f1947a7c7fdc5df"

// crashErrorOutput reports a golden file that holds crash's error message
// rather than a command's output.
func crashErrorOutput(s string) bool {
	for _, p := range []string{"gdb: ", "rd: ", "union: ", "struct: ", "whatis: ", "symbol not found: "} {
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
		if d.SHA256 != g.sha256 {
			t.Fatalf("%s: the corpus dump %s is not the one crash ran on (sha256 %s, not %s): make the goldens again as its README says", g.dir, g.dump, d.SHA256, g.sha256)
		}
		steps, err := readGoldenSession(filepath.Join(g.dir, "session.in"))
		if err != nil {
			t.Fatal(err)
		}
		for _, mode := range []string{"vmlinux", "btf"} {
			t.Run(mode+"/"+g.dump, func(t *testing.T) {
				s := corpusSession(t, m, *d, mode == "vmlinux")
				same := 0
				for _, st := range steps {
					b, err := os.ReadFile(filepath.Join(g.dir, st.file))
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
					got, errs := execCapture(s, st.cmd)
					why, known := knownDifferences[st.file]
					if !known {
						why, known = knownDifferences[mode+":"+st.file]
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
func readGoldenSession(path string) ([]goldenStep, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var steps []goldenStep
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		i := strings.LastIndex(line, " > ")
		if i < 0 {
			continue
		}
		cmd, target := line[:i], line[i+3:]
		steps = append(steps, goldenStep{cmd: strings.TrimSpace(cmd), file: filepath.Base(strings.TrimSpace(target))})
	}
	return steps, sc.Err()
}
