package analyze

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSessionErrors(t *testing.T) {
	tests := []struct {
		line    string
		errLine string // the one line reported, "" for success
	}{
		{line: "", errLine: ""},
		{line: "   ", errLine: ""},
		{line: "# a comment", errLine: ""},
		{line: "nosuch 1 2", errLine: `salvage: command not found: nosuch ("help" lists the commands)`},
		{line: `rd "-p`, errLine: "salvage: unterminated \" quote"},
		{line: "rd", errLine: "rd: missing operand (usage: " + rdCommand().Synopsis() + ")"},
		{line: "rd -p 1000 1 2", errLine: "rd: too many operands: 2 (usage: " + rdCommand().Synopsis() + ")"},
		{line: "rd -z -p 1000", errLine: "rd: invalid option -z (usage: " + rdCommand().Synopsis() + ")"},
		{line: "rd -p zzz", errLine: `rd: invalid address "zzz": expected a hexadecimal number`},
		{line: "rd -p 1000 0", errLine: "rd: invalid count 0"},
		{line: "rd -p 1000 -- -1", errLine: `rd: invalid count "-1": expected a decimal or hexadecimal number`},
		{line: "rd -p 1000 xyz", errLine: `rd: invalid count "xyz": expected a decimal or hexadecimal number`},
		{line: "rd -p ffffffffffffffff 2", errLine: "rd: count 2 from 0xffffffffffffffff runs past the end of the address space"},
		{line: "rd -p -e 1000 2000", errLine: "rd: invalid end address 0x1000: not after 0x2000"},
		{line: "rd -p -e 1004 1000", errLine: "rd: invalid count 0"},
		{line: "rd -R -p 8 3", errLine: "rd: count 3 before 0x8 is before address 0"},
		// The fake dump has no kernel to model: virtual reads, symbols
		// and -s say why they cannot work.
		{line: "rd 1000", errLine: "rd: no kernel symbols or types (from the dump's kallsyms and BTF): amd64: VMCOREINFO has no NUMBER(phys_base) and no CPU state gives it: cannot place the kernel text mapping"},
		{line: "rd linux_banner", errLine: "rd: linux_banner: not a hexadecimal address, and symbols cannot be looked up: no kernel symbols or types (from the dump's kallsyms and BTF): amd64: VMCOREINFO has no NUMBER(phys_base) and no CPU state gives it: cannot place the kernel text mapping"},
		{line: "rd -s -p 1000", errLine: "rd: no kernel symbols or types (from the dump's kallsyms and BTF): amd64: VMCOREINFO has no NUMBER(phys_base) and no CPU state gives it: cannot place the kernel text mapping"},
		{line: "rd -p 5000", errLine: "rd: physical address 0x5000: page not RAM"},
		{line: "rd -p 2000000 2", errLine: "rd: physical address 0x2000000: page missing (incomplete dump)"},
		{line: "rd -p 3d921000", errLine: "rd: physical address 0x3d921000: page excluded by the dump filter"},
		{line: "help nosuch", errLine: "help: no such command: nosuch"},
		{line: "q now", errLine: "quit: too many operands: now (usage: quit)"},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			s, out, errw := testSession(t, testMemory(t))
			err := s.Exec(tt.line)
			if tt.errLine == "" {
				if err != nil || errw.Len() > 0 {
					t.Fatalf("Exec: %v, stderr %q", err, errw)
				}
				return
			}
			if err == nil {
				t.Errorf("Exec succeeded, want an error")
			}
			if got := errw.String(); got != tt.errLine+"\n" {
				t.Errorf("stderr:\n got %q\nwant %q", got, tt.errLine+"\n")
			}
			if out.Len() > 0 {
				t.Errorf("stdout %q, want nothing", out)
			}
		})
	}
}

// A read that runs into a page the dump lacks shows the values before it,
// then fails.
func TestRdPartialRead(t *testing.T) {
	s, out, errw := testSession(t, testMemory(t))
	if err := s.Exec("rd -p 3d920fe8 6"); err == nil {
		t.Fatal("rd across an excluded page succeeded")
	}
	want := "        3d920fe8:  fffe293ffffe298f fffe28effffe291f   .)..?)...)...(..\n" +
		"        3d920ff8:  fffe282ffffe288f                    .(../(..\n"
	if out.String() != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", out, want)
	}
	if got, want := errw.String(), "rd: physical address 0x3d921000: page excluded by the dump filter\n"; got != want {
		t.Errorf("stderr %q, want %q", got, want)
	}
}

func TestRunScript(t *testing.T) {
	s, out, errw := testSession(t, testMemory(t))
	failed := s.RunScript([]string{
		"rd -p 1000",
		"rd -p 5000", // fails; the script goes on
		"rd -8 -p 1000 2",
		"q",
		"rd -p 1000", // not run: the session quit
	})
	if failed != 1 {
		t.Errorf("failed = %d, want 1", failed)
	}
	wantOut := "            1000:  0000000000000000                    ........\n" +
		"            1000:  00 00                                             ..\n"
	if out.String() != wantOut {
		t.Errorf("stdout:\n%s\nwant:\n%s", out, wantOut)
	}
	if errw.String() != "rd: physical address 0x5000: page not RAM\n" {
		t.Errorf("stderr %q", errw)
	}
	if !s.Done() {
		t.Error("q did not end the session")
	}
}

func TestReadScript(t *testing.T) {
	in := "# triage\nrd -p 1000\n\n   \n  # indented comment\n  rd -8 -p 1000 4  \r\nq"
	got, err := ReadScript(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"rd -p 1000", "rd -8 -p 1000 4", "q"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("ReadScript = %q, want %q", got, want)
	}
}

type scriptedReader struct {
	lines   []string
	prompts int
}

func (r *scriptedReader) ReadLine(prompt string) (string, error) {
	r.prompts++
	if len(r.lines) == 0 {
		return "", io.EOF
	}
	l := r.lines[0]
	r.lines = r.lines[1:]
	return l, nil
}

func TestInteract(t *testing.T) {
	s, out, errw := testSession(t, testMemory(t))
	r := &scriptedReader{lines: []string{"rd -p 5000", "", "rd -8 -p 1000 1", "exit", "rd -p 1000"}}
	if err := s.Interact(r, "salvage> "); err != nil {
		t.Fatal(err)
	}
	if r.prompts != 4 {
		t.Errorf("%d prompts, want 4 (the session ends at exit)", r.prompts)
	}
	if got, want := out.String(), "            1000:  00                                                .\n"; got != want {
		t.Errorf("stdout %q, want %q", got, want)
	}
	if errw.Len() == 0 {
		t.Error("the failing rd reported nothing")
	}
}

func TestInteractEOF(t *testing.T) {
	s, out, _ := testSession(t, testMemory(t))
	in := strings.NewReader("rd -8 -p 1000 1\nrd -8 -p 1000 1") // no final newline
	if err := s.Interact(NewPlainReader(in, out), "salvage> "); err != nil {
		t.Fatal(err)
	}
	line := "            1000:  00                                                .\n"
	if want := "salvage> " + line + "salvage> " + line + "salvage> \n"; out.String() != want {
		t.Errorf("stdout %q, want %q", out, want)
	}
}

func TestPanicIsReported(t *testing.T) {
	s, out, errw := testSession(t, testMemory(t))
	err := s.Commands().Add(&Command{Name: "boom", MaxArgs: -1, Run: func(ctx *Context) error {
		ctx.Out.Write([]byte("before\n"))
		var tbl []int
		return fmt.Errorf("unreachable %d", tbl[len(ctx.Args)+3])
	}})
	if err != nil {
		t.Fatal(err)
	}
	if s.Exec("boom") == nil {
		t.Fatal("a panicking command succeeded")
	}
	if !strings.HasPrefix(errw.String(), "boom: internal error (this is a bug in salvage): runtime error: index out of range [3] with length 0") {
		t.Errorf("stderr %q", errw)
	}
	if out.String() != "before\n" {
		t.Errorf("output before the panic was lost: %q", out)
	}
	if s.Exec("rd -8 -p 1000") != nil {
		t.Error("the session did not go on after the panic")
	}
}

func TestTable(t *testing.T) {
	run := func(*Context) error { return nil }
	tab, err := NewTable(&Command{Name: "b", Aliases: []string{"bb"}, Run: run}, &Command{Name: "a", Run: run})
	if err != nil {
		t.Fatal(err)
	}
	if tab.Lookup("bb") == nil || tab.Lookup("bb").Name != "b" || tab.Lookup("c") != nil {
		t.Error("Lookup is wrong")
	}
	if c := tab.Commands(); c[0].Name != "a" || c[1].Name != "b" {
		t.Error("Commands are not sorted")
	}
	for _, c := range []*Command{
		{Name: "a", Run: run},                          // name taken
		{Name: "c", Aliases: []string{"bb"}, Run: run}, // alias taken
		{Name: "d"},             // no Run
		{Name: "e f", Run: run}, // blank in the name
	} {
		if tab.Add(c) == nil {
			t.Errorf("Add(%q) succeeded", c.Name)
		}
	}
	if _, err := NewTable(builtinCommands()...); err != nil {
		t.Errorf("built-in commands: %v", err)
	}
	for _, c := range builtinCommands() {
		if c.Summary == "" || c.Help == "" {
			t.Errorf("%s: needs a Summary and a Help text", c.Name)
		}
	}
}

func TestHelp(t *testing.T) {
	s, out, errw := testSession(t, testMemory(t))
	if s.Exec("help") != nil {
		t.Fatal(errw)
	}
	for _, c := range builtinCommands() {
		if !strings.Contains(out.String(), "  "+c.Name+" ") {
			t.Errorf("help does not list %s:\n%s", c.Name, out)
		}
	}
	for _, line := range []string{"help rd", "rd --help", "help q"} {
		out.Reset()
		if s.Exec(line) != nil {
			t.Fatal(errw)
		}
		if !strings.Contains(out.String(), "usage: ") {
			t.Errorf("%s:\n%s", line, out)
		}
	}
	out.Reset()
	if s.Exec("help rd --json") != nil {
		t.Fatal(errw)
	}
	var j commandJSON
	if err := json.Unmarshal(out.Bytes(), &j); err != nil || j.Name != "rd" || len(j.Options) == 0 {
		t.Errorf("help rd --json: %v %+v", err, j)
	}
	out.Reset()
	if s.Exec("help --json") != nil {
		t.Fatal(errw)
	}
	var all []commandJSON
	if err := json.Unmarshal(out.Bytes(), &all); err != nil || len(all) != len(builtinCommands()) {
		t.Errorf("help --json: %v %+v", err, all)
	}
}

func TestSplitOutput(t *testing.T) {
	for _, c := range []struct {
		line, cmd string
		want      outputTarget
		bad       bool
	}{
		{"ps | grep bash", "ps ", outputTarget{pipe: "grep bash"}, false},
		{"ps > out.txt", "ps ", outputTarget{file: "out.txt"}, false},
		{"log >> 'my log'", "log ", outputTarget{file: "my log", append: true}, false},
		{"p init_task.thread_pid->numbers[0]", "p init_task.thread_pid->numbers[0]", outputTarget{}, false},
		{"sym -q 'a|b'", "sym -q 'a|b'", outputTarget{}, false},
		{"ps |", "", outputTarget{}, true},
		{"ps > a b", "", outputTarget{}, true},
	} {
		cmd, got, err := splitOutput(c.line)
		if (err != nil) != c.bad || (err == nil && (cmd != c.cmd || got != c.want)) {
			t.Errorf("splitOutput(%q) = %q, %+v, %v; want %q, %+v, error %v", c.line, cmd, got, err, c.cmd, c.want, c.bad)
		}
	}
}

func TestRedirectAndPipe(t *testing.T) {
	dir := t.TempDir()
	var out, errw bytes.Buffer
	s := NewSession(nil, "", &out, &errw)
	file := filepath.Join(dir, "help.txt")
	if err := s.Exec("help > " + file); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(file)
	if err != nil || !strings.Contains(string(b), "rd") || out.Len() != 0 {
		t.Fatalf("redirected help: %q (err %v), terminal got %q", b, err, out.String())
	}
	if st, _ := os.Stat(file); st.Mode().Perm() != 0o600 {
		t.Errorf("%s: mode %v, want 0600", file, st.Mode().Perm())
	}
	s.Exec("help >> " + file)
	b2, _ := os.ReadFile(file)
	if len(b2) != 2*len(b) {
		t.Errorf(">> did not append: %d bytes, then %d", len(b), len(b2))
	}
	if err := s.Exec("help | grep -c '^  '"); err != nil {
		t.Fatal(err)
	}
	if n := strings.TrimSpace(out.String()); n == "" || n == "0" {
		t.Errorf("help | grep -c: %q", out.String())
	}
	if err := s.Exec("help > " + filepath.Join(dir, "no", "such", "dir")); err == nil {
		t.Error("a redirection to a missing directory did not fail")
	}
}
