package debuginfo

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// The DWARF of another producer, in compressed sections: a small Go
// program's (Go's linker compresses .debug_* with zlib, and go test
// strips its own binaries). Go names a type both as a struct and as a
// typedef of it, so pointers print as "main.node *".
func TestDWARFCompressedSections(t *testing.T) {
	dir := t.TempDir()
	src := "package main\n\ntype node struct {\n\tnext *node\n\tval  [3]int32\n\tname string\n}\n\nvar head node\n\nfunc main() { println(head.next, len(head.name)) }\n"
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module prog\n\ngo 1.22\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "prog")
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	s := f.Section(".debug_info")
	f.Close()
	if s == nil || s.Flags&elf.SHF_COMPRESSED == 0 {
		t.Fatalf("%s: want compressed DWARF, have section %+v", bin, s)
	}
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	ty, err := LoadDWARF(bin)
	if err != nil {
		t.Fatal(err)
	}
	if !ty.(*dwarfTypes).ix.RefAddr {
		t.Errorf("Go's DWARF refers across units (DW_FORM_ref_addr), the index says not")
	}
	n, err := ty.Struct("main.node")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path string
		off  int64
		typ  string
	}{{"next", 0, "main.node *"}, {"val[2]", 16, "int32"}, {"name", 24, "struct string"}} {
		m, err := LookupMember(n, c.path)
		if err != nil {
			t.Errorf("%s: %v", c.path, err)
			continue
		}
		if m.Offset != c.off || TypeName(m.Type) != c.typ {
			t.Errorf("main.node %s: %d %q, want %d %q", c.path, m.Offset, TypeName(m.Type), c.off, c.typ)
		}
	}
	if v, err := ty.Var("main.head"); err != nil || v.Name != "main.node" {
		t.Errorf("main.head: %v %v", v, err)
	}
}
