package analyze

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"salvage/dump"
	"salvage/lab/corpus"
)

// corpusDump returns the paths of the corpus dump whose variant is
// variant, its kernel's debug vmlinux, and the physical address of
// linux_banner in it, taken from the command of crash's "rd" reference.
func corpusDump(t *testing.T, variant string) (files []string, vmlinux string, banner uint64) {
	t.Helper()
	m := corpus.Require(t)
	ds := m.Select(func(d corpus.Dump) bool { return d.Variant == variant })
	if len(ds) == 0 {
		t.Fatalf("lab corpus has no %s dump", variant)
	}
	d := ds[0]
	k := m.Kernel(d.Release)
	if k == nil {
		t.Fatalf("lab corpus has no kernel %s", d.Release)
	}
	ref, ok, err := m.Ref(d, "rd")
	if err != nil || !ok {
		t.Fatalf("%s: no rd reference: %v", d.ID, err)
	}
	cmd, _, err := refCommand(m.Path(d.Refs["rd"]), ref)
	if err != nil {
		t.Fatal(err)
	}
	_, operands, err := parseOptions(rdCommand().Options, strings.Fields(cmd)[1:])
	if err != nil || len(operands) == 0 {
		t.Fatalf("rd reference command %q: %v", cmd, err)
	}
	if banner, err = parseHex("address", operands[0]); err != nil {
		t.Fatal(err)
	}
	return m.Paths(d), m.Path(k.DebugVmlinux), banner
}

func TestRunSteps(t *testing.T) {
	files, vmlinux, addr := corpusDump(t, "zlib-d31")
	script := filepath.Join(t.TempDir(), "cmds")
	os.WriteFile(script, []byte(fmt.Sprintf("# comment\n\nrd -a -p %x 5\n  \nrd -p 0 0\n", addr)), 0o644)

	var out, errw bytes.Buffer
	failed, err := Run(Invocation{
		Files: append([]string{vmlinux}, files...),
		Steps: []Step{
			{Command: fmt.Sprintf("rd -8 -p %x 4", addr)},
			{File: script},
			{Command: fmt.Sprintf("rd -8 -p %x 1", addr)},
			{Command: "q"},
			{Command: "rd -p 0"},
		},
		In: strings.NewReader("rd -p 0\n"), Out: &out, Err: &errw,
	})
	if err != nil {
		t.Fatal(err)
	}
	if failed != 1 {
		t.Errorf("failed = %d, want 1", failed)
	}
	a := fmt.Sprintf("%16x:  ", addr)
	want := a + "4c 69 6e 75" + strings.Repeat(" ", 37) + "  Linu\n" +
		a + "Linux\n" +
		a + "4c" + strings.Repeat(" ", 46) + "  L\n"
	if out.String() != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", out.String(), want)
	}
	if errw.String() != "rd: invalid count 0\n" {
		t.Errorf("stderr %q", errw.String())
	}
}

func TestRunStdinScript(t *testing.T) {
	files, _, _ := corpusDump(t, "lzo-d31")
	var out, errw bytes.Buffer
	failed, err := Run(Invocation{Files: files, In: strings.NewReader("rd -8 -p 1000 1\nbogus\n"), Out: &out, Err: &errw})
	if err != nil {
		t.Fatal(err)
	}
	if failed != 1 || strings.Contains(out.String(), "salvage>") || !strings.HasPrefix(out.String(), "            1000:  ") {
		t.Errorf("failed %d, stdout %q, stderr %q", failed, out.String(), errw.String())
	}
}

func TestRunInteractive(t *testing.T) {
	files, vmlinux, _ := corpusDump(t, "lzo-d31")
	var out, errw bytes.Buffer
	failed, err := Run(Invocation{Files: append(files, vmlinux), In: strings.NewReader("bogus\nq\n"), Out: &out, Err: &errw, Terminal: true, Version: "test"})
	if err != nil || failed != 0 {
		t.Fatalf("Run: %d %v", failed, err)
	}
	o := out.String()
	if !strings.HasPrefix(o, "salvage test: "+files[0]+" (kdump, x86_64, ") || !strings.Contains(o, "vmlinux: "+vmlinux) ||
		!strings.HasSuffix(o, "salvage> salvage> ") {
		t.Errorf("stdout:\n%s", o)
	}
	if !strings.HasPrefix(errw.String(), "salvage: command not found: bogus") {
		t.Errorf("stderr %q", errw.String())
	}
}

// The vmlinux may come before or after the dump; a split dump's parts
// open together.
func TestOpenTargets(t *testing.T) {
	files, vmlinux, _ := corpusDump(t, "split-lzo-d31")
	if len(files) < 2 {
		t.Fatalf("split dump has %d parts", len(files))
	}
	for _, args := range [][]string{
		append([]string{vmlinux}, files...),
		append(append([]string{}, files...), vmlinux),
		{files[0], vmlinux, files[1]},
	} {
		s, err := Open(args, &bytes.Buffer{}, &bytes.Buffer{})
		if err != nil {
			t.Fatalf("Open(%q): %v", args, err)
		}
		if s.Vmlinux != vmlinux || s.Dump.Format != dump.FormatSplit {
			t.Errorf("Open(%q): vmlinux %q, format %s", args, s.Vmlinux, s.Dump.Format)
		}
		s.Close()
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.vmcore")
	os.WriteFile(garbage, bytes.Repeat([]byte("not a dump "), 100), 0o644)
	short := filepath.Join(dir, "short.vmcore")
	os.WriteFile(short, []byte("\x7fELF"), 0o644)
	bz := filepath.Join(dir, "vmlinuz")
	b := make([]byte, 0x300)
	copy(b[0x202:], "HdrS")
	os.WriteFile(bz, b, 0o644)
	exec := filepath.Join(dir, "vmlinux")
	os.WriteFile(exec, elfHeader(etExec), 0o644)
	exec2 := filepath.Join(dir, "vmlinux2")
	os.WriteFile(exec2, elfHeader(etDyn), 0o644)
	missing := filepath.Join(dir, "missing.vmcore")

	tests := []struct {
		args []string
		want string // the error names the file and the problem
	}{
		{[]string{missing}, missing + ": no such file or directory"},
		{[]string{exec, missing}, missing + ": no such file or directory"},
		{[]string{dir}, dir + ": is a directory"},
		{[]string{garbage}, garbage + ": unknown dump format"},
		{[]string{short}, short},
		{[]string{exec}, exec + " is a kernel image, not a dump"},
		{[]string{exec, exec2, garbage}, "are both kernel images"},
		{[]string{bz, garbage}, bz + ": is a compressed kernel (vmlinuz)"},
	}
	for _, tt := range tests {
		_, err := Open(tt.args, &bytes.Buffer{}, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Open(%q) = %v, want one line with %q", tt.args, err, tt.want)
		}
	}
	// A missing -i file is reported before the dump is opened.
	_, err := Run(Invocation{Files: []string{missing}, Steps: []Step{{File: filepath.Join(dir, "nope")}}, Out: &bytes.Buffer{}, Err: &bytes.Buffer{}})
	if err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("Run with a missing -i file: %v", err)
	}
}

func elfHeader(typ uint16) []byte {
	h := make([]byte, 64)
	copy(h, "\x7fELF\x02\x01\x01")
	h[16], h[17] = byte(typ), byte(typ>>8)
	return h
}

// On a filtered dump, rd -p of a page makedumpfile left out fails with a
// line that says so, and the session goes on.
func TestRdExcludedPage(t *testing.T) {
	files, _, _ := corpusDump(t, "lzo-d31")
	f, err := dump.Open(files...)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var excluded uint64
	found := false
	ps := uint64(f.Memory.PageSize())
	for _, r := range f.Memory.Ranges() {
		for pfn := r.Start / ps; pfn < r.End/ps && !found; pfn++ {
			if f.Memory.State(pfn) == dump.PageExcluded {
				excluded, found = pfn*ps, true
			}
		}
	}
	if !found {
		t.Fatal("no excluded page in a -d 31 dump")
	}
	var out, errw bytes.Buffer
	s := NewSession(f, "", &out, &errw)
	failed := s.RunScript([]string{fmt.Sprintf("rd -p %x", excluded+8), "rd -8 -p 1000"})
	want := fmt.Sprintf("rd: physical address %#x: page excluded by the dump filter\n", excluded+8)
	if failed != 1 || errw.String() != want {
		t.Errorf("failed %d, stderr %q, want %q", failed, errw.String(), want)
	}
	if !strings.HasPrefix(out.String(), "            1000:  ") {
		t.Errorf("the session did not go on: %q", out.String())
	}
}
