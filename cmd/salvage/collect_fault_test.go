package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"salvage/dump"
	"salvage/lab/corpus"
)

// childArgsEnv carries, JSON-encoded, the salvage command line that the
// test binary runs when started as a child (TestSalvageChild): a real
// `salvage collect` process that a test can kill.
const childArgsEnv = "SALVAGE_TEST_CHILD_ARGS"

// TestSalvageChild is not a test of its own: started by a test with
// childArgsEnv set, it runs salvage's command line and exits with its
// status, as the salvage binary would.
func TestSalvageChild(t *testing.T) {
	raw := os.Getenv(childArgsEnv)
	if raw == "" {
		return
	}
	var args []string
	if err := json.Unmarshal([]byte(raw), &args); err != nil {
		os.Exit(3)
	}
	root := newRootCmd()
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		os.Stderr.WriteString("salvage: " + err.Error() + "\n")
		os.Exit(1)
	}
	os.Exit(0)
}

// salvageChild starts `salvage ARGS…` as a child process with its
// standard error piped to the caller.
func salvageChild(t *testing.T, args ...string) (*exec.Cmd, io.ReadCloser) {
	t.Helper()
	b, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^TestSalvageChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), childArgsEnv+"="+string(b))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, stderr
}

// crashSession runs the lab's crash 8.0.6 over path with the debug
// vmlinux of d's kernel, each command into its own file, and returns
// their outputs and crash's own messages (its warnings about the dump).
func crashSession(t *testing.T, m *corpus.Manifest, d corpus.Dump, path string, cmds map[string]string) (map[string]string, string) {
	t.Helper()
	dir := t.TempDir()
	var script strings.Builder
	for key, c := range cmds {
		script.WriteString(c + " > " + filepath.Join(dir, key+".txt") + "\n")
	}
	script.WriteString("q\n")
	in := filepath.Join(dir, "session.in")
	if err := os.WriteFile(in, []byte(script.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	d.Files = []string{path}
	cmd, err := m.Crash(context.Background(), d, in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("crash on %s: %v\n%s", path, err, out)
	}
	res := map[string]string{}
	for key := range cmds {
		b, err := os.ReadFile(filepath.Join(dir, key+".txt"))
		if err != nil {
			t.Fatalf("crash left no output for %s on %s: %v\n%s", cmds[key], path, err, out)
		}
		res[key] = string(b)
	}
	return res, string(out)
}

// withoutDumpfile drops sys's DUMPFILE line, which names the file (and
// says [PARTIAL DUMP] [INCOMPLETE] of a cut dump).
func withoutDumpfile(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimLeft(l, " "), "DUMPFILE:") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// A collector killed (SIGKILL) half-way through a dump leaves
// DEST.incomplete, mode 0600, marked incomplete from its first write, and
// no DEST; salvage info says it is incomplete; because the collector
// writes the pages the analyzer needs first, salvage's analyzer (with the
// debug vmlinux and from the dump alone) and crash 8.0.6 open it and
// their sys, log, ps and bt equal crash's on makedumpfile's complete dump
// of the same crash. The kill lands when the --progress=json events pass
// 50%; zlib on one thread makes the dump take a couple of seconds.
func TestCollectKilled(t *testing.T) {
	m := corpus.Require(t)
	src := sysrqVmcore(t)
	ref := []corpus.Dump{sysrqDump(t, m, "lzo-d31")}
	dest := filepath.Join(t.TempDir(), "dump")
	cmd, stderr := salvageChild(t, "collect", "-c", "-d", "31", "--num-threads", "1", "--progress=json", "--message-level", "0", src, dest)
	var killedAt float64
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		var ev struct {
			Event   string  `json:"event"`
			Percent float64 `json:"percent"`
		}
		if json.Unmarshal(sc.Bytes(), &ev) != nil {
			continue
		}
		if ev.Event == "progress" && ev.Percent >= 50 {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killedAt = ev.Percent
			break
		}
	}
	io.Copy(io.Discard, stderr)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the collector was not killed mid-dump (killed at %.1f%%): %v", killedAt, err)
	}
	t.Logf("collector killed at %.1f%% of the pages", killedAt)

	part := dest + ".incomplete"
	if _, err := os.Stat(dest); err == nil {
		t.Errorf("%s exists after the collector was killed", dest)
	}
	st, err := os.Stat(part)
	if err != nil {
		t.Fatalf("no %s: %v", part, err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", part, st.Mode().Perm())
	}
	f, err := dump.Open(part)
	if err != nil {
		t.Fatalf("the killed collector's file does not open: %v", err)
	}
	var present, missing uint64
	for _, r := range f.Memory.Ranges() {
		for pfn := r.Start / 4096; pfn < r.End/4096; pfn++ {
			switch f.Memory.State(pfn) {
			case dump.PagePresent, dump.PageZero:
				present++
			case dump.PageMissing:
				missing++
			}
		}
	}
	f.Close()
	if !f.Incomplete || present == 0 || missing == 0 {
		t.Errorf("incomplete %v, %d pages present, %d missing: want an incomplete dump with some of each", f.Incomplete, present, missing)
	}
	t.Logf("%s: %d bytes, %d pages present, %d missing", filepath.Base(part), st.Size(), present, missing)

	out, _, err := runSalvage(t, "info", "--json", part)
	var info struct {
		Incomplete bool `json:"incomplete"`
	}
	if err != nil || json.Unmarshal([]byte(out), &info) != nil || !info.Incomplete {
		t.Errorf("salvage info --json: %v, %s", err, out)
	}
	if out, _, err := runSalvage(t, "info", part); err != nil || !strings.Contains(out, "INCOMPLETE") {
		t.Errorf("salvage info: %v\n%s", err, out)
	}

	want := map[string]string{}
	for _, key := range []string{"sys", "log", "ps", "bt"} {
		s, ok, err := m.Ref(ref[0], key)
		if err != nil || !ok {
			t.Fatalf("no crash reference %s: %v", key, err)
		}
		want[key] = s
	}
	compare := func(who, key, got string) {
		t.Helper()
		w := want[key]
		if key == "sys" {
			got, w = withoutDumpfile(got), withoutDumpfile(w)
		}
		if got != w {
			t.Errorf("%s %s on the killed collector's dump differs from crash's on makedumpfile's:\n%s", who, key, firstDiff(got, w))
		} else {
			t.Logf("%s %s: %d lines, equal to crash's on makedumpfile's complete dump", who, key, strings.Count(got, "\n"))
		}
	}
	vmlinux := m.Path(m.Kernel(ref[0].Release).DebugVmlinux)
	for _, mode := range []string{"btf", "vmlinux"} {
		for _, key := range []string{"sys", "log", "ps", "bt"} {
			args := []string{"analyze", part, "-c", key}
			if mode == "vmlinux" {
				args = []string{"analyze", vmlinux, part, "-c", key}
			}
			got, errOut, err := runSalvage(t, args...)
			if err != nil {
				t.Errorf("salvage analyze (%s) %s: %v %s", mode, key, err, errOut)
				continue
			}
			if key == "sys" && mode == "btf" {
				// Without a vmlinux, KERNEL: says where the symbols came from.
				got = dropLine(got, "KERNEL:")
				want := dropLine(want["sys"], "KERNEL:")
				if withoutDumpfile(got) != withoutDumpfile(want) {
					t.Errorf("salvage sys (btf) differs:\n%s", firstDiff(withoutDumpfile(got), withoutDumpfile(want)))
				} else {
					t.Logf("salvage analyze (btf) sys: equal to crash's on makedumpfile's complete dump but for KERNEL: and DUMPFILE:")
				}
				continue
			}
			compare("salvage analyze ("+mode+")", key, got)
		}
	}

	got, banner := crashSession(t, m, ref[0], part, map[string]string{"sys": "sys", "log": "log", "ps": "ps", "bt": "bt"})
	if !strings.Contains(banner, "This dumpfile is incomplete") {
		t.Errorf("crash does not warn that the dump is incomplete:\n%s", banner)
	}
	for _, l := range strings.Split(strings.TrimSpace(banner), "\n") {
		if strings.HasPrefix(l, "WARNING:") || strings.HasPrefix(l, "crash:") {
			t.Logf("crash says: %s", l)
		}
	}
	for key, g := range got {
		compare("crash 8.0.6", key, g)
	}
}

// dropLine drops the lines that start, after blanks, with prefix.
func dropLine(s, prefix string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimLeft(l, " "), prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// A source that ends early — a copy of the sysrq crash's /proc/vmcore cut
// at 40% — gives a readable dump marked incomplete, in which the pages
// the source lacks are missing (not excluded), one line of error naming
// the source and the offsets, exit status 1, and no DEST.
func TestCollectTruncatedSourceCommand(t *testing.T) {
	src := sysrqVmcore(t)
	dir := t.TempDir()
	cut := filepath.Join(dir, "vmcore.cut")
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := in.Stat()
	outf, err := os.Create(cut)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(outf, in, st.Size()*4/10); err != nil {
		t.Fatal(err)
	}
	in.Close()
	outf.Close()

	dest := filepath.Join(dir, "dump")
	cmd, stderr := salvageChild(t, "collect", "-l", "-d", "31", "--message-level", "0", cut, dest)
	msg, _ := io.ReadAll(stderr)
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("exit: %v, want status 1", err)
	}
	lines := strings.Split(strings.TrimSpace(string(msg)), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], cut+" ends early") || !strings.Contains(lines[0], "the file ends at offset 0x") {
		t.Errorf("want one line naming %s and the offset where it ends, got:\n%s", cut, msg)
	}
	t.Logf("salvage says: %s", strings.TrimSpace(string(msg)))
	if _, err := os.Stat(dest); err == nil {
		t.Error("DEST created from a source that ends early")
	}
	f, err := dump.Open(dest + ".incomplete")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := dump.Open(cut)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var present, missing, wrong uint64
	for _, r := range s.Memory.Ranges() {
		for pfn := r.Start / 4096; pfn < r.End/4096; pfn++ {
			got := f.Memory.State(pfn)
			switch s.Memory.State(pfn) {
			case dump.PageMissing:
				if got != dump.PageMissing {
					wrong++
				}
				missing++
			case dump.PagePresent:
				if got == dump.PagePresent || got == dump.PageZero {
					present++
				}
			}
		}
	}
	if !f.Incomplete || wrong != 0 || present == 0 || missing == 0 {
		t.Errorf("incomplete %v; %d pages present, %d the source lacks, %d of them not missing in the dump", f.Incomplete, present, missing, wrong)
	}
	t.Logf("%d pages copied, %d the source lacks left missing", present, missing)
}
