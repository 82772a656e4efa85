package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"salvage/lab/corpus"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// runSalvage runs the salvage command line in-process.
func runSalvage(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := newRootCmd()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	err = root.Execute()
	return out.String(), errb.String(), err
}

// writeTestCore writes a small x86_64 ELF core: two NT_PRSTATUS notes, a
// VMCOREINFO note, 640 KiB of RAM at 0 and, at 1 MiB, 4 pages of which
// the last 2 are excluded (p_filesz < p_memsz, as makedumpfile -E does).
func writeTestCore(t *testing.T, dir string, flags uint32) string {
	t.Helper()
	le := binary.LittleEndian
	var notes bytes.Buffer
	note := func(name string, typ uint32, desc []byte) {
		var h [12]byte
		n := append([]byte(name), 0)
		le.PutUint32(h[0:], uint32(len(n)))
		le.PutUint32(h[4:], uint32(len(desc)))
		le.PutUint32(h[8:], typ)
		notes.Write(h[:])
		notes.Write(n)
		notes.Write(make([]byte, (4-len(n)%4)%4))
		notes.Write(desc)
		notes.Write(make([]byte, (4-len(desc)%4)%4))
	}
	note("CORE", 1, make([]byte, 336))
	note("CORE", 1, make([]byte, 336))
	note("VMCOREINFO", 0, []byte("OSRELEASE=6.1.0-test-amd64\nBUILD-ID=00112233445566778899aabbccddeeff00112233\n"+
		"PAGESIZE=4096\nNUMBER(phys_base)=-48234496\nKERNELOFFSET=1a400000\nCRASHTIME=1732287360\n"))
	type load struct{ paddr, filesz, memsz uint64 }
	loads := []load{{0, 0xa0000, 0xa0000}, {0x100000, 0x2000, 0x4000}}
	phnum := 1 + len(loads)
	off := uint64(64 + 56*phnum)
	eh := make([]byte, 64)
	copy(eh, "\x7fELF\x02\x01\x01")
	le.PutUint16(eh[16:], 4)  // ET_CORE
	le.PutUint16(eh[18:], 62) // EM_X86_64
	le.PutUint32(eh[20:], 1)
	le.PutUint64(eh[32:], 64)
	le.PutUint32(eh[48:], flags)
	le.PutUint16(eh[52:], 64)
	le.PutUint16(eh[54:], 56)
	le.PutUint16(eh[56:], uint16(phnum))
	var ph, body bytes.Buffer
	phdr := func(typ uint32, off, paddr, filesz, memsz uint64) {
		var h [56]byte
		le.PutUint32(h[0:], typ)
		le.PutUint64(h[8:], off)
		le.PutUint64(h[24:], paddr)
		le.PutUint64(h[32:], filesz)
		le.PutUint64(h[40:], memsz)
		ph.Write(h[:])
	}
	phdr(4, off, 0, uint64(notes.Len()), uint64(notes.Len()))
	body.Write(notes.Bytes())
	off += uint64(notes.Len())
	for _, l := range loads {
		phdr(1, off, l.paddr, l.filesz, l.memsz)
		body.Write(bytes.Repeat([]byte{0xa5}, int(l.filesz)))
		off += l.filesz
	}
	p := filepath.Join(dir, "test.vmcore")
	if err := os.WriteFile(p, append(append(eh, ph.Bytes()...), body.Bytes()...), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestInfoText(t *testing.T) {
	dir := t.TempDir()
	p := writeTestCore(t, dir, 1) // DUMP_ELF_INCOMPLETE
	out, errOut, err := runSalvage(t, "info", p)
	if err != nil || errOut != "" {
		t.Fatalf("info: %v, stderr %q", err, errOut)
	}
	out = strings.ReplaceAll(out, dir, "DIR")
	golden := filepath.Join("testdata", "info", "elf-synthetic.golden")
	if *update {
		if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if out != string(want) {
		t.Errorf("info output differs from %s:\n%s\nwant:\n%s", golden, out, want)
	}
}

func TestInfoJSON(t *testing.T) {
	p := writeTestCore(t, t.TempDir(), 0)
	out, _, err := runSalvage(t, "info", "--json", p)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	for _, k := range []string{"format", "compression", "codecs", "arch", "page_size", "osrelease", "cpus", "dump_level", "incomplete", "pages", "ram_ranges", "phys_base", "kernel_offset", "crash_time", "build_id"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	var in dumpInfo
	if err := json.Unmarshal([]byte(out), &in); err != nil {
		t.Fatal(err)
	}
	want := pageCounts{RAM: 0xa0 + 4, InDump: 0xa0 + 2, Present: 0xa0 + 2, Excluded: 2}
	if in.Format != "elf" || in.Compression != "none" || in.Arch != "x86_64" || in.PageSize != 4096 ||
		in.OSRelease != "6.1.0-test-amd64" || in.CPUs != 2 || in.DumpLevel != -1 || in.Incomplete ||
		in.Pages != want || *in.PhysBase != 0xfffffffffd200000 || *in.KernelOffset != 0x1a400000 || *in.CrashTimeUnix != 1732287360 {
		t.Errorf("got %+v", in)
	}
	// Several dumps print an array.
	out, _, err = runSalvage(t, "info", "--json", p, p)
	var list []dumpInfo
	if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list) != 2 {
		t.Errorf("two dumps: %v, %s", err, out)
	}
}

func TestInfoErrors(t *testing.T) {
	dir := t.TempDir()
	good := writeTestCore(t, dir, 0)
	b, _ := os.ReadFile(good)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	exec := append([]byte{}, b...)
	exec[16] = 2 // ET_EXEC
	tests := []struct {
		name string
		path string
		msg  string
	}{
		{"missing file", filepath.Join(dir, "nope"), "no such file"},
		{"empty file", write("empty", nil), "not a crash dump"},
		{"text file", write("text", []byte("hello, this is not a dump\n")), "unknown dump format"},
		{"not a core", write("exec", exec), "not a core file"},
		{"cut in the headers", write("cut", b[:100]), "past the end"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, err := runSalvage(t, "info", good, tc.path)
			var ee exitError
			if !errors.As(err, &ee) || ee.code == 0 {
				t.Fatalf("exit %v, want a non-zero exit status", err)
			}
			lines := strings.Split(strings.TrimSpace(errOut), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], tc.path) || !strings.Contains(lines[0], tc.msg) {
				t.Errorf("stderr %q: want one line naming %s and saying %q", errOut, tc.path, tc.msg)
			}
			if !strings.Contains(out, good) {
				t.Errorf("the good dump was not described: %q", out)
			}
		})
	}
}

// TestInfoTruncated: a dump cut inside its memory still opens; the lost
// pages are counted as missing.
func TestInfoTruncated(t *testing.T) {
	dir := t.TempDir()
	b, _ := os.ReadFile(writeTestCore(t, dir, 0))
	p := filepath.Join(dir, "cut.vmcore")
	if err := os.WriteFile(p, b[:len(b)-0x1800], 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, err := runSalvage(t, "info", "--json", p)
	if err != nil {
		t.Fatal(err)
	}
	var in dumpInfo
	if err := json.Unmarshal([]byte(out), &in); err != nil {
		t.Fatal(err)
	}
	if want := (pageCounts{RAM: 0xa4, InDump: 0xa0, Present: 0xa0, Excluded: 2, Missing: 2}); in.Pages != want {
		t.Errorf("pages %+v, want %+v", in.Pages, want)
	}
}

// TestInfoCorpus: for every dump of the lab corpus, info agrees with what
// the manifest says of it.
func TestInfoCorpus(t *testing.T) {
	m := corpus.Require(t)
	for _, d := range m.Dumps {
		t.Run(d.ID, func(t *testing.T) {
			args := []string{"info", "--json"}
			if len(d.Files) > 1 {
				args = append(args, "--split")
			}
			out, errOut, err := runSalvage(t, append(args, m.Paths(d)...)...)
			if err != nil {
				t.Fatalf("%v: %s", err, errOut)
			}
			var in dumpInfo
			if err := json.Unmarshal([]byte(out), &in); err != nil {
				t.Fatal(err)
			}
			wantLevel := d.DumpLevel
			if d.Format == "elf" {
				wantLevel = -1 // an ELF core does not record makedumpfile's -d
			}
			if in.Format != d.Format || in.Compression != d.Compression || in.DumpLevel != wantLevel ||
				in.OSRelease != d.Release || in.Incomplete || in.CPUs != 2 || in.PageSize != 4096 {
				t.Errorf("info: format %s compression %s dump level %d osrelease %q incomplete %v cpus %d page size %d\nmanifest: %s %s %d %s",
					in.Format, in.Compression, in.DumpLevel, in.OSRelease, in.Incomplete, in.CPUs, in.PageSize,
					d.Format, d.Compression, d.DumpLevel, d.Release)
			}
			if strings.HasSuffix(d.Release, "-amd64") && in.Arch != "x86_64" {
				t.Errorf("arch %s", in.Arch)
			}
			if k := m.Kernel(d.Release); k != nil && !strings.EqualFold(in.BuildID, k.BuildID) {
				t.Errorf("build ID %q, kernel's %q", in.BuildID, k.BuildID)
			}
			if in.PhysBase == nil || in.KernelOffset == nil {
				t.Errorf("phys_base %v, kernel offset %v", in.PhysBase, in.KernelOffset)
			}
			p := in.Pages
			if p.RAM == 0 || p.InDump == 0 || p.Missing != 0 || p.RAM != p.InDump+p.Excluded {
				t.Errorf("pages %+v", p)
			}
			// Level 1 alone drops only zero pages, which kdump files keep as
			// references to the shared zero page: nothing is excluded.
			if (d.DumpLevel > 0 && d.DumpLevel&^1 != 0) != (p.Excluded > 0) {
				t.Errorf("dump level %d, %d pages excluded", d.DumpLevel, p.Excluded)
			}
			if len(d.Files) > 1 && len(in.Parts) != len(d.Files) {
				t.Errorf("%d parts, manifest lists %d files", len(in.Parts), len(d.Files))
			}
		})
	}
}
