package debuginfo

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"salvage/lab/corpus"
)

// Layouts as crash 8.0.6 sees them in the lab's dumps: `struct page -o`
// prints every member of struct page with its offset, and
// `struct task_struct ADDR` every member of task_struct in order.

// labRefs returns the distinct texts of a crash 8.0.6 reference over the
// dumps of the lab's first kernel.
func labRefs(t *testing.T, kind string) (*corpus.Manifest, []string) {
	t.Helper()
	m := corpus.Require(t)
	seen := map[string]bool{}
	var out []string
	for _, d := range m.Dumps {
		if d.Release != m.Kernels[0].Release {
			continue
		}
		text, ok, err := m.Ref(d, kind)
		if err != nil {
			t.Fatal(err)
		}
		if ok && !seen[text] {
			seen[text] = true
			out = append(out, text)
		}
	}
	if len(out) == 0 {
		t.Fatalf("lab corpus at %s has no %q reference from crash", m.Root, kind)
	}
	return m, out
}

func labSources(t *testing.T) []Types {
	t.Helper()
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	dw, err := LoadDWARF(labVmlinux(t))
	if err != nil {
		t.Fatal(err)
	}
	return []Types{dw, labBTF(t)}
}

// flatLayout lists "[offset] declaration" for every named member of st,
// those of anonymous members in place, as crash's struct -o does.
func flatLayout(st *Type, base int64, out []string) []string {
	for _, m := range st.Members {
		if m.Name == "" {
			if in := m.Type.Resolve(); in != nil && (in.Kind == KindStruct || in.Kind == KindUnion) {
				out = flatLayout(in, base+m.Offset, out)
				continue
			}
		}
		decl := Declare(m.Type, m.Name)
		if m.BitSize > 0 {
			decl += fmt.Sprintf(" : %d", m.BitSize)
		}
		out = append(out, fmt.Sprintf("[%d] %s", base+m.Offset, decl))
	}
	return out
}

var crashOffsetLine = regexp.MustCompile(`^\s*\[(\d+)\]\s+(.*);$`)

func TestStructPageMatchesCrash(t *testing.T) {
	_, refs := labRefs(t, "struct-page-o")
	for _, ty := range labSources(t) {
		page, err := ty.Struct("page")
		if err != nil {
			t.Fatal(err)
		}
		got := flatLayout(page, 0, nil)
		for _, ref := range refs {
			var want []string
			for _, l := range strings.Split(ref, "\n") {
				if m := crashOffsetLine.FindStringSubmatch(l); m != nil {
					want = append(want, "["+m[1]+"] "+m[2])
				}
				if s, ok := strings.CutPrefix(l, "SIZE: "); ok {
					if n, _ := strconv.ParseInt(strings.TrimSpace(s), 10, 64); n != page.Size {
						t.Errorf("%s: struct page is %d bytes, crash says %d", ty.Source(), page.Size, n)
					}
				}
			}
			if len(want) < 20 {
				t.Fatalf("crash's struct page -o lists only %d members:\n%s", len(want), ref)
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("%s: struct page differs from crash's:\n got: %s\nwant: %s", ty.Source(),
					strings.Join(got, "\n      "), strings.Join(want, "\n      "))
			}
		}
	}
}

var crashTopMember = regexp.MustCompile(`^  (\w+) = |^  (\{)$`)

func TestTaskStructOrderMatchesCrash(t *testing.T) {
	_, refs := labRefs(t, "struct-task")
	for _, ty := range labSources(t) {
		task, err := ty.Struct("task_struct")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, m := range task.Members {
			if m.Name == "" {
				got = append(got, "{")
			} else {
				got = append(got, m.Name)
			}
		}
		for _, ref := range refs {
			var want []string
			for _, l := range strings.Split(ref, "\n") {
				if m := crashTopMember.FindStringSubmatch(l); m != nil {
					want = append(want, m[1]+m[2])
				}
			}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("%s: task_struct members differ from crash's:\n got: %v\nwant: %v", ty.Source(), got, want)
			}
		}
	}
}
