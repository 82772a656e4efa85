package analyze

import (
	"bytes"
	"sort"
	"strings"
	"sync"
	"testing"

	"salvage/debuginfo"
	"salvage/dump"
	"salvage/lab/corpus"
)

// kernelRefs are the corpus references of the kernel-model commands,
// made by crash 8.0.6 with the debug vmlinux.
var kernelRefs = []string{"sym", "sym-init_task", "vtop", "struct-page-o", "struct-task"}

// sharedTypes caches each release's types, DWARF or BTF, across the
// sessions of one test run: every dump of a release has the same kernel.
var sharedTypes sync.Map // "dwarf:"+release or "btf:"+release → debuginfo.Types

// TestKernelCommandsCorpus runs crash's reference commands for sym,
// vtop and struct on every corpus dump, with the debug vmlinux and with
// none (the dump's kallsyms and BTF), and compares the output with
// crash's byte for byte.
func TestKernelCommandsCorpus(t *testing.T) {
	m := corpus.Require(t)
	compared := map[string]int{}
	for _, mode := range []string{"vmlinux", "btf"} {
		for _, d := range m.Dumps {
			var kinds []string
			for _, k := range kernelRefs {
				// crash 8.0.6's reference, and bookworm's 8.0.2's where the
				// lab ran it too.
				for _, key := range []string{k, "crash-8.0.2:" + k} {
					if _, ok := d.Refs[key]; ok {
						kinds = append(kinds, key)
					}
				}
			}
			if len(kinds) == 0 {
				continue
			}
			sort.Strings(kinds)
			t.Run(mode+"/"+d.ID, func(t *testing.T) {
				s := corpusSession(t, m, d, mode == "vmlinux")
				for _, k := range kinds {
					want, ok, err := m.Ref(d, k)
					if err != nil || !ok {
						t.Errorf("%s: reference: %v", k, err)
						continue
					}
					cmd := d.RefCommands[k]
					got, errs := execCapture(s, cmd)
					if errs != "" {
						t.Errorf("%s: %s", cmd, errs)
						continue
					}
					want = pageHeaderOnce(cmd, got, want)
					if got != want {
						t.Errorf("%s (%s, %s) differs from crash:\n%s", cmd, d.Refs[k], mode, lineDiff(got, want))
						continue
					}
					compared[mode+" "+k]++
				}
			})
		}
	}
	var keys []string
	for k := range compared {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Logf("%s: %d dumps identical to crash", k, compared[k])
	}
}

// corpusSession opens a session on corpus dump d, with the release's
// debug vmlinux or without it, sharing types between dumps.
func corpusSession(t *testing.T, m *corpus.Manifest, d corpus.Dump, withVmlinux bool) *Session {
	t.Helper()
	mode := "btf"
	if withVmlinux {
		mode = "vmlinux"
	}
	return corpusSessionMode(t, m, d, mode)
}

// corpusSessionMode opens a session in one of the modes "vmlinux" (the
// debug vmlinux), "btf" (the dump alone: kallsyms and BTF) or "sysmap"
// (the release's System.map for symbols, the dump's BTF for types).
func corpusSessionMode(t *testing.T, m *corpus.Manifest, d corpus.Dump, mode string) *Session {
	t.Helper()
	withVmlinux := mode == "vmlinux"
	f, err := dump.Open(m.Paths(d)...)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	vmlinux := ""
	key := "btf:" + d.Release
	if withVmlinux {
		kern := m.Kernel(d.Release)
		if kern == nil {
			t.Fatalf("corpus has no kernel %s", d.Release)
		}
		vmlinux = m.Path(kern.DebugVmlinux)
		key = "dwarf:" + d.Release
	}
	var out, errw bytes.Buffer
	s := NewSession(f, vmlinux, &out, &errw)
	if mode == "sysmap" {
		kern := m.Kernel(d.Release)
		if kern == nil || kern.SystemMap == "" {
			t.Fatalf("corpus has no System.map of %s", d.Release)
		}
		s.SystemMap = m.Path(kern.SystemMap)
		key = "btf:" + d.Release
	}
	if ts, ok := sharedTypes.Load(key); ok {
		s.Types = ts.(debuginfo.Types)
	}
	k, err := s.Kernel()
	if err != nil {
		t.Fatalf("kernel: %v", err)
	}
	sharedTypes.LoadOrStore(key, k.Types)
	return s
}

// execCapture runs one command and returns what it printed and its
// error lines.
func execCapture(s *Session, cmd string) (out, errs string) {
	var o, e bytes.Buffer
	oldOut, oldErr := s.Out, s.Err
	s.Out, s.Err = &o, &e
	defer func() { s.Out, s.Err = oldOut, oldErr }()
	s.Exec(cmd)
	return o.String(), strings.TrimSpace(e.String())
}

// pageHeaderOnce accepts one known difference: crash prints the header of
// vtop's page line ("PAGE PHYSICAL MAPPING …") once a session, and so
// does salvage; but in the lab's reference sessions of some dumps an
// earlier command that salvage does not run here (kmem, …) printed it
// first, so crash's vtop reference lacks it.
func pageHeaderOnce(cmd, got, want string) string {
	const hdr = "      PAGE       PHYSICAL      MAPPING       INDEX CNT FLAGS\n"
	if !strings.HasPrefix(cmd, "vtop") || strings.Contains(want, hdr) || !strings.Contains(got, hdr) {
		return want
	}
	i := strings.LastIndex(got, hdr)
	if strings.HasPrefix(want, got[:i]) {
		return got[:i] + hdr + want[i:]
	}
	return want
}
