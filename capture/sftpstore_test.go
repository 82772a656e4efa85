package capture

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"salvage/analyze"
	"salvage/collect"
	"salvage/dump"
	"salvage/lab/corpus"
)

// dropDumpfile removes sys's DUMPFILE line, the one line that names the
// file rather than the crash (and says [PARTIAL DUMP] of a filtered one).
func dropDumpfile(s string) string {
	var keep []string
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "DUMPFILE:") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// kernelBase replaces the directory of the vmlinux on sys's KERNEL line
// with "…/", keeping its name and marks ([TAINTED]): a reference recorded
// in a lab cache since moved (lab-612 → lab-6.12) names the old directory.
func kernelBase(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		t := strings.TrimSpace(l)
		if !strings.HasPrefix(t, "KERNEL: ") {
			continue
		}
		f := strings.Fields(strings.TrimPrefix(t, "KERNEL: "))
		if len(f) > 0 {
			f[0] = ".../" + filepath.Base(f[0])
		}
		lines[i] = l[:strings.Index(l, "KERNEL: ")] + "KERNEL: " + strings.Join(f, "  ")
	}
	return strings.Join(lines, "\n")
}

// salvageSys runs salvage's own `sys` on a dump, with the debug vmlinux
// or from the dump's BTF and kallsyms.
func salvageSys(t *testing.T, paths []string, vmlinux string) string {
	t.Helper()
	f, err := dump.Open(paths...)
	if err != nil {
		t.Fatalf("open %v: %v", paths, err)
	}
	defer f.Close()
	var out, errw bytes.Buffer
	s := analyze.NewSession(f, vmlinux, &out, &errw)
	if _, err := s.Kernel(); err != nil {
		t.Fatalf("kernel of %v: %v", paths, err)
	}
	out.Reset()
	s.Exec("sys")
	if errw.Len() > 0 {
		t.Errorf("sys on %v: %s", paths, errw.String())
	}
	return out.String()
}

// TestSSHStoreCorpusDump writes the oops crash's dump through the ssh
// target as the capture kernel does (collect.CollectTo, lzo, -d 31, into
// an .incomplete file renamed when done) and checks that the file on the
// server is the same crash: salvage's sys (vmlinux and BTF) equals the
// source's, and crash 8.0.6's sys equals its reference of the source.
func TestSSHStoreCorpusDump(t *testing.T) {
	m := corpus.Require(t)
	var d *corpus.Dump
	for i := range m.Dumps {
		if m.Dumps[i].Scenario == "oops" && m.Dumps[i].Variant == "vmcore-elf" {
			d = &m.Dumps[i]
		}
	}
	if d == nil {
		t.Fatal("the lab has no oops vmcore-elf")
	}
	fx := newSSHFixture(t)
	root := filepath.Join(fx.Dir, "var", "crash")
	ctx := context.Background()
	st, err := OpenSFTPStore(ctx, fx.Conf, root, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	src, err := dump.Open(m.Paths(*d)...)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	const stamp = "202611221802"
	if err := st.MkdirAll(stamp); err != nil {
		t.Fatal(err)
	}
	f, err := st.Create(stamp + "/dump." + stamp + ".incomplete")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res, err := collect.CollectTo(ctx, src, f, collect.Options{Level: 31, Format: collect.FormatKdump, Compression: "lzo"})
	if err != nil {
		t.Fatalf("collect to %s: %v", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := st.Rename(stamp+"/dump."+stamp+".incomplete", stamp+"/dump."+stamp); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(root, stamp, "dump."+stamp)
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %d pages, %d bytes over SFTP in %v", d.ID, res.Pages, fi.Size(), time.Since(start).Round(time.Millisecond))
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("dump mode %o, want 600", fi.Mode().Perm())
	}

	vmlinux := m.Path(m.Kernel(d.Release).DebugVmlinux)
	for _, mode := range []string{vmlinux, ""} {
		want := dropDumpfile(salvageSys(t, m.Paths(*d), mode))
		got := dropDumpfile(salvageSys(t, []string{out}, mode))
		if got != want || !strings.Contains(got, "PANIC:") {
			t.Errorf("salvage sys (vmlinux %q) of the dump written over ssh:\n%s\nof the source:\n%s", mode, got, want)
		}
	}

	ref, ok, err := m.Ref(*d, "sys")
	if err != nil || !ok {
		t.Fatalf("no crash sys reference for %s: %v", d.ID, err)
	}
	cmdFile := filepath.Join(t.TempDir(), "cmds")
	os.WriteFile(cmdFile, []byte("sys\nq\n"), 0o600)
	dd := *d
	dd.Files = []string{out}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd, err := m.Crash(cctx, dd, cmdFile)
	if err != nil {
		t.Fatal(err)
	}
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("crash 8.0.6 on the dump written over ssh: %v\n%s", err, b)
	}
	got := string(b)
	if i := strings.Index(got, "      KERNEL:"); i >= 0 {
		got = got[i:]
	}
	if g, w := kernelBase(dropDumpfile(got)), kernelBase(dropDumpfile(ref)); g != w {
		t.Errorf("crash's sys of the dump written over ssh:\n%s\nits reference of the source:\n%s", g, w)
	}
	if !strings.Contains(got, out+"  [PARTIAL DUMP]") {
		t.Errorf("crash does not name the written file as a partial dump:\n%s", got)
	}
}
