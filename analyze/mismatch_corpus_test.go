package analyze

import (
	"bytes"
	"strings"
	"testing"

	"salvage/lab/corpus"
)

// TestWrongVmlinux opens a lab dump with the debug vmlinux of another real
// Debian kernel (6.12 for the 6.1 dumps, 6.1 for the 6.12 ones) and
// expects the session to refuse it before any command runs, saying what
// differs and which package holds the right one.
func TestWrongVmlinux(t *testing.T) {
	m := corpus.Require(t)
	for _, d := range m.Select(func(d corpus.Dump) bool { return d.Variant == "lzo-d31" || d.Variant == "qemu-elf" }) {
		wrong := m.WrongVmlinuxFor(d)
		if wrong == "" {
			t.Fatal("the lab corpus has no kernel fetched for mismatch tests")
		}
		var wrongRelease string
		for _, k := range m.Kernels {
			if m.Path(k.DebugVmlinux) == wrong {
				wrongRelease = k.Release
			}
		}
		t.Run(d.ID, func(t *testing.T) {
			var out, errw bytes.Buffer
			_, err := Run(Invocation{
				Files: append([]string{wrong}, m.Paths(d)...),
				Steps: []Step{{Command: "rd -p 1000 2"}},
				Out:   &out, Err: &errw,
			})
			if err == nil {
				t.Fatalf("a %s vmlinux was accepted for a %s dump; output:\n%s", wrongRelease, d.Release, out.String())
			}
			msg := err.Error()
			for _, want := range []string{"does not match", "build ID", d.Release, wrongRelease, "linux-image-" + d.Release + "-dbg"} {
				if !strings.Contains(msg, want) {
					t.Errorf("the message lacks %q:\n%s", want, msg)
				}
			}
			if strings.Count(msg, "\n") > 0 {
				t.Errorf("the message is not one line:\n%s", msg)
			}
			if out.Len() > 0 {
				t.Errorf("commands ran with a wrong vmlinux:\n%s", out.String())
			}
		})
	}
}
