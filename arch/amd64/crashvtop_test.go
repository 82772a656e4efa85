package amd64

import (
	"fmt"
	"strconv"
	"strings"
)

// crashVtop is one `vtop` answer of the crash utility, parsed from its
// text: the physical address (or not mapped) and the entries it visited.
type crashVtop struct {
	Virt     uint64
	Phys     uint64
	Mapped   bool
	PGDEntry uint64   // "PAGE DIRECTORY: x" is the top-level entry's value
	Steps    []string // "PUD 27a15ff0 27a16063", below the top level
	PageSize uint64
	Leaf     uint64 // the entry that maps the page, and its flags as crash spells them
	Flags    string
}

// parseCrashVtop splits crash output into vtop answers. Each begins with
// the "VIRTUAL  PHYSICAL" header line.
func parseCrashVtop(text string) ([]crashVtop, error) {
	var out []crashVtop
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "VIRTUAL ") || i+1 >= len(lines) {
			continue
		}
		f := strings.Fields(lines[i+1])
		if len(f) < 2 {
			return nil, fmt.Errorf("line %d: %q: no address", i+2, lines[i+1])
		}
		var v crashVtop
		var err error
		if v.Virt, err = strconv.ParseUint(f[0], 16, 64); err != nil {
			return nil, fmt.Errorf("line %d: %v", i+2, err)
		}
		if f[1] != "(not" {
			v.Mapped = true
			if v.Phys, err = strconv.ParseUint(f[1], 16, 64); err != nil {
				return nil, fmt.Errorf("line %d: %v", i+2, err)
			}
		}
		for j := i + 2; j < len(lines) && !strings.HasPrefix(lines[j], "VIRTUAL "); j++ {
			l := strings.TrimSpace(lines[j])
			switch {
			case strings.HasPrefix(l, "PAGE DIRECTORY:"):
				v.PGDEntry, _ = strconv.ParseUint(strings.TrimSpace(strings.TrimPrefix(l, "PAGE DIRECTORY:")), 16, 64)
			case strings.HasPrefix(l, "PAGE:"):
				v.PageSize = 4096
				if strings.Contains(l, "(2MB)") {
					v.PageSize = 2 << 20
				} else if strings.Contains(l, "(1GB)") {
					v.PageSize = 1 << 30
				}
			case strings.HasPrefix(l, "PTE") && strings.Contains(l, "FLAGS") && j+1 < len(lines):
				g := strings.Fields(lines[j+1])
				if len(g) == 3 {
					v.Leaf, _ = strconv.ParseUint(g[0], 16, 64)
					v.Flags = strings.Trim(g[2], "()")
				}
			case strings.Contains(l, " => "):
				lvl, rest, _ := strings.Cut(l, ":")
				a, e, _ := strings.Cut(rest, "=>")
				v.Steps = append(v.Steps, fmt.Sprintf("%s %s %s", lvl, strings.TrimSpace(a), strings.TrimSpace(e)))
			}
		}
		out = append(out, v)
	}
	return out, nil
}
