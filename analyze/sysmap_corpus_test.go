package analyze

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"salvage/lab/corpus"
)

// TestSystemMapTarget: a System.map among salvage analyze's files is
// recognised in any position, used for symbols, and refused with a clear
// error when it is another build's.
func TestSystemMapTarget(t *testing.T) {
	m := corpus.Require(t)
	ds := m.Select(func(d corpus.Dump) bool { return d.Scenario == "oops" && d.Variant == "lzo-d31" })
	if len(ds) == 0 {
		t.Fatal("no oops lzo-d31 dump in the corpus")
	}
	d := ds[0]
	sysmap := m.Path(m.Kernel(d.Release).SystemMap)
	for _, args := range [][]string{{sysmap, m.Paths(d)[0]}, {m.Paths(d)[0], sysmap}} {
		tg, err := splitTarget(args)
		if err != nil || tg.systemMap != sysmap || len(tg.dumps) != 1 || tg.vmlinux != "" {
			t.Fatalf("splitTarget(%q) = %+v, %v", args, tg, err)
		}
	}
	want, ok, err := m.Ref(d, "sym-init_task")
	if !ok || err != nil {
		t.Fatalf("no sym-init_task reference: %v", err)
	}
	s := corpusSessionMode(t, m, d, "sysmap")
	got, errs := execCapture(s, "sym init_task")
	// crash adds the source file and line from the DWARF line table.
	if w := regexp.MustCompile(` \S+: \d+\n$`).ReplaceAllString(want, "\n"); got != w || errs != "" {
		t.Errorf("sym init_task with System.map: %q (%s), crash: %q", got, errs, w)
	}

	// Another build's map: linux_banner moved by a page.
	b, err := os.ReadFile(sysmap)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^([0-9a-f]{16}) D linux_banner$`)
	mm := re.FindSubmatch(b)
	if mm == nil {
		t.Fatal("the System.map has no linux_banner line")
	}
	a, _ := strconv.ParseUint(string(mm[1]), 16, 64)
	wrong := filepath.Join(t.TempDir(), "System.map-other")
	os.WriteFile(wrong, re.ReplaceAll(b, []byte(strconv.FormatUint(a+0x1000, 16)+" D linux_banner")), 0o644)
	s2, err := Open([]string{wrong, m.Paths(d)[0]}, &strings.Builder{}, &strings.Builder{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	_, err = s2.Kernel()
	if err == nil || !strings.Contains(err.Error(), "does not match the dump") || !strings.Contains(err.Error(), wrong) {
		t.Errorf("a System.map of another build: %v", err)
	}
}
