package analyze

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"salvage/lab/corpus"
)

// moduleTypes are types only modules define: vmlinux's BTF and DWARF
// lack them.
var moduleTypes = []string{"virtio_blk", "virtio_blk_vq", "virtio_pci_device", "vring_virtqueue", "fw_cfg_sysfs_entry"}

// TestModuleBTF: without a vmlinux, salvage reads the types modules
// define from their BTF in the dump (kept by the BPF subsystem once a
// module is live); with it, from the modules' debug objects that mod -S
// loads (the -dbg package's .ko files). Either way they are laid out as
// crash does after its own mod -S.
func TestModuleBTF(t *testing.T) {
	m := corpus.Require(t)
	ds := m.Select(func(d corpus.Dump) bool { return d.Scenario == "sysrq" && d.Variant == "vmcore-elf" })
	if len(ds) == 0 {
		t.Fatal("no sysrq vmcore-elf dump in the corpus")
	}
	d := ds[0]
	kern := m.Kernel(d.Release)
	if kern.DebugModules == "" {
		t.Fatalf("the corpus has no debug modules of %s", d.Release)
	}
	dir := m.Path(kern.DebugModules)
	if _, err := os.Stat(filepath.Join(dir, "virtio_blk.ko")); err != nil {
		t.Fatal(err)
	}
	var session strings.Builder
	fmt.Fprintf(&session, "mod -S %s > GOLDEN/mod-S.txt\n", dir)
	for _, ty := range moduleTypes {
		fmt.Fprintf(&session, "struct %s -o > GOLDEN/%s.txt\n", ty, ty)
	}
	session.WriteString("q\n")
	out := crashGoldenDir(t, m, d, session.String())
	for _, mode := range []string{"btf", "vmlinux"} {
		s := corpusSessionMode(t, m, d, mode)
		if mode == "vmlinux" {
			// DWARF has the module types once mod -S loads the .ko files.
			if _, errs := execCapture(s, "struct virtio_blk -o"); errs == "" {
				t.Error("struct virtio_blk resolved from vmlinux's DWARF alone")
			}
			b, _ := os.ReadFile(filepath.Join(out, "mod-S.txt"))
			got, _ := execCapture(s, "mod -S "+dir)
			if got != string(b) {
				t.Errorf("mod -S differs from crash's:\n%s", lineDiff(got, string(b)))
			}
		}
		checkModuleTypes(t, s, out, mode)
	}
}

func checkModuleTypes(t *testing.T, s *Session, out, mode string) {
	t.Helper()
	for _, ty := range moduleTypes {
		b, err := os.ReadFile(filepath.Join(out, ty+".txt"))
		if err != nil {
			t.Fatal(err)
		}
		want := string(b)
		if !strings.HasPrefix(want, "struct "+ty+" {") {
			t.Fatalf("crash did not lay out struct %s after mod -S:\n%s", ty, want)
		}
		got, errs := execCapture(s, "struct "+ty+" -o")
		if got != want || errs != "" {
			t.Errorf("%s: struct %s -o differs from crash's (%s):\n%s", mode, ty, errs, lineDiff(got, want))
		}
	}
}
